//! Virtual MFA devices of account roots (TOTP, RFC 6238) and the check of
//! an `x-amz-mfa: <serial> <code>` header: the device's secret is sealed
//! under the master key; a code is accepted once (its step must be newer
//! than the last accepted one); one step of drift is tolerated; five
//! failures in a row lock the device for a minute. Failures are logged as
//! audit events (`mfa` target).

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
    failures: u32,
    locked_until: u64,
}

/// Failures before the device locks, and how long it stays locked.
const MAX_FAILURES: u32 = 5;
const LOCK_SECS: u64 = 60;

fn name(account: &str) -> String {
    format!("mfa/{account}")
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
        };
        let serial = rec.serial.clone();
        let bytes = serde_json::to_vec(&rec).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let n = name(account);
        self.store
            .commit(move |t| -> Result<(), StoreError> { t.put_system(&n, &bytes) })
            .await?;
        Ok((serial, secret))
    }

    /// Checks an `x-amz-mfa` header against the account root's device.
    pub async fn check_mfa(&self, account: &str, header: Option<&str>, now_secs: u64) -> Result<(), MfaFailure> {
        let header = header.ok_or(MfaFailure::Missing)?.trim().to_owned();
        let master = self.master.clone();
        let n = name(account);
        let acct = account.to_owned();
        let outcome = self
            .store
            .commit(move |t| -> Result<Result<(), MfaFailure>, StoreError> {
                let Some(raw) = t.system(&n)? else {
                    return Ok(Err(MfaFailure::NoDevice));
                };
                let mut rec: MfaRecord =
                    serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if rec.locked_until > now_secs {
                    return Ok(Err(MfaFailure::Locked));
                }
                let verdict = (|| {
                    let (serial, code) = header.split_once(' ').ok_or(MfaFailure::Malformed)?;
                    if serial != rec.serial {
                        return Err(MfaFailure::WrongSerial);
                    }
                    let (mid, b64) = rec.sealed_secret.split_once(':').ok_or(MfaFailure::NoDevice)?;
                    let mk = master.get(mid).ok_or(MfaFailure::NoDevice)?;
                    let blob = base64_simd::STANDARD
                        .decode_to_vec(b64)
                        .map_err(|_| MfaFailure::NoDevice)?;
                    let secret =
                        strongroom_crypt::open_bytes(mk, &blob, &context(&acct)).map_err(|_| MfaFailure::NoDevice)?;
                    let step = totp::verify(&secret, code.trim(), now_secs).ok_or(MfaFailure::WrongCode)?;
                    if step <= rec.last_step {
                        return Err(MfaFailure::Replayed);
                    }
                    Ok(step)
                })();
                match verdict {
                    Ok(step) => {
                        rec.last_step = step;
                        rec.failures = 0;
                    }
                    Err(_) => {
                        rec.failures += 1;
                        if rec.failures >= MAX_FAILURES {
                            rec.failures = 0;
                            rec.locked_until = now_secs + LOCK_SECS;
                        }
                    }
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
