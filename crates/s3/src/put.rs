//! PutObject, with conditional writes (If-None-Match: * and If-Match)
//! decided inside the commit so that two racing writers cannot both win.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};
use strongroom_store::{ObjectRecord, PendingSegment};

use crate::checksum::{Algo, hex};
use crate::error::{Fail, decided_in, no_such_key, precondition_failed};
use crate::ingest::{BodyClaims, checksum_request, ingest, stored};
use crate::meta::{ChecksumFields, check_object_acl, etag, parse_tagging_header};
use crate::{MAX_PUT_SIZE, Strongroom, now_ms, principal};

/// A write's preconditions on the current object.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteConditions {
    pub if_match: Option<ETagCondition>,
    pub if_none_match: Option<ETagCondition>,
    /// The id of the bucket record the request was decided on (empty
    /// matches no bucket).
    pub bucket_id: String,
}

impl WriteConditions {
    /// Checks the conditions against the current record (inside a commit).
    pub(crate) fn check(&self, current: Option<&ObjectRecord>) -> Result<(), Fail> {
        if let Some(cond) = &self.if_none_match
            && let Some(cur) = current
            && (cond.is_any() || cond.as_etag().is_some_and(|e| e.value() == cur.etag))
        {
            return Err(Fail(precondition_failed()));
        }
        if let Some(cond) = &self.if_match {
            let Some(cur) = current else {
                return Err(Fail(no_such_key()));
            };
            if !(cond.is_any() || cond.as_etag().is_some_and(|e| e.value() == cur.etag)) {
                return Err(Fail(precondition_failed()));
            }
        }
        Ok(())
    }
}

/// Commits `rec` under `bucket/key` after checking the bucket still exists
/// and the conditions hold. The blob is discarded when the commit refuses.
pub(crate) async fn commit_object(
    s3: &Strongroom,
    bucket: &str,
    key: &str,
    rec: ObjectRecord,
    pending: Vec<PendingSegment>,
    cond: WriteConditions,
) -> S3Result<Option<String>> {
    let (b, k) = (bucket.to_owned(), key.to_owned());
    let inline: Vec<PendingSegment> = pending
        .iter()
        .filter(|p| p.inline_data.is_some())
        .map(clone_pending)
        .collect();
    let mut rec = rec;
    let res = s3
        .store
        .commit(move |txn| -> Result<Option<String>, Fail> {
            // the bucket the request was decided on, not a new one of that name
            let brec = decided_in(txn, &b, &cond.bucket_id)?;
            cond.check(txn.object(&b, &k)?.as_ref())?;
            for p in &inline {
                txn.add_segment(p)?;
            }
            // Object Ownership BucketOwnerEnforced: every object, whoever
            // wrote it, belongs to the bucket owner
            rec.owner.clone_from(&brec.owner);
            crate::versioning::place(txn, &brec, &k, &mut rec)
        })
        .await;
    if res.is_err() {
        for p in pending {
            s3.store.discard(p);
        }
    }
    res.map_err(Into::into)
}

fn clone_pending(p: &PendingSegment) -> PendingSegment {
    PendingSegment {
        segment: p.segment.clone(),
        inline_data: p.inline_data.clone(),
    }
}

pub(crate) async fn put_object(
    s3: &Strongroom,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let who = principal(&req)?;
    let bucket = crate::decided_bucket(&req)?;
    let bucket_id = bucket.id.clone();
    crate::ingest::require_length(&req.headers)?;
    // POST object: s3s does not substitute ${filename}; storing the literal
    // key would silently differ from AWS
    if req.method == http::Method::POST && req.input.key.contains("${filename}") {
        return Err(s3s::s3_error!(
            NotImplemented,
            "${{filename}} in a POST object key is not supported yet"
        ));
    }
    let caller = crate::kms_caller(&req, &who, &s3.settings.region);
    let secure = crate::secure(&req);
    let sigv2 = crate::is_sigv2(&req);
    let input = req.input;
    check_object_acl(input.acl.as_ref())?;
    let headers = object_headers!(input)?;
    let tags = parse_tagging_header(input.tagging.as_deref())?;
    let checksum = checksum_request(&req.headers, input.checksum_algorithm.as_ref(), given_checksums!(input))?;
    let lock = lock_request!(input);
    crate::lock::require_digest(&req.headers, &lock)?;
    let (retention, legal_hold) = crate::lock::for_write(&bucket, &lock)?;
    let keys = s3
        .crypt
        .keys_for_write(&bucket, &input.key, &sse_request!(input), secure, &caller)
        .await?;
    crate::sse::require_sigv4(Some(&keys.record), sigv2)?;
    let got = ingest(
        &s3.store,
        input.body,
        BodyClaims {
            content_length: input.content_length,
            content_md5: input.content_md5.as_deref(),
            checksum,
            headers: &req.headers,
            trailers: req.trailing_headers.as_ref(),
            max_size: MAX_PUT_SIZE,
            default_algo: Some(Algo::Crc64Nvme),
        },
        &keys.keys,
    )
    .await?;
    let etag_hex = hex(&keys.etag(&got.md5));
    let rec = ObjectRecord {
        size: got.size,
        etag: etag_hex.clone(),
        last_modified_ms: now_ms(),
        owner: who.account_id().to_owned(),
        version_id: None,
        headers,
        tags,
        checksum: stored(&got.checksum, ChecksumType::FULL_OBJECT),
        segments: vec![got.pending.segment.clone()],
        parts: Vec::new(),
        upload_id: None,
        sse: Some(keys.record),
        delete_marker: false,
        retention,
        legal_hold,
    };
    let cond = WriteConditions {
        if_match: input.if_match,
        if_none_match: input.if_none_match,
        bucket_id,
    };
    let checksum_out = rec.checksum.clone();
    let echo = crate::sse::echo(rec.sse.as_ref());
    let expiration = crate::lifecycle::expiration_header(&bucket, &input.key, &rec);
    let version_id = commit_object(s3, &input.bucket, &input.key, rec, vec![got.pending], cond).await?;
    let c = ChecksumFields::from(checksum_out.as_ref());
    let mut out = with_checksums!(
        c,
        PutObjectOutput {
            e_tag: Some(etag(&etag_hex)),
            checksum_type: c.kind,
            version_id: version_id,
            expiration: expiration,
        }..Default::default()
    );
    set_echo!(out, echo);
    Ok(S3Response::new(out))
}
