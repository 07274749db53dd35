//! S3 semantics: buckets, objects, multipart uploads, listings, tagging and
//! copies, implemented as [`s3s::S3`] over the [`strongroom_store`] store.
//!
//! Handlers receive typed inputs from s3s and the [`Principal`] inserted by
//! the access hook; they never parse raw headers except for the few protocol
//! facts s3s leaves to us (checksum trailers, x-amz-content-sha256), read in
//! [`ingest`]. Operations not built here fall through to s3s's default,
//! which answers NotImplemented.
#![forbid(unsafe_code)]

/// Representation headers and user metadata of a write input (PutObject,
/// CreateMultipartUpload, CopyObject with REPLACE): the DTOs share names.
macro_rules! object_headers {
    ($i:ident) => {
        crate::meta::headers_from(
            $i.content_type,
            $i.content_encoding,
            $i.content_disposition,
            $i.content_language,
            $i.cache_control,
            $i.expires.as_ref(),
            $i.website_redirect_location,
            $i.storage_class.as_ref(),
            $i.metadata,
        )
    };
}

/// The five x-amz-checksum-* values of an input, by algorithm.
macro_rules! given_checksums {
    ($i:ident) => {
        [
            (crate::checksum::Algo::Crc32, $i.checksum_crc32.as_ref()),
            (crate::checksum::Algo::Crc32c, $i.checksum_crc32c.as_ref()),
            (crate::checksum::Algo::Crc64Nvme, $i.checksum_crc64nvme.as_ref()),
            (crate::checksum::Algo::Sha1, $i.checksum_sha1.as_ref()),
            (crate::checksum::Algo::Sha256, $i.checksum_sha256.as_ref()),
        ]
    };
}

/// Builds an output DTO whose five `checksum_*` fields come from a
/// [`meta::ChecksumFields`] (partial moves out of it, so `$c.kind` may be
/// used among the other fields).
macro_rules! with_checksums {
    ($c:ident, $ty:ident { $($f:ident : $v:expr),* $(,)? } $(.. $base:expr)?) => {
        $ty {
            $($f: $v,)*
            checksum_crc32: $c.crc32,
            checksum_crc32c: $c.crc32c,
            checksum_crc64nvme: $c.crc64nvme,
            checksum_sha1: $c.sha1,
            checksum_sha256: $c.sha256,
            $(..$base)?
        }
    };
}

/// True when a request carries any `x-amz-grant-*` header.
macro_rules! has_grant_headers {
    ($i:ident) => {
        $i.grant_full_control.is_some()
            || $i.grant_read.is_some()
            || $i.grant_read_acp.is_some()
            || $i.grant_write.is_some()
            || $i.grant_write_acp.is_some()
    };
}

/// The SSE fields of a write input (PutObject, CreateMultipartUpload,
/// CopyObject) as a [`sse::SseRequest`].
macro_rules! sse_request {
    ($i:ident) => {
        crate::sse::SseRequest {
            algorithm: $i.server_side_encryption.clone(),
            kms_key_id: $i.ssekms_key_id.clone(),
            context: $i.ssekms_encryption_context.clone(),
            bucket_key: $i.bucket_key_enabled,
            customer: customer_fields!($i),
        }
    };
}

/// The Object Lock fields of a write input.
macro_rules! lock_request {
    ($i:ident) => {
        crate::lock::LockRequest {
            mode: $i.object_lock_mode.clone(),
            until: $i.object_lock_retain_until_date.clone(),
            legal_hold: $i.object_lock_legal_hold_status.clone(),
        }
    };
}

/// The `x-amz-server-side-encryption-customer-*` fields of an input.
macro_rules! customer_fields {
    ($i:ident) => {
        crate::sse::CustomerFields {
            algorithm: $i.sse_customer_algorithm.clone(),
            key: $i.sse_customer_key.clone(),
            key_md5: $i.sse_customer_key_md5.clone(),
        }
    };
}

/// The `x-amz-copy-source-server-side-encryption-customer-*` fields.
macro_rules! copy_source_customer {
    ($i:ident) => {
        crate::sse::CustomerFields {
            algorithm: $i.copy_source_sse_customer_algorithm.clone(),
            key: $i.copy_source_sse_customer_key.clone(),
            key_md5: $i.copy_source_sse_customer_key_md5.clone(),
        }
    };
}

/// Sets the encryption response fields of an output from an [`sse::Echo`].
macro_rules! set_echo {
    ($out:ident, $e:expr) => {{
        let e: crate::sse::Echo = $e;
        $out.server_side_encryption = e.sse;
        $out.ssekms_key_id = e.kms_key_id;
        $out.bucket_key_enabled = e.bucket_key;
        $out.sse_customer_algorithm = e.customer_algorithm;
        $out.sse_customer_key_md5 = e.customer_key_md5;
    }};
}

mod acl;
pub mod bench;
mod bucket;
pub mod checksum;
mod copy;
pub mod cors;
mod delete;
mod error;
mod get;
mod ingest;
pub mod lifecycle;
mod list;
mod list_versions;
pub mod lock;
pub mod logging;
mod meta;
mod multipart;
mod multipart_list;
mod policy;
mod put;
mod read;
mod retention;
pub mod sse;
mod tagging;
mod versioning;
pub mod website;

pub use copy::copy_range;
pub use get::satisfiable;

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use strongroom_iam::{Identities, Principal};
use strongroom_store::{BucketRecord, Store};

/// Largest object a single PUT (or CopyObject) may carry: 5 GiB.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Settings that shape S3 answers.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// Region this server answers for (GetBucketLocation, LocationConstraint).
    pub region: String,
}

/// The S3 implementation.
#[derive(Clone)]
pub struct Strongroom {
    pub(crate) store: Store,
    pub(crate) identities: Identities,
    pub(crate) settings: S3Settings,
    pub(crate) crypt: sse::Encryption,
    /// The spool server access logs are delivered from.
    pub(crate) access_log: Option<std::sync::Arc<logging::journal::Journal>>,
}

impl Strongroom {
    pub fn new(store: Store, identities: Identities, settings: S3Settings, crypt: sse::Encryption) -> Strongroom {
        Strongroom {
            store,
            identities,
            settings,
            crypt,
            access_log: None,
        }
    }

    /// Delivers server access logs from `journal`.
    pub fn with_access_log(mut self, journal: std::sync::Arc<logging::journal::Journal>) -> Strongroom {
        self.access_log = Some(journal);
        self
    }

    /// Owner (canonical id, display name) of an account id.
    pub(crate) fn owner_of(&self, account_id: &str) -> Owner {
        match self.identities.account(account_id) {
            Some(a) => Owner {
                display_name: Some(a.name),
                id: Some(a.canonical_id),
            },
            None => Owner {
                display_name: None,
                id: Some(account_id.to_owned()),
            },
        }
    }
}

/// The caller, as proven by the access layer's decision. Absent means no
/// decision was taken for this request: deny.
pub(crate) fn principal<T>(req: &S3Request<T>) -> S3Result<Principal> {
    decided(req).map(|a| a.principal().clone())
}

/// A read of a key or version that does not exist answers 404 only to a
/// caller who may list the bucket with that key as prefix; anyone else
/// learns nothing (403), as AWS.
pub(crate) fn hide_absence(ext: &http::Extensions, key: &str, e: s3s::S3Error) -> s3s::S3Error {
    let absent = matches!(e.code(), s3s::S3ErrorCode::NoSuchKey | s3s::S3ErrorCode::NoSuchVersion);
    if !absent {
        return e;
    }
    let may_list = ext
        .get::<strongroom_access::Authorized>()
        .is_some_and(|a| a.grant().may_list(key));
    if may_list {
        e
    } else {
        s3_error!(AccessDenied, "Access Denied")
    }
}

/// The proof of the request's decision; none means no decision: deny.
fn decided<T>(req: &S3Request<T>) -> S3Result<&strongroom_access::Authorized> {
    req.extensions
        .get::<strongroom_access::Authorized>()
        .ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))
}

/// The bucket record the request was decided on: the one snapshot the
/// operation works on, never a second read that could find another bucket
/// of that name. A decision without one names no bucket (NoSuchBucket).
pub(crate) fn decided_bucket<T>(req: &S3Request<T>) -> S3Result<BucketRecord> {
    decided(req)?.bucket().cloned().ok_or_else(error::no_such_bucket)
}

/// The copy source's bucket record the decision read.
pub(crate) fn decided_source<T>(req: &S3Request<T>) -> S3Result<BucketRecord> {
    decided(req)?.source_bucket().cloned().ok_or_else(error::no_such_bucket)
}

/// The id of the bucket record the request was decided on: every commit
/// compares it with the record it finds ([`error::decided_in`]), so a
/// bucket deleted and re-created in between fails the request.
pub(crate) fn decided_bucket_id<T>(req: &S3Request<T>) -> S3Result<String> {
    decided(req)?
        .bucket()
        .map(|b| b.id.clone())
        .ok_or_else(error::no_such_bucket)
}

/// The connection facts the front door attached to a request.
pub(crate) fn conn<T>(req: &S3Request<T>) -> Option<strongroom_iam::ConnInfo> {
    req.extensions.get::<strongroom_iam::ConnInfo>().cloned()
}

/// True when the request came over TLS (or a trusted TLS proxy).
pub(crate) fn secure<T>(req: &S3Request<T>) -> bool {
    conn(req).is_some_and(|c| c.secure)
}

/// True for a SigV2-signed request (header or query).
pub(crate) fn is_sigv2<T>(req: &S3Request<T>) -> bool {
    req.extensions
        .get::<strongroom_access::Authorized>()
        .is_some_and(|a| a.facts().mechanism.is_sigv2())
}

/// The key-service caller of a request.
pub(crate) fn kms_caller<T>(req: &S3Request<T>, who: &Principal, region: &str) -> strongroom_kms::Caller {
    let mut c = sse::caller(who, conn(req).as_ref(), region);
    if !who.is_root() {
        // a user's (or role's) own policies must allow the key use; no
        // grant means no decision was taken: deny
        let gate = req
            .extensions
            .get::<strongroom_access::Authorized>()
            .map(|a| a.grant().clone());
        c.identity = Some(strongroom_kms::IdentityCheck(std::sync::Arc::new(
            move |action: &str, key: &str, keys: &strongroom_iam::policy::Context| match gate.as_ref() {
                Some(g) => g.identity_decision(action, key, keys),
                None => strongroom_kms::Decision::ImplicitDeny,
            },
        )));
    }
    c
}

pub(crate) fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn timestamp(ms: i64) -> Timestamp {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(t)
}

/// Whole seconds (HTTP dates carry no fraction).
pub(crate) fn timestamp_secs(ms: i64) -> Timestamp {
    timestamp(ms - ms.rem_euclid(1000))
}

macro_rules! delegate {
    ($($op:ident => $module:ident :: $func:ident ($in:ident, $out:ident);)*) => {
        #[async_trait::async_trait]
        impl S3 for Strongroom {
            $(
                async fn $op(&self, req: S3Request<$in>) -> S3Result<S3Response<$out>> {
                    // no decision, no operation (the proof is taken again
                    // where the handler needs the caller)
                    principal(&req)?;
                    $module::$func(self, req).await
                }
            )*
        }
    };
}

delegate! {
    list_buckets => bucket::list_buckets(ListBucketsInput, ListBucketsOutput);
    create_bucket => bucket::create_bucket(CreateBucketInput, CreateBucketOutput);
    head_bucket => bucket::head_bucket(HeadBucketInput, HeadBucketOutput);
    delete_bucket => bucket::delete_bucket(DeleteBucketInput, DeleteBucketOutput);
    get_bucket_location => bucket::get_bucket_location(GetBucketLocationInput, GetBucketLocationOutput);
    get_bucket_versioning => bucket::get_bucket_versioning(GetBucketVersioningInput, GetBucketVersioningOutput);
    put_bucket_versioning => bucket::put_bucket_versioning(PutBucketVersioningInput, PutBucketVersioningOutput);
    put_object_lock_configuration => lock::put_object_lock_configuration(PutObjectLockConfigurationInput, PutObjectLockConfigurationOutput);
    get_object_lock_configuration => lock::get_object_lock_configuration(GetObjectLockConfigurationInput, GetObjectLockConfigurationOutput);
    put_object_retention => lock::put_object_retention(PutObjectRetentionInput, PutObjectRetentionOutput);
    get_object_retention => lock::get_object_retention(GetObjectRetentionInput, GetObjectRetentionOutput);
    put_object_legal_hold => lock::put_object_legal_hold(PutObjectLegalHoldInput, PutObjectLegalHoldOutput);
    get_object_legal_hold => lock::get_object_legal_hold(GetObjectLegalHoldInput, GetObjectLegalHoldOutput);
    put_bucket_tagging => tagging::put_bucket_tagging(PutBucketTaggingInput, PutBucketTaggingOutput);
    get_bucket_tagging => tagging::get_bucket_tagging(GetBucketTaggingInput, GetBucketTaggingOutput);
    delete_bucket_tagging => tagging::delete_bucket_tagging(DeleteBucketTaggingInput, DeleteBucketTaggingOutput);
    get_bucket_acl => acl::get_bucket_acl(GetBucketAclInput, GetBucketAclOutput);
    put_bucket_acl => acl::put_bucket_acl(PutBucketAclInput, PutBucketAclOutput);
    get_object_acl => acl::get_object_acl(GetObjectAclInput, GetObjectAclOutput);
    put_object_acl => acl::put_object_acl(PutObjectAclInput, PutObjectAclOutput);
    put_object => put::put_object(PutObjectInput, PutObjectOutput);
    get_object => get::get_object(GetObjectInput, GetObjectOutput);
    head_object => get::head_object(HeadObjectInput, HeadObjectOutput);
    get_object_attributes => get::get_object_attributes(GetObjectAttributesInput, GetObjectAttributesOutput);
    delete_object => delete::delete_object(DeleteObjectInput, DeleteObjectOutput);
    delete_objects => delete::delete_objects(DeleteObjectsInput, DeleteObjectsOutput);
    copy_object => copy::copy_object(CopyObjectInput, CopyObjectOutput);
    list_objects => list::list_objects(ListObjectsInput, ListObjectsOutput);
    list_objects_v2 => list::list_objects_v2(ListObjectsV2Input, ListObjectsV2Output);
    list_object_versions => list_versions::list_object_versions(ListObjectVersionsInput, ListObjectVersionsOutput);
    create_multipart_upload => multipart::create(CreateMultipartUploadInput, CreateMultipartUploadOutput);
    upload_part => multipart::upload_part(UploadPartInput, UploadPartOutput);
    upload_part_copy => copy::upload_part_copy(UploadPartCopyInput, UploadPartCopyOutput);
    complete_multipart_upload => multipart::complete(CompleteMultipartUploadInput, CompleteMultipartUploadOutput);
    abort_multipart_upload => multipart::abort(AbortMultipartUploadInput, AbortMultipartUploadOutput);
    put_bucket_cors => cors::put_bucket_cors(PutBucketCorsInput, PutBucketCorsOutput);
    get_bucket_cors => cors::get_bucket_cors(GetBucketCorsInput, GetBucketCorsOutput);
    delete_bucket_cors => cors::delete_bucket_cors(DeleteBucketCorsInput, DeleteBucketCorsOutput);
    put_bucket_website => website::put_bucket_website(PutBucketWebsiteInput, PutBucketWebsiteOutput);
    get_bucket_website => website::get_bucket_website(GetBucketWebsiteInput, GetBucketWebsiteOutput);
    delete_bucket_website => website::delete_bucket_website(DeleteBucketWebsiteInput, DeleteBucketWebsiteOutput);
    put_bucket_logging => logging::put_bucket_logging(PutBucketLoggingInput, PutBucketLoggingOutput);
    put_bucket_lifecycle_configuration => lifecycle::put(PutBucketLifecycleConfigurationInput, PutBucketLifecycleConfigurationOutput);
    get_bucket_lifecycle_configuration => lifecycle::get(GetBucketLifecycleConfigurationInput, GetBucketLifecycleConfigurationOutput);
    delete_bucket_lifecycle => lifecycle::delete(DeleteBucketLifecycleInput, DeleteBucketLifecycleOutput);
    get_bucket_logging => logging::get_bucket_logging(GetBucketLoggingInput, GetBucketLoggingOutput);
    list_parts => multipart_list::list_parts(ListPartsInput, ListPartsOutput);
    list_multipart_uploads => multipart_list::list_uploads(ListMultipartUploadsInput, ListMultipartUploadsOutput);
    put_object_tagging => tagging::put_object_tagging(PutObjectTaggingInput, PutObjectTaggingOutput);
    get_object_tagging => tagging::get_object_tagging(GetObjectTaggingInput, GetObjectTaggingOutput);
    delete_object_tagging => tagging::delete_object_tagging(DeleteObjectTaggingInput, DeleteObjectTaggingOutput);
    put_bucket_policy => policy::put_bucket_policy(PutBucketPolicyInput, PutBucketPolicyOutput);
    get_bucket_policy => policy::get_bucket_policy(GetBucketPolicyInput, GetBucketPolicyOutput);
    delete_bucket_policy => policy::delete_bucket_policy(DeleteBucketPolicyInput, DeleteBucketPolicyOutput);
    get_bucket_policy_status => policy::get_bucket_policy_status(GetBucketPolicyStatusInput, GetBucketPolicyStatusOutput);
    put_public_access_block => policy::put_public_access_block(PutPublicAccessBlockInput, PutPublicAccessBlockOutput);
    get_public_access_block => policy::get_public_access_block(GetPublicAccessBlockInput, GetPublicAccessBlockOutput);
    delete_public_access_block => policy::delete_public_access_block(DeletePublicAccessBlockInput, DeletePublicAccessBlockOutput);
    get_bucket_ownership_controls => policy::get_bucket_ownership_controls(GetBucketOwnershipControlsInput, GetBucketOwnershipControlsOutput);
    get_bucket_request_payment => policy::get_bucket_request_payment(GetBucketRequestPaymentInput, GetBucketRequestPaymentOutput);
    put_bucket_ownership_controls => policy::put_bucket_ownership_controls(PutBucketOwnershipControlsInput, PutBucketOwnershipControlsOutput);
    put_bucket_encryption => sse::put_bucket_encryption(PutBucketEncryptionInput, PutBucketEncryptionOutput);
    get_bucket_encryption => sse::get_bucket_encryption(GetBucketEncryptionInput, GetBucketEncryptionOutput);
    delete_bucket_encryption => sse::delete_bucket_encryption(DeleteBucketEncryptionInput, DeleteBucketEncryptionOutput);
}
