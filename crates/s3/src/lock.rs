//! Object Lock (WORM): the bucket's lock configuration and default
//! retention, the retention and legal hold of each version, and the rules
//! that make a locked version impossible to delete or weaken: COMPLIANCE
//! can only be extended, never shortened or switched to GOVERNANCE, by
//! anyone; GOVERNANCE gives way only to `x-amz-bypass-governance-retention`
//! (with the s3:BypassGovernanceRetention permission: the bucket owner's
//! root today); a legal hold blocks deletion on its own.

use http::StatusCode;
use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};
use strongroom_store::{BucketRecord, ObjectRecord, Retention, Txn};

use crate::error::{Fail, custom, decided_in};
use crate::retention::{COMPLIANCE, GOVERNANCE, check_change};
use crate::{Strongroom, now_ms, timestamp};

pub(crate) const CONFIG: &str = "object-lock";

/// A bucket's Object Lock configuration (present = lock enabled).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct BucketLock {
    pub mode: Option<String>,
    pub days: Option<i32>,
    pub years: Option<i32>,
}

pub(crate) fn of(b: &BucketRecord) -> Option<BucketLock> {
    b.configs.get(CONFIG).and_then(|s| serde_json::from_str(s).ok())
}

pub(crate) fn enable(b: &mut BucketRecord, cfg: &BucketLock) {
    b.configs.insert(
        CONFIG.into(),
        serde_json::to_string(cfg).unwrap_or_else(|_| "{}".into()),
    );
}

fn invalid_request(m: &str) -> S3Error {
    custom("InvalidRequest", StatusCode::BAD_REQUEST, m)
}

fn invalid_argument(m: &str) -> S3Error {
    custom("InvalidArgument", StatusCode::BAD_REQUEST, m)
}

fn missing_config() -> S3Error {
    invalid_request("Bucket is missing Object Lock Configuration")
}

fn ms_of(t: &Timestamp) -> i64 {
    let o: time::OffsetDateTime = t.clone().into();
    i64::try_from(o.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The lock fields of a write, as s3s parsed them.
pub(crate) struct LockRequest {
    pub mode: Option<ObjectLockMode>,
    pub until: Option<Timestamp>,
    pub legal_hold: Option<ObjectLockLegalHoldStatus>,
}

/// The retention and legal hold a new version gets: the request's, else
/// the bucket's default retention.
pub(crate) fn for_write(bucket: &BucketRecord, req: &LockRequest) -> S3Result<(Option<Retention>, bool)> {
    let lock = of(bucket);
    let asked = req.mode.is_some() || req.until.is_some() || req.legal_hold.is_some();
    let Some(lock) = lock else {
        if asked {
            return Err(missing_config());
        }
        return Ok((None, false));
    };
    let legal_hold = match req.legal_hold.as_ref().map(ObjectLockLegalHoldStatus::as_str) {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(_) => return Err(invalid_argument("Legal Hold must be either of 'ON' or 'OFF'")),
    };
    let retention = match (&req.mode, &req.until) {
        (Some(m), Some(u)) => {
            let mode = m.as_str();
            if mode != GOVERNANCE && mode != COMPLIANCE {
                return Err(invalid_argument("Unknown wormMode directive."));
            }
            let until_ms = ms_of(u);
            if until_ms <= now_ms() {
                return Err(invalid_argument("The retain until date must be in the future!"));
            }
            Some(Retention {
                mode: mode.to_owned(),
                until_ms,
            })
        }
        (None, None) => default_retention(&lock),
        _ => {
            return Err(invalid_argument(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            ));
        }
    };
    Ok((retention, legal_hold))
}

fn default_retention(lock: &BucketLock) -> Option<Retention> {
    let mode = lock.mode.clone()?;
    let days = match (lock.days, lock.years) {
        (Some(d), _) => i64::from(d),
        (None, Some(y)) => i64::from(y) * 365,
        _ => return None,
    };
    Some(Retention {
        mode,
        until_ms: now_ms().saturating_add(days.saturating_mul(86_400_000)),
    })
}

/// A PUT with lock headers must carry Content-MD5 or an x-amz checksum.
pub(crate) fn require_digest(h: &http::HeaderMap, req: &LockRequest) -> S3Result<()> {
    let asked = req.mode.is_some() || req.until.is_some() || req.legal_hold.is_some();
    let digest = h.contains_key("content-md5")
        || h.contains_key("x-amz-sdk-checksum-algorithm")
        || h.contains_key("x-amz-trailer")
        || h.keys().any(|k| k.as_str().starts_with("x-amz-checksum-"));
    if asked && !digest {
        return Err(invalid_request(
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
        ));
    }
    Ok(())
}

/// Rewrites one version's lock fields (and the current object's when it is
/// that version).
fn update_version(
    txn: &mut Txn<'_>,
    bucket: &str,
    key: &str,
    vid: Option<&str>,
    f: impl FnOnce(&mut ObjectRecord) -> Result<(), Fail>,
) -> Result<ObjectRecord, Fail> {
    let current = txn.object(bucket, key)?;
    let vid = match vid {
        Some(v) => v.to_owned(),
        None => current
            .as_ref()
            .and_then(|c| c.version_id.clone())
            .ok_or_else(|| Fail(crate::error::no_such_key()))?,
    };
    let (seq, mut rec) = crate::versioning::find_version(txn, bucket, key, &vid)?
        .ok_or_else(|| Fail(crate::versioning::no_such_version()))?;
    if rec.delete_marker {
        return Err(Fail(custom(
            "MethodNotAllowed",
            StatusCode::METHOD_NOT_ALLOWED,
            "The specified method is not allowed against this resource.",
        )));
    }
    f(&mut rec)?;
    txn.put_version(bucket, key, seq, &rec)?;
    if current.is_some_and(|c| c.version_id.as_deref() == Some(vid.as_str())) {
        txn.set_current(bucket, key, Some(&rec))?;
    }
    Ok(rec)
}

/// Start-up integrity check of locked data (beyond AWS): every version
/// under retention or legal hold must still have all its bytes. Returns
/// one line per damaged version (bucket/key@version: what is wrong).
pub fn check_locked(store: &strongroom_store::Store) -> Result<Vec<String>, strongroom_store::StoreError> {
    let now = now_ms();
    let mut damaged = Vec::new();
    for b in store.buckets()? {
        if of(&b).is_none() {
            continue;
        }
        let mut err = None;
        store.scan_versions(&b.name, "", None, |key, _, rec| {
            let locked = rec.legal_hold || rec.retention.as_ref().is_some_and(|r| r.until_ms > now);
            if !locked {
                return strongroom_store::Visit::Continue;
            }
            for seg in &rec.segments {
                let want = if seg.salt.is_some() {
                    strongroom_crypt::sealed_len(seg.len, usize::from(seg.layers))
                } else {
                    seg.len
                };
                match store.stored_len(seg) {
                    Ok(Some(n)) if n == want => {}
                    Ok(Some(n)) => damaged.push(format!(
                        "{}/{key}@{}: a blob holds {n} bytes, {want} expected",
                        b.name,
                        rec.version_id.as_deref().unwrap_or("null")
                    )),
                    Ok(None) => damaged.push(format!(
                        "{}/{key}@{}: a blob is missing",
                        b.name,
                        rec.version_id.as_deref().unwrap_or("null")
                    )),
                    Err(e) => {
                        err = Some(e);
                        return strongroom_store::Visit::Stop;
                    }
                }
            }
            strongroom_store::Visit::Continue
        })?;
        if let Some(e) = err {
            return Err(e);
        }
    }
    Ok(damaged)
}

/// Changes the lock fields of one version (or the current one) of a
/// bucket with Object Lock, in one commit.
async fn change_lock(
    s3: &Strongroom,
    bucket: &BucketRecord,
    key: &str,
    vid: Option<String>,
    f: impl FnOnce(&mut ObjectRecord) -> Result<(), Fail> + Send + 'static,
) -> S3Result<()> {
    let (b, id, k) = (bucket.name.clone(), bucket.id.clone(), key.to_owned());
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            let brec = decided_in(txn, &b, &id)?;
            if of(&brec).is_none() {
                return Err(Fail(missing_config()));
            }
            update_version(txn, &b, &k, vid.as_deref(), f).map(|_| ())
        })
        .await
        .map_err(Into::into)
}

/// A version of a bucket with Object Lock, for reading its lock fields.
fn locked_version(s3: &Strongroom, b: &BucketRecord, key: &str, vid: Option<&str>) -> S3Result<ObjectRecord> {
    if of(b).is_none() {
        return Err(missing_config());
    }
    crate::versioning::read(s3, b, key, vid)
}

pub(crate) async fn put_object_lock_configuration(
    s3: &Strongroom,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
    let decided = crate::decided_bucket(&req)?;
    let i = req.input;
    let c = i.object_lock_configuration.unwrap_or_default();
    if c.object_lock_enabled.as_ref().map(ObjectLockEnabled::as_str) != Some("Enabled") {
        return Err(custom(
            "MalformedXML",
            StatusCode::BAD_REQUEST,
            "The XML you provided was not well-formed or did not validate against our published schema",
        ));
    }
    let mut cfg = BucketLock::default();
    if let Some(d) = c.rule.and_then(|r| r.default_retention) {
        let mode = d.mode.map(|m| m.as_str().to_owned());
        if !matches!(mode.as_deref(), Some(GOVERNANCE | COMPLIANCE)) {
            return Err(custom(
                "MalformedXML",
                StatusCode::BAD_REQUEST,
                "Unknown mode in the default retention",
            ));
        }
        match (d.days, d.years) {
            (Some(n), None) | (None, Some(n)) if n > 0 => {}
            (Some(_), Some(_)) | (None, None) => {
                return Err(custom(
                    "MalformedXML",
                    StatusCode::BAD_REQUEST,
                    "The default retention needs Days or Years, not both",
                ));
            }
            _ => {
                return Err(custom(
                    "InvalidRetentionPeriod",
                    StatusCode::BAD_REQUEST,
                    "Default retention period must be a positive integer value.",
                ));
            }
        }
        cfg = BucketLock {
            mode,
            days: d.days,
            years: d.years,
        };
    }
    s3.store
        .commit(move |txn| -> Result<(), Fail> {
            let mut b = decided_in(txn, &decided.name, &decided.id)?;
            if of(&b).is_none() && crate::versioning::state(&b) != crate::versioning::State::Enabled {
                return Err(Fail(custom(
                    "InvalidBucketState",
                    StatusCode::CONFLICT,
                    "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
                )));
            }
            enable(&mut b, &cfg);
            Ok(txn.put_bucket(&b)?)
        })
        .await?;
    Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
}

pub(crate) async fn get_object_lock_configuration(
    _s3: &Strongroom,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    let b = crate::decided_bucket(&req)?;
    let Some(cfg) = of(&b) else {
        return Err(custom(
            "ObjectLockConfigurationNotFoundError",
            StatusCode::NOT_FOUND,
            "Object Lock configuration does not exist for this bucket",
        ));
    };
    let rule = cfg.mode.as_ref().map(|m| ObjectLockRule {
        default_retention: Some(DefaultRetention {
            mode: Some(ObjectLockRetentionMode::from(m.clone())),
            days: cfg.days,
            years: cfg.years,
        }),
    });
    Ok(S3Response::new(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED)),
            rule,
        }),
    }))
}

pub(crate) async fn put_object_retention(
    s3: &Strongroom,
    req: S3Request<PutObjectRetentionInput>,
) -> S3Result<S3Response<PutObjectRetentionOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let bypass = i.bypass_governance_retention.unwrap_or(false);
    let new = match i.retention {
        Some(ObjectLockRetention {
            mode: Some(m),
            retain_until_date: Some(u),
        }) => {
            if m.as_str() != GOVERNANCE && m.as_str() != COMPLIANCE {
                return Err(custom(
                    "MalformedXML",
                    StatusCode::BAD_REQUEST,
                    "Unknown retention mode",
                ));
            }
            let until_ms = ms_of(&u);
            if until_ms <= now_ms() {
                return Err(invalid_argument("The retain until date must be in the future!"));
            }
            Some(Retention {
                mode: m.as_str().to_owned(),
                until_ms,
            })
        }
        Some(ObjectLockRetention {
            mode: None,
            retain_until_date: None,
        })
        | None => None,
        _ => {
            return Err(custom(
                "MalformedXML",
                StatusCode::BAD_REQUEST,
                "Retention needs Mode and RetainUntilDate",
            ));
        }
    };
    change_lock(s3, &b, &i.key, i.version_id, move |rec| {
        check_change(rec.retention.as_ref(), new.as_ref(), bypass)?;
        rec.retention = new;
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutObjectRetentionOutput::default()))
}

pub(crate) async fn get_object_retention(
    s3: &Strongroom,
    req: S3Request<GetObjectRetentionInput>,
) -> S3Result<S3Response<GetObjectRetentionOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let rec = locked_version(s3, &b, &i.key, i.version_id.as_deref())?;
    let Some(r) = rec.retention else {
        return Err(custom(
            "NoSuchObjectLockConfiguration",
            StatusCode::NOT_FOUND,
            "The specified object does not have a ObjectLock configuration",
        ));
    };
    Ok(S3Response::new(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(ObjectLockRetentionMode::from(r.mode)),
            retain_until_date: Some(timestamp(r.until_ms)),
        }),
    }))
}

pub(crate) async fn put_object_legal_hold(
    s3: &Strongroom,
    req: S3Request<PutObjectLegalHoldInput>,
) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let on = match i
        .legal_hold
        .and_then(|l| l.status)
        .as_ref()
        .map(ObjectLockLegalHoldStatus::as_str)
    {
        Some("ON") => true,
        Some("OFF") => false,
        _ => {
            return Err(custom(
                "MalformedXML",
                StatusCode::BAD_REQUEST,
                "Legal hold status must be ON or OFF",
            ));
        }
    };
    change_lock(s3, &b, &i.key, i.version_id, move |rec| {
        rec.legal_hold = on;
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
}

pub(crate) async fn get_object_legal_hold(
    s3: &Strongroom,
    req: S3Request<GetObjectLegalHoldInput>,
) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
    let b = crate::decided_bucket(&req)?;
    let i = req.input;
    let rec = locked_version(s3, &b, &i.key, i.version_id.as_deref())?;
    Ok(S3Response::new(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(ObjectLockLegalHoldStatus::from(
                if rec.legal_hold { "ON" } else { "OFF" }.to_owned(),
            )),
        }),
    }))
}
