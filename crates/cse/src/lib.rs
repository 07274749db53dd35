//! Client-side encryption that interoperates with AWS's Amazon S3
//! Encryption Clients: objects are encrypted before upload and decrypted
//! after download, so the server only ever sees ciphertext. The object
//! format is AWS's — V3 (AES-256-GCM with HKDF-SHA512 key derivation and
//! key commitment, `ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY`) by default, V2
//! (`AES/GCM/NoPadding`) where the commitment policy allows — with the
//! envelope in object metadata or an instruction file, and data keys from
//! KMS (`kms+context`), a raw AES key (`AES/GCM`) or an RSA key pair
//! (`RSA-OAEP-SHA1`).
//!
//! Talks to any S3 and KMS endpoint through `strongroom-client`; depends
//! on nothing of the server.
#![forbid(unsafe_code)]

pub mod content;
pub mod envelope;
mod keyring;
mod transfer;

pub use envelope::{Content, Envelope, INSTRUCTION_SUFFIX, Located, Wrap};
pub use keyring::{Keyring, RESERVED_CEK_ALG, rsa_keyring_from_pem};
pub use transfer::{Cse, Description, Range, describe, s3_url};

/// The content format an object is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `AES/GCM/NoPadding`, no key commitment (AWS's V2 clients).
    V2,
    /// `ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY` (AWS's current clients).
    V3,
}

/// What may be written and read, as AWS's clients name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitmentPolicy {
    /// Write V2 (no commitment); read V2 and V3.
    ForbidEncryptAllowDecrypt,
    /// Write V3; read V2 and V3.
    RequireEncryptAllowDecrypt,
    /// Write V3; read only V3 (the default, as AWS's).
    #[default]
    RequireEncryptRequireDecrypt,
}

impl CommitmentPolicy {
    /// The format this policy writes.
    pub fn writes(self) -> Format {
        match self {
            CommitmentPolicy::ForbidEncryptAllowDecrypt => Format::V2,
            _ => Format::V3,
        }
    }
}

/// Why an operation failed. None of them ever comes with plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CseError {
    #[error("S3: {0}")]
    S3(#[from] strongroom_client::ClientError),
    #[error("KMS: {0}")]
    Kms(String),
    #[error("key: {0}")]
    Key(String),
    #[error("encryption context: {0}")]
    Context(String),
    #[error("envelope: {0}")]
    Envelope(String),
    #[error("refused by the commitment policy: {0}")]
    Policy(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("decryption failed: {0}")]
    Crypto(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    NotEncrypted(String),
}
