//! Bucket versioning: the state of a bucket, version ids, where a write
//! lands (a new version, the `null` version, or the plain current object)
//! and what a delete does (a delete marker, or a permanent deletion of one
//! version). The store keeps `versions` (every version) and `objects` (the
//! current visible one) consistent inside each commit.

use http::{HeaderMap, HeaderValue, StatusCode};
use s3s::{S3Error, S3Result, s3_error};
use strongroom_store::{BucketRecord, ObjectRecord, Txn};

use crate::error::{Fail, custom, no_such_key, store};
use crate::{Strongroom, now_ms};

pub(crate) const CONFIG: &str = "versioning";
pub(crate) const MFA_CONFIG: &str = "mfa-delete";

/// True when MFA Delete is on for the bucket.
pub(crate) fn mfa_delete(b: &BucketRecord) -> bool {
    b.configs.get(MFA_CONFIG).is_some_and(|v| v == "Enabled")
}

/// Checks an `x-amz-mfa` header against the bucket owner's root device;
/// `who`'s failures count against `who` unless it is that root.
pub(crate) async fn require_mfa(
    s3: &Strongroom,
    owner: &str,
    header: Option<&str>,
    who: &strongroom_iam::Principal,
) -> S3Result<()> {
    let now = u64::try_from(now_ms()).unwrap_or(0) / 1000;
    let arn = who.identity_arn();
    let caller = if who.is_root() && who.account_id() == owner {
        strongroom_iam::MfaCaller::Owner
    } else {
        strongroom_iam::MfaCaller::Other(&arn)
    };
    s3.identities
        .check_mfa(owner, header, now, caller)
        .await
        .map_err(|_| s3_error!(AccessDenied, "Mfa Authentication must be used for this request"))
}
pub(crate) const NULL: &str = "null";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Never versioned: writes replace the current object.
    Never,
    Enabled,
    Suspended,
}

pub(crate) fn state(b: &BucketRecord) -> State {
    match b.configs.get(CONFIG).map(String::as_str) {
        Some("Enabled") => State::Enabled,
        Some("Suspended") => State::Suspended,
        _ => State::Never,
    }
}

fn now_ns() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0).saturating_mul(1_000_000)
}

/// A version id: 16 hex digits of the sequence number (so a lookup is one
/// read) and 16 random ones.
fn new_version_id(seq: u64) -> Result<String, Fail> {
    let mut r = [0u8; 8];
    strongroom_crypt::fill_random(&mut r).map_err(|_| Fail(s3_error!(InternalError)))?;
    Ok(format!("{seq:016x}{:016x}", u64::from_be_bytes(r)))
}

pub(crate) fn seq_of(vid: &str) -> Option<u64> {
    (vid.len() == 32 && vid.is_ascii())
        .then(|| u64::from_str_radix(&vid[..16], 16).ok())
        .flatten()
}

fn invalid_version() -> S3Error {
    custom(
        "InvalidArgument",
        StatusCode::BAD_REQUEST,
        "Invalid version id specified",
    )
}

/// Finds a version of a key inside a commit: (seq, record).
pub(crate) fn find_version(
    txn: &Txn<'_>,
    bucket: &str,
    key: &str,
    vid: &str,
) -> Result<Option<(u64, ObjectRecord)>, Fail> {
    if vid == NULL {
        return Ok(txn.find_version_by(bucket, key, |r| r.version_id.as_deref() == Some(NULL))?);
    }
    let seq = seq_of(vid).ok_or_else(|| Fail(invalid_version()))?;
    Ok(txn
        .version_at(bucket, key, seq)?
        .filter(|r| r.version_id.as_deref() == Some(vid))
        .map(|r| (seq, r)))
}

/// Removes the `null` version of a key (a write or delete in a suspended
/// bucket replaces it).
fn drop_null(txn: &mut Txn<'_>, bucket: &str, key: &str) -> Result<(), Fail> {
    if let Some((seq, _)) = find_version(txn, bucket, key, NULL)? {
        txn.delete_version(bucket, key, seq)?;
    }
    Ok(())
}

/// Makes the newest version current (none when it is a delete marker).
fn refresh_current(txn: &mut Txn<'_>, bucket: &str, key: &str) -> Result<(), Fail> {
    let newest = txn.newest_version(bucket, key)?;
    match newest {
        Some((_, r)) if !r.delete_marker => txn.set_current(bucket, key, Some(&r))?,
        _ => txn.set_current(bucket, key, None)?,
    }
    Ok(())
}

/// The sequence number and id of a key's next version: a fresh id when
/// versioning is enabled; `null` (replacing the old `null` version) when
/// it is suspended.
fn next_version(txn: &mut Txn<'_>, st: State, bucket: &str, key: &str) -> Result<(u64, String), Fail> {
    if st == State::Suspended {
        drop_null(txn, bucket, key)?;
    }
    let seq = txn.next_version_seq(bucket, key, now_ns())?;
    let vid = if st == State::Enabled {
        new_version_id(seq)?
    } else {
        NULL.to_owned()
    };
    Ok((seq, vid))
}

/// Places `rec` as the new current object of `key` (inside a commit) and
/// sets its version id. Returns the version id to answer with.
pub(crate) fn place(
    txn: &mut Txn<'_>,
    bucket: &BucketRecord,
    key: &str,
    rec: &mut ObjectRecord,
) -> Result<Option<String>, Fail> {
    let b = bucket.name.as_str();
    match state(bucket) {
        State::Never => {
            rec.version_id = None;
            txn.put_object(b, key, rec)?;
            Ok(None)
        }
        st => {
            let (seq, vid) = next_version(txn, st, b, key)?;
            rec.version_id = Some(vid.clone());
            txn.put_version(b, key, seq, rec)?;
            txn.set_current(b, key, Some(rec))?;
            // a write to a suspended bucket answers without a version id
            Ok((st == State::Enabled).then_some(vid))
        }
    }
}

/// Replaces the tags of the current object or of one version; returns the
/// version id (None in a never-versioned bucket).
pub(crate) fn retag(
    txn: &mut Txn<'_>,
    bucket: &BucketRecord,
    key: &str,
    vid: Option<&str>,
    tags: Vec<(String, String)>,
) -> Result<Option<String>, Fail> {
    let b = bucket.name.as_str();
    let current = txn.object(b, key)?;
    let target = match vid {
        None => current.clone().ok_or_else(|| Fail(no_such_key()))?.version_id,
        Some(v) if state(bucket) == State::Never => {
            if v != NULL {
                return Err(Fail(invalid_version()));
            }
            current.clone().ok_or_else(|| Fail(no_such_key()))?;
            None
        }
        Some(v) => Some(v.to_owned()),
    };
    match target.as_deref() {
        None => {
            let mut rec = current.ok_or_else(|| Fail(no_such_key()))?;
            rec.tags = tags;
            txn.put_object(b, key, &rec)?;
            Ok(None)
        }
        Some(v) => {
            let (seq, mut rec) = find_version(txn, b, key, v)?.ok_or_else(|| Fail(no_such_version()))?;
            if rec.delete_marker {
                return Err(Fail(custom(
                    "MethodNotAllowed",
                    StatusCode::METHOD_NOT_ALLOWED,
                    "The specified method is not allowed against this resource.",
                )));
            }
            rec.tags = tags;
            txn.put_version(b, key, seq, &rec)?;
            if current.is_some_and(|c| c.version_id.as_deref() == Some(v)) {
                txn.set_current(b, key, Some(&rec))?;
            }
            Ok(Some(v.to_owned()))
        }
    }
}

/// What a delete did: the version id involved and whether it is (or was)
/// a delete marker.
#[derive(Debug, Default)]
pub(crate) struct Deleted {
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

/// DeleteObject without a version id.
pub(crate) fn delete_current(
    txn: &mut Txn<'_>,
    bucket: &BucketRecord,
    key: &str,
    owner: &str,
) -> Result<Deleted, Fail> {
    let b = bucket.name.as_str();
    let st = state(bucket);
    if st == State::Never {
        txn.delete_object(b, key)?;
        return Ok(Deleted::default());
    }
    let (seq, vid) = next_version(txn, st, b, key)?;
    let marker = ObjectRecord {
        size: 0,
        etag: String::new(),
        last_modified_ms: now_ms(),
        owner: owner.to_owned(),
        version_id: Some(vid.clone()),
        headers: Default::default(),
        tags: Vec::new(),
        checksum: None,
        segments: Vec::new(),
        parts: Vec::new(),
        upload_id: None,
        sse: None,
        delete_marker: true,
        retention: None,
        legal_hold: false,
    };
    txn.put_version(b, key, seq, &marker)?;
    txn.set_current(b, key, None)?;
    Ok(Deleted {
        version_id: Some(vid),
        delete_marker: true,
    })
}

/// DeleteObject with a version id: that version is gone for good.
pub(crate) fn delete_version(
    txn: &mut Txn<'_>,
    bucket: &BucketRecord,
    key: &str,
    vid: &str,
    bypass_governance: bool,
) -> Result<Deleted, Fail> {
    let b = bucket.name.as_str();
    if state(bucket) == State::Never {
        if vid != NULL {
            return Err(Fail(invalid_version()));
        }
        txn.delete_object(b, key)?;
        return Ok(Deleted {
            version_id: Some(NULL.into()),
            delete_marker: false,
        });
    }
    let Some((seq, rec)) = find_version(txn, b, key, vid)? else {
        // deleting a version that does not exist succeeds (AWS)
        return Ok(Deleted {
            version_id: Some(vid.to_owned()),
            delete_marker: false,
        });
    };
    crate::retention::check_delete(&rec, bypass_governance)?;
    txn.delete_version(b, key, seq)?;
    refresh_current(txn, b, key)?;
    Ok(Deleted {
        version_id: Some(vid.to_owned()),
        delete_marker: rec.delete_marker,
    })
}

/// Turns versioning on or off (never back to unversioned). The first time,
/// every current object becomes its key's `null` version, in this commit.
pub(crate) fn set_state(txn: &mut Txn<'_>, bucket: &mut BucketRecord, enabled: bool) -> Result<(), Fail> {
    if state(bucket) == State::Never {
        for (key, mut rec) in txn.current_objects(&bucket.name)? {
            let seq = u64::try_from(rec.last_modified_ms)
                .unwrap_or(0)
                .saturating_mul(1_000_000);
            rec.version_id = Some(NULL.into());
            txn.put_version(&bucket.name, &key, seq, &rec)?;
            txn.set_current(&bucket.name, &key, Some(&rec))?;
        }
    }
    bucket
        .configs
        .insert(CONFIG.into(), if enabled { "Enabled" } else { "Suspended" }.into());
    txn.put_bucket(bucket)?;
    Ok(())
}

fn marker_headers(vid: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
    if let Some(v) = vid.and_then(|v| HeaderValue::from_str(v).ok()) {
        h.insert("x-amz-version-id", v);
    }
    h
}

/// The record a read names: the current object, or a version. The
/// errors are AWS's: NoSuchKey (with the delete-marker headers when the
/// newest version is a marker), NoSuchVersion, 405 for a delete marker's
/// version id, 400 for a malformed id. `b` is the bucket record the
/// request was decided on.
pub(crate) fn read(s3: &Strongroom, b: &BucketRecord, key: &str, vid: Option<&str>) -> S3Result<ObjectRecord> {
    let bucket = b.name.as_str();
    let st = state(b);
    let Some(vid) = vid else {
        if let Some(rec) = store(s3.store.object(bucket, key))? {
            return Ok(rec);
        }
        if st != State::Never
            && let Some((_, newest)) = newest_version(s3, bucket, key)?
            && newest.delete_marker
        {
            let mut e = no_such_key();
            e.set_headers(marker_headers(newest.version_id.as_deref()));
            return Err(e);
        }
        let mut e = no_such_key();
        let mut h = HeaderMap::new();
        h.insert("x-amz-delete-marker", HeaderValue::from_static("false"));
        e.set_headers(h);
        return Err(e);
    };
    if st == State::Never {
        if vid != NULL {
            return Err(invalid_version());
        }
        return store(s3.store.object(bucket, key))?.ok_or_else(no_such_version);
    }
    let rec = if vid == NULL {
        let mut found = None;
        scan_key(s3, bucket, key, |r| {
            if r.version_id.as_deref() == Some(NULL) {
                found = Some(r);
                false
            } else {
                true
            }
        })?;
        found
    } else {
        let seq = seq_of(vid).ok_or_else(invalid_version)?;
        store(s3.store.version(bucket, key, seq))?.filter(|r| r.version_id.as_deref() == Some(vid))
    };
    let rec = rec.ok_or_else(no_such_version)?;
    if rec.delete_marker {
        let mut e = custom(
            "MethodNotAllowed",
            StatusCode::METHOD_NOT_ALLOWED,
            "The specified method is not allowed against this resource.",
        );
        e.set_headers(marker_headers(Some(vid)));
        return Err(e);
    }
    Ok(rec)
}

pub(crate) fn no_such_version() -> S3Error {
    custom(
        "NoSuchVersion",
        StatusCode::NOT_FOUND,
        "The specified version does not exist.",
    )
}

/// Visits the versions of one key, newest first, while `f` returns true.
fn scan_key(s3: &Strongroom, bucket: &str, key: &str, mut f: impl FnMut(ObjectRecord) -> bool) -> S3Result<()> {
    store(s3.store.scan_versions(bucket, key, None, |k, _, r| {
        if k != key {
            return strongroom_store::Visit::Stop;
        }
        if f(r) {
            strongroom_store::Visit::Continue
        } else {
            strongroom_store::Visit::Stop
        }
    }))
}

fn newest_version(s3: &Strongroom, bucket: &str, key: &str) -> S3Result<Option<(u64, ObjectRecord)>> {
    let mut out = None;
    store(s3.store.scan_versions(bucket, key, None, |k, seq, r| {
        if k == key {
            out = Some((seq, r));
        }
        strongroom_store::Visit::Stop
    }))?;
    Ok(out)
}
