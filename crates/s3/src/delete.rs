//! DeleteObject and DeleteObjects. Deleting a missing key succeeds (204),
//! as in AWS.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use strongroom_store::BucketRecord;

use crate::Strongroom;
use crate::error::{Fail, decided_in, precondition_failed};
use crate::versioning::{self, Deleted};

/// Most keys one DeleteObjects request may name.
const MAX_DELETE_KEYS: usize = 1000;

/// Deletes the current object (a delete marker in a versioned bucket) or,
/// with a version id, that version for good.
async fn delete_one(
    s3: &Strongroom,
    bucket: &BucketRecord,
    key: &str,
    version_id: Option<String>,
    if_match: Option<ETagCondition>,
    owner: &str,
    bypass_governance: bool,
) -> S3Result<Deleted> {
    let (b, id, k, owner) = (bucket.name.clone(), bucket.id.clone(), key.to_owned(), owner.to_owned());
    s3.store
        .commit(move |txn| -> Result<Deleted, Fail> {
            let brec = decided_in(txn, &b, &id)?;
            if let Some(cond) = &if_match {
                match txn.object(&b, &k)? {
                    Some(cur) if cond.is_any() || cond.as_etag().is_some_and(|e| e.value() == cur.etag) => {}
                    Some(_) => return Err(Fail(precondition_failed())),
                    None => return Err(Fail(crate::error::no_such_key())),
                }
            }
            match version_id.as_deref() {
                Some(v) => versioning::delete_version(txn, &brec, &k, v, bypass_governance),
                None => versioning::delete_current(txn, &brec, &k, &owner),
            }
        })
        .await
        .map_err(Into::into)
}

pub(crate) async fn delete_object(
    s3: &Strongroom,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let who = crate::principal(&req)?;
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let bypass = i.bypass_governance_retention.unwrap_or(false);
    if i.version_id.is_some() && versioning::mfa_delete(&b) {
        versioning::require_mfa(s3, &b.owner, i.mfa.as_deref(), &who).await?;
    }
    let d = delete_one(s3, &b, &i.key, i.version_id, i.if_match, who.account_id(), bypass).await?;
    let mut resp = S3Response::new(DeleteObjectOutput {
        version_id: d.version_id,
        delete_marker: d.delete_marker.then_some(true),
        ..Default::default()
    });
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn delete_objects(
    s3: &Strongroom,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let who = crate::principal(&req)?;
    let brec = crate::decided_bucket(&req)?;
    let i = req.input;
    // permanent deletions under MFA Delete need one valid code for the
    // whole request
    if versioning::mfa_delete(&brec) && i.delete.objects.iter().any(|o| o.version_id.is_some()) {
        versioning::require_mfa(s3, &brec.owner, i.mfa.as_deref(), &who).await?;
    }
    let objects = i.delete.objects;
    if objects.is_empty() || objects.len() > MAX_DELETE_KEYS {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    let quiet = i.delete.quiet.unwrap_or(false);
    let bypass = i.bypass_governance_retention.unwrap_or(false);
    // authorized per key, as AWS: s3:DeleteObject[Version] (and
    // s3:BypassGovernanceRetention when asked); no gate, no deletion
    let gate = req
        .extensions
        .get::<strongroom_access::Authorized>()
        .map(|a| a.grant().clone());
    let allowed = |o: &ObjectIdentifier| {
        let Some(g) = &gate else { return false };
        let action = if o.version_id.is_some() {
            "s3:DeleteObjectVersion"
        } else {
            "s3:DeleteObject"
        };
        g.allows(action, &o.key) && (!bypass || g.allows("s3:BypassGovernanceRetention", &o.key))
    };
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    // each key is its own mutation (outcomes are independent, as AWS
    // reports them); issued together, they share group commits
    let results = futures::future::join_all(objects.iter().map(|o| async {
        if !allowed(o) {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        delete_one(s3, &brec, &o.key, o.version_id.clone(), None, who.account_id(), bypass).await
    }))
    .await;
    for (o, result) in objects.into_iter().zip(results) {
        match result {
            Ok(d) if !quiet => {
                // a new delete marker is reported as such with its id
                let (version_id, marker_id) = match (&o.version_id, d.delete_marker) {
                    (None, true) => (None, d.version_id),
                    (Some(_), true) => (o.version_id, d.version_id),
                    _ => (o.version_id, None),
                };
                deleted.push(DeletedObject {
                    key: Some(o.key),
                    version_id,
                    delete_marker: d.delete_marker.then_some(true),
                    delete_marker_version_id: marker_id,
                })
            }
            Ok(_) => {}
            Err(e) => errors.push(Error {
                code: Some(e.code().as_str().to_owned()),
                key: Some(o.key),
                message: e.message().map(str::to_owned),
                version_id: o.version_id,
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: Some(errors),
        ..Default::default()
    }))
}
