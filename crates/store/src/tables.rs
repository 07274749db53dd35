//! Table definitions and key encodings.
//!
//! Object keys are `bucket NUL key`: bucket names never contain NUL, so a
//! bucket's objects are one contiguous range in UTF-8 byte order (the order
//! S3 lists in). Upload keys append `NUL upload-id` (fixed length), parts are
//! `upload-id` followed by the big-endian part number.

use redb::{ReadableTable, TableDefinition};

use crate::StoreError;
use crate::records::{self, PartRecord};

pub(crate) const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
pub(crate) const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
pub(crate) const UPLOADS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("uploads");
pub(crate) const PARTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("parts");
pub(crate) const INLINE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("inline");
pub(crate) const SYSTEM: TableDefinition<&str, &[u8]> = TableDefinition::new("system");
/// Every version of every key of versioned buckets: `bucket NUL key NUL
/// !seq (u64 BE)`, so a key's versions sort newest first and keys in
/// listing order (`a NUL …` sorts before `ab …`).
pub(crate) const VERSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("versions");

pub(crate) fn version_prefix(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = object_key(bucket, key);
    k.push(0);
    k
}

pub(crate) fn version_key(bucket: &str, key: &str, seq: u64) -> Vec<u8> {
    let mut k = version_prefix(bucket, key);
    k.extend_from_slice(&(!seq).to_be_bytes());
    k
}

/// (key, seq) of a version table key of `bucket`.
pub(crate) fn version_of<'a>(bucket: &str, raw: &'a [u8]) -> Result<(&'a str, u64), StoreError> {
    let bad = || StoreError::Corrupt("bad version key".into());
    let body = raw.get(bucket.len() + 1..).ok_or_else(bad)?;
    let split = body.len().checked_sub(9).ok_or_else(bad)?;
    let (key, tail) = body.split_at(split);
    let inv = <[u8; 8]>::try_from(tail.get(1..).ok_or_else(bad)?).map_err(|_| bad())?;
    Ok((std::str::from_utf8(key).map_err(|_| bad())?, !u64::from_be_bytes(inv)))
}

pub(crate) fn bucket_prefix(bucket: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1);
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k
}

pub(crate) fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    k.extend_from_slice(key.as_bytes());
    k
}

pub(crate) fn key_of<'a>(bucket: &str, raw: &'a [u8]) -> Result<&'a str, StoreError> {
    raw.get(bucket.len() + 1..)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or_else(|| StoreError::Corrupt("bad object key".into()))
}

pub(crate) fn upload_key(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut k = object_key(bucket, key);
    k.push(0);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

pub(crate) fn part_key(upload_id: &str, part: u32) -> Vec<u8> {
    let mut k = upload_id.as_bytes().to_vec();
    k.extend_from_slice(&part.to_be_bytes());
    k
}

pub(crate) fn read_parts(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    upload_id: &str,
) -> Result<Vec<PartRecord>, StoreError> {
    let lo = part_key(upload_id, 0);
    let hi = part_key(upload_id, u32::MAX);
    let mut out = Vec::new();
    for item in t.range(lo.as_slice()..=hi.as_slice())? {
        let (_, v) = item?;
        out.push(records::decode(v.value())?);
    }
    Ok(out)
}
