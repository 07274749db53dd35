//! Encryption at rest, pure (no I/O): data keys, the streaming package
//! format objects are stored in, and key wrapping. The format is described
//! in `docs/encryption.md`; golden tests below pin it.
//!
//! * An object version (or each part of a multipart upload) is cut into
//!   packages of [`PACKAGE`] plaintext bytes. Each package is sealed with
//!   AES-256-GCM under a *stream key* derived (HKDF-SHA256) from the data
//!   key and a random 128-bit salt of that stream, so no two streams ever
//!   share a key, and the nonce is the package index: nonces never repeat
//!   under one key. The index and a final-package flag are authenticated,
//!   so packages cannot be reordered, dropped, truncated or spliced in from
//!   another object.
//! * Several layers (DSSE: two independent data keys) seal each package
//!   once per layer, inner first.
//! * Data keys are wrapped (AES-256-GCM) under a key-encryption key with a
//!   fresh random salt per wrap, again through HKDF, so a KEK wraps any
//!   number of keys without nonce bookkeeping.
#![forbid(unsafe_code)]

mod gcm;
mod master;
mod package;
mod wrap;

pub use gcm::{GCM_IV, GCM_MAX, GCM_TAG, GcmRange, GcmStream};
pub use master::{KeyringError, MasterKeys, key_id, key_line};

pub use package::{Opener, PACKAGE, Sealer, StreamKeys, TAG, packages, sealed_len, sealed_span};
pub use wrap::{WRAP_FORMAT, keyed_hash, open_bytes, seal_bytes, unwrap, wrap};

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Failures: all of them mean "not authentic" or "no randomness"; none
/// says which byte was wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptError {
    #[error("authentication failed")]
    Auth,
    #[error("malformed encrypted data")]
    Malformed,
    #[error("random source failed")]
    Random,
}

/// A 256-bit secret key (data key, master key, bucket key, KMS key
/// material). Zeroized when dropped; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; 32]);

impl Key {
    /// A fresh random key.
    pub fn random() -> Result<Key, CryptError> {
        let mut k = [0u8; 32];
        fill_random(&mut k)?;
        Ok(Key(k))
    }

    /// Wraps raw bytes (32 of them).
    pub fn from_slice(b: &[u8]) -> Option<Key> {
        <[u8; 32]>::try_from(b).ok().map(Key)
    }

    /// The raw bytes (to hand to a cipher, never to a log).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// True for a key of all zero bytes, which is never accepted as a
    /// master key.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// Fills `buf` from the operating system's random source.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptError> {
    SystemRandom::new().fill(buf).map_err(|_| CryptError::Random)
}

/// A random 128-bit salt.
pub fn random_salt() -> Result<[u8; 16], CryptError> {
    let mut s = [0u8; 16];
    fill_random(&mut s)?;
    Ok(s)
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// An ETag for an object whose ETag must not reveal the MD5 of its
/// plaintext (SSE-C, SSE-KMS, DSSE: AWS documents those ETags as not being
/// the MD5): a keyed hash of the MD5 under the object's data key.
pub fn opaque_etag(data_key: &Key, md5: &[u8]) -> [u8; 16] {
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, data_key.bytes()),
        &[b"strongroom etag v1\0".as_slice(), md5].concat(),
    );
    let mut out = [0u8; 16];
    out.copy_from_slice(&tag.as_ref()[..16]);
    out
}

/// HKDF-SHA256(salt, ikm) expanded to a 256-bit key with `info`.
pub(crate) fn hkdf(ikm: &Key, salt: &[u8], info: &[u8]) -> Result<[u8; 32], CryptError> {
    struct Len32;
    impl ring::hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm.bytes());
    let info = [info];
    let okm = prk.expand(&info, Len32).map_err(|_| CryptError::Malformed)?;
    let mut out = [0u8; 32];
    okm.fill(&mut out).map_err(|_| CryptError::Malformed)?;
    Ok(out)
}
