//! Every S3 operation's IAM actions, in one exhaustive table. An operation
//! missing here is refused to everyone but the bucket owner's root (fail
//! closed), who gets the operation's own answer (NotImplemented).

/// Which resource an action is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// `arn:aws:s3:::bucket`
    Bucket,
    /// `arn:aws:s3:::bucket/key`
    Object,
    /// The copy source object (`x-amz-copy-source`).
    Source,
    /// `*` (ListAllMyBuckets)
    All,
}

/// Facts of a request that change which actions it needs.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpFacts {
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

/// The actions an operation needs; None for operations not in the table.
pub fn actions(op: &str, f: &OpFacts) -> Option<Vec<(&'static str, On)>> {
    use On::*;
    let v = |plain: &'static str, versioned: &'static str| if f.version_id { versioned } else { plain };
    let mut out: Vec<(&'static str, On)> = match op {
        "ListBuckets" => vec![("s3:ListAllMyBuckets", All)],
        "CreateBucket" => {
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
        "DeleteBucket" => vec![("s3:DeleteBucket", Bucket)],
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => vec![("s3:ListBucket", Bucket)],
        "ListObjectVersions" => vec![("s3:ListBucketVersions", Bucket)],
        "ListMultipartUploads" => vec![("s3:ListBucketMultipartUploads", Bucket)],
        "GetBucketLocation" => vec![("s3:GetBucketLocation", Bucket)],
        "GetBucketVersioning" => vec![("s3:GetBucketVersioning", Bucket)],
        "PutBucketVersioning" => vec![("s3:PutBucketVersioning", Bucket)],
        "GetObjectLockConfiguration" => vec![("s3:GetBucketObjectLockConfiguration", Bucket)],
        "PutObjectLockConfiguration" => vec![("s3:PutBucketObjectLockConfiguration", Bucket)],
        "GetBucketTagging" => vec![("s3:GetBucketTagging", Bucket)],
        "PutBucketTagging" | "DeleteBucketTagging" => vec![("s3:PutBucketTagging", Bucket)],
        "GetBucketAcl" => vec![("s3:GetBucketAcl", Bucket)],
        "PutBucketAcl" => vec![("s3:PutBucketAcl", Bucket)],
        "GetBucketEncryption" => vec![("s3:GetEncryptionConfiguration", Bucket)],
        "PutBucketEncryption" | "DeleteBucketEncryption" => vec![("s3:PutEncryptionConfiguration", Bucket)],
        "GetBucketPolicy" => vec![("s3:GetBucketPolicy", Bucket)],
        "PutBucketPolicy" => vec![("s3:PutBucketPolicy", Bucket)],
        "DeleteBucketPolicy" => vec![("s3:DeleteBucketPolicy", Bucket)],
        "GetBucketPolicyStatus" => vec![("s3:GetBucketPolicyStatus", Bucket)],
        "GetPublicAccessBlock" => vec![("s3:GetBucketPublicAccessBlock", Bucket)],
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => vec![("s3:PutBucketPublicAccessBlock", Bucket)],
        "GetBucketOwnershipControls" => vec![("s3:GetBucketOwnershipControls", Bucket)],
        "PutBucketOwnershipControls" | "DeleteBucketOwnershipControls" => {
            vec![("s3:PutBucketOwnershipControls", Bucket)]
        }
        "GetObject" | "HeadObject" => vec![(v("s3:GetObject", "s3:GetObjectVersion"), Object)],
        "GetObjectAttributes" => vec![
            (v("s3:GetObject", "s3:GetObjectVersion"), Object),
            (v("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes"), Object),
        ],
        "PutObject" | "CreateMultipartUpload" | "PostObject" => vec![("s3:PutObject", Object)],
        "UploadPart" | "CompleteMultipartUpload" => vec![("s3:PutObject", Object)],
        "AbortMultipartUpload" => vec![("s3:AbortMultipartUpload", Object)],
        "ListParts" => vec![("s3:ListMultipartUploadParts", Object)],
        "CopyObject" | "UploadPartCopy" => vec![
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
        "DeleteObject" => vec![(v("s3:DeleteObject", "s3:DeleteObjectVersion"), Object)],
        // checked per key by the operation (s3:DeleteObject[Version])
        "DeleteObjects" => vec![],
        "GetObjectTagging" => vec![(v("s3:GetObjectTagging", "s3:GetObjectVersionTagging"), Object)],
        "PutObjectTagging" => vec![(v("s3:PutObjectTagging", "s3:PutObjectVersionTagging"), Object)],
        "DeleteObjectTagging" => vec![(v("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"), Object)],
        "GetObjectAcl" => vec![(v("s3:GetObjectAcl", "s3:GetObjectVersionAcl"), Object)],
        "PutObjectAcl" => vec![(v("s3:PutObjectAcl", "s3:PutObjectVersionAcl"), Object)],
        "GetObjectRetention" => vec![("s3:GetObjectRetention", Object)],
        "PutObjectRetention" => vec![("s3:PutObjectRetention", Object)],
        "GetObjectLegalHold" => vec![("s3:GetObjectLegalHold", Object)],
        "PutObjectLegalHold" => vec![("s3:PutObjectLegalHold", Object)],
        _ => return None,
    };
    let writes_object = matches!(op, "PutObject" | "CopyObject" | "CreateMultipartUpload" | "PostObject");
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
    if f.bypass_governance && matches!(op, "DeleteObject" | "PutObjectRetention" | "DeleteObjects") {
        out.push(("s3:BypassGovernanceRetention", Object));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_reads_need_the_version_actions() {
        let f = OpFacts {
            version_id: true,
            ..OpFacts::default()
        };
        assert_eq!(
            actions("GetObject", &f),
            Some(vec![("s3:GetObjectVersion", On::Object)])
        );
        assert_eq!(
            actions("DeleteObject", &f),
            Some(vec![("s3:DeleteObjectVersion", On::Object)])
        );
    }

    #[test]
    fn writes_with_tags_and_locks_need_those_actions_too() {
        let f = OpFacts {
            tagging: true,
            retention: true,
            legal_hold: true,
            ..OpFacts::default()
        };
        let got = actions("PutObject", &f).unwrap_or_default();
        for a in [
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:PutObjectRetention",
            "s3:PutObjectLegalHold",
        ] {
            assert!(got.iter().any(|(x, _)| *x == a), "{a}");
        }
    }

    #[test]
    fn copies_read_their_source() {
        let got = actions("CopyObject", &OpFacts::default()).unwrap_or_default();
        assert!(got.contains(&("s3:GetObject", On::Source)));
        assert!(got.contains(&("s3:PutObject", On::Object)));
    }

    #[test]
    fn unknown_operations_are_not_in_the_table() {
        assert_eq!(actions("PutBucketLifecycleConfiguration", &OpFacts::default()), None);
    }
}
