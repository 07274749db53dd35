//! Key management: the [`KeyService`] S3 encryption asks for data keys,
//! implemented by Strongroom's built-in KMS (keys sealed under the server
//! master key, the AWS KMS JSON 1.1 API on the S3 listeners, request-rate
//! quotas, durable audit log).
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
mod json;
mod keys;
mod ledger;
pub mod policy;
mod quota;
mod remote;
mod service;

pub use audit::{Audit, log_path};
pub use ledger::Ledger;
pub use remote::{RemoteKms, RemoteSettings};
pub use service::{Kms, KmsSettings};

use std::collections::BTreeMap;

use strongroom_crypt::Key;

/// Who asks for a key operation, for key policies, quotas and the audit
/// log.
#[derive(Clone, Debug)]
pub struct Caller {
    /// 12-digit account id.
    pub account_id: String,
    /// The caller's ARN (`arn:aws:iam::<acct>:root`).
    pub arn: String,
    /// Access key that signed the request.
    pub access_key: String,
    /// Source address of the request.
    pub source_ip: String,
    /// Set when S3 calls on the caller's behalf (`s3.amazonaws.com`).
    pub via_service: Option<String>,
    /// For callers other than an account root: whether their identity
    /// policies allow an action on a key ARN. A key policy that names the
    /// account delegates to these (AWS's "Enable IAM policies"); None for
    /// roots, whose identity allows everything.
    pub identity: Option<IdentityCheck>,
}

/// An identity-policy decision: (action, resource ARN, KMS's condition
/// keys of the request) -> what the caller's identity policies say.
#[derive(Clone)]
pub struct IdentityCheck(pub std::sync::Arc<IdentityFn>);

/// The function behind an [`IdentityCheck`].
pub type IdentityFn = dyn Fn(&str, &str, &strongroom_iam::policy::Context) -> Decision + Send + Sync;

pub use strongroom_iam::authz::Decision;

impl Caller {
    /// What the caller's identity policies say of `action` on `resource`
    /// with KMS's condition keys `keys` (roots: Allow).
    pub fn identity_decision(&self, action: &str, resource: &str, keys: &strongroom_iam::policy::Context) -> Decision {
        match &self.identity {
            None => Decision::Allow,
            Some(f) => (f.0)(action, resource, keys),
        }
    }
}

impl std::fmt::Debug for IdentityCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityCheck")
    }
}

/// An encryption context: authenticated, not secret.
pub type Context = BTreeMap<String, String>;

/// A fresh data key: plaintext (for immediate use, then dropped) and the
/// ciphertext blob that only this KMS can decrypt.
pub struct DataKey {
    pub key_arn: String,
    pub plaintext: Key,
    pub ciphertext: Vec<u8>,
}

/// KMS failures, named by their AWS error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    InvalidCiphertext(String),
    #[error("{0}")]
    IncorrectKey(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    Throttled(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidAlias(String),
    #[error("{0}")]
    MalformedPolicy(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    Tagging(String),
    #[error("internal error")]
    Internal(String),
}

impl KmsError {
    /// The AWS error type (`__type` of a JSON error).
    pub fn code(&self) -> &'static str {
        match self {
            KmsError::NotFound(_) => "NotFoundException",
            KmsError::Disabled(_) => "DisabledException",
            KmsError::InvalidState(_) => "KMSInvalidStateException",
            KmsError::InvalidCiphertext(_) => "InvalidCiphertextException",
            KmsError::IncorrectKey(_) => "IncorrectKeyException",
            KmsError::AccessDenied(_) => "AccessDeniedException",
            KmsError::Throttled(_) => "ThrottlingException",
            KmsError::Validation(_) => "ValidationException",
            KmsError::AlreadyExists(_) => "AlreadyExistsException",
            KmsError::InvalidAlias(_) => "InvalidAliasNameException",
            KmsError::MalformedPolicy(_) => "MalformedPolicyDocumentException",
            KmsError::Unsupported(_) => "UnsupportedOperationException",
            KmsError::InvalidArn(_) => "InvalidArnException",
            KmsError::Tagging(_) => "TagException",
            KmsError::Internal(_) => "KMSInternalException",
        }
    }

    /// HTTP status AWS KMS answers with.
    pub fn status(&self) -> u16 {
        match self {
            KmsError::Internal(_) => 500,
            _ => 400,
        }
    }
}

/// What S3 encryption needs from a key service (built-in or external).
#[async_trait::async_trait]
pub trait KeyService: Send + Sync {
    /// GenerateDataKey (AES_256). `key_id` is an id, ARN, alias name or
    /// alias ARN; `None` means the account's `alias/aws/s3`, created on
    /// first use.
    async fn generate_data_key(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        context: &Context,
    ) -> Result<DataKey, KmsError>;

    /// Decrypt of a ciphertext blob made by `generate_data_key`: the key ARN
    /// and the plaintext data key.
    async fn decrypt(&self, caller: &Caller, ciphertext: &[u8], context: &Context) -> Result<(String, Key), KmsError>;

    /// The ARN of a key (resolving aliases), checking that it may be used.
    async fn resolve(&self, caller: &Caller, key_id: Option<&str>) -> Result<String, KmsError>;

    /// Decides one use of the key `key_arn` for `action` by `caller` as the
    /// cryptographic call would (key policy, the caller's identity
    /// policies, the key's state), without making it: S3 asks this on
    /// every request that uses a cached S3 Bucket Key, so the cache saves
    /// the cryptography, never the authorization.
    async fn authorize_use(
        &self,
        caller: &Caller,
        key_arn: &str,
        action: &str,
        context: &Context,
    ) -> Result<(), KmsError>;

    /// Request counts and audit of this service.
    fn ledger(&self) -> &Ledger;
}
