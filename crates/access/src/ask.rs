//! What an S3 request asks for, read from s3s's typed per-operation input
//! and from nothing else: the operation, the bucket and key s3s will act
//! on, the version, the copy source as s3s parsed it, the facts that change
//! which actions are needed, and the condition keys policies may test.
//!
//! Because every fact comes from the value the handler will receive, the
//! request that is authorized is the request that runs.

use s3s::dto::*;
use s3s::{S3Result, s3_error};

use crate::table::{Needs, Op};

/// The copy source of CopyObject / UploadPartCopy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

/// One request, as the decision sees it.
#[derive(Clone, Debug)]
pub struct Ask {
    pub op: Op,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub version_id: Option<String>,
    pub source: Option<Source>,
    pub needs: Needs,
    /// Condition keys carried by the input (`s3:x-amz-acl`, `s3:prefix`...).
    pub keys: Vec<(&'static str, String)>,
    /// Tags the request sets (`x-amz-tagging`, or PutObjectTagging's body).
    pub request_tags: Option<Vec<(String, String)>>,
    /// The request sets a public canned ACL or a grant to a global group.
    pub public_acl: bool,
    /// `x-amz-expected-bucket-owner`.
    pub expected_owner: Option<String>,
    /// `x-amz-source-expected-bucket-owner`.
    pub source_expected_owner: Option<String>,
}

impl Ask {
    fn new(op: Op) -> Ask {
        Ask {
            op,
            bucket: None,
            key: None,
            version_id: None,
            source: None,
            needs: Needs::default(),
            keys: Vec::new(),
            request_tags: None,
            public_acl: false,
            expected_owner: None,
            source_expected_owner: None,
        }
    }

    fn on_bucket(op: Op, bucket: &str, expected: Option<&String>) -> Ask {
        let mut a = Ask::new(op);
        a.bucket = Some(bucket.to_owned());
        a.expected_owner = expected.cloned();
        a
    }

    fn on_object(op: Op, bucket: &str, key: &str, expected: Option<&String>) -> Ask {
        let mut a = Ask::on_bucket(op, bucket, expected);
        a.key = Some(key.to_owned());
        a
    }

    fn with_version(mut self, v: Option<&String>) -> Ask {
        if let Some(v) = v {
            self.needs.version_id = true;
            self.keys.push(("s3:VersionId", v.clone()));
            self.version_id = Some(v.clone());
        }
        self
    }

    fn key(&mut self, name: &'static str, v: Option<&str>) {
        if let Some(v) = v {
            self.keys.push((name, v.to_owned()));
        }
    }

    /// A bucket-level request a custom route serves (its own reading of
    /// the path, which must be unambiguous).
    pub fn for_bucket(op: Op, bucket: &str, expected_owner: Option<&str>) -> Ask {
        let mut a = Ask::new(op);
        a.bucket = Some(bucket.to_owned());
        a.expected_owner = expected_owner.map(str::to_owned);
        a
    }

    /// The name of an unsupported operation with its bucket, if any.
    pub fn unsupported(name: &'static str, bucket: Option<&str>) -> Ask {
        let mut a = Ask::new(Op::Unsupported(name));
        a.bucket = bucket.map(str::to_owned);
        a
    }
}

/// A typed input's [`Ask`].
pub trait Describe {
    fn ask(&self) -> S3Result<Ask>;
}

fn iso(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::DateTime, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// `k1=v1&k2=v2`, URL-encoded, as `x-amz-tagging` carries a tag set.
fn tag_pairs(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn public_canned(acl: Option<&str>) -> bool {
    acl.is_some_and(|a| matches!(a, "public-read" | "public-read-write" | "authenticated-read"))
}

fn public_grant<'a>(grants: impl IntoIterator<Item = Option<&'a String>>) -> bool {
    grants
        .into_iter()
        .flatten()
        .any(|g| g.contains("acs.amazonaws.com/groups/global/"))
}

/// The encryption, ACL, lock and tag facts of an object write (PutObject,
/// PostObject, CopyObject, CreateMultipartUpload): the DTOs share names.
macro_rules! write_facts {
    ($a:ident, $i:ident) => {{
        $a.key(
            "s3:x-amz-server-side-encryption",
            $i.server_side_encryption.as_ref().map(|v| v.as_str()),
        );
        $a.key(
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
            $i.ssekms_key_id.as_deref(),
        );
        $a.key(
            "s3:x-amz-server-side-encryption-customer-algorithm",
            $i.sse_customer_algorithm.as_deref(),
        );
        $a.key("s3:x-amz-acl", $i.acl.as_ref().map(|v| v.as_str()));
        $a.key("s3:x-amz-storage-class", $i.storage_class.as_ref().map(|v| v.as_str()));
        $a.key("s3:object-lock-mode", $i.object_lock_mode.as_ref().map(|v| v.as_str()));
        $a.key(
            "s3:object-lock-legal-hold",
            $i.object_lock_legal_hold_status.as_ref().map(|v| v.as_str()),
        );
        if let Some(until) = $i.object_lock_retain_until_date.as_ref() {
            $a.key("s3:object-lock-retain-until-date", iso(until).as_deref());
            $a.keys
                .push(("s3:object-lock-remaining-retention-days", remaining_days(until)));
        }
        $a.needs.acl = $i.acl.is_some()
            || $i.grant_full_control.is_some()
            || $i.grant_read.is_some()
            || $i.grant_read_acp.is_some()
            || $i.grant_write_acp.is_some();
        $a.public_acl = public_canned($i.acl.as_ref().map(|v| v.as_str()))
            || public_grant([
                $i.grant_full_control.as_ref(),
                $i.grant_read.as_ref(),
                $i.grant_read_acp.as_ref(),
                $i.grant_write_acp.as_ref(),
            ]);
        $a.needs.retention = $i.object_lock_mode.is_some() || $i.object_lock_retain_until_date.is_some();
        $a.needs.legal_hold = $i.object_lock_legal_hold_status.is_some();
        if let Some(t) = $i.tagging.as_deref() {
            $a.needs.tagging = true;
            $a.request_tags = Some(tag_pairs(t));
        }
    }};
}

/// Whole days from now to `until`, rounded up (never negative).
fn remaining_days(until: &Timestamp) -> String {
    let t: time::OffsetDateTime = until.clone().into();
    let secs = (t - time::OffsetDateTime::now_utc()).whole_seconds();
    let days = (secs + 86_399).div_euclid(86_400).max(0);
    days.to_string()
}

fn copy_source(cs: &CopySource) -> S3Result<Source> {
    match cs {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok(Source {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: version_id.as_ref().map(ToString::to_string),
        }),
        CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => Err(s3_error!(
            NotImplemented,
            "Copying from an access point or an outpost is not supported yet"
        )),
    }
}

fn with_source(a: &mut Ask, src: Source, expected: Option<&String>) {
    let mut shown = format!("{}/{}", src.bucket, src.key);
    if let Some(v) = &src.version_id {
        shown.push_str("?versionId=");
        shown.push_str(v);
    }
    a.keys.push(("s3:x-amz-copy-source", shown));
    a.needs.source_version = src.version_id.is_some();
    a.source = Some(src);
    a.source_expected_owner = expected.cloned();
}

/// A listing's bounds as condition keys.
fn listing(a: &mut Ask, prefix: Option<&String>, delimiter: Option<&String>, max_keys: Option<i32>) {
    a.key("s3:prefix", prefix.map(String::as_str));
    a.key("s3:delimiter", delimiter.map(String::as_str));
    if let Some(m) = max_keys {
        a.keys.push(("s3:max-keys", m.to_string()));
    }
}

macro_rules! bucket_level {
    ($($input:ident => $op:ident;)*) => {$(
        impl Describe for $input {
            fn ask(&self) -> S3Result<Ask> {
                Ok(Ask::on_bucket(Op::$op, &self.bucket, self.expected_bucket_owner.as_ref()))
            }
        }
    )*};
}

macro_rules! object_level {
    ($($input:ident => $op:ident;)*) => {$(
        impl Describe for $input {
            fn ask(&self) -> S3Result<Ask> {
                Ok(Ask::on_object(Op::$op, &self.bucket, &self.key, self.expected_bucket_owner.as_ref()))
            }
        }
    )*};
}

macro_rules! object_versioned {
    ($($input:ident => $op:ident;)*) => {$(
        impl Describe for $input {
            fn ask(&self) -> S3Result<Ask> {
                Ok(Ask::on_object(Op::$op, &self.bucket, &self.key, self.expected_bucket_owner.as_ref())
                    .with_version(self.version_id.as_ref()))
            }
        }
    )*};
}

bucket_level! {
    DeleteBucketInput => DeleteBucket;
    HeadBucketInput => HeadBucket;
    GetBucketLocationInput => GetBucketLocation;
    GetBucketVersioningInput => GetBucketVersioning;
    PutBucketVersioningInput => PutBucketVersioning;
    GetObjectLockConfigurationInput => GetObjectLockConfiguration;
    PutObjectLockConfigurationInput => PutObjectLockConfiguration;
    GetBucketTaggingInput => GetBucketTagging;
    PutBucketTaggingInput => PutBucketTagging;
    DeleteBucketTaggingInput => DeleteBucketTagging;
    GetBucketAclInput => GetBucketAcl;
    GetBucketEncryptionInput => GetBucketEncryption;
    PutBucketEncryptionInput => PutBucketEncryption;
    DeleteBucketEncryptionInput => DeleteBucketEncryption;
    GetBucketPolicyInput => GetBucketPolicy;
    PutBucketPolicyInput => PutBucketPolicy;
    DeleteBucketPolicyInput => DeleteBucketPolicy;
    GetBucketPolicyStatusInput => GetBucketPolicyStatus;
    GetPublicAccessBlockInput => GetPublicAccessBlock;
    PutPublicAccessBlockInput => PutPublicAccessBlock;
    DeletePublicAccessBlockInput => DeletePublicAccessBlock;
    GetBucketOwnershipControlsInput => GetBucketOwnershipControls;
    GetBucketRequestPaymentInput => GetBucketRequestPayment;
    GetBucketCorsInput => GetBucketCors;
    PutBucketCorsInput => PutBucketCors;
    DeleteBucketCorsInput => DeleteBucketCors;
    GetBucketWebsiteInput => GetBucketWebsite;
    PutBucketWebsiteInput => PutBucketWebsite;
    DeleteBucketWebsiteInput => DeleteBucketWebsite;
    GetBucketLoggingInput => GetBucketLogging;
    GetBucketLifecycleConfigurationInput => GetBucketLifecycleConfiguration;
    PutBucketLifecycleConfigurationInput => PutBucketLifecycleConfiguration;
    DeleteBucketLifecycleInput => DeleteBucketLifecycle;
    PutBucketLoggingInput => PutBucketLogging;
    PutBucketOwnershipControlsInput => PutBucketOwnershipControls;
    DeleteBucketOwnershipControlsInput => DeleteBucketOwnershipControls;
}

object_level! {
    UploadPartInput => UploadPart;
    CompleteMultipartUploadInput => CompleteMultipartUpload;
    AbortMultipartUploadInput => AbortMultipartUpload;
    ListPartsInput => ListParts;
}

object_versioned! {
    GetObjectAttributesInput => GetObjectAttributes;
    GetObjectTaggingInput => GetObjectTagging;
    DeleteObjectTaggingInput => DeleteObjectTagging;
    GetObjectAclInput => GetObjectAcl;
    GetObjectRetentionInput => GetObjectRetention;
    GetObjectLegalHoldInput => GetObjectLegalHold;
}

impl Describe for ListBucketsInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::new(Op::ListBuckets);
        a.key("s3:prefix", self.prefix.as_deref());
        Ok(a)
    }
}

impl Describe for CreateBucketInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_bucket(Op::CreateBucket, &self.bucket, None);
        a.needs.object_lock_enabled = self.object_lock_enabled_for_bucket == Some(true);
        a.needs.ownership = self.object_ownership.is_some();
        a.key("s3:x-amz-acl", self.acl.as_ref().map(|v| v.as_str()));
        a.key(
            "s3:locationconstraint",
            self.create_bucket_configuration
                .as_ref()
                .and_then(|c| c.location_constraint.as_ref())
                .map(|l| l.as_str()),
        );
        a.key(
            "s3:x-amz-object-ownership",
            self.object_ownership.as_ref().map(|v| v.as_str()),
        );
        a.public_acl = public_canned(self.acl.as_ref().map(|v| v.as_str()))
            || public_grant([
                self.grant_full_control.as_ref(),
                self.grant_read.as_ref(),
                self.grant_read_acp.as_ref(),
                self.grant_write.as_ref(),
                self.grant_write_acp.as_ref(),
            ]);
        Ok(a)
    }
}

impl Describe for ListObjectsInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_bucket(Op::ListObjects, &self.bucket, self.expected_bucket_owner.as_ref());
        listing(&mut a, self.prefix.as_ref(), self.delimiter.as_ref(), self.max_keys);
        Ok(a)
    }
}

impl Describe for ListObjectsV2Input {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_bucket(Op::ListObjectsV2, &self.bucket, self.expected_bucket_owner.as_ref());
        listing(&mut a, self.prefix.as_ref(), self.delimiter.as_ref(), self.max_keys);
        Ok(a)
    }
}

impl Describe for ListObjectVersionsInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_bucket(
            Op::ListObjectVersions,
            &self.bucket,
            self.expected_bucket_owner.as_ref(),
        );
        listing(&mut a, self.prefix.as_ref(), self.delimiter.as_ref(), self.max_keys);
        Ok(a)
    }
}

impl Describe for ListMultipartUploadsInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_bucket(
            Op::ListMultipartUploads,
            &self.bucket,
            self.expected_bucket_owner.as_ref(),
        );
        listing(&mut a, self.prefix.as_ref(), self.delimiter.as_ref(), None);
        Ok(a)
    }
}

impl Describe for GetObjectInput {
    fn ask(&self) -> S3Result<Ask> {
        Ok(Ask::on_object(
            Op::GetObject,
            &self.bucket,
            &self.key,
            self.expected_bucket_owner.as_ref(),
        )
        .with_version(self.version_id.as_ref()))
    }
}

impl Describe for HeadObjectInput {
    fn ask(&self) -> S3Result<Ask> {
        Ok(Ask::on_object(
            Op::HeadObject,
            &self.bucket,
            &self.key,
            self.expected_bucket_owner.as_ref(),
        )
        .with_version(self.version_id.as_ref()))
    }
}

impl Describe for PutObjectInput {
    fn ask(&self) -> S3Result<Ask> {
        let i = self;
        let mut a = Ask::on_object(Op::PutObject, &i.bucket, &i.key, i.expected_bucket_owner.as_ref());
        write_facts!(a, i);
        Ok(a)
    }
}

impl Describe for PostObjectInput {
    fn ask(&self) -> S3Result<Ask> {
        let i = self;
        let mut a = Ask::on_object(Op::PostObject, &i.bucket, &i.key, i.expected_bucket_owner.as_ref());
        write_facts!(a, i);
        Ok(a)
    }
}

impl Describe for CreateMultipartUploadInput {
    fn ask(&self) -> S3Result<Ask> {
        let i = self;
        let mut a = Ask::on_object(
            Op::CreateMultipartUpload,
            &i.bucket,
            &i.key,
            i.expected_bucket_owner.as_ref(),
        );
        write_facts!(a, i);
        Ok(a)
    }
}

impl Describe for CopyObjectInput {
    fn ask(&self) -> S3Result<Ask> {
        let i = self;
        let mut a = Ask::on_object(Op::CopyObject, &i.bucket, &i.key, i.expected_bucket_owner.as_ref());
        write_facts!(a, i);
        a.key(
            "s3:x-amz-metadata-directive",
            i.metadata_directive.as_ref().map(|v| v.as_str()),
        );
        with_source(
            &mut a,
            copy_source(&i.copy_source)?,
            i.expected_source_bucket_owner.as_ref(),
        );
        Ok(a)
    }
}

impl Describe for UploadPartCopyInput {
    fn ask(&self) -> S3Result<Ask> {
        let i = self;
        let mut a = Ask::on_object(Op::UploadPartCopy, &i.bucket, &i.key, i.expected_bucket_owner.as_ref());
        with_source(
            &mut a,
            copy_source(&i.copy_source)?,
            i.expected_source_bucket_owner.as_ref(),
        );
        Ok(a)
    }
}

impl Describe for DeleteObjectInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_object(
            Op::DeleteObject,
            &self.bucket,
            &self.key,
            self.expected_bucket_owner.as_ref(),
        )
        .with_version(self.version_id.as_ref());
        a.needs.bypass_governance = self.bypass_governance_retention == Some(true);
        Ok(a)
    }
}

impl Describe for DeleteObjectsInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_bucket(Op::DeleteObjects, &self.bucket, self.expected_bucket_owner.as_ref());
        a.needs.bypass_governance = self.bypass_governance_retention == Some(true);
        Ok(a)
    }
}

impl Describe for PutObjectTaggingInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_object(
            Op::PutObjectTagging,
            &self.bucket,
            &self.key,
            self.expected_bucket_owner.as_ref(),
        )
        .with_version(self.version_id.as_ref());
        let tags = self
            .tagging
            .tag_set
            .iter()
            .map(|t| (t.key.clone().unwrap_or_default(), t.value.clone().unwrap_or_default()))
            .collect();
        a.request_tags = Some(tags);
        Ok(a)
    }
}

impl Describe for PutObjectRetentionInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_object(
            Op::PutObjectRetention,
            &self.bucket,
            &self.key,
            self.expected_bucket_owner.as_ref(),
        )
        .with_version(self.version_id.as_ref());
        a.needs.bypass_governance = self.bypass_governance_retention == Some(true);
        if let Some(r) = &self.retention {
            a.key("s3:object-lock-mode", r.mode.as_ref().map(|m| m.as_str()));
            if let Some(until) = &r.retain_until_date {
                a.key("s3:object-lock-retain-until-date", iso(until).as_deref());
                a.keys
                    .push(("s3:object-lock-remaining-retention-days", remaining_days(until)));
            }
        }
        Ok(a)
    }
}

impl Describe for PutObjectLegalHoldInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_object(
            Op::PutObjectLegalHold,
            &self.bucket,
            &self.key,
            self.expected_bucket_owner.as_ref(),
        )
        .with_version(self.version_id.as_ref());
        a.key(
            "s3:object-lock-legal-hold",
            self.legal_hold
                .as_ref()
                .and_then(|h| h.status.as_ref())
                .map(|s| s.as_str()),
        );
        Ok(a)
    }
}

impl Describe for PutObjectAclInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_object(
            Op::PutObjectAcl,
            &self.bucket,
            &self.key,
            self.expected_bucket_owner.as_ref(),
        )
        .with_version(self.version_id.as_ref());
        a.key("s3:x-amz-acl", self.acl.as_ref().map(|v| v.as_str()));
        a.public_acl = public_canned(self.acl.as_ref().map(|v| v.as_str()))
            || public_grant([
                self.grant_full_control.as_ref(),
                self.grant_read.as_ref(),
                self.grant_read_acp.as_ref(),
                self.grant_write.as_ref(),
                self.grant_write_acp.as_ref(),
            ]);
        Ok(a)
    }
}

impl Describe for PutBucketAclInput {
    fn ask(&self) -> S3Result<Ask> {
        let mut a = Ask::on_bucket(Op::PutBucketAcl, &self.bucket, self.expected_bucket_owner.as_ref());
        a.key("s3:x-amz-acl", self.acl.as_ref().map(|v| v.as_str()));
        a.public_acl = public_canned(self.acl.as_ref().map(|v| v.as_str()))
            || public_grant([
                self.grant_full_control.as_ref(),
                self.grant_read.as_ref(),
                self.grant_read_acp.as_ref(),
                self.grant_write.as_ref(),
                self.grant_write_acp.as_ref(),
            ]);
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_come_from_the_parsed_header() {
        let cs = CopySource::parse("victim/se%3Fcret?versionId=v1").ok();
        let src = cs.as_ref().map(copy_source).and_then(Result::ok);
        assert_eq!(
            src,
            Some(Source {
                bucket: "victim".into(),
                key: "se?cret".into(),
                version_id: Some("v1".into()),
            })
        );
    }

    #[test]
    fn tag_sets_are_form_decoded() {
        assert_eq!(
            tag_pairs("a=1&b%20c=d%2Be&e+f=g"),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b c".to_owned(), "d+e".to_owned()),
                ("e f".to_owned(), "g".to_owned()),
            ]
        );
    }

    #[test]
    fn public_acls_are_recognised() {
        assert!(public_canned(Some("public-read")));
        assert!(!public_canned(Some("private")));
        let g = "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"".to_owned();
        assert!(public_grant([None, Some(&g)]));
    }
}
