//! Request-rate quotas: a token bucket per account for the cryptographic
//! operations, as AWS KMS applies (ThrottlingException beyond it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct Quota {
    /// Requests a second (0 = unlimited); the bucket holds one second.
    rate: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Quota {
    pub fn new(rate: u32) -> Quota {
        Quota {
            rate: f64::from(rate),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `account`; false when none is left.
    pub fn take(&self, account: &str) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let Ok(mut m) = self.buckets.lock() else { return false };
        let now = Instant::now();
        let (tokens, last) = m.entry(account.to_owned()).or_insert((self.rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_beyond_the_rate_is_refused_per_account() {
        let q = Quota::new(50);
        let granted = (0..200).filter(|_| q.take("a")).count();
        assert!((50..=52).contains(&granted), "granted {granted}");
        assert!(q.take("b"));
        assert!(Quota::new(0).take("a"));
    }
}
