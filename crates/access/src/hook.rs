//! The S3 authorization hook s3s calls: a cheap pre-check on the raw
//! request (who is calling; strangers get nothing read for them), then, per
//! operation and after s3s has parsed its typed input, the decision on that
//! input ([`crate::ask`]). Every one of s3s's per-operation methods is
//! written out below (s3s's own defaults allow); an operation Strongroom
//! does not serve is refused. Only the per-operation decision inserts the
//! [`Authorized`] proof the handlers require, so an operation that somehow
//! bypassed it finds no proof and is denied.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::*;
use s3s::path::S3Path;
use s3s::{S3Request, S3Result, s3_error};
use strongroom_iam::{ConnInfo, Identities, KeyError, OperationSlot, Principal, RequestSlot};
use strongroom_store::Store;

use crate::ask::{Ask, Describe};
use crate::config::PolicyCache;
use crate::context::Env;
use crate::decide::{Authorized, Authorizer};
use crate::envelope::{AuthFacts, Mechanism};

/// The caller the pre-check resolved, for the per-operation decision.
#[derive(Clone)]
struct Caller(Principal);

/// S3 authorization, as s3s's access hook. Cloning shares it (s3s owns
/// one handle; custom routes hold others), so there is one decision path
/// and no wrapper whose per-operation methods could fall back to s3s's
/// allowing defaults.
#[derive(Clone)]
pub struct S3Authorization {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    authz: Authorizer,
    region: String,
    #[cfg(feature = "observe")]
    observer: Option<Observer>,
}

/// What an observer is shown of a request about to be decided: the Ask
/// (from s3s's typed input), the envelope's facts, and s3s's own reading
/// of the path and operation name.
#[cfg(feature = "observe")]
pub type Observer = std::sync::Arc<dyn Fn(&Ask, &AuthFacts, &S3sReading) + Send + Sync>;

/// s3s's reading of a request's path and operation, kept for the observer.
#[cfg(feature = "observe")]
#[derive(Clone, Debug)]
pub struct S3sReading {
    pub op: String,
    pub bucket: Option<String>,
    pub key: Option<String>,
}

fn denied() -> s3s::S3Error {
    s3_error!(AccessDenied, "Access Denied")
}

impl S3Authorization {
    pub fn new(identities: Identities, store: Store, region: String) -> S3Authorization {
        S3Authorization {
            inner: std::sync::Arc::new(Inner {
                authz: Authorizer {
                    identities,
                    store,
                    policies: PolicyCache::default(),
                },
                region,
                #[cfg(feature = "observe")]
                observer: None,
            }),
        }
    }

    /// Shows every request about to be decided to `f` (differential
    /// fuzzing: s3s's reading against the one the decision uses).
    #[cfg(feature = "observe")]
    pub fn observe(identities: Identities, store: Store, region: String, f: Observer) -> S3Authorization {
        S3Authorization {
            inner: std::sync::Arc::new(Inner {
                authz: Authorizer {
                    identities,
                    store,
                    policies: PolicyCache::default(),
                },
                region,
                observer: Some(f),
            }),
        }
    }

    /// The caller: anonymous without credentials, else the principal of
    /// the access key s3s verified, which must be the one the envelope read.
    fn caller(&self, credentials: Option<&s3s::auth::Credentials>, facts: &AuthFacts) -> S3Result<Principal> {
        let Some(creds) = credentials else {
            return match facts.mechanism {
                Mechanism::Anonymous | Mechanism::PostForm => Ok(self.inner.authz.identities.anonymous()),
                // the envelope saw a signature s3s did not verify
                _ => Err(denied()),
            };
        };
        let consistent = match facts.mechanism {
            Mechanism::Anonymous => false,
            Mechanism::PostForm => facts.access_key.is_none(),
            _ => facts.access_key.as_deref() == Some(creds.access_key.as_str()),
        };
        if !consistent {
            tracing::warn!(mechanism = ?facts.mechanism, "signature verified by s3s differs from the envelope's reading: denied");
            return Err(denied());
        }
        match self.inner.authz.identities.principal(&creds.access_key, facts.token()) {
            Ok(p) => Ok(p),
            Err(KeyError::BadToken) => Err(s3_error!(
                InvalidToken,
                "The provided token is malformed or otherwise invalid."
            )),
            Err(KeyError::Unknown) => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }

    /// Before s3s parses the input (or reads a body): the caller must be
    /// known, and an anonymous caller is refused at once unless a bucket
    /// policy could grant it something.
    fn pre_check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        #[cfg(feature = "observe")]
        if self.inner.observer.is_some() {
            let path = cx.s3_path();
            let seen = S3sReading {
                op: op.clone(),
                bucket: path.get_bucket_name().map(str::to_owned),
                key: path.get_object_key().map(str::to_owned),
            };
            cx.extensions_mut().insert(seen);
        }
        if let Some(slot) = cx.extensions_mut().get::<OperationSlot>() {
            let _ = slot.0.set(op);
        }
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        if let Some(slot) = cx.extensions_mut().get::<RequestSlot>() {
            slot.update(|f| {
                f.bucket = bucket;
                f.key = key;
            });
        }
        let facts = cx
            .extensions_mut()
            .get::<Arc<AuthFacts>>()
            .cloned()
            .ok_or_else(denied)?;
        let who = self.caller(cx.credentials(), &facts)?;
        if who.is_anonymous() {
            let bucket = match cx.s3_path() {
                S3Path::Root => return Err(denied()),
                S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => bucket.clone(),
            };
            let rec = self
                .inner
                .authz
                .store
                .bucket(&bucket)
                .map_err(|_| s3_error!(InternalError, "We encountered an internal error. Please try again."))?
                .ok_or_else(|| s3_error!(NoSuchBucket, "The specified bucket does not exist"))?;
            if !rec.configs.contains_key(crate::config::POLICY_CONFIG) {
                return Err(denied());
            }
        }
        cx.extensions_mut().insert(Caller(who));
        Ok(())
    }

    fn authorize<T: Describe>(&self, req: &mut S3Request<T>) -> S3Result<()> {
        let ask = req.input.ask()?;
        self.authorize_ask(req, ask)
    }

    /// Decides `ask` for the request and, when allowed, leaves the
    /// [`Authorized`] proof in its extensions. Also used by custom routes
    /// that s3s sends past the per-operation hook.
    pub fn authorize_ask<T>(&self, req: &mut S3Request<T>, ask: Ask) -> S3Result<()> {
        let facts = req.extensions.get::<Arc<AuthFacts>>().cloned().ok_or_else(denied)?;
        let who = match req.extensions.remove::<Caller>() {
            Some(Caller(p)) => p,
            None => self.caller(req.credentials.as_ref(), &facts)?,
        };
        if req.credentials.is_some() {
            self.check_scope(req.region.as_ref().map(|r| r.as_str()), req.service.as_deref())?;
        }
        protocol_checks(&req.headers, ask.op)?;
        #[cfg(feature = "observe")]
        if let (Some(f), Some(seen)) = (&self.inner.observer, req.extensions.get::<S3sReading>()) {
            f(&ask, &facts, seen);
        }
        let conn = req.extensions.get::<ConnInfo>().cloned();
        let env = Env {
            who: &who,
            conn: conn.as_ref(),
            headers: &req.headers,
            facts: &facts,
            now: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let slot = req.extensions.get::<RequestSlot>().cloned();
        if let Some(s) = &slot
            && !who.is_anonymous()
        {
            s.update(|f| f.requester = Some(who.identity_arn()));
        }
        let authorized = self.inner.authz.decide(&ask, &env)?;
        if let (Some(s), Some(b)) = (&slot, authorized.bucket()) {
            s.update(|f| {
                f.decided_owner = Some(b.owner.clone());
                f.decided_logging = Some(b.configs.get(crate::config::LOGGING_CONFIG).cloned());
            });
        }
        req.extensions.insert::<Authorized>(authorized);
        Ok(())
    }

    /// The scope s3s verified (region and service of the credential; a
    /// form upload's is only visible here) must be this server's S3.
    fn check_scope(&self, region: Option<&str>, service: Option<&str>) -> S3Result<()> {
        if service.is_some_and(|s| s != "s3") {
            return Err(s3_error!(
                AuthorizationHeaderMalformed,
                "The authorization is malformed; incorrect service. This endpoint belongs to 's3'."
            ));
        }
        if let Some(r) = region
            && r != self.inner.region
        {
            return Err(s3_error!(
                AuthorizationHeaderMalformed,
                "The authorization is malformed; the region '{r}' is wrong; expecting '{}'",
                self.inner.region
            ));
        }
        Ok(())
    }
}

/// Header-named features we must not accept silently: S3 Express One Zone
/// conditions, and ACL grants on buckets whose ACLs are disabled.
fn protocol_checks(headers: &http::HeaderMap, op: crate::table::Op) -> S3Result<()> {
    let name = op.name();
    for n in headers.keys().map(http::HeaderName::as_str) {
        if matches!(
            n,
            "x-amz-write-offset-bytes" | "x-amz-if-match-last-modified-time" | "x-amz-if-match-size"
        ) {
            return Err(s3_error!(
                NotImplemented,
                "This header is not supported by general purpose buckets"
            ));
        }
        if n.starts_with("x-amz-grant-") && name != "CreateBucket" && !name.ends_with("Acl") {
            return Err(s3_error!(
                AccessControlListNotSupported,
                "The bucket does not allow ACLs"
            ));
        }
    }
    Ok(())
}

macro_rules! every_operation {
    (
        decided: [$($m:ident: $input:ident),* $(,)?],
        unsupported_on_bucket: [$($u:ident: $uinput:ident => $uname:literal),* $(,)?],
        unsupported: [$($n:ident: $ninput:ident => $nname:literal),* $(,)?] $(,)?
    ) => {
        #[async_trait::async_trait]
        impl S3Access for S3Authorization {
            async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
                self.pre_check(cx)
            }
            $(
                async fn $m(&self, req: &mut S3Request<$input>) -> S3Result<()> {
                    self.authorize(req)
                }
            )*
            $(
                async fn $u(&self, req: &mut S3Request<$uinput>) -> S3Result<()> {
                    let ask = Ask::unsupported($uname, Some(&req.input.bucket));
                    self.authorize_ask(req, ask)
                }
            )*
            $(
                async fn $n(&self, req: &mut S3Request<$ninput>) -> S3Result<()> {
                    self.authorize_ask(req, Ask::unsupported($nname, None))
                }
            )*
        }

        /// Every per-operation method written out above, for the test that
        /// compares them with s3s's.
        #[cfg(test)]
        pub(crate) const OPERATIONS: &[&str] = &[
            $(stringify!($m),)* $(stringify!($u),)* $(stringify!($n),)*
        ];
    };
}

every_operation! {
    decided: [
        list_buckets: ListBucketsInput,
        create_bucket: CreateBucketInput,
        delete_bucket: DeleteBucketInput,
        head_bucket: HeadBucketInput,
        list_objects: ListObjectsInput,
        list_objects_v2: ListObjectsV2Input,
        list_object_versions: ListObjectVersionsInput,
        list_multipart_uploads: ListMultipartUploadsInput,
        get_bucket_location: GetBucketLocationInput,
        get_bucket_versioning: GetBucketVersioningInput,
        put_bucket_versioning: PutBucketVersioningInput,
        get_object_lock_configuration: GetObjectLockConfigurationInput,
        put_object_lock_configuration: PutObjectLockConfigurationInput,
        get_bucket_tagging: GetBucketTaggingInput,
        put_bucket_tagging: PutBucketTaggingInput,
        delete_bucket_tagging: DeleteBucketTaggingInput,
        get_bucket_acl: GetBucketAclInput,
        put_bucket_acl: PutBucketAclInput,
        get_bucket_encryption: GetBucketEncryptionInput,
        put_bucket_encryption: PutBucketEncryptionInput,
        delete_bucket_encryption: DeleteBucketEncryptionInput,
        get_bucket_policy: GetBucketPolicyInput,
        put_bucket_policy: PutBucketPolicyInput,
        delete_bucket_policy: DeleteBucketPolicyInput,
        get_bucket_policy_status: GetBucketPolicyStatusInput,
        get_public_access_block: GetPublicAccessBlockInput,
        put_public_access_block: PutPublicAccessBlockInput,
        delete_public_access_block: DeletePublicAccessBlockInput,
        get_bucket_ownership_controls: GetBucketOwnershipControlsInput,
        get_bucket_request_payment: GetBucketRequestPaymentInput,
        put_bucket_ownership_controls: PutBucketOwnershipControlsInput,
        delete_bucket_ownership_controls: DeleteBucketOwnershipControlsInput,
        get_bucket_cors: GetBucketCorsInput,
        put_bucket_cors: PutBucketCorsInput,
        delete_bucket_cors: DeleteBucketCorsInput,
        get_bucket_website: GetBucketWebsiteInput,
        put_bucket_website: PutBucketWebsiteInput,
        delete_bucket_website: DeleteBucketWebsiteInput,
        get_bucket_logging: GetBucketLoggingInput,
        put_bucket_logging: PutBucketLoggingInput,
        get_bucket_lifecycle_configuration: GetBucketLifecycleConfigurationInput,
        put_bucket_lifecycle_configuration: PutBucketLifecycleConfigurationInput,
        delete_bucket_lifecycle: DeleteBucketLifecycleInput,
        get_object: GetObjectInput,
        head_object: HeadObjectInput,
        get_object_attributes: GetObjectAttributesInput,
        put_object: PutObjectInput,
        post_object: PostObjectInput,
        copy_object: CopyObjectInput,
        create_multipart_upload: CreateMultipartUploadInput,
        upload_part: UploadPartInput,
        upload_part_copy: UploadPartCopyInput,
        complete_multipart_upload: CompleteMultipartUploadInput,
        abort_multipart_upload: AbortMultipartUploadInput,
        list_parts: ListPartsInput,
        delete_object: DeleteObjectInput,
        delete_objects: DeleteObjectsInput,
        get_object_tagging: GetObjectTaggingInput,
        put_object_tagging: PutObjectTaggingInput,
        delete_object_tagging: DeleteObjectTaggingInput,
        get_object_acl: GetObjectAclInput,
        put_object_acl: PutObjectAclInput,
        get_object_retention: GetObjectRetentionInput,
        put_object_retention: PutObjectRetentionInput,
        get_object_legal_hold: GetObjectLegalHoldInput,
        put_object_legal_hold: PutObjectLegalHoldInput,
    ],
    unsupported_on_bucket: [
        create_bucket_metadata_table_configuration: CreateBucketMetadataTableConfigurationInput => "CreateBucketMetadataTableConfiguration",
        create_session: CreateSessionInput => "CreateSession",
        delete_bucket_analytics_configuration: DeleteBucketAnalyticsConfigurationInput => "DeleteBucketAnalyticsConfiguration",
        delete_bucket_intelligent_tiering_configuration: DeleteBucketIntelligentTieringConfigurationInput => "DeleteBucketIntelligentTieringConfiguration",
        delete_bucket_inventory_configuration: DeleteBucketInventoryConfigurationInput => "DeleteBucketInventoryConfiguration",
        delete_bucket_metadata_table_configuration: DeleteBucketMetadataTableConfigurationInput => "DeleteBucketMetadataTableConfiguration",
        delete_bucket_metrics_configuration: DeleteBucketMetricsConfigurationInput => "DeleteBucketMetricsConfiguration",
        delete_bucket_replication: DeleteBucketReplicationInput => "DeleteBucketReplication",
        get_bucket_accelerate_configuration: GetBucketAccelerateConfigurationInput => "GetBucketAccelerateConfiguration",
        get_bucket_analytics_configuration: GetBucketAnalyticsConfigurationInput => "GetBucketAnalyticsConfiguration",
        get_bucket_intelligent_tiering_configuration: GetBucketIntelligentTieringConfigurationInput => "GetBucketIntelligentTieringConfiguration",
        get_bucket_inventory_configuration: GetBucketInventoryConfigurationInput => "GetBucketInventoryConfiguration",
        get_bucket_metadata_table_configuration: GetBucketMetadataTableConfigurationInput => "GetBucketMetadataTableConfiguration",
        get_bucket_metrics_configuration: GetBucketMetricsConfigurationInput => "GetBucketMetricsConfiguration",
        get_bucket_notification_configuration: GetBucketNotificationConfigurationInput => "GetBucketNotificationConfiguration",
        get_bucket_replication: GetBucketReplicationInput => "GetBucketReplication",
        get_object_torrent: GetObjectTorrentInput => "GetObjectTorrent",
        list_bucket_analytics_configurations: ListBucketAnalyticsConfigurationsInput => "ListBucketAnalyticsConfigurations",
        list_bucket_intelligent_tiering_configurations: ListBucketIntelligentTieringConfigurationsInput => "ListBucketIntelligentTieringConfigurations",
        list_bucket_inventory_configurations: ListBucketInventoryConfigurationsInput => "ListBucketInventoryConfigurations",
        list_bucket_metrics_configurations: ListBucketMetricsConfigurationsInput => "ListBucketMetricsConfigurations",
        put_bucket_accelerate_configuration: PutBucketAccelerateConfigurationInput => "PutBucketAccelerateConfiguration",
        put_bucket_analytics_configuration: PutBucketAnalyticsConfigurationInput => "PutBucketAnalyticsConfiguration",
        put_bucket_intelligent_tiering_configuration: PutBucketIntelligentTieringConfigurationInput => "PutBucketIntelligentTieringConfiguration",
        put_bucket_inventory_configuration: PutBucketInventoryConfigurationInput => "PutBucketInventoryConfiguration",
        put_bucket_metrics_configuration: PutBucketMetricsConfigurationInput => "PutBucketMetricsConfiguration",
        put_bucket_notification_configuration: PutBucketNotificationConfigurationInput => "PutBucketNotificationConfiguration",
        put_bucket_replication: PutBucketReplicationInput => "PutBucketReplication",
        put_bucket_request_payment: PutBucketRequestPaymentInput => "PutBucketRequestPayment",
        restore_object: RestoreObjectInput => "RestoreObject",
        select_object_content: SelectObjectContentInput => "SelectObjectContent",
    ],
    unsupported: [
        list_directory_buckets: ListDirectoryBucketsInput => "ListDirectoryBuckets",
        write_get_object_response: WriteGetObjectResponseInput => "WriteGetObjectResponse",
    ],
}

#[cfg(test)]
mod tests;
