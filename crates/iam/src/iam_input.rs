//! What every IAM change checks first, whoever makes it (the IAM API,
//! STS, `strongroom admin`): names, paths and policy documents as AWS
//! validates them, and the IAM API's error. A leaf below the modules that
//! make changes.

use crate::IdentityError;
use crate::directory::Doc;
use crate::policy::Kind;

/// An IAM/STS API error: HTTP status, AWS error code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl IamError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> IamError {
        IamError {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn no_such(what: &str) -> IamError {
        IamError::new(404, "NoSuchEntity", format!("The {what} cannot be found."))
    }
    pub(crate) fn exists(what: &str) -> IamError {
        IamError::new(409, "EntityAlreadyExists", format!("{what} already exists."))
    }
    pub fn validation(m: impl Into<String>) -> IamError {
        IamError::new(400, "ValidationError", m)
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> IamError {
        tracing::error!(error = %e, "IAM change failed");
        IamError::new(
            500,
            "ServiceFailure",
            "The request processing has failed because of an unknown error.",
        )
    }
}

impl From<IdentityError> for IamError {
    fn from(e: IdentityError) -> IamError {
        IamError::internal(e)
    }
}

/// A user, group, role or policy name as AWS allows it.
pub(crate) fn valid_name(n: &str, max: usize) -> Result<(), IamError> {
    if n.is_empty() || n.len() > max || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b)) {
        return Err(IamError::validation(format!(
            "The specified value for name is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_- (at most {max} characters): {n:?}"
        )));
    }
    Ok(())
}

pub(crate) fn doc(text: &str, kind: Kind) -> Result<Doc, IamError> {
    Doc::new(text, kind).map_err(|e| IamError::new(400, "MalformedPolicyDocument", e.0))
}

/// A path must start and end with `/`.
pub(crate) fn valid_path(p: &str) -> Result<(), IamError> {
    if !p.starts_with('/') || !p.ends_with('/') || p.len() > 512 {
        return Err(IamError::validation(format!(
            "The specified value for path is invalid. It must begin and end with / and contain only printable characters: {p:?}"
        )));
    }
    Ok(())
}
