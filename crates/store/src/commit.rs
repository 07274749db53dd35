//! Group commit: one writer thread takes every pending mutation, applies them
//! in one redb transaction and fsyncs once, then answers every waiter. This
//! turns the disk's few hundred fsyncs a second into as many batches, each
//! holding as many writes as arrived meanwhile.

use std::sync::Arc;

use redb::{Database, ReadableTable, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use crate::cache::Cache;
use crate::lease::Leases;
use crate::records::{self, BlobId, BucketRecord, ObjectRecord, PartRecord, Segment, UploadRecord};
use crate::tables::{self, BUCKETS, INLINE, OBJECTS, PARTS, SYSTEM, UPLOADS};
use crate::{PendingSegment, StoreError};

/// Most mutations applied in one transaction.
const MAX_BATCH: usize = 512;

type Finisher = Box<dyn FnOnce(Option<&StoreError>) + Send>;
type Job = Box<dyn FnOnce(&mut Txn<'_>) -> (Finisher, bool) + Send>;

pub(crate) struct Committer {
    tx: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Committer {
    /// Closes the queue and waits for the writer thread, so the database is
    /// closed when the last store handle is gone.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Committer {
    pub(crate) fn start(db: Arc<Database>, leases: Leases, cache: Arc<Cache>) -> Committer {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("strongroom-commit".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    run_batch(&db, &leases, &cache, jobs);
                }
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start the commit thread"))
            .ok();
        Committer { tx: Some(tx), thread }
    }

    pub(crate) async fn submit<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Txn<'_>) -> Result<R, E> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<Result<R, E>>();
        // the request's rider entry, carried if this commit writes
        let rider = crate::rider::current();
        let entry = rider.as_ref().and_then(|r| r.take());
        let job: Job = Box::new(move |txn: &mut Txn<'_>| {
            let before = txn.writes;
            let result = f(txn);
            let poisoned = result.is_err() && txn.writes != before;
            let taken = entry.is_some();
            // the batch's entries go into one row before the commit
            let carried = match (&result, entry) {
                (Ok(_), Some((name, value))) if txn.writes != before => {
                    txn.riders.push((name.clone(), value));
                    Some(name)
                }
                _ => None,
            };
            let row = txn.rider_row.clone();
            let finish: Finisher = Box::new(move |commit_err: Option<&StoreError>| {
                if let Some(r) = &rider {
                    match (carried, commit_err, row.get()) {
                        (Some(name), None, Some(row)) => {
                            r.set_carried(crate::rider::Carried { row: row.clone(), name })
                        }
                        _ if taken => r.release(),
                        _ => {}
                    }
                }
                let out = match (commit_err, result) {
                    (Some(e), Ok(_)) => Err(E::from(clone_err(e))),
                    (_, r) => r,
                };
                let _ = done_tx.send(out);
            });
            (finish, poisoned)
        });
        let tx = self.tx.as_ref().ok_or_else(|| E::from(StoreError::Closed))?;
        tx.send(job).map_err(|_| E::from(StoreError::Closed))?;
        done_rx.await.map_err(|_| E::from(StoreError::Closed))?
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Aborted => StoreError::Aborted,
        other => StoreError::Db(other.to_string()),
    }
}

fn run_batch(db: &Database, leases: &Leases, cache: &Cache, jobs: Vec<Job>) {
    let wtx = match db.begin_write() {
        Ok(w) => w,
        Err(e) => {
            let err = StoreError::from(e);
            tracing::error!(error = %err, "cannot begin a write transaction");
            // dropping the jobs closes their channels: waiters see Closed
            drop(jobs);
            return;
        }
    };
    let mut txn = Txn {
        w: &wtx,
        writes: 0,
        garbage: Vec::new(),
        riders: Vec::new(),
        rider_row: Arc::new(std::sync::OnceLock::new()),
        wrote_buckets: Vec::new(),
        wrote_system: Vec::new(),
    };
    let mut finishers = Vec::with_capacity(jobs.len());
    let mut poisoned = false;
    for job in jobs {
        let (fin, p) = job(&mut txn);
        poisoned |= p;
        finishers.push(fin);
    }
    let garbage = std::mem::take(&mut txn.garbage);
    // the entries the batch's commits carry: one row named by the greatest
    // entry name; a failed insertion aborts the batch
    let riders = std::mem::take(&mut txn.riders);
    if !poisoned && let Some(name) = riders.iter().map(|(n, _)| n).max().cloned() {
        match txn.put_system(&name, &crate::rider::pack(&riders)) {
            Ok(()) => {
                let _ = txn.rider_row.set(name);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot insert the requests' rider row");
                poisoned = true;
            }
        }
    }
    let wrote_buckets = std::mem::take(&mut txn.wrote_buckets);
    let wrote_system = std::mem::take(&mut txn.wrote_system);
    let outcome = if poisoned {
        let _ = wtx.abort();
        Err(StoreError::Aborted)
    } else {
        wtx.commit().map_err(StoreError::from)
    };
    if let Err(e) = &outcome {
        tracing::error!(error = %e, "group commit failed");
    }
    // before anyone hears back: no acknowledged write is served stale
    cache.forget(&wrote_buckets, &wrote_system);
    // released data goes before the writers hear back, so a caller that
    // saw its overwrite acknowledged never sees the old file linger
    if outcome.is_ok() {
        for id in garbage {
            leases.remove(id);
        }
    }
    for fin in finishers {
        fin(outcome.as_ref().err());
    }
}

/// One mutation's view of the shared write transaction.
pub struct Txn<'a> {
    pub(crate) w: &'a WriteTransaction,
    pub(crate) writes: usize,
    garbage: Vec<BlobId>,
    /// Rider entries the batch's commits carry, inserted before the commit.
    riders: Vec<(String, Vec<u8>)>,
    /// The name of the row holding them, once inserted.
    rider_row: Arc<std::sync::OnceLock<String>>,
    /// Bucket and system records written, dropped from the cache after
    /// the commit.
    wrote_buckets: Vec<String>,
    wrote_system: Vec<String>,
}

impl Txn<'_> {
    pub fn bucket(&self, name: &str) -> Result<Option<BucketRecord>, StoreError> {
        let t = self.w.open_table(BUCKETS)?;
        t.get(name)?.map(|v| records::decode(v.value())).transpose()
    }

    pub fn put_bucket(&mut self, rec: &BucketRecord) -> Result<(), StoreError> {
        self.writes += 1;
        self.wrote_buckets.push(rec.name.clone());
        let v = records::encode(rec)?;
        self.w.open_table(BUCKETS)?.insert(rec.name.as_str(), v.as_slice())?;
        Ok(())
    }

    /// Deletes a bucket record; its in-progress multipart uploads are
    /// aborted with it (as AWS does).
    pub fn delete_bucket(&mut self, name: &str) -> Result<(), StoreError> {
        self.writes += 1;
        self.wrote_buckets.push(name.to_owned());
        let p = tables::bucket_prefix(name);
        let mut uploads: Vec<UploadRecord> = Vec::new();
        {
            let t = self.w.open_table(UPLOADS)?;
            for item in t.range(p.as_slice()..)? {
                let (k, v) = item?;
                if !k.value().starts_with(&p) {
                    break;
                }
                uploads.push(records::decode(v.value())?);
            }
        }
        for u in &uploads {
            self.delete_upload(u, &[])?;
        }
        self.w.open_table(BUCKETS)?.remove(name)?;
        Ok(())
    }

    /// True when the bucket holds no object (in-progress multipart uploads
    /// do not count: deleting the bucket aborts them).
    pub fn bucket_is_empty(&self, name: &str) -> Result<bool, StoreError> {
        let p = tables::bucket_prefix(name);
        // noncurrent versions and delete markers count too
        for table in [OBJECTS, tables::VERSIONS] {
            let t = self.w.open_table(table)?;
            if let Some(item) = t.range(p.as_slice()..)?.next() {
                let (k, _) = item?;
                if k.value().starts_with(&p) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    pub fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError> {
        let t = self.w.open_table(OBJECTS)?;
        t.get(tables::object_key(bucket, key).as_slice())?
            .map(|v| records::decode(v.value()))
            .transpose()
    }

    /// Writes an object record; data of the record it replaces is released.
    pub fn put_object(&mut self, bucket: &str, key: &str, rec: &ObjectRecord) -> Result<(), StoreError> {
        self.writes += 1;
        let v = records::encode(rec)?;
        let old = self
            .w
            .open_table(OBJECTS)?
            .insert(tables::object_key(bucket, key).as_slice(), v.as_slice())?
            .map(|o| records::decode::<ObjectRecord>(o.value()))
            .transpose()?;
        if let Some(old) = old {
            let keep: std::collections::HashSet<BlobId> = rec.segments.iter().map(|s| s.id).collect();
            for s in old.segments.iter().filter(|s| !keep.contains(&s.id)) {
                self.release(s)?;
            }
        }
        Ok(())
    }

    /// Deletes an object record and releases its data. Returns the record.
    pub fn delete_object(&mut self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError> {
        self.writes += 1;
        let old = self
            .w
            .open_table(OBJECTS)?
            .remove(tables::object_key(bucket, key).as_slice())?
            .map(|o| records::decode::<ObjectRecord>(o.value()))
            .transpose()?;
        if let Some(old) = &old {
            for s in &old.segments {
                self.release(s)?;
            }
        }
        Ok(old)
    }

    /// Stores the inline bytes of a freshly written segment.
    pub fn add_segment(&mut self, seg: &PendingSegment) -> Result<(), StoreError> {
        if let Some(data) = &seg.inline_data {
            self.writes += 1;
            self.w
                .open_table(INLINE)?
                .insert(seg.segment.id.0.as_slice(), data.as_ref())?;
        }
        Ok(())
    }

    /// Frees a segment's bytes once this batch commits.
    pub fn release(&mut self, seg: &Segment) -> Result<(), StoreError> {
        self.writes += 1;
        if seg.inline {
            self.w.open_table(INLINE)?.remove(seg.id.0.as_slice())?;
        } else {
            self.garbage.push(seg.id);
        }
        Ok(())
    }

    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Option<UploadRecord>, StoreError> {
        let t = self.w.open_table(UPLOADS)?;
        t.get(tables::upload_key(bucket, key, upload_id).as_slice())?
            .map(|v| records::decode(v.value()))
            .transpose()
    }

    pub fn put_upload(&mut self, rec: &UploadRecord) -> Result<(), StoreError> {
        self.writes += 1;
        let v = records::encode(rec)?;
        let k = tables::upload_key(&rec.bucket, &rec.key, &rec.upload_id);
        self.w.open_table(UPLOADS)?.insert(k.as_slice(), v.as_slice())?;
        Ok(())
    }

    /// Removes an upload and its part records. Part data is released unless
    /// its id is in `keep` (parts that became an object's segments).
    pub fn delete_upload(&mut self, rec: &UploadRecord, keep: &[BlobId]) -> Result<(), StoreError> {
        self.writes += 1;
        let k = tables::upload_key(&rec.bucket, &rec.key, &rec.upload_id);
        self.w.open_table(UPLOADS)?.remove(k.as_slice())?;
        let parts = self.parts(&rec.upload_id)?;
        let mut t = self.w.open_table(PARTS)?;
        for p in &parts {
            t.remove(tables::part_key(&rec.upload_id, p.part_number).as_slice())?;
        }
        drop(t);
        for p in parts.iter().filter(|p| !keep.contains(&p.segment.id)) {
            self.release(&p.segment)?;
        }
        Ok(())
    }

    pub fn parts(&self, upload_id: &str) -> Result<Vec<PartRecord>, StoreError> {
        let t = self.w.open_table(PARTS)?;
        tables::read_parts(&t, upload_id)
    }

    /// Writes a part record, releasing the data of a part it replaces.
    pub fn put_part(&mut self, upload_id: &str, rec: &PartRecord) -> Result<(), StoreError> {
        self.writes += 1;
        let v = records::encode(rec)?;
        let old = self
            .w
            .open_table(PARTS)?
            .insert(tables::part_key(upload_id, rec.part_number).as_slice(), v.as_slice())?
            .map(|o| records::decode::<PartRecord>(o.value()))
            .transpose()?;
        if let Some(old) = old {
            self.release(&old.segment)?;
        }
        Ok(())
    }

    pub fn system(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.w.open_table(SYSTEM)?;
        Ok(t.get(name)?.map(|v| v.value().to_vec()))
    }

    pub fn put_system(&mut self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.writes += 1;
        self.wrote_system.push(name.to_owned());
        self.w.open_table(SYSTEM)?.insert(name, value)?;
        Ok(())
    }

    /// Removes a named system record.
    pub fn delete_system(&mut self, name: &str) -> Result<(), StoreError> {
        self.delete_system_rows(std::slice::from_ref(&name))
    }

    /// Removes named system records, the table opened once.
    pub fn delete_system_rows<S: AsRef<str>>(&mut self, names: &[S]) -> Result<(), StoreError> {
        self.writes += names.len();
        self.wrote_system.extend(names.iter().map(|n| n.as_ref().to_owned()));
        let mut t = self.w.open_table(SYSTEM)?;
        for name in names {
            t.remove(name.as_ref())?;
        }
        Ok(())
    }

    /// Whether every named system record exists, the table opened once.
    pub fn system_has_all<S: AsRef<str>>(&self, names: &[S]) -> Result<bool, StoreError> {
        let t = self.w.open_table(SYSTEM)?;
        for name in names {
            if t.get(name.as_ref())?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
