//! Identity and access: who is calling (accounts and their credentials) and
//! whether they may do what they ask.
//!
//! Authentication yields a [`Principal`] that only this crate can construct
//! (it is inserted into the request by the access hook after the signature
//! was verified by s3s with a secret from [`Identities`]). Domain code takes a
//! `&Principal`, so a handler that forgot to authenticate does not compile.
//!
//! Authorization fails closed: anonymous callers are denied, and an account
//! may touch only the buckets it owns (bucket policies come later).
#![forbid(unsafe_code)]

mod access;
mod identities;
mod mfa;
pub mod policy;
pub mod precheck;
pub mod sigv2;
pub mod sigv4;
pub mod totp;

pub use mfa::MfaFailure;
mod verify;

pub use verify::{AuthError, SignedRequest};

pub use access::{AccessSettings, MAX_PRESIGN_SECS, S3AccessHook};

/// Longest pre-signed URL lifetime, seconds.
pub fn access_max_presign() -> u64 {
    MAX_PRESIGN_SECS
}
pub use identities::{AccountInfo, Identities, IdentityError, NewAccount, derive_canonical_id};

/// Filled by the access hook with the S3 operation's name, so the front door
/// can label metrics and logs with it. Insert one into a request's
/// extensions before handing it to s3s.
#[derive(Clone, Debug, Default)]
pub struct OperationSlot(pub std::sync::Arc<std::sync::OnceLock<String>>);

/// Facts about the connection a request arrived on, inserted by the front
/// door into every request's extensions for authorization
/// (aws:SecureTransport, aws:SourceIp, s3:TlsVersion).
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: std::net::SocketAddr,
    pub secure: bool,
    pub tls_version: Option<String>,
}

/// An authenticated caller. Only this crate creates one.
#[derive(Clone, Debug)]
pub struct Principal {
    account_id: String,
    display_name: String,
    canonical_id: String,
    access_key: String,
    _proof: Proof,
}

/// Zero-sized token: holding a `Principal` proves the access hook ran.
#[derive(Clone, Debug)]
struct Proof;

impl Principal {
    /// The 12-digit account id.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }
    /// Display name of the account (Owner.DisplayName).
    pub fn display_name(&self) -> &str {
        &self.display_name
    }
    /// Canonical user id (Owner.ID).
    pub fn canonical_id(&self) -> &str {
        &self.canonical_id
    }
    /// The access key that signed the request.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }
}
