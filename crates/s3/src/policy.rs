//! Bucket policies (Put/Get/Delete/GetBucketPolicyStatus), Block Public
//! Access of a bucket (Put/Get/DeletePublicAccessBlock) and Object
//! Ownership (Get/PutBucketOwnershipControls). The documents are kept in
//! the bucket record's configs; the access hook evaluates them.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strongroom_access::config::{
    POLICY_LOCKOUT_CONFIG, POLICY_PRINCIPALS_CONFIG, bucket_policy_text, policy_bindings, policy_record,
};
use strongroom_access::{PAB_CONFIG, POLICY_CONFIG, PublicAccessBlock};
use strongroom_iam::policy::{Kind, Policy};

use crate::Strongroom;
use crate::error::{Fail, decided_in};

fn malformed(m: impl std::fmt::Display) -> s3s::S3Error {
    s3_error!(MalformedPolicy, "{m}")
}

/// The unique ids of the IAM users and roles the policy names, as AWS
/// binds them when a policy is written: a principal that names no existing
/// entity is refused ("Invalid principal in policy").
fn bind_principals(s3: &Strongroom, p: &Policy) -> S3Result<String> {
    let mut ids = std::collections::BTreeMap::new();
    for arn in p.entity_principals() {
        let id = s3
            .identities
            .entity_id_of(&arn)
            .ok_or_else(|| malformed("Invalid principal in policy"))?;
        ids.insert(arn, id);
    }
    serde_json::to_string(&ids).map_err(|e| s3_error!(InternalError, "{e}"))
}

/// The policy as GetBucketPolicy shows it: a principal whose entity was
/// deleted (or replaced by a new one under its name) shows as the unique id
/// the policy was bound to, as AWS shows it; the document no longer grants
/// anything to that name.
fn shown(s3: &Strongroom, text: String, b: &strongroom_store::BucketRecord) -> S3Result<String> {
    let ids = policy_bindings(b).map_err(|e| crate::error::internal(&e))?;
    let mut text = text;
    for (arn, id) in ids {
        if s3.identities.entity_id_of(&arn).as_deref() != Some(id.as_str()) {
            text = text.replace(&format!("\"{arn}\""), &format!("\"{id}\""));
        }
    }
    Ok(text)
}

/// A bucket policy must speak of S3 actions and of this bucket's resources.
fn validate_for_bucket(p: &Policy, bucket: &str) -> S3Result<()> {
    for s in &p.statements {
        for a in &s.action.0 {
            let svc = a.split(':').next().unwrap_or_default();
            if a != "*" && !svc.eq_ignore_ascii_case("s3") {
                return Err(malformed("Policy has invalid action"));
            }
        }
        if let Some((rs, _)) = &s.resource {
            for r in rs {
                let Some(rest) = r.strip_prefix("arn:aws:s3:::") else {
                    return Err(malformed("Policy has invalid resource"));
                };
                let b = rest.split('/').next().unwrap_or_default();
                if !strongroom_iam::policy::wildcard(b, bucket, false) {
                    return Err(malformed("Policy has invalid resource"));
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn put_bucket_policy(
    s3: &Strongroom,
    req: S3Request<PutBucketPolicyInput>,
) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let p = Policy::parse(&i.policy, Kind::Resource).map_err(malformed)?;
    validate_for_bucket(&p, &i.bucket)?;
    let principals = bind_principals(s3, &p)?;
    if p.is_public() && strongroom_access::config::effective_pab(&s3.store, &b).block_public_policy {
        return Err(s3_error!(AccessDenied, "Access Denied"));
    }
    // ConfirmRemoveSelfBucketAccess: the owner's root gives up its
    // standing right to manage this policy
    let confirmed = i
        .confirm_remove_self_bucket_access
        .unwrap_or(false)
        .then(|| "true".to_owned());
    // the text goes to its own record; the bucket record names its
    // generation (parsed-policy caches key on it)
    let mut g = [0u8; 16];
    strongroom_crypt::fill_random(&mut g).map_err(|e| s3_error!(InternalError, "{e}"))?;
    let generation = hex_simd::encode_to_string(g, hex_simd::AsciiCase::Lower);
    let (name, id, text) = (b.name, b.id, i.policy);
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            let mut rec = decided_in(txn, &name, &id)?;
            rec.configs.insert(POLICY_CONFIG.into(), generation);
            rec.configs.insert(POLICY_PRINCIPALS_CONFIG.into(), principals);
            match confirmed {
                Some(v) => rec.configs.insert(POLICY_LOCKOUT_CONFIG.into(), v),
                None => rec.configs.remove(POLICY_LOCKOUT_CONFIG),
            };
            txn.put_system(&policy_record(&name), text.as_bytes())?;
            Ok(txn.put_bucket(&rec)?)
        })
        .await?;
    let mut resp = S3Response::new(PutBucketPolicyOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

fn no_policy() -> s3s::S3Error {
    s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist")
}

pub(crate) async fn get_bucket_policy(
    s3: &Strongroom,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let b = crate::decided_bucket(&req)?;
    let policy = bucket_policy_text(&s3.store, &b)
        .map_err(|e| crate::error::internal(&e))?
        .ok_or_else(no_policy)?;
    let policy = shown(s3, policy, &b)?;
    Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(policy) }))
}

pub(crate) async fn delete_bucket_policy(
    s3: &Strongroom,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    let b = crate::decided_bucket(&req)?;
    let (name, id) = (b.name, b.id);
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            let mut rec = decided_in(txn, &name, &id)?;
            rec.configs.remove(POLICY_CONFIG);
            rec.configs.remove(POLICY_LOCKOUT_CONFIG);
            rec.configs.remove(POLICY_PRINCIPALS_CONFIG);
            txn.delete_system(&policy_record(&name))?;
            Ok(txn.put_bucket(&rec)?)
        })
        .await?;
    let mut resp = S3Response::new(DeleteBucketPolicyOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn get_bucket_policy_status(
    s3: &Strongroom,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let b = crate::decided_bucket(&req)?;
    // without a policy the bucket is not public by policy (ACLs are off)
    let public = bucket_policy_text(&s3.store, &b)
        .map_err(|e| crate::error::internal(&e))?
        .is_some_and(|text| Policy::parse(&text, Kind::Resource).is_ok_and(|p| p.is_public()));
    Ok(S3Response::new(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(public),
        }),
    }))
}

pub(crate) async fn put_public_access_block(
    s3: &Strongroom,
    req: S3Request<PutPublicAccessBlockInput>,
) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
    let b = crate::decided_bucket(&req)?;
    let c = req.input.public_access_block_configuration;
    let pab = PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    let v = serde_json::to_string(&pab).map_err(|e| s3_error!(InternalError, "{e}"))?;
    crate::bucket::set_config(s3, &b, PAB_CONFIG, Some(v)).await?;
    Ok(S3Response::new(PutPublicAccessBlockOutput {}))
}

pub(crate) async fn get_public_access_block(
    _s3: &Strongroom,
    req: S3Request<GetPublicAccessBlockInput>,
) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
    let b = crate::decided_bucket(&req)?;
    let pab: PublicAccessBlock = b
        .configs
        .get(PAB_CONFIG)
        .and_then(|v| serde_json::from_str(v).ok())
        .ok_or_else(|| {
            crate::error::custom(
                "NoSuchPublicAccessBlockConfiguration",
                http::StatusCode::NOT_FOUND,
                "The public access block configuration was not found",
            )
        })?;
    Ok(S3Response::new(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(pab.block_public_acls),
            ignore_public_acls: Some(pab.ignore_public_acls),
            block_public_policy: Some(pab.block_public_policy),
            restrict_public_buckets: Some(pab.restrict_public_buckets),
        }),
    }))
}

pub(crate) async fn delete_public_access_block(
    s3: &Strongroom,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
    crate::bucket::set_config(s3, &crate::decided_bucket(&req)?, PAB_CONFIG, None).await?;
    let mut resp = S3Response::new(DeletePublicAccessBlockOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn get_bucket_ownership_controls(
    _s3: &Strongroom,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
    crate::decided_bucket(&req)?;
    Ok(S3Response::new(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::from_static(ObjectOwnership::BUCKET_OWNER_ENFORCED),
            }],
        }),
    }))
}

/// Requester Pays is not offered: the bucket owner pays, always (what AWS
/// answers for a bucket without it; PutBucketRequestPayment is 501).
pub(crate) async fn get_bucket_request_payment(
    _s3: &Strongroom,
    req: S3Request<GetBucketRequestPaymentInput>,
) -> S3Result<S3Response<GetBucketRequestPaymentOutput>> {
    crate::decided_bucket(&req)?;
    Ok(S3Response::new(GetBucketRequestPaymentOutput {
        payer: Some(Payer::from_static(Payer::BUCKET_OWNER)),
    }))
}

pub(crate) async fn put_bucket_ownership_controls(
    _s3: &Strongroom,
    req: S3Request<PutBucketOwnershipControlsInput>,
) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
    crate::decided_bucket(&req)?;
    let i = req.input;
    let rules = &i.ownership_controls.rules;
    if rules.len() != 1 {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    if rules[0].object_ownership.as_str() != ObjectOwnership::BUCKET_OWNER_ENFORCED {
        // ACL-enabled ownership needs ACL support, which is not built
        return Err(s3_error!(
            NotImplemented,
            "Only the BucketOwnerEnforced object ownership is supported"
        ));
    }
    Ok(S3Response::new(PutBucketOwnershipControlsOutput {}))
}
