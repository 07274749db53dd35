//! ListObjectVersions. Of a versioned bucket: one range scan of the
//! versions table (key ascending, newest first), delete markers apart,
//! `IsLatest` on each key's newest version, CommonPrefixes at the
//! delimiter, and resumption at KeyMarker / VersionIdMarker.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strongroom_store::{ObjectRecord, Visit};

use crate::Strongroom;
use crate::error::store;
use crate::list::{Enc, common_prefixes, list_page, max_keys};
use crate::{timestamp, versioning};

struct Entry {
    key: String,
    latest: bool,
    rec: ObjectRecord,
}

/// The (key, seq) to resume after.
fn resume_point(
    s3: &Strongroom,
    bucket: &str,
    key: Option<&str>,
    vid: Option<&str>,
) -> S3Result<Option<(String, Option<u64>)>> {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    let Some(vid) = vid.filter(|v| !v.is_empty()) else {
        return Ok(Some((key.to_owned(), None)));
    };
    // an id names its sequence number: one read, however many versions
    // the key has (only `null` has none, and is found by a scan)
    let seq = match versioning::seq_of(vid) {
        Some(s) => store(s3.store.version(bucket, key, s))?
            .filter(|r| r.version_id.as_deref() == Some(vid))
            .map(|_| s),
        None if vid == versioning::NULL => {
            let mut seq = None;
            store(s3.store.scan_versions(bucket, key, None, |k, s, r| {
                if k != key {
                    return Visit::Stop;
                }
                if r.version_id.as_deref() == Some(vid) {
                    seq = Some(s);
                    return Visit::Stop;
                }
                Visit::Continue
            }))?;
            seq
        }
        None => None,
    };
    match seq {
        Some(s) => Ok(Some((key.to_owned(), Some(s)))),
        None => Err(s3_error!(InvalidArgument, "Invalid version id specified")),
    }
}

async fn list_versioned(s3: &Strongroom, i: ListObjectVersionsInput) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let enc = Enc::new(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let prefix = i.prefix.clone().unwrap_or_default();
    let delimiter = i.delimiter.as_deref().filter(|d| !d.is_empty());
    let after = resume_point(s3, &i.bucket, i.key_marker.as_deref(), i.version_id_marker.as_deref())?;
    let mut entries: Vec<Entry> = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut truncated = false;
    let mut last_key: Option<String> = after.as_ref().filter(|(_, s)| s.is_some()).map(|(k, _)| k.clone());
    let mut next: Option<(String, Option<String>)> = None;
    if max > 0 {
        store(s3.store.scan_versions(
            &i.bucket,
            &prefix,
            after.as_ref().map(|(k, s)| (k.as_str(), *s)),
            |key, _seq, rec| {
                let rest = key.get(prefix.len()..).unwrap_or_default();
                if let Some(d) = delimiter
                    && let Some(at) = rest.find(d)
                {
                    let cp = format!("{prefix}{}", &rest[..at + d.len()]);
                    if after.as_ref().is_some_and(|(k, _)| cp.as_str() <= k.as_str()) {
                        return Visit::SkipPrefix(cp);
                    }
                    if entries.len() + prefixes.len() == max {
                        truncated = true;
                        return Visit::Stop;
                    }
                    next = Some((cp.clone(), None));
                    prefixes.push(cp.clone());
                    return Visit::SkipPrefix(cp);
                }
                if entries.len() + prefixes.len() == max {
                    truncated = true;
                    return Visit::Stop;
                }
                let latest = last_key.as_deref() != Some(key);
                last_key = Some(key.to_owned());
                next = Some((key.to_owned(), rec.version_id.clone()));
                entries.push(Entry {
                    key: key.to_owned(),
                    latest,
                    rec,
                });
                Visit::Continue
            },
        ))?;
    }
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    for e in entries {
        let vid = e.rec.version_id.clone().unwrap_or_else(|| versioning::NULL.to_owned());
        if e.rec.delete_marker {
            markers.push(DeleteMarkerEntry {
                key: Some(enc.s(&e.key)),
                version_id: Some(vid),
                is_latest: Some(e.latest),
                last_modified: Some(timestamp(e.rec.last_modified_ms)),
                owner: Some(s3.owner_of(&e.rec.owner)),
            });
        } else {
            versions.push(ObjectVersion {
                key: Some(enc.s(&e.key)),
                version_id: Some(vid),
                is_latest: Some(e.latest),
                e_tag: Some(ETag::Strong(e.rec.etag.clone())),
                last_modified: Some(timestamp(e.rec.last_modified_ms)),
                size: Some(i64::try_from(e.rec.size).unwrap_or(i64::MAX)),
                storage_class: Some(ObjectVersionStorageClass::from("STANDARD".to_owned())),
                owner: Some(s3.owner_of(&e.rec.owner)),
                checksum_algorithm: e
                    .rec
                    .checksum
                    .as_ref()
                    .map(|c| vec![ChecksumAlgorithm::from(c.algorithm.clone())]),
                checksum_type: e.rec.checksum.as_ref().map(|c| ChecksumType::from(c.kind.clone())),
                ..Default::default()
            });
        }
    }
    let (next_key, next_vid) = match (truncated, next) {
        (true, Some((k, v))) => (Some(enc.s(&k)), v),
        _ => (None, None),
    };
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(i.bucket),
        prefix: Some(enc.s(&prefix)),
        key_marker: Some(enc.s(i.key_marker.as_deref().unwrap_or_default())),
        version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(truncated),
        next_key_marker: next_key,
        next_version_id_marker: next_vid,
        versions: Some(versions),
        delete_markers: Some(markers),
        common_prefixes: common_prefixes(&enc, &prefixes),
        delimiter: enc.o(i.delimiter.as_ref().filter(|d| !d.is_empty())),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

/// ListObjectVersions: a bucket that was never versioned lists each
/// object as its only version, `null`.
pub(crate) async fn list_object_versions(
    s3: &Strongroom,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    if versioning::state(&b) != versioning::State::Never {
        return list_versioned(s3, i).await;
    }
    let (enc, max, prefix, page) = list_page(
        s3,
        &b,
        i.encoding_type.as_ref(),
        i.max_keys,
        i.prefix.as_ref(),
        i.delimiter.as_deref(),
        i.key_marker.as_deref(),
    )?;
    let versions = page
        .objects
        .iter()
        .map(|(k, r)| ObjectVersion {
            key: Some(enc.s(k)),
            version_id: Some("null".into()),
            is_latest: Some(true),
            e_tag: Some(ETag::Strong(r.etag.clone())),
            last_modified: Some(timestamp(r.last_modified_ms)),
            size: Some(i64::try_from(r.size).unwrap_or(i64::MAX)),
            storage_class: Some(ObjectVersionStorageClass::from("STANDARD".to_owned())),
            owner: Some(s3.owner_of(&r.owner)),
            checksum_algorithm: r
                .checksum
                .as_ref()
                .map(|c| vec![ChecksumAlgorithm::from(c.algorithm.clone())]),
            checksum_type: r.checksum.as_ref().map(|c| ChecksumType::from(c.kind.clone())),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(i.bucket),
        prefix: Some(enc.s(&prefix)),
        key_marker: Some(enc.s(i.key_marker.as_deref().unwrap_or_default())),
        version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(page.truncated),
        next_key_marker: page.truncated.then(|| enc.o(page.last.as_ref())).flatten(),
        next_version_id_marker: page.truncated.then(|| "null".to_owned()),
        versions: Some(versions),
        common_prefixes: common_prefixes(&enc, &page.prefixes),
        delimiter: enc.o(i.delimiter.as_ref().filter(|d| !d.is_empty())),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}
