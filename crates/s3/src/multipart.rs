//! Multipart uploads: create, upload parts, complete, abort. Parts are
//! stored as their own blobs; completing an upload writes one object record
//! that points at the chosen parts' blobs, so completion moves no data
//! whatever the object's size. Listings are in `multipart_list`.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use strongroom_store::{BlobId, BucketRecord, ObjectRecord, PartRecord, PartSummary, UploadRecord};

use crate::checksum::{Algo, Md5, b64, hex, unb64};
use crate::error::{Fail, decided_in, no_such_upload, store};
use crate::ingest::{BodyClaims, checksum_request, ingest, invalid_request, stored};
use crate::meta::{ChecksumFields, check_object_acl, etag, parse_tagging_header};
use crate::put::WriteConditions;
use crate::{Strongroom, now_ms, principal};

/// Smallest part (except the last): 5 MiB.
pub(crate) const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part: 5 GiB.
pub(crate) const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Highest part number.
pub(crate) const MAX_PARTS: i32 = 10_000;

fn new_upload_id() -> S3Result<String> {
    let id = BlobId::random().map_err(|e| crate::error::internal(&e))?;
    Ok(id.hex())
}

pub(crate) fn check_part_number(n: i32) -> S3Result<u32> {
    if !(1..=MAX_PARTS).contains(&n) {
        return Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ));
    }
    u32::try_from(n).map_err(|_| {
        s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        )
    })
}

/// An upload of the bucket the request was decided on (uploads end with
/// their bucket, and upload ids are never reused).
pub(crate) fn load_upload(
    s3: &Strongroom,
    bucket: &BucketRecord,
    key: &str,
    upload_id: &str,
) -> S3Result<UploadRecord> {
    store(s3.store.upload(&bucket.name, key, upload_id))?.ok_or_else(no_such_upload)
}

/// The algorithm parts of this upload are checksummed with.
pub(crate) fn upload_algo(u: &UploadRecord) -> Option<Algo> {
    u.checksum_algorithm.as_deref().and_then(|a| Algo::parse(a).ok())
}

pub(crate) async fn create(
    s3: &Strongroom,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let who = principal(&req)?;
    let caller = crate::kms_caller(&req, &who, &s3.settings.region);
    let secure = crate::secure(&req);
    let bucket = crate::decided_bucket(&req)?;
    let i = req.input;
    check_object_acl(i.acl.as_ref())?;
    let (retention, legal_hold) = crate::lock::for_write(&bucket, &lock_request!(i))?;
    let keys = s3
        .crypt
        .keys_for_write(&bucket, &i.key, &sse_request!(i), secure, &caller)
        .await?;
    let headers = object_headers!(i)?;
    let tags = parse_tagging_header(i.tagging.as_deref())?;
    let sdk_algo = req
        .headers
        .get("x-amz-checksum-algorithm")
        .and_then(|v| v.to_str().ok())
        .map(Algo::parse)
        .transpose()?;
    let algo = match i.checksum_algorithm.as_ref() {
        Some(a) => Some(Algo::parse(a.as_str())?),
        None => sdk_algo,
    };
    let kind = match (i.checksum_type.as_ref().map(ChecksumType::as_str), algo) {
        (Some(ChecksumType::FULL_OBJECT), Some(a)) if !a.is_crc() => {
            return Err(invalid_request(
                "The FULL_OBJECT checksum type cannot be used with the sha1 checksum algorithm.",
            ));
        }
        (Some(t), None) => {
            return Err(invalid_request(format!(
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header ({t})"
            )));
        }
        (Some(t), Some(_)) => Some(t.to_owned()),
        (None, Some(Algo::Crc64Nvme)) => Some(ChecksumType::FULL_OBJECT.to_owned()),
        (None, Some(_)) => Some(ChecksumType::COMPOSITE.to_owned()),
        (None, None) => None,
    };
    let rec = UploadRecord {
        upload_id: new_upload_id()?,
        bucket: i.bucket.clone(),
        key: i.key.clone(),
        owner: who.account_id().to_owned(),
        initiated_ms: now_ms(),
        headers,
        tags,
        checksum_algorithm: algo.map(|a| a.name().to_owned()),
        checksum_type: kind.clone(),
        sse: Some(keys.record),
        retention,
        legal_hold,
    };
    let upload_id = rec.upload_id.clone();
    let echo = crate::sse::echo(rec.sse.as_ref());
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            decided_in(txn, &bucket.name, &bucket.id)?;
            Ok(txn.put_upload(&rec)?)
        })
        .await?;
    let mut out = CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(upload_id),
        checksum_algorithm: algo.map(|a| ChecksumAlgorithm::from(a.name().to_owned())),
        checksum_type: kind.map(ChecksumType::from),
        ..Default::default()
    };
    set_echo!(out, echo);
    Ok(S3Response::new(out))
}

/// Stores a written part, provided its upload still exists.
pub(crate) async fn commit_part(
    s3: &Strongroom,
    upload: &UploadRecord,
    part: PartRecord,
    pending: strongroom_store::PendingSegment,
) -> S3Result<()> {
    let u = upload.clone();
    let inline = strongroom_store::PendingSegment {
        segment: pending.segment.clone(),
        inline_data: pending.inline_data.clone(),
    };
    let res = s3
        .store
        .commit(move |txn| -> Result<(), Fail> {
            if txn.upload(&u.bucket, &u.key, &u.upload_id)?.is_none() {
                return Err(Fail(no_such_upload()));
            }
            txn.add_segment(&inline)?;
            Ok(txn.put_part(&u.upload_id, &part)?)
        })
        .await;
    if res.is_err() {
        s3.store.discard(pending);
    }
    res.map_err(Into::into)
}

pub(crate) async fn upload_part(
    s3: &Strongroom,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    crate::ingest::require_length(&req.headers)?;
    let who = principal(&req)?;
    let caller = crate::kms_caller(&req, &who, &s3.settings.region);
    let secure = crate::secure(&req);
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let n = check_part_number(i.part_number)?;
    let upload = load_upload(s3, &b, &i.key, &i.upload_id)?;
    let keys = upload_keys(s3, &upload, &customer_fields!(i), secure, &caller).await?;
    let want = upload_algo(&upload);
    let checksum = checksum_request(&req.headers, i.checksum_algorithm.as_ref(), given_checksums!(i))?;
    if let (Some(w), Some(got)) = (want, checksum.algo)
        && w != got
    {
        return Err(invalid_request(format!(
            "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
            w.name().to_ascii_lowercase(),
            got.name().to_ascii_lowercase()
        )));
    }
    let got = ingest(
        &s3.store,
        i.body,
        BodyClaims {
            content_length: i.content_length,
            content_md5: i.content_md5.as_deref(),
            checksum,
            headers: &req.headers,
            trailers: req.trailing_headers.as_ref(),
            max_size: MAX_PART_SIZE,
            default_algo: Some(want.unwrap_or(Algo::Crc64Nvme)),
        },
        &keys.keys,
    )
    .await?;
    let etag_hex = hex(&keys.etag(&got.md5));
    let part = PartRecord {
        part_number: n,
        etag: etag_hex.clone(),
        size: got.size,
        last_modified_ms: now_ms(),
        segment: got.pending.segment.clone(),
        checksum: stored(&got.checksum, ""),
    };
    let shown = if want.is_some() { part.checksum.clone() } else { None };
    commit_part(s3, &upload, part, got.pending).await?;
    let c = ChecksumFields::from(shown.as_ref());
    let mut out = with_checksums!(
        c,
        UploadPartOutput {
            e_tag: Some(etag(&etag_hex)),
        }..Default::default()
    );
    set_echo!(out, crate::sse::echo(upload.sse.as_ref()));
    Ok(S3Response::new(out))
}

/// The data keys of an upload, for sealing a part: an SSE-C upload needs
/// the same customer key on every part.
pub(crate) async fn upload_keys(
    s3: &Strongroom,
    upload: &UploadRecord,
    customer: &crate::sse::CustomerFields,
    secure: bool,
    caller: &strongroom_kms::Caller,
) -> S3Result<crate::sse::DataKeys> {
    let customer = crate::sse::customer_key(customer, secure)?;
    let Some(record) = upload.sse.clone() else {
        return Err(s3s::s3_error!(
            InvalidRequest,
            "This upload was started before encryption at rest existed; start a new upload."
        ));
    };
    let keys = s3
        .crypt
        .open_keys(&upload.bucket, &upload.key, Some(&record), customer.as_ref(), caller)
        .await?
        .unwrap_or_default();
    Ok(crate::sse::DataKeys { keys, record })
}

fn completed_part_checksum(p: &CompletedPart, a: Algo) -> Option<&String> {
    match a {
        Algo::Crc32 => p.checksum_crc32.as_ref(),
        Algo::Crc32c => p.checksum_crc32c.as_ref(),
        Algo::Crc64Nvme => p.checksum_crc64nvme.as_ref(),
        Algo::Sha1 => p.checksum_sha1.as_ref(),
        Algo::Sha256 => p.checksum_sha256.as_ref(),
    }
}

fn invalid_part() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidPart,
        "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not have matched the part's entity tag.",
    )
}

/// Builds the object record of a completed upload from its stored parts.
fn assemble(
    u: &UploadRecord,
    stored_parts: &[PartRecord],
    chosen: &[CompletedPart],
    owner: &str,
) -> Result<ObjectRecord, S3Error> {
    if chosen.is_empty() {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    let algo = upload_algo(u);
    // a part number listed twice (a part re-sent while the first send was
    // still running) counts once: the last entry names the part
    let chosen: Vec<&CompletedPart> = chosen
        .iter()
        .enumerate()
        .filter(|(i, c)| chosen.get(i + 1).is_none_or(|next| next.part_number != c.part_number))
        .map(|(_, c)| c)
        .collect();
    let mut prev = 0;
    let mut picked: Vec<&PartRecord> = Vec::with_capacity(chosen.len());
    for c in chosen {
        let n = c.part_number.unwrap_or(0);
        if n <= prev {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidPartOrder,
                "The list of parts was not in ascending order. Parts must be ordered by part number.",
            ));
        }
        prev = n;
        let p = stored_parts
            .iter()
            .find(|p| i64::from(p.part_number) == i64::from(n))
            .ok_or_else(invalid_part)?;
        let given = c.e_tag.as_ref().map(|e| e.value().trim_matches('"').to_owned());
        if given.as_deref() != Some(p.etag.as_str()) {
            return Err(invalid_part());
        }
        if let Some(a) = algo
            && let Some(v) = completed_part_checksum(c, a)
            && p.checksum.as_ref().map(|s| s.value.as_str()) != Some(v.as_str())
        {
            return Err(invalid_part());
        }
        picked.push(p);
    }
    if let Some((_, init)) = picked.split_last()
        && init.iter().any(|p| p.size < MIN_PART_SIZE)
    {
        return Err(s3_error!(
            EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed object size."
        ));
    }
    let mut md5s = Md5::new();
    for p in &picked {
        md5s.update(&crate::checksum::unhex16(&p.etag));
    }
    let etag = format!("{}-{}", hex(&md5s.finish()), picked.len());
    let size = picked.iter().map(|p| p.size).sum();
    let raw: Vec<(Vec<u8>, u64)> = picked
        .iter()
        .map(|p| {
            (
                p.checksum.as_ref().and_then(|c| unb64(&c.value)).unwrap_or_default(),
                p.size,
            )
        })
        .collect();
    let part_algo = picked
        .first()
        .and_then(|p| p.checksum.as_ref())
        .and_then(|c| Algo::parse(&c.algorithm).ok());
    let kind = u
        .checksum_type
        .clone()
        .unwrap_or_else(|| ChecksumType::FULL_OBJECT.to_owned());
    let checksum = part_algo.and_then(|a| {
        if kind == ChecksumType::FULL_OBJECT && a.is_crc() {
            let mut it = raw.iter();
            let (first, _) = it.next()?;
            let mut acc = first.clone();
            for (c, len) in it {
                acc = a.combine(&acc, c, *len)?;
            }
            Some(strongroom_store::Checksum {
                algorithm: a.name().to_owned(),
                value: b64(&acc),
                kind: ChecksumType::FULL_OBJECT.to_owned(),
            })
        } else {
            let cat: Vec<u8> = raw.iter().flat_map(|(c, _)| c.iter().copied()).collect();
            Some(strongroom_store::Checksum {
                algorithm: a.name().to_owned(),
                value: format!("{}-{}", b64(&a.digest(&cat)), picked.len()),
                kind: ChecksumType::COMPOSITE.to_owned(),
            })
        }
    });
    Ok(ObjectRecord {
        size,
        etag,
        last_modified_ms: now_ms(),
        owner: owner.to_owned(),
        version_id: None,
        headers: u.headers.clone(),
        tags: u.tags.clone(),
        checksum,
        segments: picked.iter().map(|p| p.segment.clone()).collect(),
        parts: picked
            .iter()
            .map(|p| PartSummary {
                size: p.size,
                etag: p.etag.clone(),
                checksum: p.checksum.as_ref().map(|c| c.value.clone()),
            })
            .collect(),
        upload_id: Some(u.upload_id.clone()),
        sse: u.sse.clone(),
        delete_marker: false,
        retention: u.retention.clone(),
        legal_hold: u.legal_hold,
    })
}

pub(crate) async fn complete(
    s3: &Strongroom,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    principal(&req)?;
    let bucket_id = crate::decided_bucket_id(&req)?;
    let secure = crate::secure(&req);
    let i = req.input;
    let chosen = i.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    let cond = WriteConditions {
        if_match: i.if_match,
        if_none_match: i.if_none_match,
        bucket_id,
    };
    let declared: Vec<(Algo, String)> = [
        (Algo::Crc32, i.checksum_crc32),
        (Algo::Crc32c, i.checksum_crc32c),
        (Algo::Crc64Nvme, i.checksum_crc64nvme),
        (Algo::Sha1, i.checksum_sha1),
        (Algo::Sha256, i.checksum_sha256),
    ]
    .into_iter()
    .filter_map(|(a, v)| v.map(|v| (a, v)))
    .collect();
    let expected_size = i.mpu_object_size;
    // an SSE-C upload's completion needs its key only when the upload uses
    // a checksum algorithm (AWS: "required only when the object was created
    // using a checksum algorithm"; the AWS CLI v2.9 and rclone send none
    // otherwise) — every part already needed it; a key given must be the
    // upload's
    let customer = crate::sse::customer_key(&customer_fields!(i), secure)?;
    if let Some(u) = crate::error::store(s3.store.upload(&i.bucket, &i.key, &i.upload_id))?
        && (customer.is_some() || u.checksum_algorithm.is_some())
    {
        s3.crypt.check_customer(u.sse.as_ref(), customer.as_ref(), false)?;
    }
    let (b, k, id) = (i.bucket.clone(), i.key.clone(), i.upload_id.clone());
    let rec = s3
        .store
        .commit(move |txn| -> Result<ObjectRecord, Fail> {
            let brec = crate::error::decided_in(txn, &b, &cond.bucket_id)?;
            let Some(u) = txn.upload(&b, &k, &id)? else {
                // completing an upload that already completed answers again
                return match txn.object(&b, &k)? {
                    Some(cur) if cur.upload_id.as_deref() == Some(id.as_str()) => Ok(cur),
                    _ => Err(Fail(no_such_upload())),
                };
            };
            let parts = txn.parts(&id)?;
            // BucketOwnerEnforced: the object belongs to the bucket owner
            let mut rec = assemble(&u, &parts, &chosen, &brec.owner)?;
            if let Some(n) = expected_size
                && u64::try_from(n).ok() != Some(rec.size)
            {
                return Err(Fail(invalid_request(
                    "The provided 'x-amz-mp-object-size' header does not match the object size",
                )));
            }
            if let Some((a, v)) = declared.first()
                && rec
                    .checksum
                    .as_ref()
                    .is_some_and(|c| c.algorithm == a.name() && c.value.split('-').next() != v.split('-').next())
            {
                return Err(Fail(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    format!("The {} you specified did not match the calculated checksum.", a.name()),
                )));
            }
            cond.check(txn.object(&b, &k)?.as_ref())?;
            let keep: Vec<BlobId> = rec.segments.iter().map(|s| s.id).collect();
            txn.delete_upload(&u, &keep)?;
            crate::versioning::place(txn, &brec, &k, &mut rec)?;
            Ok(rec)
        })
        .await?;
    let c = ChecksumFields::from(rec.checksum.as_ref());
    let location = format!("/{}/{}", i.bucket, i.key);
    let echo = crate::sse::echo(rec.sse.as_ref());
    let mut resp = S3Response::new(with_checksums!(
        c,
        CompleteMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            e_tag: Some(etag(&rec.etag)),
            location: Some(location),
            checksum_type: c.kind,
            server_side_encryption: echo.sse,
            ssekms_key_id: echo.kms_key_id,
            bucket_key_enabled: echo.bucket_key,
            // a suspended bucket's write answers without a version id
            version_id: rec.version_id.clone().filter(|v| v != crate::versioning::NULL),
        }..Default::default()
    ));
    // the output type has no SSE-C fields; AWS sends the headers
    if let (Some(a), Some(m)) = (echo.customer_algorithm, echo.customer_key_md5)
        && let (Ok(a), Ok(m)) = (http::HeaderValue::from_str(&a), http::HeaderValue::from_str(&m))
    {
        resp.headers
            .insert("x-amz-server-side-encryption-customer-algorithm", a);
        resp.headers.insert("x-amz-server-side-encryption-customer-key-md5", m);
    }
    Ok(resp)
}

pub(crate) async fn abort(
    s3: &Strongroom,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let decided = crate::decided_bucket(&req)?;
    let i = req.input;
    let (b, k, id) = (i.bucket, i.key, i.upload_id);
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            decided_in(txn, &b, &decided.id)?;
            let u = txn.upload(&b, &k, &id)?.ok_or_else(|| Fail(no_such_upload()))?;
            Ok(txn.delete_upload(&u, &[])?)
        })
        .await?;
    let mut resp = S3Response::new(AbortMultipartUploadOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}
