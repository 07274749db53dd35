//! Virtual MFA devices of account roots (TOTP, RFC 6238) and the check of
//! an `x-amz-mfa: <serial> <code>` header: the device's secret is sealed
//! under the master key; a code is accepted once (its step must be newer
//! than the last accepted one); one step of drift is tolerated. Failures
//! are counted per caller: five in a row by the device's owner lock the
//! device for a minute; another principal (an IAM user allowed to delete
//! versions, say) locks only itself out after five, and all such callers
//! together get at most [`OTHERS_MAX`] tries a minute, so nobody can lock
//! the account root out of its own device, nor guess its codes quickly.
//! Failures are logged as audit events (`mfa` target).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strongroom_store::StoreError;
use zeroize::Zeroizing;

use crate::{Identities, IdentityError, totp};

#[derive(Clone, Serialize, Deserialize)]
struct MfaRecord {
    account: String,
    serial: String,
    /// `<master key id>:<base64 sealed secret>`
    sealed_secret: String,
    last_step: u64,
    /// The owner's own failures in a row, and its lock.
    failures: u32,
    locked_until: u64,
    /// Other callers' failures in a row and locks, by principal ARN.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    others: BTreeMap<String, Strikes>,
    /// Failures by all other callers in the current minute (start, count).
    #[serde(default)]
    others_window: (u64, u32),
}

#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct Strikes {
    failures: u32,
    locked_until: u64,
}

/// Failures before a caller is locked out, and for how long.
const MAX_FAILURES: u32 = 5;
const LOCK_SECS: u64 = 60;
/// Failures all callers other than the owner may make in a minute.
const OTHERS_MAX: u32 = 20;
/// Other callers remembered per device (the oldest lock is forgotten first).
const OTHERS_KEPT: usize = 256;

/// Who presents a code: the device's owner, or another principal (ARN).
#[derive(Clone, Copy, Debug)]
pub enum MfaCaller<'a> {
    Owner,
    Other(&'a str),
}

fn name(account: &str) -> String {
    format!("mfa/{account}")
}

/// A system record to write: name and bytes.
pub(crate) type Record = (String, Vec<u8>);

/// The record of a device made through the IAM API.
pub(crate) fn device_record(serial: &str) -> String {
    format!("mfa-dev/{serial}")
}

fn context(account: &str) -> Vec<u8> {
    format!("strongroom mfa secret v1\0{account}").into_bytes()
}

/// Why an MFA check failed (all answer 403 AccessDenied to the client).
#[derive(Debug, PartialEq, Eq)]
pub enum MfaFailure {
    Missing,
    NoDevice,
    Malformed,
    WrongSerial,
    WrongCode,
    Replayed,
    Locked,
}

impl Identities {
    /// Creates (or replaces) the virtual MFA device of an account's root;
    /// returns its serial and secret (shown once, to enrol an app).
    pub async fn enable_root_mfa(&self, account: &str) -> Result<(String, Zeroizing<Vec<u8>>), IdentityError> {
        if self.account(account).is_none() {
            return Err(IdentityError::Invalid(format!("no account {account}")));
        }
        let mut secret = Zeroizing::new(vec![0u8; 20]);
        strongroom_crypt::fill_random(&mut secret).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let (mid, mk) = self.master.active();
        let sealed = strongroom_crypt::seal_bytes(mk, &secret, &context(account))
            .map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let rec = MfaRecord {
            account: account.to_owned(),
            serial: format!("arn:aws:iam::{account}:mfa/root-account-mfa-device"),
            sealed_secret: format!("{mid}:{}", base64_simd::STANDARD.encode_to_string(&sealed)),
            last_step: 0,
            failures: 0,
            locked_until: 0,
            others: BTreeMap::new(),
            others_window: (0, 0),
        };
        let serial = rec.serial.clone();
        let bytes = serde_json::to_vec(&rec).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let n = name(account);
        self.store
            .commit(move |t| -> Result<(), StoreError> { t.put_system(&n, &bytes) })
            .await?;
        Ok((serial, secret))
    }

    /// A new secret for a device made through the IAM API: the seed
    /// (shown once) and the record `mfa-dev/<serial>` to write in the same
    /// commit that creates the device (so a refused creation writes none).
    pub(crate) fn new_device_secret(&self, serial: &str) -> Result<(Zeroizing<Vec<u8>>, Record), IdentityError> {
        let mut secret = Zeroizing::new(vec![0u8; 20]);
        strongroom_crypt::fill_random(&mut secret).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let (mid, mk) = self.master.active();
        let sealed = strongroom_crypt::seal_bytes(mk, &secret, &context(serial))
            .map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let rec = MfaRecord {
            account: String::new(),
            serial: serial.to_owned(),
            sealed_secret: format!("{mid}:{}", base64_simd::STANDARD.encode_to_string(&sealed)),
            last_step: 0,
            failures: 0,
            locked_until: 0,
            others: BTreeMap::new(),
            others_window: (0, 0),
        };
        let bytes = serde_json::to_vec(&rec).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        Ok((secret, (device_record(serial), bytes)))
    }

    /// EnableMFADevice: two consecutive codes of the device, newer than
    /// any code it accepted before; both are used up (a later
    /// GetSessionToken, AssumeRole or x-amz-mfa cannot present them again).
    pub(crate) async fn device_codes_consecutive(&self, serial: &str, code1: &str, code2: &str, now_secs: u64) -> bool {
        let n = device_record(serial);
        let master = self.master.clone();
        let ctx = context(serial);
        let (code1, code2) = (code1.trim().to_owned(), code2.trim().to_owned());
        self.store
            .commit(move |t| -> Result<bool, StoreError> {
                let Some(raw) = t.system(&n)? else { return Ok(false) };
                let mut rec: MfaRecord =
                    serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let Some(secret) = open_secret(&master, &rec, &ctx) else {
                    return Ok(false);
                };
                // code1 for the previous (or an earlier) step, code2 for the next one
                let s1 = totp::verify(&secret, &code1, now_secs);
                let s2 = totp::verify(&secret, &code2, now_secs).or(totp::verify(&secret, &code2, now_secs + 30));
                let (Some(a), Some(b)) = (s1, s2) else { return Ok(false) };
                if b != a + 1 || a <= rec.last_step {
                    return Ok(false);
                }
                rec.last_step = b;
                let bytes = serde_json::to_vec(&rec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                t.put_system(&n, &bytes)?;
                Ok(true)
            })
            .await
            .unwrap_or(false)
    }

    /// Checks `<serial> <code>` against a device made through the IAM API.
    pub async fn check_device_mfa(&self, serial: &str, code: &str, now_secs: u64) -> Result<(), MfaFailure> {
        let header = format!("{serial} {code}");
        self.check_record(
            device_record(serial),
            context(serial),
            header,
            now_secs,
            MfaCaller::Owner,
        )
        .await
    }

    /// Checks an `x-amz-mfa` header against the account root's device,
    /// presented by `caller`.
    pub async fn check_mfa(
        &self,
        account: &str,
        header: Option<&str>,
        now_secs: u64,
        caller: MfaCaller<'_>,
    ) -> Result<(), MfaFailure> {
        let header = header.ok_or(MfaFailure::Missing)?.trim().to_owned();
        self.check_record(name(account), context(account), header, now_secs, caller)
            .await
    }

    async fn check_record(
        &self,
        n: String,
        ctx: Vec<u8>,
        header: String,
        now_secs: u64,
        caller: MfaCaller<'_>,
    ) -> Result<(), MfaFailure> {
        let other = match caller {
            MfaCaller::Owner => None,
            MfaCaller::Other(arn) => Some(arn.to_owned()),
        };
        let master = self.master.clone();
        let account = n.clone();
        let account = account.as_str();
        let outcome = self
            .store
            .commit(move |t| -> Result<Result<(), MfaFailure>, StoreError> {
                let Some(raw) = t.system(&n)? else {
                    return Ok(Err(MfaFailure::NoDevice));
                };
                let mut rec: MfaRecord =
                    serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if rec.others_window.0 + LOCK_SECS <= now_secs {
                    rec.others_window = (now_secs, 0);
                }
                let locked = match &other {
                    None => rec.locked_until > now_secs,
                    Some(arn) => {
                        rec.others_window.1 >= OTHERS_MAX
                            || rec.others.get(arn).is_some_and(|s| s.locked_until > now_secs)
                    }
                };
                if locked {
                    return Ok(Err(MfaFailure::Locked));
                }
                let verdict = (|| {
                    let (serial, code) = header.split_once(' ').ok_or(MfaFailure::Malformed)?;
                    if serial != rec.serial {
                        return Err(MfaFailure::WrongSerial);
                    }
                    let secret = open_secret(&master, &rec, &ctx).ok_or(MfaFailure::NoDevice)?;
                    let step = totp::verify(&secret, code.trim(), now_secs).ok_or(MfaFailure::WrongCode)?;
                    if step <= rec.last_step {
                        return Err(MfaFailure::Replayed);
                    }
                    Ok(step)
                })();
                let strike = |s: &mut Strikes| {
                    s.failures += 1;
                    if s.failures >= MAX_FAILURES {
                        s.failures = 0;
                        s.locked_until = now_secs + LOCK_SECS;
                    }
                };
                match (verdict.is_ok(), &other) {
                    (true, None) => {
                        rec.failures = 0;
                    }
                    (true, Some(arn)) => {
                        rec.others.remove(arn);
                    }
                    (false, None) => {
                        let mut s = Strikes {
                            failures: rec.failures,
                            locked_until: rec.locked_until,
                        };
                        strike(&mut s);
                        (rec.failures, rec.locked_until) = (s.failures, s.locked_until);
                    }
                    (false, Some(arn)) => {
                        rec.others_window.1 += 1;
                        strike(rec.others.entry(arn.clone()).or_default());
                        // forget callers whose lock is over, then the oldest locks
                        rec.others.retain(|_, s| s.failures > 0 || s.locked_until > now_secs);
                        while rec.others.len() > OTHERS_KEPT {
                            let oldest = rec
                                .others
                                .iter()
                                .min_by_key(|(_, s)| s.locked_until)
                                .map(|(k, _)| k.clone());
                            match oldest {
                                Some(k) => rec.others.remove(&k),
                                None => break,
                            };
                        }
                    }
                }
                if let Ok(step) = verdict {
                    rec.last_step = step;
                }
                let bytes = serde_json::to_vec(&rec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                t.put_system(&n, &bytes)?;
                Ok(verdict.map(|_| ()))
            })
            .await
            .map_err(|_: StoreError| MfaFailure::NoDevice)?;
        if let Err(f) = &outcome {
            tracing::warn!(target: "mfa", account, failure = ?f, "MFA check failed");
        }
        outcome
    }
}

/// Device seeds sealed under a master key that is no longer the active one,
/// re-sealed under the active key: the records to write at start-up, so a
/// rotated-out master key stops being needed by MFA (as by account and
/// access-key secrets). A seed that does not open is left as it is (its
/// device refuses every code, as before) and reported.
pub(crate) fn reseal_stale(
    store: &strongroom_store::Store,
    master: &strongroom_crypt::MasterKeys,
) -> Result<Vec<Record>, IdentityError> {
    let (active_id, active) = master.active();
    let prefix = format!("{active_id}:");
    let mut out = Vec::new();
    for scan in ["mfa/", "mfa-dev/"] {
        for (n, raw) in store.system_scan(scan)? {
            let mut rec: MfaRecord =
                serde_json::from_slice(&raw).map_err(|e| IdentityError::Invalid(format!("{n}: {e}")))?;
            if rec.sealed_secret.starts_with(&prefix) {
                continue;
            }
            // root devices are sealed to their account, IAM devices to their serial
            let ctx = if scan == "mfa/" {
                context(&rec.account)
            } else {
                context(&rec.serial)
            };
            let Some(secret) = open_secret(master, &rec, &ctx) else {
                tracing::error!(record = %n, "MFA device seed does not open with the keyring: the device refuses every code");
                continue;
            };
            let sealed = strongroom_crypt::seal_bytes(active, &secret, &ctx)
                .map_err(|e| IdentityError::Invalid(e.to_string()))?;
            rec.sealed_secret = format!("{active_id}:{}", base64_simd::STANDARD.encode_to_string(&sealed));
            out.push((
                n,
                serde_json::to_vec(&rec).map_err(|e| IdentityError::Invalid(e.to_string()))?,
            ));
        }
    }
    Ok(out)
}

fn open_secret(master: &strongroom_crypt::MasterKeys, rec: &MfaRecord, ctx: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (mid, b64) = rec.sealed_secret.split_once(':')?;
    let mk = master.get(mid)?;
    let blob = base64_simd::STANDARD.decode_to_vec(b64).ok()?;
    let plain = strongroom_crypt::open_bytes(mk, &blob, ctx).ok()?;
    Some(Zeroizing::new(plain.to_vec()))
}
