//! CopyObject and UploadPartCopy: the source is read as a stream and
//! written as a new blob (or, for a copy onto itself, its blobs are kept and
//! only the metadata changes).

use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use strongroom_crypt::Key;
use strongroom_store::{BucketRecord, ObjectRecord, PartRecord, PendingSegment};

use crate::checksum::{Algo, Md5, hex};
use crate::error::{internal, precondition_failed, store};
use crate::get::{ReadConditions, open_range};
use crate::ingest::stored;
use crate::meta::{ChecksumFields, check_object_acl, etag, parse_tagging_header};
use crate::multipart::{MAX_PART_SIZE, check_part_number, commit_part, load_upload, upload_algo};
use crate::put::{WriteConditions, commit_object};
use crate::sse::SealedWriter;
use crate::{MAX_PUT_SIZE, Strongroom, now_ms, principal, timestamp};

/// Resolves the copy source in `sb`, the source bucket record the
/// decision read when it authorized reading the source.
fn source(s3: &Strongroom, sb: &BucketRecord, src: &CopySource) -> S3Result<(String, String, ObjectRecord)> {
    let CopySource::Bucket {
        bucket,
        key,
        version_id,
    } = src
    else {
        return Err(s3_error!(
            NotImplemented,
            "Access point copy sources are not implemented yet"
        ));
    };
    // the decision authorized reading this source (s3:GetObject[Version])
    // in this bucket; anything else is not what was decided
    if sb.name != **bucket {
        return Err(s3_error!(AccessDenied, "Access Denied"));
    }
    // a delete marker as source answers 400 InvalidRequest on AWS; ours
    // is the read's 404/405
    let rec = crate::versioning::read(s3, sb, key, version_id.as_deref())?;
    Ok((bucket.to_string(), key.to_string(), rec))
}

/// Copies bytes `[start, end)` of `rec` (opened with `src_keys`) into a
/// new blob sealed under `dst_keys`, hashing as it goes.
async fn copy_bytes(
    s3: &Strongroom,
    rec: &ObjectRecord,
    range: (u64, u64),
    algo: Option<Algo>,
    src_keys: Option<&[Key]>,
    dst_keys: &[Key],
) -> S3Result<(PendingSegment, [u8; 16], Option<(Algo, Vec<u8>)>)> {
    let mut stream = open_range(&s3.store, &rec.segments, range.0, range.1, src_keys).map_err(|e| internal(&e))?;
    let mut writer = store(SealedWriter::new(s3.store.blob_writer(), dst_keys))?;
    let mut md5 = Md5::new();
    let mut hasher = algo.map(Algo::hasher);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| internal(&strongroom_store::StoreError::Io(e)))?;
        md5.update(&chunk);
        if let Some(h) = hasher.as_mut() {
            h.update(&chunk);
        }
        store(writer.write(chunk).await)?;
    }
    let pending = store(writer.finish().await)?;
    Ok((pending, md5.finish(), hasher.map(|h| (h.algo(), h.finish()))))
}

fn copy_conditions<'a>(
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&'a ETagCondition>,
    if_modified_since: Option<&'a Timestamp>,
    if_unmodified_since: Option<&'a Timestamp>,
) -> ReadConditions<'a> {
    ReadConditions {
        if_match,
        if_none_match,
        if_modified_since,
        if_unmodified_since,
    }
}

pub(crate) async fn copy_object(
    s3: &Strongroom,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let who = principal(&req)?;
    let dest = crate::decided_bucket(&req)?;
    let source_bucket = crate::decided_source(&req)?;
    let caller = crate::kms_caller(&req, &who, &s3.settings.region);
    let secure = crate::secure(&req);
    let i = req.input;
    check_object_acl(i.acl.as_ref())?;
    let (sb, sk, src) = source(s3, &source_bucket, &i.copy_source)?;
    let src_customer = crate::sse::customer_key(&copy_source_customer!(i), secure)?;
    let src_keys = s3
        .crypt
        .open_keys(&sb, &sk, src.sse.as_ref(), src_customer.as_ref(), &caller)
        .await?;
    let dst_sse = sse_request!(i);
    let changes_encryption = dst_sse.algorithm.is_some() || dst_sse.customer.algorithm.is_some();
    copy_conditions(
        i.copy_source_if_match.as_ref(),
        i.copy_source_if_none_match.as_ref(),
        i.copy_source_if_modified_since.as_ref(),
        i.copy_source_if_unmodified_since.as_ref(),
    )
    .check(&src, S3ErrorCode::PreconditionFailed)?;
    if src.size > MAX_PUT_SIZE {
        return Err(s3_error!(
            InvalidRequest,
            "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"
        ));
    }
    let replace_meta = match i.metadata_directive.as_ref().map(MetadataDirective::as_str) {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => return Err(s3_error!(InvalidArgument, "Unknown metadata directive.")),
    };
    let replace_tags = match i.tagging_directive.as_ref().map(TaggingDirective::as_str) {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => return Err(s3_error!(InvalidArgument, "Unknown tagging directive.")),
    };
    // in a versioned bucket even a copy onto itself is a new version with
    // its own data (versions never share blobs)
    let same = sb == i.bucket && sk == i.key;
    let keep_blobs = same && crate::versioning::state(&dest) == crate::versioning::State::Never;
    let (retention, legal_hold) = crate::lock::for_write(&dest, &lock_request!(i))?;
    let changes_class = i
        .storage_class
        .as_ref()
        .is_some_and(|c| Some(c.as_str()) != src.headers.storage_class.as_deref().or(Some("STANDARD")));
    if same && !replace_meta && !changes_class && i.website_redirect_location.is_none() && !changes_encryption {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    let headers = if replace_meta {
        object_headers!(i)?
    } else {
        let mut h = src.headers.clone();
        if let Some(sc) = i.storage_class.as_ref() {
            h.storage_class = Some(sc.as_str().to_owned()).filter(|s| s != "STANDARD");
        }
        if i.website_redirect_location.is_some() {
            h.website_redirect = i.website_redirect_location;
        }
        h
    };
    let tags = if replace_tags {
        parse_tagging_header(i.tagging.as_deref())?
    } else {
        src.tags.clone()
    };
    let algo = match i.checksum_algorithm.as_ref() {
        Some(a) => Some(Algo::parse(a.as_str())?),
        None => src
            .checksum
            .as_ref()
            .and_then(|c| Algo::parse(&c.algorithm).ok())
            .or(Some(Algo::Crc64Nvme)),
    };
    let (rec, pending) = if keep_blobs && !changes_encryption {
        // metadata-only change: keep the blobs (and their encryption)
        let mut rec = src.clone();
        rec.headers = headers;
        rec.tags = tags;
        rec.last_modified_ms = now_ms();
        rec.owner = who.account_id().to_owned();
        (rec, Vec::new())
    } else {
        let keys = s3
            .crypt
            .keys_for_write(&dest, &i.key, &dst_sse, secure, &caller)
            .await?;
        let (pending, md5, sum) = copy_bytes(s3, &src, (0, src.size), algo, src_keys.as_deref(), &keys.keys).await?;
        let rec = ObjectRecord {
            size: src.size,
            etag: hex(&keys.etag(&md5)),
            last_modified_ms: now_ms(),
            owner: who.account_id().to_owned(),
            version_id: None,
            headers,
            tags,
            checksum: stored(&sum, ChecksumType::FULL_OBJECT),
            segments: vec![pending.segment.clone()],
            parts: Vec::new(),
            upload_id: None,
            sse: Some(keys.record),
            delete_marker: false,
            retention,
            legal_hold,
        };
        (rec, vec![pending])
    };
    let out_etag = rec.etag.clone();
    let out_ms = rec.last_modified_ms;
    let out_sum = rec.checksum.clone();
    let echo = crate::sse::echo(rec.sse.as_ref());
    let cond = WriteConditions {
        bucket_id: dest.id.clone(),
        ..WriteConditions::default()
    };
    let version_id = commit_object(s3, &i.bucket, &i.key, rec, pending, cond).await?;
    let copy_source_version_id = src.version_id.clone();
    let c = ChecksumFields::from(out_sum.as_ref());
    let mut out = CopyObjectOutput {
        version_id,
        copy_source_version_id,
        copy_object_result: Some(with_checksums!(
            c,
            CopyObjectResult {
                e_tag: Some(etag(&out_etag)),
                last_modified: Some(timestamp(out_ms)),
                checksum_type: c.kind,
            }
        )),
        ..Default::default()
    };
    set_echo!(out, echo);
    Ok(S3Response::new(out))
}

/// Parses `bytes=first-last` of x-amz-copy-source-range against `size`.
/// The bytes `[start, end)` an `x-amz-copy-source-range` header selects
/// of a source of `size` bytes (UploadPartCopy): only `bytes=first-last`
/// in decimal digits (no sign, no suffix or open range), `first <= last <
/// size`.
pub fn copy_range(r: Option<&str>, size: u64) -> S3Result<(u64, u64)> {
    let Some(r) = r else { return Ok((0, size)) };
    let bad = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let spec = r.strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    // u64's parser takes a leading '+': only digits are a range
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return Err(bad());
    }
    let first: u64 = a.parse().map_err(|_| bad())?;
    let last: u64 = b.parse().map_err(|_| bad())?;
    if first > last {
        return Err(bad());
    }
    if last >= size {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        ));
    }
    Ok((first, last + 1))
}

pub(crate) async fn upload_part_copy(
    s3: &Strongroom,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let who = principal(&req)?;
    let caller = crate::kms_caller(&req, &who, &s3.settings.region);
    let secure = crate::secure(&req);
    let dest = crate::decided_bucket(&req)?;
    let source_bucket = crate::decided_source(&req)?;
    let i = req.input;
    let n = check_part_number(i.part_number)?;
    let upload = load_upload(s3, &dest, &i.key, &i.upload_id)?;
    let (sb, sk, src) = source(s3, &source_bucket, &i.copy_source)?;
    let src_customer = crate::sse::customer_key(&copy_source_customer!(i), secure)?;
    let src_keys = s3
        .crypt
        .open_keys(&sb, &sk, src.sse.as_ref(), src_customer.as_ref(), &caller)
        .await?;
    let keys = crate::multipart::upload_keys(s3, &upload, &customer_fields!(i), secure, &caller).await?;
    copy_conditions(
        i.copy_source_if_match.as_ref(),
        i.copy_source_if_none_match.as_ref(),
        i.copy_source_if_modified_since.as_ref(),
        i.copy_source_if_unmodified_since.as_ref(),
    )
    .check(&src, S3ErrorCode::PreconditionFailed)
    .map_err(|e| {
        if e.code() == &S3ErrorCode::NotModified {
            precondition_failed()
        } else {
            e
        }
    })?;
    let (start, end) = copy_range(i.copy_source_range.as_deref(), src.size)?;
    if end - start > MAX_PART_SIZE {
        return Err(s3_error!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed object size."
        ));
    }
    let want = upload_algo(&upload);
    let (pending, md5, sum) = copy_bytes(
        s3,
        &src,
        (start, end),
        Some(want.unwrap_or(Algo::Crc64Nvme)),
        src_keys.as_deref(),
        &keys.keys,
    )
    .await?;
    let etag_hex = hex(&keys.etag(&md5));
    let now = now_ms();
    let part = PartRecord {
        part_number: n,
        etag: etag_hex.clone(),
        size: end - start,
        last_modified_ms: now,
        segment: pending.segment.clone(),
        checksum: stored(&sum, ""),
    };
    let shown = if want.is_some() { part.checksum.clone() } else { None };
    commit_part(s3, &upload, part, pending).await?;
    let c = ChecksumFields::from(shown.as_ref());
    let mut out = UploadPartCopyOutput {
        copy_part_result: Some(with_checksums!(
            c,
            CopyPartResult {
                e_tag: Some(etag(&etag_hex)),
                last_modified: Some(timestamp(now)),
            }
        )),
        ..Default::default()
    };
    set_echo!(out, crate::sse::echo(upload.sse.as_ref()));
    Ok(S3Response::new(out))
}
