//! Versions of keys in versioned buckets. The `versions` table holds every
//! version (delete markers included), newest first per key; the `objects`
//! table stays the current, visible object of each key (absent when the
//! newest version is a delete marker), so plain listings and reads keep
//! their one-lookup path. Which versions exist and which is current is the
//! `s3` crate's decision; the store keeps the two tables and blob lifetimes
//! consistent inside one commit.

use redb::{ReadableDatabase, ReadableTable};

use crate::records::{self, ObjectRecord};
use crate::tables::{self, OBJECTS, VERSIONS};
use crate::{Store, StoreError, Txn, Visit};

impl Txn<'_> {
    /// The versions of a key, newest first, with their sequence numbers.
    pub fn versions(&self, bucket: &str, key: &str) -> Result<Vec<(u64, ObjectRecord)>, StoreError> {
        let t = self.w.open_table(VERSIONS)?;
        let prefix = tables::version_prefix(bucket, key);
        let mut out = Vec::new();
        for item in t.range(prefix.as_slice()..)? {
            let (k, v) = item?;
            let kb = k.value();
            if !kb.starts_with(&prefix) || kb.len() != prefix.len() + 8 {
                break;
            }
            let (_, seq) = tables::version_of(bucket, kb)?;
            out.push((seq, records::decode(v.value())?));
        }
        Ok(out)
    }

    /// The newest version of a key that `want` accepts, with its sequence
    /// number: versions are read newest first and the scan stops at the
    /// first match (the `null` version of a suspended bucket's key is its
    /// newest, so finding it costs one read however many versions lie
    /// below).
    pub fn find_version_by(
        &self,
        bucket: &str,
        key: &str,
        mut want: impl FnMut(&ObjectRecord) -> bool,
    ) -> Result<Option<(u64, ObjectRecord)>, StoreError> {
        let t = self.w.open_table(VERSIONS)?;
        let prefix = tables::version_prefix(bucket, key);
        for item in t.range(prefix.as_slice()..)? {
            let (k, v) = item?;
            let kb = k.value();
            if !kb.starts_with(&prefix) || kb.len() != prefix.len() + 8 {
                break;
            }
            let rec: ObjectRecord = records::decode(v.value())?;
            if want(&rec) {
                let (_, seq) = tables::version_of(bucket, kb)?;
                return Ok(Some((seq, rec)));
            }
        }
        Ok(None)
    }

    /// Every current object of a bucket (for turning them into versions
    /// when versioning is first enabled, inside that commit).
    pub fn current_objects(&self, bucket: &str) -> Result<Vec<(String, ObjectRecord)>, StoreError> {
        let t = self.w.open_table(OBJECTS)?;
        let start = tables::bucket_prefix(bucket);
        let mut out = Vec::new();
        for item in t.range(start.as_slice()..)? {
            let (k, v) = item?;
            let kb = k.value();
            if !kb.starts_with(&start) {
                break;
            }
            out.push((tables::key_of(bucket, kb)?.to_owned(), records::decode(v.value())?));
        }
        Ok(out)
    }

    /// The newest version of a key (one read, however many versions).
    pub fn newest_version(&self, bucket: &str, key: &str) -> Result<Option<(u64, ObjectRecord)>, StoreError> {
        self.find_version_by(bucket, key, |_| true)
    }

    /// One version of a key by sequence number.
    pub fn version_at(&self, bucket: &str, key: &str, seq: u64) -> Result<Option<ObjectRecord>, StoreError> {
        let t = self.w.open_table(VERSIONS)?;
        t.get(tables::version_key(bucket, key, seq).as_slice())?
            .map(|v| records::decode(v.value()))
            .transpose()
    }

    /// A sequence number newer than every version of the key and not
    /// older than `now` (callers pass a clock, e.g. nanoseconds).
    pub fn next_version_seq(&self, bucket: &str, key: &str, now: u64) -> Result<u64, StoreError> {
        let newest = self.newest_version(bucket, key)?.map(|(s, _)| s);
        Ok(newest.map_or(now, |n| now.max(n.saturating_add(1))))
    }

    /// Writes a version (a new one, or an update of its metadata). Never
    /// releases data: a version's blobs live until the version is deleted.
    pub fn put_version(&mut self, bucket: &str, key: &str, seq: u64, rec: &ObjectRecord) -> Result<(), StoreError> {
        self.writes += 1;
        let v = records::encode(rec)?;
        self.w
            .open_table(VERSIONS)?
            .insert(tables::version_key(bucket, key, seq).as_slice(), v.as_slice())?;
        Ok(())
    }

    /// Permanently deletes a version and releases its data. The caller
    /// updates the current object in the same commit.
    pub fn delete_version(&mut self, bucket: &str, key: &str, seq: u64) -> Result<Option<ObjectRecord>, StoreError> {
        self.writes += 1;
        let old = self
            .w
            .open_table(VERSIONS)?
            .remove(tables::version_key(bucket, key, seq).as_slice())?
            .map(|o| records::decode::<ObjectRecord>(o.value()))
            .transpose()?;
        if let Some(old) = &old {
            for s in &old.segments {
                self.release(s)?;
            }
        }
        Ok(old)
    }

    /// Sets (or clears) the current object of a key without releasing
    /// anything: in a versioned bucket the data belongs to its version.
    pub fn set_current(&mut self, bucket: &str, key: &str, rec: Option<&ObjectRecord>) -> Result<(), StoreError> {
        self.writes += 1;
        let mut t = self.w.open_table(OBJECTS)?;
        let k = tables::object_key(bucket, key);
        match rec {
            Some(r) => {
                let v = records::encode(r)?;
                t.insert(k.as_slice(), v.as_slice())?;
            }
            None => {
                t.remove(k.as_slice())?;
            }
        }
        Ok(())
    }
}

impl Store {
    /// One version of a key.
    pub fn version(&self, bucket: &str, key: &str, seq: u64) -> Result<Option<ObjectRecord>, StoreError> {
        let r = self.inner.db.begin_read()?;
        let t = r.open_table(VERSIONS)?;
        t.get(tables::version_key(bucket, key, seq).as_slice())?
            .map(|v| records::decode(v.value()))
            .transpose()
    }

    /// Visits the versions of `bucket` whose keys start with `prefix`, in
    /// listing order (key ascending, newest version first), starting after
    /// `(key, seq)` when given (a ListObjectVersions marker). `SkipPrefix`
    /// jumps past every key starting with the given prefix.
    pub fn scan_versions(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, Option<u64>)>,
        mut visit: impl FnMut(&str, u64, ObjectRecord) -> Visit,
    ) -> Result<(), StoreError> {
        let r = self.inner.db.begin_read()?;
        let t = r.open_table(VERSIONS)?;
        let start = tables::object_key(bucket, prefix);
        let mut from = match after {
            // versions of the marker key older than the marker version
            Some((k, Some(seq))) => tables::version_key(bucket, k, seq),
            // past every version of the marker key
            Some((k, None)) => {
                let mut f = tables::version_prefix(bucket, k);
                f.extend_from_slice(&[0xFF; 9]);
                f
            }
            None => start.clone(),
        };
        if from < start {
            from = start.clone();
        }
        let mut skip_first = matches!(after, Some((_, Some(_))));
        loop {
            let mut restart = None;
            for item in t.range(from.as_slice()..)? {
                let (k, v) = item?;
                let kb = k.value();
                if !kb.starts_with(&start) {
                    return Ok(());
                }
                let (key, seq) = tables::version_of(bucket, kb)?;
                if skip_first {
                    skip_first = false;
                    if Some((key, Some(seq))) == after {
                        continue;
                    }
                }
                match visit(key, seq, records::decode(v.value())?) {
                    Visit::Continue => {}
                    Visit::Stop => return Ok(()),
                    Visit::SkipPrefix(p) => {
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
                    skip_first = false;
                }
                None => return Ok(()),
            }
        }
    }
}
