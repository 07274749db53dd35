//! Bucket lifecycle: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
//! GetBucketLocation.

use std::collections::BTreeMap;

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use strongroom_store::BucketRecord;

use crate::error::{Fail, decided_in, store};
use crate::meta::owner;
use crate::{Strongroom, now_ms, principal, timestamp};

/// AWS's default and largest page of ListBuckets.
const MAX_BUCKETS_PAGE: usize = 10_000;

pub(crate) async fn list_buckets(
    s3: &Strongroom,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let who = principal(&req)?;
    let i = req.input;
    let max = match i.max_buckets {
        Some(n) if !(1..=10_000).contains(&n) => {
            return Err(s3_error!(InvalidArgument, "max-buckets must be between 1 and 10000"));
        }
        Some(n) => usize::try_from(n).unwrap_or(MAX_BUCKETS_PAGE),
        None => MAX_BUCKETS_PAGE,
    };
    let after = i.continuation_token.clone().unwrap_or_default();
    let prefix = i.prefix.clone().unwrap_or_default();
    let mine: Vec<BucketRecord> = store(s3.store.buckets())?
        .into_iter()
        .filter(|b| b.owner == who.account_id() && b.name.starts_with(&prefix) && b.name > after)
        .collect();
    let truncated = mine.len() > max;
    let page: Vec<Bucket> = mine
        .iter()
        .take(max)
        .map(|b| Bucket {
            name: Some(b.name.clone()),
            creation_date: Some(timestamp(b.created_ms)),
            bucket_region: Some(b.location.clone().unwrap_or_else(|| s3.settings.region.clone())),
        })
        .collect();
    let next = truncated.then(|| page.last().and_then(|b| b.name.clone())).flatten();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(page),
        owner: Some(owner(&who)),
        prefix: i.prefix,
        continuation_token: next,
    }))
}

pub(crate) async fn create_bucket(
    s3: &Strongroom,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let who = principal(&req)?;
    let i = req.input;
    match i.acl.as_ref().map(BucketCannedACL::as_str) {
        None | Some("private") => {}
        Some(_) => {
            return Err(s3_error!(
                InvalidBucketAclWithObjectOwnership,
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
            ));
        }
    }
    if has_grant_headers!(i) {
        return Err(s3_error!(
            InvalidBucketAclWithObjectOwnership,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
        ));
    }
    // ACL-enabled ownership modes come with ACL support (a later issue);
    // accepting them now would promise ACLs that are not enforced
    if let Some(o) = i.object_ownership.as_ref()
        && o.as_str() != ObjectOwnership::BUCKET_OWNER_ENFORCED
    {
        return Err(s3_error!(
            NotImplemented,
            "Only the BucketOwnerEnforced object ownership is supported yet"
        ));
    }
    let location = i
        .create_bucket_configuration
        .and_then(|c| c.location_constraint)
        .map(|l| l.as_str().to_owned())
        .filter(|l| !l.is_empty());
    if let Some(l) = &location
        && *l != s3.settings.region
    {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidLocationConstraint,
            format!(
                "The specified location-constraint is not valid: this endpoint serves {}",
                s3.settings.region
            ),
        ));
    }
    let mut id = [0u8; 16];
    strongroom_crypt::fill_random(&mut id).map_err(|_| s3_error!(InternalError, "random source failed"))?;
    let mut configs = BTreeMap::new();
    // new buckets block public access, all four settings (AWS since 2023);
    // the owner turns them off with PutPublicAccessBlock / DeletePublicAccessBlock
    let all = serde_json::to_string(&strongroom_access::PublicAccessBlock::ALL)
        .map_err(|_| s3_error!(InternalError, "We encountered an internal error. Please try again."))?;
    configs.insert(strongroom_access::PAB_CONFIG.to_owned(), all);
    let mut rec = BucketRecord {
        name: i.bucket.clone(),
        id: hex_simd::encode_to_string(id, hex_simd::AsciiCase::Lower),
        owner: who.account_id().to_owned(),
        created_ms: now_ms(),
        location,
        tags: None,
        configs,
    };
    // Object Lock turns versioning on, for good
    if i.object_lock_enabled_for_bucket == Some(true) {
        crate::lock::enable(&mut rec, &crate::lock::BucketLock::default());
        rec.configs.insert(crate::versioning::CONFIG.into(), "Enabled".into());
    }
    let me = who.account_id().to_owned();
    // us-east-1 answers 200 to an owner re-creating its bucket (a legacy AWS
    // behaviour; nothing changes); every other region says 409
    let legacy_ok = s3.settings.region == "us-east-1";
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            match txn.bucket(&rec.name)? {
                Some(b) if b.owner == me && legacy_ok => Ok(()),
                Some(b) if b.owner == me => Err(Fail(s3_error!(
                    BucketAlreadyOwnedByYou,
                    "Your previous request to create the named bucket succeeded and you already own it."
                ))),
                Some(_) => Err(Fail(s3_error!(
                    BucketAlreadyExists,
                    "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
                ))),
                None => Ok(txn.put_bucket(&rec)?),
            }
        })
        .await?;
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", i.bucket)),
    }))
}

/// Sets (`Some`) or removes one config of the bucket the request was
/// decided on.
pub(crate) async fn set_config(
    s3: &Strongroom,
    bucket: &BucketRecord,
    name: &'static str,
    value: Option<String>,
) -> S3Result<()> {
    let (b, id) = (bucket.name.clone(), bucket.id.clone());
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            let mut rec = decided_in(txn, &b, &id)?;
            match value {
                Some(v) => rec.configs.insert(name.into(), v),
                None => rec.configs.remove(name),
            };
            Ok(txn.put_bucket(&rec)?)
        })
        .await
        .map_err(Into::into)
}

pub(crate) async fn head_bucket(
    s3: &Strongroom,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    let b = crate::decided_bucket(&req)?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(b.location.unwrap_or_else(|| s3.settings.region.clone())),
        ..Default::default()
    }))
}

pub(crate) async fn delete_bucket(
    s3: &Strongroom,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let decided = crate::decided_bucket(&req)?;
    let name = req.input.bucket;
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            decided_in(txn, &name, &decided.id)?;
            if !txn.bucket_is_empty(&name)? {
                return Err(Fail(s3_error!(
                    BucketNotEmpty,
                    "The bucket you tried to delete is not empty"
                )));
            }
            // its policy text lives in its own record
            txn.delete_system(&strongroom_access::config::policy_record(&name))?;
            Ok(txn.delete_bucket(&name)?)
        })
        .await?;
    let mut resp = S3Response::new(DeleteBucketOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn get_bucket_location(
    _s3: &Strongroom,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let b = crate::decided_bucket(&req)?;
    // us-east-1 buckets report an empty LocationConstraint, as AWS
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint: b
            .location
            .filter(|l| l != "us-east-1")
            .map(BucketLocationConstraint::from),
    }))
}

/// Buckets are never versioned yet: AWS answers a never-versioned bucket
/// with an empty configuration (no Status).
pub(crate) async fn get_bucket_versioning(
    _s3: &Strongroom,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let b = crate::decided_bucket(&req)?;
    let status = match crate::versioning::state(&b) {
        crate::versioning::State::Never => None,
        crate::versioning::State::Enabled => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::ENABLED)),
        crate::versioning::State::Suspended => {
            Some(BucketVersioningStatus::from_static(BucketVersioningStatus::SUSPENDED))
        }
    };
    let mfa_delete = match crate::versioning::state(&b) {
        crate::versioning::State::Never => None,
        _ => Some(MFADeleteStatus::from_static(if crate::versioning::mfa_delete(&b) {
            MFADeleteStatus::ENABLED
        } else {
            MFADeleteStatus::DISABLED
        })),
    };
    Ok(S3Response::new(GetBucketVersioningOutput { status, mfa_delete }))
}

/// PutBucketVersioning: Enabled or Suspended (a bucket never goes back to
/// unversioned). MFA Delete is not built yet and is refused rather than
/// accepted and not enforced.
pub(crate) async fn put_bucket_versioning(
    s3: &Strongroom,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let who = principal(&req)?;
    let decided = crate::decided_bucket(&req)?;
    let i = req.input;
    let c = i.versioning_configuration;
    let mfa_change = match c.mfa_delete.as_ref().map(MFADelete::as_str) {
        None => None,
        Some(MFADelete::ENABLED) => Some(true),
        Some(MFADelete::DISABLED) => Some(false),
        Some(_) => {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
    };
    let enabled = match c.status.as_ref().map(BucketVersioningStatus::as_str) {
        Some(BucketVersioningStatus::ENABLED) => true,
        Some(BucketVersioningStatus::SUSPENDED) => false,
        _ => {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
    };
    let current = decided;
    // changing MFA Delete, and suspending while it is on, need the bucket
    // owner's root and a fresh code of its device; restating the current
    // state (MfaDelete=Disabled on a bucket without it) changes nothing
    let on = crate::versioning::mfa_delete(&current);
    let mfa_change = mfa_change.filter(|want| *want != on);
    if mfa_change.is_some() || (!enabled && on) {
        if who.account_id() != current.owner || !who.is_root() {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        crate::versioning::require_mfa(s3, &current.owner, i.mfa.as_deref(), &who).await?;
    }
    let (name, id) = (current.name, current.id);
    s3.store
        .commit(move |txn| -> Result<(), crate::error::Fail> {
            let mut b = decided_in(txn, &name, &id)?;
            match mfa_change {
                Some(true) => {
                    b.configs.insert(crate::versioning::MFA_CONFIG.into(), "Enabled".into());
                }
                Some(false) => {
                    b.configs.remove(crate::versioning::MFA_CONFIG);
                }
                None => {}
            }
            if !enabled && crate::lock::of(&b).is_some() {
                return Err(crate::error::Fail(crate::error::custom(
                    "InvalidBucketState",
                    http::StatusCode::CONFLICT,
                    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
                )));
            }
            crate::versioning::set_state(txn, &mut b, enabled)
        })
        .await?;
    Ok(S3Response::new(PutBucketVersioningOutput {}))
}
