//! S3 Bucket Keys: one KMS call makes a bucket-level key that wraps the
//! data keys of many objects for a bounded time, so a burst of SSE-KMS
//! writes costs a handful of KMS requests instead of one each. Reads cache
//! the decrypted bucket key for the same time. The cache saves only the
//! cryptographic call: every use, by every caller, is authorized by the key
//! service first (key policy, identity policies, key state), so a caller
//! denied the key, another account the key policy does not name, or a key
//! disabled or pending deletion is refused even while the bucket key is
//! fresh.

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

/// An opened bucket key and the ARN of the KMS key that opened it.
type Opened = (Key, String);

/// Entries kept at most in each map.
const MAX_ENTRIES: usize = 4096;

pub(crate) struct BucketKeys {
    ttl: Duration,
    /// (bucket, key ARN) -> current bucket key for writes.
    current: Mutex<HashMap<BucketKeyId, (Arc<BucketKey>, Instant)>>,
    /// SHA-256 of a bucket key's ciphertext -> its plaintext and the ARN
    /// of the KMS key that opened it, for reads.
    opened: Mutex<HashMap<[u8; 32], (Opened, Instant)>>,
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

    fn fresh_opened(&self, d: &[u8; 32]) -> Option<Opened> {
        let m = self.opened.lock().ok()?;
        m.get(d).filter(|(_, t)| t.elapsed() < self.ttl).map(|(k, _)| k.clone())
    }

    fn remember_opened(&self, d: [u8; 32], k: &Key, arn: &str) {
        if let Ok(mut m) = self.opened.lock() {
            bound(&mut m, self.ttl);
            m.insert(d, ((k.clone(), arn.to_owned()), Instant::now()));
        }
    }

    /// The bucket key for new objects of `bucket` under KMS key `arn`,
    /// once `caller` may use the key for kms:GenerateDataKey.
    pub(crate) async fn get_or_make(
        &self,
        kms: &dyn KeyService,
        caller: &Caller,
        bucket: &str,
        arn: &str,
        context: &Context,
    ) -> Result<Arc<BucketKey>, KmsError> {
        let id = (bucket.to_owned(), arn.to_owned());
        if let Some(k) = self.fresh_current(&id) {
            kms.authorize_use(caller, arn, "kms:GenerateDataKey", context).await?;
            return Ok(k);
        }
        let _one = self.making.lock().await;
        if let Some(k) = self.fresh_current(&id) {
            kms.authorize_use(caller, arn, "kms:GenerateDataKey", context).await?;
            return Ok(k);
        }
        let d = kms.generate_data_key(caller, Some(arn), context).await?;
        let bk = Arc::new(BucketKey {
            key: d.plaintext,
            ciphertext: d.ciphertext,
        });
        self.remember_opened(digest(&bk.ciphertext), &bk.key, &d.key_arn);
        if let Ok(mut m) = self.current.lock() {
            bound(&mut m, self.ttl);
            m.insert(id, (bk.clone(), Instant::now()));
        }
        Ok(bk)
    }

    /// The plaintext of a bucket key from its ciphertext, once `caller`
    /// may use its KMS key for kms:Decrypt.
    pub(crate) async fn open(
        &self,
        kms: &dyn KeyService,
        caller: &Caller,
        ciphertext: &[u8],
        context: &Context,
    ) -> Result<Key, KmsError> {
        let d = digest(ciphertext);
        if let Some((k, arn)) = self.fresh_opened(&d) {
            kms.authorize_use(caller, &arn, "kms:Decrypt", context).await?;
            return Ok(k);
        }
        let _one = self.making.lock().await;
        if let Some((k, arn)) = self.fresh_opened(&d) {
            kms.authorize_use(caller, &arn, "kms:Decrypt", context).await?;
            return Ok(k);
        }
        let (arn, k) = kms.decrypt(caller, ciphertext, context).await?;
        self.remember_opened(d, &k, &arn);
        Ok(k)
    }
}
