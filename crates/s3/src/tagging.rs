//! Object and bucket tagging.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::Strongroom;
use crate::error::{Fail, no_such_bucket, no_such_key};
use crate::get::{check_version, load};
use crate::meta::{tag_set, tags_from, validate_tags};

/// Most tags on a bucket.
const MAX_BUCKET_TAGS: usize = 50;

async fn set_object_tags(s3: &Strongroom, bucket: &str, key: &str, tags: Vec<(String, String)>) -> S3Result<()> {
    let (b, k) = (bucket.to_owned(), key.to_owned());
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            if txn.bucket(&b)?.is_none() {
                return Err(Fail(no_such_bucket()));
            }
            let mut rec = txn.object(&b, &k)?.ok_or_else(|| Fail(no_such_key()))?;
            rec.tags = tags;
            Ok(txn.put_object(&b, &k, &rec)?)
        })
        .await
        .map_err(Into::into)
}

pub(crate) async fn put_object_tagging(
    s3: &Strongroom,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let i = req.input;
    check_version(i.version_id.as_deref())?;
    let tags = tags_from(i.tagging);
    validate_tags(&tags, 10)?;
    set_object_tags(s3, &i.bucket, &i.key, tags).await?;
    Ok(S3Response::new(PutObjectTaggingOutput {
        version_id: i.version_id,
    }))
}

pub(crate) async fn get_object_tagging(
    s3: &Strongroom,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let i = req.input;
    check_version(i.version_id.as_deref())?;
    let rec = load(s3, &i.bucket, &i.key)?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: tag_set(&rec.tags),
        version_id: i.version_id,
    }))
}

pub(crate) async fn delete_object_tagging(
    s3: &Strongroom,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let i = req.input;
    check_version(i.version_id.as_deref())?;
    set_object_tags(s3, &i.bucket, &i.key, Vec::new()).await?;
    let mut resp = S3Response::new(DeleteObjectTaggingOutput {
        version_id: i.version_id,
    });
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

async fn set_bucket_tags(s3: &Strongroom, bucket: &str, tags: Option<Vec<(String, String)>>) -> S3Result<()> {
    let b = bucket.to_owned();
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            let mut rec = txn.bucket(&b)?.ok_or_else(|| Fail(no_such_bucket()))?;
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
    let i = req.input;
    let tags = tags_from(i.tagging);
    validate_tags(&tags, MAX_BUCKET_TAGS)?;
    set_bucket_tags(s3, &i.bucket, Some(tags)).await?;
    let mut resp = S3Response::new(PutBucketTaggingOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn get_bucket_tagging(
    s3: &Strongroom,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let b = crate::error::store(s3.store.bucket(&req.input.bucket))?.ok_or_else(no_such_bucket)?;
    match b.tags {
        Some(t) => Ok(S3Response::new(GetBucketTaggingOutput { tag_set: tag_set(&t) })),
        None => Err(s3_error!(NoSuchTagSet, "The TagSet does not exist")),
    }
}

pub(crate) async fn delete_bucket_tagging(
    s3: &Strongroom,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    set_bucket_tags(s3, &req.input.bucket, None).await?;
    let mut resp = S3Response::new(DeleteBucketTaggingOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}
