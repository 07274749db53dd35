//! The rules that protect one locked version, whatever operation touches
//! it: a legal hold blocks deletion on its own; an unexpired COMPLIANCE
//! retention can only be extended, never shortened, removed or switched to
//! GOVERNANCE, by anyone; an unexpired GOVERNANCE retention gives way only
//! to the bypass. A leaf: versioning (permanent deletes) and lock (the
//! retention APIs) both ask it, and it asks neither.

use http::StatusCode;
use s3s::S3Error;
use strongroom_store::{ObjectRecord, Retention};

use crate::error::{Fail, custom};
use crate::now_ms;

pub(crate) const GOVERNANCE: &str = "GOVERNANCE";
pub(crate) const COMPLIANCE: &str = "COMPLIANCE";

pub(crate) fn locked_error() -> S3Error {
    custom(
        "AccessDenied",
        StatusCode::FORBIDDEN,
        "Access Denied because object protected by object lock.",
    )
}

/// May this version be deleted for good?
pub(crate) fn check_delete(rec: &ObjectRecord, bypass_governance: bool) -> Result<(), Fail> {
    if rec.legal_hold {
        return Err(Fail(locked_error()));
    }
    if let Some(r) = &rec.retention
        && r.until_ms > now_ms()
        && (r.mode == COMPLIANCE || !bypass_governance)
    {
        return Err(Fail(locked_error()));
    }
    Ok(())
}

/// May `old` retention become `new`? Extending is always allowed; an
/// active COMPLIANCE retention can never be shortened, removed or change
/// mode; an active GOVERNANCE one only with the bypass.
pub(crate) fn check_change(old: Option<&Retention>, new: Option<&Retention>, bypass: bool) -> Result<(), Fail> {
    let Some(old) = old.filter(|o| o.until_ms > now_ms()) else {
        return Ok(());
    };
    let weaker = match new {
        None => true,
        // any change of mode counts: COMPLIANCE never changes, and even
        // GOVERNANCE -> COMPLIANCE needs the bypass (AWS)
        Some(n) => n.until_ms < old.until_ms || n.mode != old.mode,
    };
    if !weaker {
        return Ok(());
    }
    if old.mode == COMPLIANCE || !bypass {
        return Err(Fail(locked_error()));
    }
    Ok(())
}
