//! Strongroom's storage layer: an embedded metadata store (redb) with a
//! group-commit writer, and blob files on the local filesystem.
//!
//! This crate owns *where bytes live and how they become durable*. It knows
//! nothing of S3 rules (naming, preconditions, authorization): callers decide
//! what to write and this crate makes each decision atomic and durable.
//!
//! Durability contract: a [`Store::commit`] returns only after its redb
//! transaction is fsync'd; blob files referenced by a commit are fsync'd
//! (file and directory entry) by [`BlobWriter::finish`] before the caller
//! commits. Blobs that no record references (a crash between writing a blob
//! and committing its record, or after a record stops referencing one) are
//! removed by the start-up sweep.
#![forbid(unsafe_code)]

mod blob;
mod cache;
mod commit;
mod error;
pub mod fs;
mod lease;
mod records;
pub mod rider;
mod tables;
mod versions;

pub use blob::{BlobWriter, PendingSegment, SegmentReader};
pub use commit::Txn;
pub use error::StoreError;
pub use lease::Lease;
pub use records::{
    Account, BlobId, BucketRecord, Checksum, CustomerKeyCheck, ObjectHeaders, ObjectRecord, PartRecord, PartSummary,
    Retention, Segment, SseRecord, UploadRecord, WrappedKey,
};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};

use crate::tables::{BUCKETS, INLINE, OBJECTS, PARTS, SYSTEM, UPLOADS, VERSIONS};

/// Objects (and parts) up to this size live inside the metadata store, so a
/// small PUT costs one shared group-commit fsync instead of a file create,
/// two fsyncs and a commit.
pub const INLINE_MAX: usize = 64 * 1024;

/// The metadata database's page cache. redb's default (1 GiB) made the
/// server's memory grow with the metadata: 1.2 GiB resident after a
/// million objects. The kernel's page cache still holds the file, so a
/// page outside this cache costs a copy, not a disk read; `strongroom
/// bench list` over a million objects stays within its latency goals.
pub const META_CACHE: usize = 128 << 20;

/// What a scan does after visiting a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Visit {
    Continue,
    Stop,
    /// Jump past every key starting with this string.
    SkipPrefix(String),
}

/// The storage handle. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    fs: Arc<dyn fs::BlobFs>,
    blob_dir: PathBuf,
    leases: lease::Leases,
    cache: Arc<cache::Cache>,
    committer: commit::Committer,
}

impl Store {
    /// Opens (or creates) a store under `dir`, then sweeps blobs that no
    /// record references.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("meta.redb");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        restrict_mode(&path)?;
        Store::open_with(dir, redb::backends::FileBackend::new(file)?, Arc::new(fs::RealFs))
    }

    /// [`Store::open`] with the metadata file on any redb storage backend
    /// and blob files on any [`fs::BlobFs`]: production passes the file and
    /// the OS's filesystem, the power-loss test a disk and a filesystem
    /// that forget what was not synced (`tests/power_loss.rs`). Blobs live
    /// under `dir/blobs`.
    pub fn open_with(
        dir: &Path,
        meta: impl redb::StorageBackend,
        blobs: Arc<dyn fs::BlobFs>,
    ) -> Result<Store, StoreError> {
        let blob_dir = dir.join("blobs");
        blobs.create_dir_all(&blob_dir)?;
        blob::prepare_dirs(&*blobs, &blob_dir)?;
        let db = Arc::new(
            Database::builder()
                .set_cache_size(META_CACHE)
                .create_with_backend(meta)?,
        );
        {
            let w = db.begin_write()?;
            for t in [OBJECTS, UPLOADS, PARTS, INLINE, VERSIONS] {
                w.open_table(t)?;
            }
            w.open_table(BUCKETS)?;
            w.open_table(SYSTEM)?;
            w.commit()?;
        }
        let leases = lease::Leases::new(blobs.clone(), blob_dir.clone());
        let cache = Arc::new(cache::Cache::default());
        let committer = commit::Committer::start(db.clone(), leases.clone(), cache.clone());
        let store = Store {
            inner: Arc::new(Inner {
                db,
                fs: blobs,
                blob_dir,
                leases,
                cache,
                committer,
            }),
        };
        let removed = store.sweep_orphans()?;
        if removed > 0 {
            tracing::info!(removed, "start-up sweep removed unreferenced blobs");
        }
        Ok(store)
    }

    /// Runs `f` inside the next group commit and returns its result once the
    /// commit is durable. `f` must validate before it writes: if it returns an
    /// error after writing, the whole batch is aborted.
    pub async fn commit<R, E, F>(&self, f: F) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut Txn<'_>) -> Result<R, E> + Send + 'static,
    {
        self.inner.committer.submit(f).await
    }

    /// Starts writing a new blob (kept inline if it stays small).
    pub fn blob_writer(&self) -> BlobWriter {
        BlobWriter::new(self.inner.fs.clone(), self.inner.blob_dir.clone())
    }

    /// Leases the blobs of a record for a read (see [`Lease`]). Take it
    /// right after reading the record and before opening its segments.
    pub fn lease(&self, segments: &[Segment]) -> Lease {
        self.inner.leases.take(segments)
    }

    /// Removes a written segment that will not be committed.
    pub fn discard(&self, pending: PendingSegment) {
        if !pending.segment.inline {
            let _ = self
                .inner
                .fs
                .remove_file(&blob::blob_path(&self.inner.blob_dir, &pending.segment.id));
        }
    }

    /// Opens the bytes of `seg` for reading.
    pub fn open_segment(&self, seg: &Segment) -> Result<SegmentReader, StoreError> {
        if seg.inline {
            let r = self.inner.db.begin_read()?;
            let t = r.open_table(INLINE)?;
            let data = t
                .get(seg.id.0.as_slice())?
                .map(|v| v.value().to_vec())
                .ok_or(StoreError::MissingBlob)?;
            Ok(SegmentReader::Inline(bytes::Bytes::from(data)))
        } else {
            let path = blob::blob_path(&self.inner.blob_dir, &seg.id);
            match self.inner.fs.open(&path) {
                Ok(f) => Ok(SegmentReader::File(f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::MissingBlob),
                Err(e) => Err(e.into()),
            }
        }
    }

    /// Reads a bucket record (decoded once, then kept until a commit
    /// writes it: see `cache.rs`).
    pub fn bucket(&self, name: &str) -> Result<Option<BucketRecord>, StoreError> {
        Ok(self.bucket_shared(name)?.map(Arc::unwrap_or_clone))
    }

    /// [`Store::bucket`] without copying the record.
    pub fn bucket_shared(&self, name: &str) -> Result<Option<Arc<BucketRecord>>, StoreError> {
        let cache = &self.inner.cache;
        if let Some(hit) = cache.bucket(name) {
            return Ok(hit);
        }
        let since = cache.generation();
        let (rec, encoded) = {
            let r = self.inner.db.begin_read()?;
            let t = r.open_table(BUCKETS)?;
            match t.get(name)? {
                None => (None, 0),
                Some(v) => (
                    Some(Arc::new(records::decode::<BucketRecord>(v.value())?)),
                    v.value().len(),
                ),
            }
        };
        cache.put_bucket(since, name, rec.clone(), encoded);
        Ok(rec)
    }

    /// All buckets, ordered by name.
    pub fn buckets(&self) -> Result<Vec<BucketRecord>, StoreError> {
        let r = self.inner.db.begin_read()?;
        let t = r.open_table(BUCKETS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            out.push(records::decode(v.value())?);
        }
        Ok(out)
    }

    /// Reads the current object record of `key`.
    pub fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError> {
        let r = self.inner.db.begin_read()?;
        let t = r.open_table(OBJECTS)?;
        t.get(tables::object_key(bucket, key).as_slice())?
            .map(|v| records::decode(v.value()))
            .transpose()
    }

    /// Objects of `bucket` whose key starts with `prefix` and sorts strictly
    /// after `after`, in key order, calling `visit` until it says stop.
    /// `Visit::SkipPrefix(p)` jumps past every key that starts with `p`
    /// (a listing's common prefix) without reading them.
    pub fn scan_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        mut visit: impl FnMut(&str, ObjectRecord) -> Visit,
    ) -> Result<(), StoreError> {
        let r = self.inner.db.begin_read()?;
        let t = r.open_table(OBJECTS)?;
        let start = tables::object_key(bucket, prefix);
        let mut from = match after {
            Some(a) if a > prefix => tables::object_key(bucket, a),
            _ => start.clone(),
        };
        let mut skip_equal = after.is_some_and(|a| a >= prefix);
        loop {
            let mut restart = None;
            for item in t.range(from.as_slice()..)? {
                let (k, v) = item?;
                let kb = k.value();
                if !kb.starts_with(&start) {
                    return Ok(());
                }
                let key = tables::key_of(bucket, kb)?;
                if skip_equal && after == Some(key) {
                    continue;
                }
                match visit(key, records::decode(v.value())?) {
                    Visit::Continue => {}
                    Visit::Stop => return Ok(()),
                    Visit::SkipPrefix(p) => {
                        // 0xFF never occurs in UTF-8: this sorts after every
                        // key that starts with p and before any other
                        let mut next = tables::object_key(bucket, &p);
                        next.push(0xFF);
                        restart = Some(next);
                        break;
                    }
                }
            }
            match restart {
                Some(next) => {
                    from = next;
                    skip_equal = false;
                }
                None => return Ok(()),
            }
        }
    }

    /// Bytes a segment occupies where it is stored (blob file or inline
    /// row), or None when it is missing.
    pub fn stored_len(&self, seg: &Segment) -> Result<Option<u64>, StoreError> {
        if seg.inline {
            let r = self.inner.db.begin_read()?;
            let t = r.open_table(INLINE)?;
            return Ok(t.get(seg.id.0.as_slice())?.map(|v| v.value().len() as u64));
        }
        match self.inner.fs.len(&blob::blob_path(&self.inner.blob_dir, &seg.id)) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads one multipart upload.
    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Option<UploadRecord>, StoreError> {
        let r = self.inner.db.begin_read()?;
        let t = r.open_table(UPLOADS)?;
        t.get(tables::upload_key(bucket, key, upload_id).as_slice())?
            .map(|v| records::decode(v.value()))
            .transpose()
    }

    /// Multipart uploads of `bucket` in (key, upload id) order.
    pub fn scan_uploads(&self, bucket: &str, mut visit: impl FnMut(UploadRecord) -> bool) -> Result<(), StoreError> {
        let r = self.inner.db.begin_read()?;
        let t = r.open_table(UPLOADS)?;
        let start = tables::bucket_prefix(bucket);
        for item in t.range(start.as_slice()..)? {
            let (k, v) = item?;
            if !k.value().starts_with(&start) {
                break;
            }
            if !visit(records::decode(v.value())?) {
                break;
            }
        }
        Ok(())
    }

    /// Parts of an upload in part-number order.
    pub fn parts(&self, upload_id: &str) -> Result<Vec<PartRecord>, StoreError> {
        let r = self.inner.db.begin_read()?;
        let t = r.open_table(PARTS)?;
        tables::read_parts(&t, upload_id)
    }

    /// A system record (accounts, settings), by name.
    pub fn system(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.inner.db.begin_read()?;
        let t = r.open_table(SYSTEM)?;
        Ok(t.get(name)?.map(|v| v.value().to_vec()))
    }

    /// A small system record that many requests read and that holds no
    /// secret (an account's Block Public Access), kept in memory until a
    /// commit writes it (see `cache.rs`). Records holding key material are
    /// read with [`Store::system`] and never kept.
    pub fn system_shared(&self, name: &str) -> Result<Option<Arc<[u8]>>, StoreError> {
        let cache = &self.inner.cache;
        if let Some(hit) = cache.system(name) {
            return Ok(hit);
        }
        let since = cache.generation();
        let v = {
            let r = self.inner.db.begin_read()?;
            let t = r.open_table(SYSTEM)?;
            t.get(name)?.map(|v| Arc::<[u8]>::from(v.value()))
        };
        cache.put_system(since, name, v.clone());
        Ok(v)
    }

    /// System records whose name starts with `prefix`.
    pub fn system_scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let r = self.inner.db.begin_read()?;
        let t = r.open_table(SYSTEM)?;
        let mut out = Vec::new();
        for item in t.range(prefix..)? {
            let (k, v) = item?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Up to `max` named system records under `prefix`, in name order,
    /// from the first after `after` (from the first one when None).
    pub fn system_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let r = self.inner.db.begin_read()?;
        let t = r.open_table(SYSTEM)?;
        let range = match after {
            Some(a) => t.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?,
            None => t.range(prefix..)?,
        };
        let mut out = Vec::new();
        for item in range {
            let (k, v) = item?;
            if !k.value().starts_with(prefix) || out.len() == max {
                break;
            }
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Bytes the record cache accounts for: (bucket records, system
    /// records). For tests of its bound.
    #[doc(hidden)]
    pub fn cached_bytes(&self) -> (usize, usize) {
        self.inner.cache.bytes()
    }

    /// Removes blob files that no object or part references. Runs at start-up,
    /// before any request is served.
    fn sweep_orphans(&self) -> Result<usize, StoreError> {
        let r = self.inner.db.begin_read()?;
        let mut live = std::collections::HashSet::new();
        for item in r.open_table(OBJECTS)?.iter()? {
            let (_, v) = item?;
            let rec: ObjectRecord = records::decode(v.value())?;
            live.extend(rec.segments.iter().filter(|s| !s.inline).map(|s| s.id));
        }
        for item in r.open_table(VERSIONS)?.iter()? {
            let (_, v) = item?;
            let rec: ObjectRecord = records::decode(v.value())?;
            live.extend(rec.segments.iter().filter(|s| !s.inline).map(|s| s.id));
        }
        for item in r.open_table(PARTS)?.iter()? {
            let (_, v) = item?;
            let rec: PartRecord = records::decode(v.value())?;
            if !rec.segment.inline {
                live.insert(rec.segment.id);
            }
        }
        blob::sweep(&*self.inner.fs, &self.inner.blob_dir, &live)
    }
}

/// Makes a file readable by its owner only.
pub fn restrict_mode(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}
