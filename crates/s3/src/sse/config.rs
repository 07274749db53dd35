//! Bucket default encryption: PutBucketEncryption, GetBucketEncryption,
//! DeleteBucketEncryption. Stored as JSON in the bucket record's configs
//! under `encryption`.

use http::StatusCode;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use strongroom_store::BucketRecord;

use super::{DSSE_KMS, SSE_KMS, SSE_S3};
use crate::Strongroom;
use crate::error::custom;

const CONFIG: &str = "encryption";

/// The configuration document of a bucket's default encryption, as
/// GetBucketEncryption answers it (including BlockedEncryptionTypes, which
/// the s3s DTOs do not model).
pub(crate) fn document(cfg: &BucketEncryption) -> String {
    let esc = |v: &str| {
        v.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ServerSideEncryptionConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ApplyServerSideEncryptionByDefault>",
    );
    x.push_str(&format!("<SSEAlgorithm>{}</SSEAlgorithm>", esc(&cfg.algorithm)));
    if let Some(k) = &cfg.kms_key_id {
        x.push_str(&format!("<KMSMasterKeyID>{}</KMSMasterKeyID>", esc(k)));
    }
    x.push_str(&format!(
        "</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>{}</BucketKeyEnabled>",
        cfg.bucket_key
    ));
    if !cfg.blocked.is_empty() {
        x.push_str("<BlockedEncryptionTypes>");
        for t in &cfg.blocked {
            x.push_str(&format!("<EncryptionType>{}</EncryptionType>", esc(t)));
        }
        x.push_str("</BlockedEncryptionTypes>");
    }
    x.push_str("</Rule></ServerSideEncryptionConfiguration>");
    x
}

/// Takes the `<BlockedEncryptionTypes>` element out of a
/// PutBucketEncryption document: the rest for the s3s parser, and the
/// listed types (validated: `NONE` or `SSE-C`).
pub(crate) fn take_blocked(doc: &str) -> S3Result<(String, Vec<String>)> {
    const OPEN: &str = "<BlockedEncryptionTypes";
    const CLOSE: &str = "</BlockedEncryptionTypes>";
    let Some(start) = doc.find(OPEN) else {
        return Ok((doc.to_owned(), Vec::new()));
    };
    let bad = || malformed("The XML you provided was not well-formed or did not validate against our published schema");
    let after_open = doc[start..].find('>').map(|i| start + i + 1).ok_or_else(bad)?;
    let (inner, end) = if doc[start..after_open].ends_with("/>") {
        ("", after_open)
    } else {
        let close = doc[after_open..].find(CLOSE).map(|i| after_open + i).ok_or_else(bad)?;
        (&doc[after_open..close], close + CLOSE.len())
    };
    if doc[end..].contains(OPEN) {
        return Err(bad());
    }
    let mut types = Vec::new();
    let mut rest = inner;
    while let Some(i) = rest.find("<EncryptionType>") {
        let from = i + "<EncryptionType>".len();
        let to = rest[from..]
            .find("</EncryptionType>")
            .map(|j| from + j)
            .ok_or_else(bad)?;
        let t = rest[from..to].trim();
        if !matches!(t, "NONE" | "SSE-C") {
            return Err(custom(
                "InvalidArgument",
                StatusCode::BAD_REQUEST,
                format!("The encryption type {t} cannot be blocked; use NONE or SSE-C"),
            ));
        }
        if t != "NONE" && !types.iter().any(|x| x == t) {
            types.push(t.to_owned());
        }
        rest = &rest[to..];
    }
    Ok((format!("{}{}", &doc[..start], &doc[end..]), types))
}

/// A bucket's default encryption.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct BucketEncryption {
    pub algorithm: String,
    pub kms_key_id: Option<String>,
    pub bucket_key: bool,
    /// BlockedEncryptionTypes: `SSE-C` refuses writes with customer keys.
    #[serde(default)]
    pub blocked: Vec<String>,
}

impl BucketEncryption {
    pub(crate) fn blocks_sse_c(&self) -> bool {
        self.blocked.iter().any(|t| t == "SSE-C")
    }
}

/// The default encryption of a bucket record, if one was configured.
pub(crate) fn of(b: &BucketRecord) -> Option<BucketEncryption> {
    b.configs.get(CONFIG).and_then(|s| serde_json::from_str(s).ok())
}

fn malformed(msg: &str) -> s3s::S3Error {
    custom("MalformedXML", StatusCode::BAD_REQUEST, msg)
}

pub(crate) fn parse(c: ServerSideEncryptionConfiguration) -> S3Result<BucketEncryption> {
    let [rule] = <[ServerSideEncryptionRule; 1]>::try_from(c.rules).map_err(|_| {
        malformed("The XML you provided was not well-formed or did not validate against our published schema")
    })?;
    let Some(d) = rule.apply_server_side_encryption_by_default else {
        return Err(malformed(
            "The XML you provided was not well-formed or did not validate against our published schema",
        ));
    };
    let algorithm = d.sse_algorithm.as_str().to_owned();
    match algorithm.as_str() {
        SSE_S3 => {
            if d.kms_master_key_id.is_some() {
                return Err(custom(
                    "InvalidArgument",
                    StatusCode::BAD_REQUEST,
                    "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
                ));
            }
        }
        SSE_KMS | DSSE_KMS => {}
        _ => {
            return Err(custom(
                "InvalidArgument",
                StatusCode::BAD_REQUEST,
                "The encryption method specified is not supported",
            ));
        }
    }
    Ok(BucketEncryption {
        // bucket keys do not apply to DSSE-KMS (AWS ignores the flag there)
        bucket_key: rule.bucket_key_enabled.unwrap_or(false) && algorithm == SSE_KMS,
        algorithm,
        kms_key_id: d.kms_master_key_id.filter(|k| !k.is_empty()),
        blocked: Vec::new(),
    })
}

/// Sets or removes the default encryption of the bucket the request was
/// decided on.
pub(crate) async fn set(s3: &Strongroom, bucket: &BucketRecord, value: Option<String>) -> S3Result<()> {
    crate::bucket::set_config(s3, bucket, CONFIG, value).await
}

pub(crate) async fn put_bucket_encryption(
    s3: &Strongroom,
    req: S3Request<PutBucketEncryptionInput>,
) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
    let b = crate::decided_bucket(&req)?;
    let cfg = parse(req.input.server_side_encryption_configuration)?;
    let json = serde_json::to_string(&cfg).map_err(|_| s3_error!(InternalError))?;
    set(s3, &b, Some(json)).await?;
    Ok(S3Response::new(PutBucketEncryptionOutput {}))
}

pub(crate) async fn get_bucket_encryption(
    _s3: &Strongroom,
    req: S3Request<GetBucketEncryptionInput>,
) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
    let b = crate::decided_bucket(&req)?;
    let Some(cfg) = of(&b) else {
        return Err(custom(
            "ServerSideEncryptionConfigurationNotFoundError",
            StatusCode::NOT_FOUND,
            "The server side encryption configuration was not found",
        ));
    };
    let rule = ServerSideEncryptionRule {
        apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
            kms_master_key_id: cfg.kms_key_id,
            sse_algorithm: ServerSideEncryption::from(cfg.algorithm),
        }),
        bucket_key_enabled: Some(cfg.bucket_key),
    };
    Ok(S3Response::new(GetBucketEncryptionOutput {
        server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration { rules: vec![rule] }),
    }))
}

pub(crate) async fn delete_bucket_encryption(
    s3: &Strongroom,
    req: S3Request<DeleteBucketEncryptionInput>,
) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
    set(s3, &crate::decided_bucket(&req)?, None).await?;
    let mut resp = S3Response::new(DeleteBucketEncryptionOutput {});
    resp.status = Some(StatusCode::NO_CONTENT);
    Ok(resp)
}
