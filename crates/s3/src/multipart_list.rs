//! ListParts and ListMultipartUploads.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};
use strongroom_store::PartRecord;

use crate::error::store;
use crate::meta::{ChecksumFields, etag, initiator, storage_class};
use crate::multipart::{load_upload, upload_algo};
use crate::{Strongroom, timestamp};

pub(crate) async fn list_parts(
    s3: &Strongroom,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let u = load_upload(s3, &b, &i.key, &i.upload_id)?;
    let max = i.max_parts.unwrap_or(1000).clamp(0, 1000);
    let marker = i.part_number_marker.unwrap_or(0).max(0);
    let show_checksum = upload_algo(&u).is_some();
    let all = store(s3.store.parts(&u.upload_id))?;
    let after: Vec<&PartRecord> = all
        .iter()
        .filter(|p| i64::from(p.part_number) > i64::from(marker))
        .collect();
    let take = usize::try_from(max).unwrap_or(0);
    let truncated = after.len() > take;
    let page: Vec<Part> = after
        .iter()
        .take(take)
        .map(|p| {
            let c = if show_checksum {
                ChecksumFields::from(p.checksum.as_ref())
            } else {
                ChecksumFields::none()
            };
            with_checksums!(
                c,
                Part {
                    part_number: i32::try_from(p.part_number).ok(),
                    e_tag: Some(etag(&p.etag)),
                    size: i64::try_from(p.size).ok(),
                    last_modified: Some(timestamp(p.last_modified_ms)),
                }
            )
        })
        .collect();
    let next = page.last().and_then(|p| p.part_number);
    let owner = s3.owner_of(&u.owner);
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(u.bucket.clone()),
        key: Some(u.key.clone()),
        upload_id: Some(u.upload_id.clone()),
        max_parts: Some(max),
        part_number_marker: Some(marker),
        next_part_number_marker: next,
        is_truncated: Some(truncated),
        parts: Some(page),
        initiator: Some(initiator(&owner)),
        owner: Some(owner),
        storage_class: Some(storage_class(&u.headers)),
        checksum_algorithm: u.checksum_algorithm.clone().map(ChecksumAlgorithm::from),
        checksum_type: u.checksum_type.clone().map(ChecksumType::from),
        ..Default::default()
    }))
}

pub(crate) async fn list_uploads(
    s3: &Strongroom,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    // the decision read the bucket (a missing one was refused there)
    crate::decided_bucket(&req)?;
    let i = req.input;
    let max = usize::try_from(i.max_uploads.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
    let prefix = i.prefix.clone().unwrap_or_default();
    let key_marker = i.key_marker.clone().unwrap_or_default();
    let id_marker = i.upload_id_marker.clone().unwrap_or_default();
    let delim = i.delimiter.clone().filter(|d| !d.is_empty());
    let mut uploads = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut truncated = false;
    let mut last: Option<(String, String)> = None;
    store(s3.store.scan_uploads(&i.bucket, |u| {
        if !u.key.starts_with(&prefix) {
            return true;
        }
        let past_marker = if id_marker.is_empty() || key_marker.is_empty() {
            u.key > key_marker
        } else {
            u.key > key_marker || (u.key == key_marker && u.upload_id > id_marker)
        };
        if !key_marker.is_empty() && !past_marker {
            return true;
        }
        let rest = &u.key[prefix.len()..];
        if let Some(d) = &delim
            && let Some(idx) = rest.find(d.as_str())
        {
            let cp = format!("{prefix}{}", &rest[..idx + d.len()]);
            if prefixes.last() == Some(&cp) {
                return true;
            }
            if uploads.len() + prefixes.len() >= max {
                truncated = true;
                return false;
            }
            prefixes.push(cp);
            return true;
        }
        if uploads.len() + prefixes.len() >= max {
            truncated = true;
            return false;
        }
        last = Some((u.key.clone(), u.upload_id.clone()));
        uploads.push(u);
        true
    }))?;
    let list: Vec<MultipartUpload> = uploads
        .iter()
        .map(|u| {
            let owner = s3.owner_of(&u.owner);
            MultipartUpload {
                key: Some(u.key.clone()),
                upload_id: Some(u.upload_id.clone()),
                initiated: Some(timestamp(u.initiated_ms)),
                initiator: Some(initiator(&owner)),
                owner: Some(owner),
                storage_class: Some(storage_class(&u.headers)),
                checksum_algorithm: u.checksum_algorithm.clone().map(ChecksumAlgorithm::from),
                checksum_type: u.checksum_type.clone().map(ChecksumType::from),
            }
        })
        .collect();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: i.prefix,
        delimiter: i.delimiter,
        key_marker: Some(key_marker),
        upload_id_marker: Some(id_marker),
        max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(truncated),
        next_key_marker: last.as_ref().map(|l| l.0.clone()),
        next_upload_id_marker: last.map(|l| l.1),
        uploads: Some(list),
        common_prefixes: Some(prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}
