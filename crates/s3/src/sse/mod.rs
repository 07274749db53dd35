//! Encryption at rest of S3 objects: which mode a write gets (request
//! headers, else the bucket default, else SSE-S3), its data keys and how
//! they are wrapped, and unwrapping them for reads. The package format is
//! the `crypt` crate's; key services are the `kms` crate's.

mod cache;
pub(crate) mod config;
mod customer;
mod rewrap;
mod route;
pub(crate) mod stream;

use std::sync::Arc;

use http::StatusCode;
use s3s::dto::ServerSideEncryption;
use s3s::{S3Error, S3Result, s3_error};
use strongroom_crypt::{Key, MasterKeys};
use strongroom_iam::{ConnInfo, Principal};
use strongroom_kms::{Caller, Context, KeyService, KmsError};
use strongroom_store::{CustomerKeyCheck, SseRecord, WrappedKey};

use crate::checksum::{b64, unb64};
use crate::error::custom;

pub(crate) use cache::BucketKeys;
pub(crate) use config::{delete_bucket_encryption, get_bucket_encryption, put_bucket_encryption};
pub(crate) use customer::{CustomerFields, CustomerKey, customer_key, refuse_on_read};
pub use rewrap::{Rewrapped, rewrap_all};
pub use route::EncryptionRoute;
pub(crate) use stream::SealedWriter;

/// Modes as stored and as S3 names them.
pub(crate) const SSE_S3: &str = "AES256";
pub(crate) const SSE_KMS: &str = "aws:kms";
pub(crate) const DSSE_KMS: &str = "aws:kms:dsse";
pub(crate) const SSE_C: &str = "SSE-C";

/// Everything encryption needs, held by the S3 implementation.
#[derive(Clone)]
pub struct Encryption {
    pub master: Arc<MasterKeys>,
    pub kms: Arc<dyn KeyService>,
    pub(crate) bucket_keys: Arc<BucketKeys>,
    /// Only `strongroom bench` sets this, for the plaintext baseline of
    /// the same build; `serve` has no way to.
    baseline: bool,
}

impl Encryption {
    pub fn new(master: Arc<MasterKeys>, kms: Arc<dyn KeyService>, bucket_key_ttl: std::time::Duration) -> Encryption {
        Encryption {
            master,
            kms,
            bucket_keys: Arc::new(BucketKeys::new(bucket_key_ttl)),
            baseline: false,
        }
    }

    /// The unencrypted baseline of `strongroom bench`: objects are stored
    /// as given. Never used by `serve`.
    pub fn plaintext_baseline_for_bench(self) -> Encryption {
        Encryption { baseline: true, ..self }
    }
}

/// The SSE fields of a request, as s3s parsed them.
#[derive(Default)]
pub(crate) struct SseRequest {
    pub algorithm: Option<ServerSideEncryption>,
    pub kms_key_id: Option<String>,
    pub context: Option<String>,
    pub bucket_key: Option<bool>,
    pub customer: CustomerFields,
}

fn invalid_argument(msg: &str) -> S3Error {
    custom("InvalidArgument", StatusCode::BAD_REQUEST, msg)
}

fn invalid_request(msg: &str) -> S3Error {
    custom("InvalidRequest", StatusCode::BAD_REQUEST, msg)
}

/// SSE-KMS and DSSE-KMS objects are written and read with SigV4 only
/// (AWS): a SigV2 request for one is 400 InvalidArgument.
pub(crate) fn require_sigv4(rec: Option<&SseRecord>, sigv2: bool) -> S3Result<()> {
    if sigv2 && rec.is_some_and(|r| r.mode == SSE_KMS || r.mode == DSSE_KMS) {
        return Err(invalid_argument(
            "Requests specifying Server Side Encryption with AWS KMS managed keys require AWS Signature Version 4.",
        ));
    }
    Ok(())
}

/// Data keys of one object, ready to seal or open its streams.
pub(crate) struct DataKeys {
    pub keys: Vec<Key>,
    pub record: SseRecord,
}

impl DataKeys {
    /// The ETag of content with this MD5: the MD5 itself for SSE-S3 (as
    /// AWS), an opaque keyed value for the other modes.
    pub(crate) fn etag(&self, md5: &[u8; 16]) -> [u8; 16] {
        match (self.record.mode.as_str(), self.keys.first()) {
            (SSE_S3, _) | (_, None) => *md5,
            (_, Some(k)) => strongroom_crypt::opaque_etag(k, md5),
        }
    }
}

/// The caller as the key service sees it (S3 acting on their behalf).
pub(crate) fn caller(who: &Principal, conn: Option<&ConnInfo>, region: &str) -> Caller {
    Caller {
        account_id: who.account_id().to_owned(),
        arn: who.identity_arn(),
        access_key: who.access_key().to_owned(),
        source_ip: conn.map(|c| c.peer.ip().to_string()).unwrap_or_default(),
        via_service: Some(format!("s3.{region}.amazonaws.com")),
        identity: None,
    }
}

/// S3's answer to a key-service failure.
pub(crate) fn kms_error(e: KmsError) -> S3Error {
    match e {
        KmsError::Throttled(_) => custom(
            "SlowDown",
            StatusCode::SERVICE_UNAVAILABLE,
            "Please reduce your request rate.",
        ),
        KmsError::AccessDenied(m) => custom("AccessDenied", StatusCode::FORBIDDEN, m),
        KmsError::Internal(m) => {
            tracing::error!(error = %m, "key service failed");
            custom(
                "KMS.KMSInternalException",
                StatusCode::INTERNAL_SERVER_ERROR,
                "KMS internal error",
            )
        }
        KmsError::NotFound(m) | KmsError::InvalidArn(m) => custom("KMS.NotFoundException", StatusCode::BAD_REQUEST, m),
        other => custom(
            format!("KMS.{}", other.code()),
            StatusCode::BAD_REQUEST,
            other.to_string(),
        ),
    }
}

fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

/// The KMS encryption context of a bucket key: the bucket's ARN (AWS).
fn bucket_key_kms_context(bucket: &str) -> Context {
    let mut c = Context::new();
    c.insert("aws:s3:arn".into(), format!("arn:aws:s3:::{bucket}"));
    c
}

/// The KMS encryption context of an object: the caller's (base64 JSON of
/// string pairs) plus `aws:s3:arn`.
fn kms_context(user: Option<&str>, arn: String) -> S3Result<Context> {
    let mut ctx = Context::new();
    if let Some(u) = user {
        let bad = || {
            invalid_argument(
                "The header 'x-amz-server-side-encryption-context' shall be Base64-encoded UTF-8 string holding JSON which represents a string-string map",
            )
        };
        let raw = unb64(u).ok_or_else(bad)?;
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&raw).map_err(|_| bad())?;
        for (k, v) in map {
            let serde_json::Value::String(v) = v else {
                return Err(bad());
            };
            ctx.insert(k, v);
        }
    }
    ctx.entry("aws:s3:arn".into()).or_insert(arn);
    Ok(ctx)
}

fn master_context(bucket: &str, key: &str) -> Vec<u8> {
    format!("strongroom sse-s3 v1\0{bucket}\0{key}").into_bytes()
}

fn customer_context(bucket: &str, key: &str) -> Vec<u8> {
    format!("strongroom sse-c v1\0{bucket}\0{key}").into_bytes()
}

fn bucket_key_context(bucket: &str, key: &str) -> Vec<u8> {
    format!("strongroom bucket-key v1\0{bucket}\0{key}").into_bytes()
}

fn crypt_internal(e: strongroom_crypt::CryptError) -> S3Error {
    tracing::error!(error = %e, "encryption failure");
    s3_error!(InternalError, "We encountered an internal error. Please try again.")
}

/// The mode a write ends up with.
pub(crate) enum Mode {
    S3,
    Kms { key: Option<String>, bucket_key: bool },
    Dsse { key: Option<String> },
    Customer(CustomerKey),
}

/// Decides a write's mode from its headers, else the bucket default.
pub(crate) fn choose(req: &SseRequest, default: Option<&config::BucketEncryption>, secure: bool) -> S3Result<Mode> {
    let customer = customer_key(&req.customer, secure)?;
    let alg = req.algorithm.as_ref().map(ServerSideEncryption::as_str);
    if customer.is_some() && default.is_some_and(config::BucketEncryption::blocks_sse_c) {
        return Err(custom(
            "AccessDenied",
            StatusCode::FORBIDDEN,
            "Requests specifying Server Side Encryption with Customer provided keys are blocked for this bucket (BlockedEncryptionTypes).",
        ));
    }
    if let Some(c) = customer {
        if alg.is_some() {
            return Err(invalid_argument(
                "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
            ));
        }
        return Ok(Mode::Customer(c));
    }
    if req.kms_key_id.is_some() && !matches!(alg, Some(SSE_KMS | DSSE_KMS)) {
        return Err(invalid_argument(
            "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
        ));
    }
    if req.context.is_some() && !matches!(alg, Some(SSE_KMS | DSSE_KMS)) {
        return Err(invalid_argument(
            "Server Side Encryption context requires HTTP header x-amz-server-side-encryption : aws:kms",
        ));
    }
    let key = req.kms_key_id.clone().filter(|k| !k.is_empty());
    match alg {
        Some(SSE_S3) => Ok(Mode::S3),
        Some(SSE_KMS) => {
            let same_default = default.filter(|d| d.algorithm == SSE_KMS);
            let bucket_key = req
                .bucket_key
                .unwrap_or_else(|| same_default.is_some_and(|d| d.bucket_key));
            let key = key.or_else(|| same_default.and_then(|d| d.kms_key_id.clone()));
            Ok(Mode::Kms { key, bucket_key })
        }
        Some(DSSE_KMS) => {
            let key = key.or_else(|| {
                default
                    .filter(|d| d.algorithm == DSSE_KMS)
                    .and_then(|d| d.kms_key_id.clone())
            });
            Ok(Mode::Dsse { key })
        }
        Some(_) => Err(invalid_argument("The encryption method specified is not supported")),
        None => Ok(match default {
            Some(d) if d.algorithm == SSE_KMS => Mode::Kms {
                key: d.kms_key_id.clone(),
                bucket_key: req.bucket_key.unwrap_or(d.bucket_key),
            },
            Some(d) if d.algorithm == DSSE_KMS => Mode::Dsse {
                key: d.kms_key_id.clone(),
            },
            _ => Mode::S3,
        }),
    }
}

/// Where the keys of a new object are made.
pub(crate) struct Target<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub caller: &'a Caller,
    pub context: Option<&'a str>,
}

impl Encryption {
    /// The data keys of a new object of `bucket`: the mode its request asks
    /// for, else the bucket's default encryption, else SSE-S3.
    pub(crate) async fn keys_for_write(
        &self,
        bucket: &strongroom_store::BucketRecord,
        key: &str,
        req: &SseRequest,
        secure: bool,
        caller: &Caller,
    ) -> S3Result<DataKeys> {
        if self.baseline {
            return Ok(DataKeys {
                keys: Vec::new(),
                record: SseRecord::default(),
            });
        }
        let default = config::of(bucket);
        let mode = choose(req, default.as_ref(), secure)?;
        self.new_keys(
            mode,
            Target {
                bucket: &bucket.name,
                key,
                caller,
                context: req.context.as_deref(),
            },
        )
        .await
    }

    fn master_wrapped(&self, dk: &Key, t: &Target<'_>) -> S3Result<WrappedKey> {
        let (id, mk) = self.master.active();
        let blob = strongroom_crypt::wrap(mk, dk, &master_context(t.bucket, t.key)).map_err(crypt_internal)?;
        Ok(WrappedKey {
            by: format!("master:{id}"),
            blob: b64(&blob),
            outer: None,
        })
    }

    /// Makes the data keys of a new object in `mode`.
    pub(crate) async fn new_keys(&self, mode: Mode, t: Target<'_>) -> S3Result<DataKeys> {
        match mode {
            Mode::S3 => {
                let dk = Key::random().map_err(crypt_internal)?;
                let w = self.master_wrapped(&dk, &t)?;
                Ok(DataKeys {
                    keys: vec![dk],
                    record: SseRecord {
                        mode: SSE_S3.into(),
                        keys: vec![w],
                        ..SseRecord::default()
                    },
                })
            }
            Mode::Kms { key, bucket_key } => {
                if bucket_key {
                    let arn = self.kms.resolve(t.caller, key.as_deref()).await.map_err(kms_error)?;
                    let bk = self
                        .bucket_keys
                        .get_or_make(&*self.kms, t.caller, t.bucket, &arn, &bucket_key_kms_context(t.bucket))
                        .await
                        .map_err(kms_error)?;
                    let dk = Key::random().map_err(crypt_internal)?;
                    let blob = strongroom_crypt::wrap(&bk.key, &dk, &bucket_key_context(t.bucket, t.key))
                        .map_err(crypt_internal)?;
                    return Ok(DataKeys {
                        keys: vec![dk],
                        record: SseRecord {
                            mode: SSE_KMS.into(),
                            kms_key_id: Some(arn),
                            context: t.context.map(str::to_owned),
                            bucket_key: true,
                            keys: vec![WrappedKey {
                                by: "bucket-key".into(),
                                blob: b64(&blob),
                                outer: Some(b64(&bk.ciphertext)),
                            }],
                            customer: None,
                        },
                    });
                }
                let ctx = kms_context(t.context, object_arn(t.bucket, t.key))?;
                let d = self
                    .kms
                    .generate_data_key(t.caller, key.as_deref(), &ctx)
                    .await
                    .map_err(kms_error)?;
                Ok(DataKeys {
                    keys: vec![d.plaintext],
                    record: SseRecord {
                        mode: SSE_KMS.into(),
                        kms_key_id: Some(d.key_arn),
                        context: t.context.map(str::to_owned),
                        bucket_key: false,
                        keys: vec![WrappedKey {
                            by: "kms".into(),
                            blob: b64(&d.ciphertext),
                            outer: None,
                        }],
                        customer: None,
                    },
                })
            }
            Mode::Dsse { key } => {
                let ctx = kms_context(t.context, object_arn(t.bucket, t.key))?;
                let d = self
                    .kms
                    .generate_data_key(t.caller, key.as_deref(), &ctx)
                    .await
                    .map_err(kms_error)?;
                let outer = Key::random().map_err(crypt_internal)?;
                let w = self.master_wrapped(&outer, &t)?;
                Ok(DataKeys {
                    keys: vec![d.plaintext, outer],
                    record: SseRecord {
                        mode: DSSE_KMS.into(),
                        kms_key_id: Some(d.key_arn),
                        context: t.context.map(str::to_owned),
                        bucket_key: false,
                        keys: vec![
                            WrappedKey {
                                by: "kms".into(),
                                blob: b64(&d.ciphertext),
                                outer: None,
                            },
                            w,
                        ],
                        customer: None,
                    },
                })
            }
            Mode::Customer(c) => {
                let dk = Key::random().map_err(crypt_internal)?;
                let blob =
                    strongroom_crypt::wrap(&c.key, &dk, &customer_context(t.bucket, t.key)).map_err(crypt_internal)?;
                let salt = strongroom_crypt::random_salt().map_err(crypt_internal)?;
                let hash = strongroom_crypt::keyed_hash(&salt, c.key.bytes());
                Ok(DataKeys {
                    keys: vec![dk],
                    record: SseRecord {
                        mode: SSE_C.into(),
                        keys: vec![WrappedKey {
                            by: "customer".into(),
                            blob: b64(&blob),
                            outer: None,
                        }],
                        customer: Some(CustomerKeyCheck {
                            salt: b64(&salt),
                            hash: b64(&hash),
                            key_md5: c.md5,
                        }),
                        ..SseRecord::default()
                    },
                })
            }
        }
    }

    /// Checks a read's customer key against the object: required exactly
    /// when the object is SSE-C, and it must be the same key.
    /// A wrong key is 403 on HEAD (AWS documents it) and 400 on GET (what
    /// AWS answers, pinned by ceph/s3-tests).
    pub(crate) fn check_customer(
        &self,
        rec: Option<&SseRecord>,
        given: Option<&CustomerKey>,
        head: bool,
    ) -> S3Result<()> {
        let stored = rec.and_then(|r| r.customer.as_ref());
        match (stored, given) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(invalid_request(
                "The encryption parameters are not applicable to this object.",
            )),
            (Some(_), None) => Err(invalid_request(
                "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
            )),
            (Some(s), Some(g)) => {
                let salt = unb64(&s.salt).unwrap_or_default();
                let want = unb64(&s.hash).unwrap_or_default();
                if strongroom_crypt::ct_eq(&strongroom_crypt::keyed_hash(&salt, g.key.bytes()), &want) {
                    Ok(())
                } else if head {
                    Err(custom("AccessDenied", StatusCode::FORBIDDEN, WRONG_KEY))
                } else {
                    Err(invalid_request(WRONG_KEY))
                }
            }
        }
    }

    /// Unwraps the data keys of a stored object (None for data stored
    /// before encryption existed).
    pub(crate) async fn open_keys(
        &self,
        bucket: &str,
        key: &str,
        rec: Option<&SseRecord>,
        customer: Option<&CustomerKey>,
        caller: &Caller,
    ) -> S3Result<Option<Vec<Key>>> {
        self.check_customer(rec, customer, false)?;
        let Some(rec) = rec else { return Ok(None) };
        if rec.keys.is_empty() && !rec.mode.is_empty() {
            return Err(corrupt("an encrypted object has no wrapped keys"));
        }
        let mut keys = Vec::with_capacity(rec.keys.len());
        for w in &rec.keys {
            let blob = unb64(&w.blob).ok_or_else(|| corrupt("wrapped key is not base64"))?;
            let k = match w.by.as_str() {
                "kms" => {
                    let ctx = kms_context(rec.context.as_deref(), object_arn(bucket, key))?;
                    self.kms.decrypt(caller, &blob, &ctx).await.map_err(kms_error)?.1
                }
                "bucket-key" => {
                    let outer = w
                        .outer
                        .as_deref()
                        .and_then(unb64)
                        .ok_or_else(|| corrupt("bucket key ciphertext missing"))?;
                    let bk = self
                        .bucket_keys
                        .open(&*self.kms, caller, &outer, &bucket_key_kms_context(bucket))
                        .await
                        .map_err(kms_error)?;
                    strongroom_crypt::unwrap(&bk, &blob, &bucket_key_context(bucket, key))
                        .map_err(|_| corrupt("bucket-key-wrapped data key failed authentication"))?
                }
                "customer" => {
                    let Some(c) = customer else {
                        return Err(corrupt("customer key missing"));
                    };
                    strongroom_crypt::unwrap(&c.key, &blob, &customer_context(bucket, key))
                        .map_err(|_| invalid_request(WRONG_KEY))?
                }
                by => {
                    let id = by
                        .strip_prefix("master:")
                        .ok_or_else(|| corrupt("unknown key wrapping"))?;
                    let mk = self.master.get(id).ok_or_else(|| {
                        tracing::error!(
                            master_key = id,
                            "an object needs a master key that is not in the keyring"
                        );
                        corrupt("master key missing from the keyring")
                    })?;
                    strongroom_crypt::unwrap(mk, &blob, &master_context(bucket, key))
                        .map_err(|_| corrupt("master-wrapped data key failed authentication"))?
                }
            };
            keys.push(k);
        }
        Ok(Some(keys))
    }
}

const WRONG_KEY: &str = "The provided encryption key does not match the key the object was stored with.";

fn corrupt(what: &str) -> S3Error {
    tracing::error!(what, "cannot open an object's data keys");
    s3_error!(InternalError, "We encountered an internal error. Please try again.")
}

/// The encryption response headers of an object.
#[derive(Default)]
pub(crate) struct Echo {
    pub sse: Option<ServerSideEncryption>,
    pub kms_key_id: Option<String>,
    pub bucket_key: Option<bool>,
    pub customer_algorithm: Option<String>,
    pub customer_key_md5: Option<String>,
}

pub(crate) fn echo(rec: Option<&SseRecord>) -> Echo {
    let Some(r) = rec.filter(|r| !r.mode.is_empty()) else {
        return Echo::default();
    };
    if let Some(c) = &r.customer {
        return Echo {
            customer_algorithm: Some("AES256".into()),
            customer_key_md5: Some(c.key_md5.clone()),
            ..Echo::default()
        };
    }
    Echo {
        sse: Some(ServerSideEncryption::from(r.mode.clone())),
        kms_key_id: r.kms_key_id.clone(),
        bucket_key: r.bucket_key.then_some(true),
        ..Echo::default()
    }
}
