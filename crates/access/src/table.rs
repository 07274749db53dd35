//! Every S3 operation's IAM actions, in one exhaustive table over [`Op`].
//! An operation Strongroom does not serve is [`Op::Unsupported`]: refused
//! to everyone but the bucket owner's root (fail closed), who gets the
//! operation's own answer (NotImplemented).

/// The S3 operations Strongroom serves, and the rest by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    ListMultipartUploads,
    GetBucketLocation,
    GetBucketVersioning,
    PutBucketVersioning,
    GetObjectLockConfiguration,
    PutObjectLockConfiguration,
    GetBucketTagging,
    PutBucketTagging,
    DeleteBucketTagging,
    GetBucketAcl,
    PutBucketAcl,
    GetBucketEncryption,
    PutBucketEncryption,
    DeleteBucketEncryption,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketPolicyStatus,
    GetPublicAccessBlock,
    PutPublicAccessBlock,
    DeletePublicAccessBlock,
    GetBucketOwnershipControls,
    GetBucketRequestPayment,
    PutBucketOwnershipControls,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    GetBucketLifecycleConfiguration,
    PutBucketLifecycleConfiguration,
    DeleteBucketLifecycle,
    GetBucketWebsite,
    PutBucketWebsite,
    DeleteBucketWebsite,
    GetBucketLogging,
    PutBucketLogging,
    DeleteBucketOwnershipControls,
    GetObject,
    HeadObject,
    GetObjectAttributes,
    PutObject,
    PostObject,
    CopyObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    DeleteObject,
    DeleteObjects,
    GetObjectTagging,
    PutObjectTagging,
    DeleteObjectTagging,
    GetObjectAcl,
    PutObjectAcl,
    GetObjectRetention,
    PutObjectRetention,
    GetObjectLegalHold,
    PutObjectLegalHold,
    /// An operation s3s parses that Strongroom does not serve.
    Unsupported(&'static str),
}

impl Op {
    /// The operation's name as AWS spells it.
    pub fn name(self) -> &'static str {
        use Op::*;
        match self {
            ListBuckets => "ListBuckets",
            CreateBucket => "CreateBucket",
            DeleteBucket => "DeleteBucket",
            HeadBucket => "HeadBucket",
            ListObjects => "ListObjects",
            ListObjectsV2 => "ListObjectsV2",
            ListObjectVersions => "ListObjectVersions",
            ListMultipartUploads => "ListMultipartUploads",
            GetBucketLocation => "GetBucketLocation",
            GetBucketVersioning => "GetBucketVersioning",
            PutBucketVersioning => "PutBucketVersioning",
            GetObjectLockConfiguration => "GetObjectLockConfiguration",
            PutObjectLockConfiguration => "PutObjectLockConfiguration",
            GetBucketTagging => "GetBucketTagging",
            PutBucketTagging => "PutBucketTagging",
            DeleteBucketTagging => "DeleteBucketTagging",
            GetBucketAcl => "GetBucketAcl",
            PutBucketAcl => "PutBucketAcl",
            GetBucketEncryption => "GetBucketEncryption",
            PutBucketEncryption => "PutBucketEncryption",
            DeleteBucketEncryption => "DeleteBucketEncryption",
            GetBucketPolicy => "GetBucketPolicy",
            PutBucketPolicy => "PutBucketPolicy",
            DeleteBucketPolicy => "DeleteBucketPolicy",
            GetBucketPolicyStatus => "GetBucketPolicyStatus",
            GetPublicAccessBlock => "GetPublicAccessBlock",
            PutPublicAccessBlock => "PutPublicAccessBlock",
            DeletePublicAccessBlock => "DeletePublicAccessBlock",
            GetBucketOwnershipControls => "GetBucketOwnershipControls",
            GetBucketRequestPayment => "GetBucketRequestPayment",
            GetBucketCors => "GetBucketCors",
            PutBucketCors => "PutBucketCors",
            DeleteBucketCors => "DeleteBucketCors",
            GetBucketLifecycleConfiguration => "GetBucketLifecycleConfiguration",
            PutBucketLifecycleConfiguration => "PutBucketLifecycleConfiguration",
            DeleteBucketLifecycle => "DeleteBucketLifecycle",
            GetBucketWebsite => "GetBucketWebsite",
            PutBucketWebsite => "PutBucketWebsite",
            DeleteBucketWebsite => "DeleteBucketWebsite",
            GetBucketLogging => "GetBucketLogging",
            PutBucketLogging => "PutBucketLogging",
            PutBucketOwnershipControls => "PutBucketOwnershipControls",
            DeleteBucketOwnershipControls => "DeleteBucketOwnershipControls",
            GetObject => "GetObject",
            HeadObject => "HeadObject",
            GetObjectAttributes => "GetObjectAttributes",
            PutObject => "PutObject",
            PostObject => "PostObject",
            CopyObject => "CopyObject",
            CreateMultipartUpload => "CreateMultipartUpload",
            UploadPart => "UploadPart",
            UploadPartCopy => "UploadPartCopy",
            CompleteMultipartUpload => "CompleteMultipartUpload",
            AbortMultipartUpload => "AbortMultipartUpload",
            ListParts => "ListParts",
            DeleteObject => "DeleteObject",
            DeleteObjects => "DeleteObjects",
            GetObjectTagging => "GetObjectTagging",
            PutObjectTagging => "PutObjectTagging",
            DeleteObjectTagging => "DeleteObjectTagging",
            GetObjectAcl => "GetObjectAcl",
            PutObjectAcl => "PutObjectAcl",
            GetObjectRetention => "GetObjectRetention",
            PutObjectRetention => "PutObjectRetention",
            GetObjectLegalHold => "GetObjectLegalHold",
            PutObjectLegalHold => "PutObjectLegalHold",
            Unsupported(name) => name,
        }
    }
}

/// Which resource an action is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// `arn:aws:s3:::bucket`
    Bucket,
    /// `arn:aws:s3:::bucket/key`
    Object,
    /// The copy source object.
    Source,
    /// `*` (ListAllMyBuckets)
    All,
}

/// Facts of a request that change which actions it needs, all read from
/// s3s's typed input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub version_id: bool,
    pub source_version: bool,
    pub tagging: bool,
    pub acl: bool,
    pub retention: bool,
    pub legal_hold: bool,
    pub bypass_governance: bool,
    pub object_lock_enabled: bool,
    pub ownership: bool,
}

/// The actions an operation needs; None for unsupported operations.
pub fn actions(op: Op, f: &Needs) -> Option<Vec<(&'static str, On)>> {
    use On::*;
    use Op::*;
    let v = |plain: &'static str, versioned: &'static str| if f.version_id { versioned } else { plain };
    let mut out: Vec<(&'static str, On)> = match op {
        ListBuckets => vec![("s3:ListAllMyBuckets", All)],
        CreateBucket => {
            let mut n = vec![("s3:CreateBucket", Bucket)];
            if f.object_lock_enabled {
                n.push(("s3:PutBucketObjectLockConfiguration", Bucket));
                n.push(("s3:PutBucketVersioning", Bucket));
            }
            if f.ownership {
                n.push(("s3:PutBucketOwnershipControls", Bucket));
            }
            n
        }
        DeleteBucket => vec![("s3:DeleteBucket", Bucket)],
        HeadBucket | ListObjects | ListObjectsV2 => vec![("s3:ListBucket", Bucket)],
        ListObjectVersions => vec![("s3:ListBucketVersions", Bucket)],
        ListMultipartUploads => vec![("s3:ListBucketMultipartUploads", Bucket)],
        GetBucketLocation => vec![("s3:GetBucketLocation", Bucket)],
        GetBucketVersioning => vec![("s3:GetBucketVersioning", Bucket)],
        PutBucketVersioning => vec![("s3:PutBucketVersioning", Bucket)],
        GetObjectLockConfiguration => vec![("s3:GetBucketObjectLockConfiguration", Bucket)],
        PutObjectLockConfiguration => vec![("s3:PutBucketObjectLockConfiguration", Bucket)],
        GetBucketTagging => vec![("s3:GetBucketTagging", Bucket)],
        PutBucketTagging | DeleteBucketTagging => vec![("s3:PutBucketTagging", Bucket)],
        GetBucketAcl => vec![("s3:GetBucketAcl", Bucket)],
        PutBucketAcl => vec![("s3:PutBucketAcl", Bucket)],
        GetBucketEncryption => vec![("s3:GetEncryptionConfiguration", Bucket)],
        PutBucketEncryption | DeleteBucketEncryption => vec![("s3:PutEncryptionConfiguration", Bucket)],
        GetBucketPolicy => vec![("s3:GetBucketPolicy", Bucket)],
        PutBucketPolicy => vec![("s3:PutBucketPolicy", Bucket)],
        DeleteBucketPolicy => vec![("s3:DeleteBucketPolicy", Bucket)],
        GetBucketPolicyStatus => vec![("s3:GetBucketPolicyStatus", Bucket)],
        GetPublicAccessBlock => vec![("s3:GetBucketPublicAccessBlock", Bucket)],
        PutPublicAccessBlock | DeletePublicAccessBlock => vec![("s3:PutBucketPublicAccessBlock", Bucket)],
        GetBucketOwnershipControls => vec![("s3:GetBucketOwnershipControls", Bucket)],
        GetBucketRequestPayment => vec![("s3:GetBucketRequestPayment", Bucket)],
        GetBucketCors => vec![("s3:GetBucketCORS", Bucket)],
        PutBucketCors | DeleteBucketCors => vec![("s3:PutBucketCORS", Bucket)],
        // AWS: DeleteBucketLifecycle needs s3:PutLifecycleConfiguration
        GetBucketLifecycleConfiguration => vec![("s3:GetLifecycleConfiguration", Bucket)],
        PutBucketLifecycleConfiguration | DeleteBucketLifecycle => vec![("s3:PutLifecycleConfiguration", Bucket)],
        GetBucketWebsite => vec![("s3:GetBucketWebsite", Bucket)],
        PutBucketWebsite => vec![("s3:PutBucketWebsite", Bucket)],
        DeleteBucketWebsite => vec![("s3:DeleteBucketWebsite", Bucket)],
        GetBucketLogging => vec![("s3:GetBucketLogging", Bucket)],
        PutBucketLogging => vec![("s3:PutBucketLogging", Bucket)],
        PutBucketOwnershipControls | DeleteBucketOwnershipControls => {
            vec![("s3:PutBucketOwnershipControls", Bucket)]
        }
        GetObject | HeadObject => vec![(v("s3:GetObject", "s3:GetObjectVersion"), Object)],
        GetObjectAttributes => vec![
            (v("s3:GetObject", "s3:GetObjectVersion"), Object),
            (v("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"), Object),
        ],
        PutObject | PostObject | CreateMultipartUpload | UploadPart | CompleteMultipartUpload => {
            vec![("s3:PutObject", Object)]
        }
        AbortMultipartUpload => vec![("s3:AbortMultipartUpload", Object)],
        ListParts => vec![("s3:ListMultipartUploadParts", Object)],
        CopyObject | UploadPartCopy => vec![
            ("s3:PutObject", Object),
            (
                if f.source_version {
                    "s3:GetObjectVersion"
                } else {
                    "s3:GetObject"
                },
                Source,
            ),
        ],
        DeleteObject => vec![(v("s3:DeleteObject", "s3:DeleteObjectVersion"), Object)],
        // decided per key by the operation (s3:DeleteObject[Version]),
        // through the grant the decision leaves in the request
        DeleteObjects => vec![],
        GetObjectTagging => vec![(v("s3:GetObjectTagging", "s3:GetObjectVersionTagging"), Object)],
        PutObjectTagging => vec![(v("s3:PutObjectTagging", "s3:PutObjectVersionTagging"), Object)],
        DeleteObjectTagging => vec![(v("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"), Object)],
        GetObjectAcl => vec![(v("s3:GetObjectAcl", "s3:GetObjectVersionAcl"), Object)],
        PutObjectAcl => vec![(v("s3:PutObjectAcl", "s3:PutObjectVersionAcl"), Object)],
        GetObjectRetention => vec![("s3:GetObjectRetention", Object)],
        PutObjectRetention => vec![("s3:PutObjectRetention", Object)],
        GetObjectLegalHold => vec![("s3:GetObjectLegalHold", Object)],
        PutObjectLegalHold => vec![("s3:PutObjectLegalHold", Object)],
        Unsupported(_) => return None,
    };
    let writes_object = matches!(op, PutObject | PostObject | CopyObject | CreateMultipartUpload);
    if writes_object {
        if f.tagging {
            out.push(("s3:PutObjectTagging", Object));
        }
        if f.acl {
            out.push(("s3:PutObjectAcl", Object));
        }
        if f.retention {
            out.push(("s3:PutObjectRetention", Object));
        }
        if f.legal_hold {
            out.push(("s3:PutObjectLegalHold", Object));
        }
    }
    if f.bypass_governance && matches!(op, DeleteObject | PutObjectRetention | DeleteObjects) {
        out.push(("s3:BypassGovernanceRetention", Object));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_reads_need_the_version_actions() {
        let f = Needs {
            version_id: true,
            ..Needs::default()
        };
        assert_eq!(
            actions(Op::GetObject, &f),
            Some(vec![("s3:GetObjectVersion", On::Object)])
        );
        assert_eq!(
            actions(Op::DeleteObject, &f),
            Some(vec![("s3:DeleteObjectVersion", On::Object)])
        );
        assert_eq!(
            actions(Op::GetObjectTagging, &f),
            Some(vec![("s3:GetObjectVersionTagging", On::Object)])
        );
    }

    #[test]
    fn writes_with_tags_and_locks_need_those_actions_too() {
        let f = Needs {
            tagging: true,
            retention: true,
            legal_hold: true,
            ..Needs::default()
        };
        let got = actions(Op::PutObject, &f).unwrap_or_default();
        for a in [
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:PutObjectRetention",
            "s3:PutObjectLegalHold",
        ] {
            assert!(got.iter().any(|(x, _)| *x == a), "{a}");
        }
        // a form upload writes an object like a PUT
        assert_eq!(actions(Op::PostObject, &f), actions(Op::PutObject, &f));
    }

    #[test]
    fn copies_read_their_source() {
        let got = actions(Op::CopyObject, &Needs::default()).unwrap_or_default();
        assert!(got.contains(&("s3:GetObject", On::Source)));
        assert!(got.contains(&("s3:PutObject", On::Object)));
        let versioned = Needs {
            source_version: true,
            ..Needs::default()
        };
        let got = actions(Op::UploadPartCopy, &versioned).unwrap_or_default();
        assert!(got.contains(&("s3:GetObjectVersion", On::Source)));
    }

    #[test]
    fn unsupported_operations_are_not_in_the_table() {
        assert_eq!(
            actions(Op::Unsupported("PutBucketReplication"), &Needs::default()),
            None
        );
    }
}
