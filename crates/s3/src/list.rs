//! ListObjects (v1 and v2), and the page scan every listing starts from:
//! one range scan in key order, folding keys into CommonPrefixes at the
//! delimiter.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strongroom_store::{BucketRecord, ObjectRecord, Visit};

use crate::checksum::{b64, unb64};
use crate::error::store;
use crate::{Strongroom, timestamp};

/// What a listing asks for.
struct Query<'a> {
    prefix: &'a str,
    delimiter: Option<&'a str>,
    /// Exclusive start.
    after: Option<&'a str>,
    max: usize,
}

/// One page: objects and common prefixes in key order.
pub(crate) struct Page {
    pub objects: Vec<(String, ObjectRecord)>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or prefix returned (the next page starts after it).
    pub last: Option<String>,
}

fn scan(s3: &Strongroom, bucket: &str, q: &Query<'_>) -> S3Result<Page> {
    let mut page = Page {
        objects: Vec::new(),
        prefixes: Vec::new(),
        truncated: false,
        last: None,
    };
    if q.max == 0 {
        return Ok(page);
    }
    let mut count = 0usize;
    store(s3.store.scan_objects(bucket, q.prefix, q.after, |key, rec| {
        let rest = key.get(q.prefix.len()..).unwrap_or_default();
        let cp = q
            .delimiter
            .filter(|d| !d.is_empty())
            .and_then(|d| rest.find(d).map(|i| format!("{}{}", q.prefix, &rest[..i + d.len()])));
        match cp {
            Some(cp) => {
                // a prefix the previous page ended on (or before) is not
                // repeated; either way its keys are skipped, not read
                if q.after.is_some_and(|a| cp.as_str() <= a) {
                    return Visit::SkipPrefix(cp);
                }
                if count == q.max {
                    page.truncated = true;
                    return Visit::Stop;
                }
                page.last = Some(cp.clone());
                page.prefixes.push(cp.clone());
                count += 1;
                Visit::SkipPrefix(cp)
            }
            None => {
                if count == q.max {
                    page.truncated = true;
                    return Visit::Stop;
                }
                page.last = Some(key.to_owned());
                page.objects.push((key.to_owned(), rec));
                count += 1;
                Visit::Continue
            }
        }
    }))?;
    Ok(page)
}

pub(crate) fn max_keys(m: Option<i32>) -> S3Result<usize> {
    match m {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(
            InvalidArgument,
            "Provided max-keys not an integer or within integer range"
        )),
        Some(n) => Ok(usize::try_from(n).unwrap_or(1000).min(1000)),
    }
}

/// `encoding-type=url`: key-like fields are percent-encoded in the answer.
pub(crate) struct Enc(bool);

impl Enc {
    pub(crate) fn new(e: Option<&EncodingType>) -> S3Result<Enc> {
        match e.map(EncodingType::as_str) {
            None => Ok(Enc(false)),
            Some("url") => Ok(Enc(true)),
            Some(_) => Err(s3_error!(
                InvalidArgument,
                "Invalid Encoding Method specified in Request"
            )),
        }
    }
    pub(crate) fn s(&self, v: &str) -> String {
        if !self.0 {
            return v.to_owned();
        }
        const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~')
            .remove(b'/');
        percent_encoding::utf8_percent_encode(v, SET).to_string()
    }
    pub(crate) fn o(&self, v: Option<&String>) -> Option<String> {
        v.map(|v| self.s(v))
    }
}

fn object(s3: &Strongroom, enc: &Enc, key: &str, rec: &ObjectRecord, with_owner: bool) -> Object {
    Object {
        key: Some(enc.s(key)),
        e_tag: Some(ETag::Strong(rec.etag.clone())),
        last_modified: Some(timestamp(rec.last_modified_ms)),
        size: Some(i64::try_from(rec.size).unwrap_or(i64::MAX)),
        storage_class: Some(ObjectStorageClass::from(
            crate::meta::storage_class(&rec.headers).as_str().to_owned(),
        )),
        owner: with_owner.then(|| s3.owner_of(&rec.owner)),
        checksum_algorithm: rec
            .checksum
            .as_ref()
            .map(|c| vec![ChecksumAlgorithm::from(c.algorithm.clone())]),
        checksum_type: rec.checksum.as_ref().map(|c| ChecksumType::from(c.kind.clone())),
        ..Default::default()
    }
}

pub(crate) fn common_prefixes(enc: &Enc, p: &[String]) -> Option<Vec<CommonPrefix>> {
    Some(p.iter().map(|p| CommonPrefix { prefix: Some(enc.s(p)) }).collect())
}

/// The parts every listing starts from: its encoding, its page size, its
/// prefix and the page itself, of the bucket the request was decided on.
pub(crate) fn list_page(
    s3: &Strongroom,
    bucket: &BucketRecord,
    encoding: Option<&EncodingType>,
    max_keys_param: Option<i32>,
    prefix: Option<&String>,
    delimiter: Option<&str>,
    after: Option<&str>,
) -> S3Result<(Enc, usize, String, Page)> {
    let enc = Enc::new(encoding)?;
    let max = max_keys(max_keys_param)?;
    let prefix = prefix.cloned().unwrap_or_default();
    let page = scan(
        s3,
        &bucket.name,
        &Query {
            prefix: &prefix,
            delimiter,
            after: after.filter(|a| !a.is_empty()),
            max,
        },
    )?;
    Ok((enc, max, prefix, page))
}

pub(crate) async fn list_objects(
    s3: &Strongroom,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let (enc, max, prefix, page) = list_page(
        s3,
        &b,
        i.encoding_type.as_ref(),
        i.max_keys,
        i.prefix.as_ref(),
        i.delimiter.as_deref(),
        i.marker.as_deref(),
    )?;
    // NextMarker is returned only with a delimiter (AWS); without one the
    // client continues from the last key
    let next_marker = (page.truncated && i.delimiter.is_some())
        .then(|| page.last.clone())
        .flatten();
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket),
        prefix: Some(prefix.clone()),
        marker: Some(enc.s(i.marker.as_deref().unwrap_or_default())),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        is_truncated: Some(page.truncated),
        contents: Some(page.objects.iter().map(|(k, r)| object(s3, &enc, k, r, true)).collect()),
        common_prefixes: common_prefixes(&enc, &page.prefixes),
        delimiter: enc.o(i.delimiter.as_ref().filter(|d| !d.is_empty())),
        next_marker: enc.o(next_marker.as_ref()),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

pub(crate) async fn list_objects_v2(
    s3: &Strongroom,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let token_after = match i.continuation_token.as_deref() {
        Some(t) => Some(
            unb64(t)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))?,
        ),
        None => None,
    };
    let (enc, max, prefix, page) = list_page(
        s3,
        &b,
        i.encoding_type.as_ref(),
        i.max_keys,
        i.prefix.as_ref(),
        i.delimiter.as_deref(),
        token_after.as_deref().or(i.start_after.as_deref()),
    )?;
    let fetch_owner = i.fetch_owner.unwrap_or(false);
    let key_count = page.objects.len() + page.prefixes.len();
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: Some(enc.s(&prefix)),
        max_keys: Some(i32::try_from(max).unwrap_or(1000)),
        key_count: Some(i32::try_from(key_count).unwrap_or(i32::MAX)),
        continuation_token: i.continuation_token,
        is_truncated: Some(page.truncated),
        next_continuation_token: page
            .truncated
            .then(|| page.last.as_deref().map(|l| b64(l.as_bytes())))
            .flatten(),
        contents: Some(
            page.objects
                .iter()
                .map(|(k, r)| object(s3, &enc, k, r, fetch_owner))
                .collect(),
        ),
        common_prefixes: common_prefixes(&enc, &page.prefixes),
        delimiter: enc.o(i.delimiter.as_ref().filter(|d| !d.is_empty())),
        encoding_type: i.encoding_type,
        start_after: enc.o(i.start_after.as_ref()),
        ..Default::default()
    }))
}
