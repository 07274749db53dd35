//! Prometheus metrics: requests by operation and status, bytes in and out,
//! latency histograms by operation, requests in flight, and requests and
//! bytes by bucket. Rendered in the text exposition format on the admin
//! listener.
//!
//! Per-bucket series are bounded: only buckets that exist are counted (a
//! request naming a made-up bucket adds no series), and only those of an
//! allow-list, or else the first N buckets seen; the rest are summed under
//! `bucket="_other"`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// One bucket's counters.
#[derive(Default)]
struct BucketCounts {
    /// Requests by status class (1xx/2xx/3xx/4xx/5xx).
    by_class: [u64; 5],
    bytes_in: u64,
    bytes_out: u64,
}

/// Which buckets get their own series.
#[derive(Debug)]
pub enum BucketSeries {
    /// The first `n` buckets seen.
    First(usize),
    /// These buckets only.
    Only(std::collections::BTreeSet<String>),
}

impl Default for BucketSeries {
    fn default() -> Self {
        BucketSeries::First(100)
    }
}

/// The label of the buckets summed together.
const OTHER: &str = "_other";

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    buckets: Mutex<BTreeMap<String, BucketCounts>>,
    bucket_series: BucketSeries,
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    in_flight: AtomicI64,
}

impl Metrics {
    /// Counters with per-bucket series chosen by `series`.
    pub fn new(series: BucketSeries) -> Metrics {
        Metrics {
            bucket_series: series,
            ..Metrics::default()
        }
    }

    /// Counts one request to an existing bucket.
    pub(crate) fn bucket(&self, bucket: &str, status: u16, bytes_in: u64, bytes_out: u64) {
        let Ok(mut m) = self.buckets.lock() else {
            return;
        };
        let own = match &self.bucket_series {
            BucketSeries::Only(allow) => allow.contains(bucket),
            // (no bucket is named `_other`: S3 names start with a letter or digit)
            BucketSeries::First(n) => m.contains_key(bucket) || m.len() - usize::from(m.contains_key(OTHER)) < *n,
        };
        let name = if own { bucket } else { OTHER };
        if !m.contains_key(name) {
            m.insert(name.to_owned(), BucketCounts::default());
        }
        let Some(c) = m.get_mut(name) else {
            return;
        };
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        c.by_class[class] += 1;
        c.bytes_in += bytes_in;
        c.bytes_out += bytes_out;
    }

    pub(crate) fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn finish(&self, op: &str, status: u16, secs: f64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((op.to_owned(), status)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(op.to_owned()).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    pub(crate) fn add_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP strongroom_requests_total Requests by operation and HTTP status.\n# TYPE strongroom_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((op, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "strongroom_requests_total{{operation=\"{op}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP strongroom_request_duration_seconds Request latency by operation.\n# TYPE strongroom_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (op, h) in m.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "strongroom_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "strongroom_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "strongroom_request_duration_seconds_sum{{operation=\"{op}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "strongroom_request_duration_seconds_count{{operation=\"{op}\"}} {}",
                    h.count
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP strongroom_bytes_received_total Request body bytes received.\n# TYPE strongroom_bytes_received_total counter\nstrongroom_bytes_received_total {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP strongroom_bytes_sent_total Response body bytes sent.\n# TYPE strongroom_bytes_sent_total counter\nstrongroom_bytes_sent_total {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        out.push_str("# HELP strongroom_bucket_requests_total Requests by bucket and status class.\n# TYPE strongroom_bucket_requests_total counter\n");
        let mut bytes = String::from(
            "# HELP strongroom_bucket_bytes_received_total Request body bytes received by bucket.\n# TYPE strongroom_bucket_bytes_received_total counter\n",
        );
        let mut sent = String::from(
            "# HELP strongroom_bucket_bytes_sent_total Response body bytes sent by bucket.\n# TYPE strongroom_bucket_bytes_sent_total counter\n",
        );
        if let Ok(m) = self.buckets.lock() {
            for (b, c) in m.iter() {
                let b = b.replace('\\', "\\\\").replace('"', "\\\"");
                for (i, n) in c.by_class.iter().enumerate().filter(|(_, n)| **n > 0) {
                    let _ = writeln!(
                        out,
                        "strongroom_bucket_requests_total{{bucket=\"{b}\",status_class=\"{}xx\"}} {n}",
                        i + 1
                    );
                }
                let _ = writeln!(
                    bytes,
                    "strongroom_bucket_bytes_received_total{{bucket=\"{b}\"}} {}",
                    c.bytes_in
                );
                let _ = writeln!(
                    sent,
                    "strongroom_bucket_bytes_sent_total{{bucket=\"{b}\"}} {}",
                    c.bytes_out
                );
            }
        }
        out.push_str(&bytes);
        out.push_str(&sent);
        let _ = writeln!(
            out,
            "# HELP strongroom_requests_in_flight Requests being served.\n# TYPE strongroom_requests_in_flight gauge\nstrongroom_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn bucket_series_are_bounded() {
        let m = Metrics::new(BucketSeries::First(2));
        m.bucket("a", 200, 10, 0);
        m.bucket("b", 404, 0, 5);
        m.bucket("c", 200, 1, 1);
        m.bucket("d", 503, 0, 0);
        m.bucket("a", 200, 10, 0);
        let r = m.render();
        assert!(
            r.contains("strongroom_bucket_requests_total{bucket=\"a\",status_class=\"2xx\"} 2"),
            "{r}"
        );
        assert!(
            r.contains("strongroom_bucket_requests_total{bucket=\"b\",status_class=\"4xx\"} 1"),
            "{r}"
        );
        assert!(
            r.contains("strongroom_bucket_requests_total{bucket=\"_other\",status_class=\"2xx\"} 1"),
            "{r}"
        );
        assert!(
            r.contains("strongroom_bucket_requests_total{bucket=\"_other\",status_class=\"5xx\"} 1"),
            "{r}"
        );
        assert!(
            r.contains("strongroom_bucket_bytes_received_total{bucket=\"a\"} 20"),
            "{r}"
        );
        assert!(!r.contains("bucket=\"c\"") && !r.contains("bucket=\"d\""), "{r}");
        let only = Metrics::new(BucketSeries::Only(["d".to_owned()].into()));
        only.bucket("a", 200, 0, 0);
        only.bucket("d", 200, 0, 0);
        let r = only.render();
        assert!(
            r.contains("bucket=\"d\"") && r.contains("bucket=\"_other\"") && !r.contains("bucket=\"a\""),
            "{r}"
        );
    }
}
