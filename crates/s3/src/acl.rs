//! ACLs under Object Ownership "BucketOwnerEnforced", the default of new
//! AWS buckets: ACLs are disabled, every object belongs to the bucket owner,
//! Get*Acl shows the owner's FULL_CONTROL grant, and Put*Acl accepts only
//! an ACL equivalent to that (private / bucket-owner-full-control / an
//! explicit owner-only policy); anything else is AccessControlListNotSupported.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use crate::Strongroom;

fn owner_grant(owner: &Owner) -> Grants {
    vec![Grant {
        grantee: Some(Grantee {
            display_name: owner.display_name.clone(),
            email_address: None,
            id: owner.id.clone(),
            type_: Type::from(Type::CANONICAL_USER.to_owned()),
            uri: None,
        }),
        permission: Some(Permission::from(Permission::FULL_CONTROL.to_owned())),
    }]
}

fn not_supported() -> s3s::S3Error {
    s3_error!(AccessControlListNotSupported, "The bucket does not allow ACLs")
}

/// True when the requested ACL grants nothing beyond the owner's control.
fn owner_only(canned: Option<&str>, policy: Option<&AccessControlPolicy>, grant_headers: bool, owner: &Owner) -> bool {
    if grant_headers {
        return false;
    }
    if let Some(c) = canned {
        return matches!(c, "private" | "bucket-owner-full-control");
    }
    match policy.and_then(|p| p.grants.as_ref()) {
        None => true,
        Some(grants) => grants.iter().all(|g| {
            g.permission
                .as_ref()
                .is_some_and(|p| p.as_str() == Permission::FULL_CONTROL)
                && g.grantee.as_ref().is_some_and(|e| e.id.is_some() && e.id == owner.id)
        }),
    }
}

pub(crate) async fn get_bucket_acl(
    s3: &Strongroom,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let b = crate::decided_bucket(&req)?;
    let owner = s3.owner_of(&b.owner);
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(owner_grant(&owner)),
        owner: Some(owner),
    }))
}

pub(crate) async fn put_bucket_acl(
    s3: &Strongroom,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let owner = s3.owner_of(&b.owner);
    let grants = has_grant_headers!(i);
    if !owner_only(
        i.acl.as_ref().map(BucketCannedACL::as_str),
        i.access_control_policy.as_ref(),
        grants,
        &owner,
    ) {
        return Err(not_supported());
    }
    Ok(S3Response::new(PutBucketAclOutput {}))
}

pub(crate) async fn get_object_acl(
    s3: &Strongroom,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    crate::versioning::read(s3, &b, &i.key, i.version_id.as_deref())?;
    let owner = s3.owner_of(&b.owner);
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(owner_grant(&owner)),
        owner: Some(owner),
        ..Default::default()
    }))
}

pub(crate) async fn put_object_acl(
    s3: &Strongroom,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    crate::versioning::read(s3, &b, &i.key, i.version_id.as_deref())?;
    let owner = s3.owner_of(&b.owner);
    let grants = has_grant_headers!(i);
    if !owner_only(
        i.acl.as_ref().map(ObjectCannedACL::as_str),
        i.access_control_policy.as_ref(),
        grants,
        &owner,
    ) {
        return Err(not_supported());
    }
    Ok(S3Response::new(PutObjectAclOutput::default()))
}
