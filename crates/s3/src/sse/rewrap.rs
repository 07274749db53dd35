//! Re-wrapping data keys under the active master key after a rotation
//! (`strongroom admin rewrap-master-key`, server stopped: the metadata
//! database is locked by a running server). Only the wrapped 32-byte data
//! keys change; object data is not rewritten. Once done, keys no longer
//! active can be removed from the keyring.

use strongroom_crypt::MasterKeys;
use strongroom_store::{ObjectRecord, SseRecord, Store, StoreError, Visit};

use super::master_context;
use crate::checksum::{b64, unb64};

/// What a re-wrap pass changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rewrapped {
    pub objects: usize,
    pub uploads: usize,
}

fn err(m: String) -> StoreError {
    StoreError::Corrupt(m)
}

/// Re-wraps the master-wrapped keys of one record; true when it changed.
fn rewrap_record(master: &MasterKeys, bucket: &str, key: &str, sse: &mut SseRecord) -> Result<bool, StoreError> {
    let (active_id, active) = master.active();
    let mut changed = false;
    for w in &mut sse.keys {
        let Some(id) = w.by.strip_prefix("master:") else {
            continue;
        };
        if id == active_id {
            continue;
        }
        let old = master.get(id).ok_or_else(|| {
            err(format!(
                "{bucket}/{key} needs master key {id}, which is not in the keyring"
            ))
        })?;
        let blob = unb64(&w.blob).ok_or_else(|| err(format!("{bucket}/{key}: wrapped key is not base64")))?;
        let ctx = master_context(bucket, key);
        let dk = strongroom_crypt::unwrap(old, &blob, &ctx).map_err(|e| err(format!("{bucket}/{key}: {e}")))?;
        let fresh = strongroom_crypt::wrap(active, &dk, &ctx).map_err(|e| err(e.to_string()))?;
        w.by = format!("master:{active_id}");
        w.blob = b64(&fresh);
        changed = true;
    }
    Ok(changed)
}

/// Batch size of one commit.
const BATCH: usize = 500;

/// Re-wraps every object's and upload's master-wrapped data keys.
pub async fn rewrap_all(store: &Store, master: &MasterKeys) -> Result<Rewrapped, StoreError> {
    let mut done = Rewrapped::default();
    for b in store.buckets()? {
        let mut pending: Vec<(String, ObjectRecord)> = Vec::new();
        let mut failure = None;
        store.scan_objects(&b.name, "", None, |key, mut rec| {
            if let Some(sse) = rec.sse.as_mut() {
                match rewrap_record(master, &b.name, key, sse) {
                    Ok(true) => pending.push((key.to_owned(), rec)),
                    Ok(false) => {}
                    Err(e) => {
                        failure = Some(e);
                        return Visit::Stop;
                    }
                }
            }
            Visit::Continue
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        done.objects += pending.len();
        while !pending.is_empty() {
            let batch: Vec<_> = pending.drain(..pending.len().min(BATCH)).collect();
            let name = b.name.clone();
            store
                .commit(move |t| -> Result<(), StoreError> {
                    for (k, rec) in &batch {
                        // same segments: put_object releases nothing
                        t.put_object(&name, k, rec)?;
                    }
                    Ok(())
                })
                .await?;
        }
        let mut uploads = Vec::new();
        store.scan_uploads(&b.name, |u| {
            uploads.push(u);
            true
        })?;
        for mut u in uploads {
            let changed = match u.sse.as_mut() {
                Some(sse) => rewrap_record(master, &u.bucket, &u.key, sse)?,
                None => false,
            };
            if changed {
                done.uploads += 1;
                store.commit(move |t| t.put_upload(&u)).await?;
            }
        }
    }
    Ok(done)
}
