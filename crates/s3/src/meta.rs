//! Object metadata: what a PUT stores (representation headers, user
//! metadata, tags) and how it is shown again.

use std::collections::BTreeMap;

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use strongroom_iam::Principal;
use strongroom_store::{Checksum as StoredChecksum, ObjectHeaders};

use crate::checksum::Algo;

/// User metadata is limited to 2 KB (keys and values, as AWS counts).
const MAX_USER_METADATA: usize = 2048;

/// Collects representation headers and user metadata from a write request.
#[allow(clippy::too_many_arguments)]
pub(crate) fn headers_from(
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<&Timestamp>,
    website_redirect: Option<String>,
    storage_class: Option<&StorageClass>,
    metadata: Option<Metadata>,
) -> S3Result<ObjectHeaders> {
    let user: BTreeMap<String, String> = metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let size: usize = user.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA {
        return Err(S3Error::with_message(
            S3ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    if let Some(sc) = storage_class {
        let ok = matches!(
            sc.as_str(),
            "STANDARD" | "REDUCED_REDUNDANCY" | "STANDARD_IA" | "ONEZONE_IA" | "INTELLIGENT_TIERING" | "GLACIER_IR"
        );
        if !ok {
            return Err(s3_error!(
                InvalidStorageClass,
                "The storage class you specified is not valid"
            ));
        }
    }
    // aws-chunked describes the upload framing, not the object (AWS strips it)
    let content_encoding = content_encoding
        .map(|e| {
            e.split(',')
                .map(str::trim)
                .filter(|p| !p.eq_ignore_ascii_case("aws-chunked") && !p.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|e| !e.is_empty());
    Ok(ObjectHeaders {
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        expires: expires.map(fmt_http_date),
        website_redirect,
        storage_class: storage_class.map(|s| s.as_str().to_owned()).filter(|s| s != "STANDARD"),
        user,
    })
}

fn fmt_http_date(t: &Timestamp) -> String {
    let mut buf = Vec::new();
    let _ = t.format(TimestampFormat::HttpDate, &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

pub(crate) fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

/// Refuses ACLs other than the ones a bucket with ACLs disabled
/// (BucketOwnerEnforced, the default for new buckets) accepts.
pub(crate) fn check_object_acl(acl: Option<&ObjectCannedACL>) -> S3Result<()> {
    match acl.map(ObjectCannedACL::as_str) {
        None | Some("private" | "bucket-owner-full-control") => Ok(()),
        Some(_) => Err(s3_error!(
            AccessControlListNotSupported,
            "The bucket does not allow ACLs"
        )),
    }
}

/// Parses the `x-amz-tagging` header (URL query form).
pub(crate) fn parse_tagging_header(h: Option<&str>) -> S3Result<Vec<(String, String)>> {
    let Some(h) = h else { return Ok(Vec::new()) };
    let mut tags = Vec::new();
    for pair in h.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| s3_error!(InvalidTag, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
        };
        tags.push((dec(k)?, dec(v)?));
    }
    validate_tags(&tags, 10)?;
    Ok(tags)
}

/// AWS tag rules: at most `max` tags, unique keys, key 1..=128 and value
/// at most 256 Unicode characters.
pub(crate) fn validate_tags(tags: &[(String, String)], max: usize) -> S3Result<()> {
    if tags.len() > max {
        return Err(s3_error!(InvalidTag, "Object tags cannot be greater than {max}"));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(s3_error!(InvalidTag, "The TagKey you have provided is invalid"));
        }
        if v.chars().count() > 256 {
            return Err(s3_error!(InvalidTag, "The TagValue you have provided is invalid"));
        }
        if k.starts_with("aws:") {
            return Err(s3_error!(InvalidTag, "Your TagKey cannot be prefixed with aws:"));
        }
        if !seen.insert(k.as_str()) {
            return Err(s3_error!(InvalidTag, "Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

pub(crate) fn tags_from(tagging: Tagging) -> Vec<(String, String)> {
    tagging
        .tag_set
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect()
}

/// Tags in key order, as AWS lists them.
pub(crate) fn tag_set(tags: &[(String, String)]) -> TagSet {
    let mut sorted: Vec<&(String, String)> = tags.iter().collect();
    sorted.sort();
    sorted
        .into_iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

pub(crate) fn owner(p: &Principal) -> Owner {
    Owner {
        display_name: Some(p.display_name().to_owned()),
        id: Some(p.canonical_id().to_owned()),
    }
}

/// Fills the checksum fields of any output that has the five of them.
pub(crate) struct ChecksumFields {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub crc64nvme: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub kind: Option<ChecksumType>,
}

impl ChecksumFields {
    pub(crate) fn none() -> ChecksumFields {
        ChecksumFields {
            crc32: None,
            crc32c: None,
            crc64nvme: None,
            sha1: None,
            sha256: None,
            kind: None,
        }
    }

    pub(crate) fn from(c: Option<&StoredChecksum>) -> ChecksumFields {
        let mut f = ChecksumFields::none();
        let Some(c) = c else { return f };
        let v = Some(c.value.clone());
        match Algo::parse(&c.algorithm) {
            Ok(Algo::Crc32) => f.crc32 = v,
            Ok(Algo::Crc32c) => f.crc32c = v,
            Ok(Algo::Crc64Nvme) => f.crc64nvme = v,
            Ok(Algo::Sha1) => f.sha1 = v,
            Ok(Algo::Sha256) => f.sha256 = v,
            Err(_) => return f,
        }
        f.kind = Some(ChecksumType::from(c.kind.clone()));
        f
    }
}

/// `"etag"` as a DTO.
pub(crate) fn etag(s: &str) -> ETag {
    ETag::Strong(s.to_owned())
}

/// Initiator of an upload: its owner, as AWS shows it.
pub(crate) fn initiator(owner: &Owner) -> Initiator {
    Initiator {
        display_name: owner.display_name.clone(),
        id: owner.id.clone(),
    }
}

/// The storage class an object or upload was stored with.
pub(crate) fn storage_class(h: &ObjectHeaders) -> StorageClass {
    StorageClass::from(h.storage_class.clone().unwrap_or_else(|| "STANDARD".into()))
}
