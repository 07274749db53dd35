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
