//! Error plumbing between the store and the S3 error codes.

use s3s::{S3Error, S3ErrorCode};
use strongroom_store::{BucketRecord, StoreError, Txn};

/// An S3 error, or a storage error turned into InternalError. Commit
/// closures return this so both kinds travel through the store.
pub(crate) struct Fail(pub S3Error);

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail(internal(&e))
    }
}

impl From<S3Error> for Fail {
    fn from(e: S3Error) -> Self {
        Fail(e)
    }
}

impl From<Fail> for S3Error {
    fn from(f: Fail) -> Self {
        f.0
    }
}

/// Storage failures are logged here and reach the client as a bare
/// InternalError (no internal detail on the wire).
pub(crate) fn internal(e: &dyn std::fmt::Display) -> S3Error {
    tracing::error!(error = %e, "storage error");
    S3Error::with_message(
        S3ErrorCode::InternalError,
        "We encountered an internal error. Please try again.",
    )
}

pub(crate) fn store<T>(r: Result<T, StoreError>) -> Result<T, S3Error> {
    r.map_err(|e| internal(&e))
}

pub(crate) fn no_such_bucket() -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchBucket, "The specified bucket does not exist")
}

/// Inside a commit: the bucket record the request was decided on (same
/// name, same id). A bucket deleted, or deleted and re-created by anyone,
/// since the decision answers NoSuchBucket and the commit changes nothing.
pub(crate) fn decided_in(txn: &Txn<'_>, name: &str, id: &str) -> Result<BucketRecord, Fail> {
    match txn.bucket(name)? {
        Some(b) if b.id == id => Ok(b),
        _ => Err(Fail(no_such_bucket())),
    }
}

pub(crate) fn no_such_key() -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
}

pub(crate) fn no_such_upload() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
}

pub(crate) fn precondition_failed() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

pub(crate) fn custom(code: impl Into<String>, status: http::StatusCode, msg: impl Into<String>) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.into().into()), msg.into());
    e.set_status_code(status);
    e
}
