//! Object and bucket tagging.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strongroom_store::BucketRecord;

use crate::Strongroom;
use crate::error::{Fail, decided_in};
use crate::meta::{tag_set, tags_from, validate_tags};

/// Most tags on a bucket.
const MAX_BUCKET_TAGS: usize = 50;

async fn set_object_tags(
    s3: &Strongroom,
    bucket: &BucketRecord,
    key: &str,
    vid: Option<String>,
    tags: Vec<(String, String)>,
) -> S3Result<Option<String>> {
    let (b, id, k) = (bucket.name.clone(), bucket.id.clone(), key.to_owned());
    s3.store
        .commit(move |txn| -> Result<Option<String>, Fail> {
            let brec = decided_in(txn, &b, &id)?;
            crate::versioning::retag(txn, &brec, &k, vid.as_deref(), tags)
        })
        .await
        .map_err(Into::into)
}

pub(crate) async fn put_object_tagging(
    s3: &Strongroom,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let tags = tags_from(i.tagging);
    validate_tags(&tags, 10)?;
    let version_id = set_object_tags(s3, &b, &i.key, i.version_id, tags).await?;
    Ok(S3Response::new(PutObjectTaggingOutput { version_id }))
}

pub(crate) async fn get_object_tagging(
    s3: &Strongroom,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let rec = crate::versioning::read(s3, &b, &i.key, i.version_id.as_deref())?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: tag_set(&rec.tags),
        version_id: rec.version_id,
    }))
}

pub(crate) async fn delete_object_tagging(
    s3: &Strongroom,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let version_id = set_object_tags(s3, &b, &i.key, i.version_id, Vec::new()).await?;
    let mut resp = S3Response::new(DeleteObjectTaggingOutput { version_id });
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

async fn set_bucket_tags(s3: &Strongroom, bucket: &BucketRecord, tags: Option<Vec<(String, String)>>) -> S3Result<()> {
    let (b, id) = (bucket.name.clone(), bucket.id.clone());
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            let mut rec = decided_in(txn, &b, &id)?;
            rec.tags = tags;
            Ok(txn.put_bucket(&rec)?)
        })
        .await
        .map_err(Into::into)
}

pub(crate) async fn put_bucket_tagging(
    s3: &Strongroom,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let b = crate::decided_bucket(&req)?;
    let tags = tags_from(req.input.tagging);
    validate_tags(&tags, MAX_BUCKET_TAGS)?;
    set_bucket_tags(s3, &b, Some(tags)).await?;
    let mut resp = S3Response::new(PutBucketTaggingOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn get_bucket_tagging(
    _s3: &Strongroom,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let b = crate::decided_bucket(&req)?;
    match b.tags {
        Some(t) => Ok(S3Response::new(GetBucketTaggingOutput { tag_set: tag_set(&t) })),
        None => Err(s3_error!(NoSuchTagSet, "The TagSet does not exist")),
    }
}

pub(crate) async fn delete_bucket_tagging(
    s3: &Strongroom,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    set_bucket_tags(s3, &crate::decided_bucket(&req)?, None).await?;
    let mut resp = S3Response::new(DeleteBucketTaggingOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}
