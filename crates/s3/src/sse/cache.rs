//! S3 Bucket Keys: one KMS call makes a bucket-level key that wraps the
//! data keys of many objects for a bounded time, so a burst of SSE-KMS
//! writes costs a handful of KMS requests instead of one each. Reads cache
//! the decrypted bucket key for the same time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strongroom_crypt::Key;
use strongroom_kms::{Caller, Context, KeyService, KmsError};

/// A bucket key: plaintext (in memory only) and its KMS ciphertext.
pub(crate) struct BucketKey {
    pub key: Key,
    pub ciphertext: Vec<u8>,
}

/// (bucket, KMS key ARN).
type BucketKeyId = (String, String);

/// Entries kept at most in each map.
const MAX_ENTRIES: usize = 4096;

pub(crate) struct BucketKeys {
    ttl: Duration,
    /// (bucket, key ARN) -> current bucket key for writes.
    current: Mutex<HashMap<BucketKeyId, (Arc<BucketKey>, Instant)>>,
    /// SHA-256 of a bucket key's ciphertext -> its plaintext, for reads.
    opened: Mutex<HashMap<[u8; 32], (Key, Instant)>>,
    /// One KMS call at a time makes or opens a bucket key, so a burst
    /// that misses the cache together makes one call, not one each.
    making: tokio::sync::Mutex<()>,
}

fn digest(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, b).as_ref());
    out
}

fn bound<K: Eq + std::hash::Hash, V>(m: &mut HashMap<K, (V, Instant)>, ttl: Duration) {
    if m.len() >= MAX_ENTRIES {
        m.retain(|_, (_, t)| t.elapsed() < ttl);
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
    }
}

impl BucketKeys {
    pub(crate) fn new(ttl: Duration) -> BucketKeys {
        BucketKeys {
            ttl,
            current: Mutex::new(HashMap::new()),
            opened: Mutex::new(HashMap::new()),
            making: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh_current(&self, id: &(String, String)) -> Option<Arc<BucketKey>> {
        let m = self.current.lock().ok()?;
        m.get(id)
            .filter(|(_, t)| t.elapsed() < self.ttl)
            .map(|(k, _)| k.clone())
    }

    fn fresh_opened(&self, d: &[u8; 32]) -> Option<Key> {
        let m = self.opened.lock().ok()?;
        m.get(d).filter(|(_, t)| t.elapsed() < self.ttl).map(|(k, _)| k.clone())
    }

    fn remember_opened(&self, d: [u8; 32], k: &Key) {
        if let Ok(mut m) = self.opened.lock() {
            bound(&mut m, self.ttl);
            m.insert(d, (k.clone(), Instant::now()));
        }
    }

    /// The bucket key for new objects of `bucket` under KMS key `arn`.
    pub(crate) async fn get_or_make(
        &self,
        kms: &dyn KeyService,
        caller: &Caller,
        bucket: &str,
        arn: &str,
        context: impl FnOnce() -> Context,
    ) -> Result<Arc<BucketKey>, KmsError> {
        let id = (bucket.to_owned(), arn.to_owned());
        if let Some(k) = self.fresh_current(&id) {
            return Ok(k);
        }
        let _one = self.making.lock().await;
        if let Some(k) = self.fresh_current(&id) {
            return Ok(k);
        }
        let d = kms.generate_data_key(caller, Some(arn), &context()).await?;
        let bk = Arc::new(BucketKey {
            key: d.plaintext,
            ciphertext: d.ciphertext,
        });
        self.remember_opened(digest(&bk.ciphertext), &bk.key);
        if let Ok(mut m) = self.current.lock() {
            bound(&mut m, self.ttl);
            m.insert(id, (bk.clone(), Instant::now()));
        }
        Ok(bk)
    }

    /// The plaintext of a bucket key from its ciphertext.
    pub(crate) async fn open(
        &self,
        kms: &dyn KeyService,
        caller: &Caller,
        ciphertext: &[u8],
        context: impl FnOnce() -> Context,
    ) -> Result<Key, KmsError> {
        let d = digest(ciphertext);
        if let Some(k) = self.fresh_opened(&d) {
            return Ok(k);
        }
        let _one = self.making.lock().await;
        if let Some(k) = self.fresh_opened(&d) {
            return Ok(k);
        }
        let (_, k) = kms.decrypt(caller, ciphertext, &context()).await?;
        self.remember_opened(d, &k);
        Ok(k)
    }
}
