//! Keyrings: where data keys come from and how they are wrapped — KMS
//! (`kms+context`, the encryption context bound), a raw AES key
//! (`AES/GCM`: nonce ‖ ciphertext ‖ tag, the content algorithm bound as
//! AAD) or an RSA key pair (`RSA-OAEP-SHA1` over length ‖ key ‖ algorithm),
//! as AWS's clients do.

use std::collections::BTreeMap;

use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use strongroom_client::Kms;
use strongroom_crypt::fill_random;
use zeroize::Zeroizing;

use crate::envelope::{Envelope, V2_CEK_ALG, V3_SUITE, Wrap};
use crate::{CseError, Format};

/// The encryption-context key AWS's clients reserve for the algorithm.
pub const RESERVED_CEK_ALG: &str = "aws:x-amz-cek-alg";
/// The key V1 clients put in the context (ignored when comparing).
const RESERVED_CMK_ID: &str = "kms_cmk_id";

/// A source of data keys.
pub enum Keyring {
    /// KMS: data keys from GenerateDataKey under `key_id` (required to
    /// encrypt; when decrypting, KMS refuses a key wrapped by another).
    /// None decrypts with whatever key the object names ("discovery"),
    /// which the command line allows only when asked to: anyone who may
    /// write the bucket and use some KMS key could plant objects that
    /// authenticate.
    Kms { kms: Box<Kms>, key_id: Option<String> },
    /// An RSA key pair of the user's (the public key suffices to encrypt).
    Rsa {
        public: Box<rsa::RsaPublicKey>,
        private: Option<Box<rsa::RsaPrivateKey>>,
        description: BTreeMap<String, String>,
    },
    /// A raw AES key (128 or 256 bits) of the user's.
    Aes {
        key: Zeroizing<Vec<u8>>,
        /// The material description stored with each object.
        description: BTreeMap<String, String>,
    },
}

/// A context must be US-ASCII (S3 would encode anything else, and AWS's
/// clients refuse it) and must not use the keys the clients reserve.
fn check_context(context: &BTreeMap<String, String>) -> Result<(), CseError> {
    for (k, v) in context {
        if !k.is_ascii() || !v.is_ascii() || k.chars().chain(v.chars()).any(|c| c.is_ascii_control()) {
            return Err(CseError::Context(
                "keys and values must be printable US-ASCII (as AWS's clients require)".into(),
            ));
        }
        if k == RESERVED_CEK_ALG || k == RESERVED_CMK_ID {
            return Err(CseError::Context(format!(
                "{k} is a reserved key for the S3 encryption client"
            )));
        }
    }
    Ok(())
}

/// Raw keys take no encryption context (they store a material description).
fn no_context(context: &BTreeMap<String, String>) -> Result<(), CseError> {
    if context.is_empty() {
        Ok(())
    } else {
        Err(CseError::Key(
            "an encryption context needs a KMS key; raw keys store a material description".into(),
        ))
    }
}

/// The algorithm string bound into wrapping, by format.
fn bound(format: Format) -> &'static str {
    match format {
        Format::V2 => V2_CEK_ALG,
        Format::V3 => V3_SUITE,
    }
}

fn aes_key(key: &[u8]) -> Result<LessSafeKey, CseError> {
    let alg = match key.len() {
        32 => &AES_256_GCM,
        16 => &AES_128_GCM,
        n => {
            return Err(CseError::Key(format!(
                "an AES wrapping key must be 16 or 32 bytes, not {n}"
            )));
        }
    };
    UnboundKey::new(alg, key)
        .map(LessSafeKey::new)
        .map_err(|_| CseError::Key("unusable AES key".into()))
}

/// The wrapped data key and what to store with it.
pub struct NewKey {
    pub data_key: Zeroizing<[u8; 32]>,
    pub edk: Vec<u8>,
    pub wrap: Wrap,
    pub context: BTreeMap<String, String>,
}

impl Keyring {
    /// A fresh data key for an object in `format`; `context` is the user's
    /// encryption context (KMS only).
    pub async fn new_key(&self, format: Format, context: &BTreeMap<String, String>) -> Result<NewKey, CseError> {
        match self {
            Keyring::Kms { kms, key_id } => {
                check_context(context)?;
                let mut ctx = context.clone();
                ctx.insert(RESERVED_CEK_ALG.into(), bound(format).into());
                let key_id = key_id
                    .as_deref()
                    .ok_or_else(|| CseError::Key("encrypting with KMS needs a key id (--kms-key-id)".into()))?;
                let dk = kms
                    .generate_data_key(key_id, &ctx)
                    .await
                    .map_err(|e| CseError::Kms(e.to_string()))?;
                let data_key = <[u8; 32]>::try_from(dk.plaintext.as_slice())
                    .map(Zeroizing::new)
                    .map_err(|_| CseError::Kms("KMS answered a data key that is not 256 bits".to_owned()))?;
                Ok(NewKey {
                    data_key,
                    edk: dk.ciphertext,
                    wrap: Wrap::KmsContext,
                    context: ctx,
                })
            }
            Keyring::Rsa {
                public, description, ..
            } => {
                no_context(context)?;
                let mut data_key = Zeroizing::new([0u8; 32]);
                fill_random(&mut data_key[..]).map_err(|_| CseError::Crypto("no randomness".into()))?;
                let edk = rsa_wrap(public, &data_key, bound(format))?;
                Ok(NewKey {
                    data_key,
                    edk,
                    wrap: Wrap::RsaOaepSha1,
                    context: description.clone(),
                })
            }
            Keyring::Aes { key, description } => {
                no_context(context)?;
                let mut data_key = Zeroizing::new([0u8; 32]);
                fill_random(&mut data_key[..]).map_err(|_| CseError::Crypto("no randomness".into()))?;
                let mut nonce = [0u8; 12];
                fill_random(&mut nonce).map_err(|_| CseError::Crypto("no randomness".into()))?;
                // room for the tag: no reallocation leaves a copy of the key behind
                let mut buf = Zeroizing::new(Vec::with_capacity(32 + 16));
                buf.extend_from_slice(&data_key[..]);
                aes_key(key)?
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(bound(format).as_bytes()),
                        &mut *buf,
                    )
                    .map_err(|_| CseError::Crypto("AES-GCM key wrap failed".into()))?;
                let mut edk = nonce.to_vec();
                edk.extend_from_slice(&buf[..]);
                Ok(NewKey {
                    data_key,
                    edk,
                    wrap: Wrap::AesGcm,
                    context: description.clone(),
                })
            }
        }
    }

    /// The data key of a stored object. With KMS, the stored context minus
    /// the reserved keys must equal `context` (the one the user expects),
    /// and its algorithm entry must match the envelope's format, before KMS
    /// is asked.
    pub async fn unwrap(
        &self,
        env: &Envelope,
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<[u8; 32]>, CseError> {
        let format = match env.content {
            crate::envelope::Content::V2 { .. } => Format::V2,
            crate::envelope::Content::V3 { .. } => Format::V3,
        };
        match self {
            Keyring::Kms { kms, key_id } => {
                if env.wrap != Wrap::KmsContext {
                    return Err(CseError::Key(format!(
                        "the object's data key is wrapped with {}, not KMS",
                        env.wrap.v2_name()
                    )));
                }
                check_context(context)?;
                if env.context.get(RESERVED_CEK_ALG).map(String::as_str) != Some(bound(format)) {
                    return Err(CseError::Envelope(format!(
                        "the stored encryption context does not bind the content algorithm ({RESERVED_CEK_ALG})"
                    )));
                }
                let stored: BTreeMap<&String, &String> = env
                    .context
                    .iter()
                    .filter(|(k, _)| k.as_str() != RESERVED_CEK_ALG && k.as_str() != RESERVED_CMK_ID)
                    .collect();
                let expected: BTreeMap<&String, &String> = context.iter().collect();
                if stored != expected {
                    return Err(CseError::Context(
                        "the object's encryption context is not the one given (--encryption-context)".into(),
                    ));
                }
                let plain = kms
                    .decrypt(&env.edk, key_id.as_deref(), &env.context)
                    .await
                    .map_err(|e| CseError::Kms(e.to_string()))?;
                <[u8; 32]>::try_from(plain.as_slice())
                    .map(Zeroizing::new)
                    .map_err(|_| CseError::Kms("KMS answered a data key that is not 256 bits".to_owned()))
            }
            Keyring::Rsa { private, .. } => {
                no_context(context)?;
                if env.wrap != Wrap::RsaOaepSha1 {
                    return Err(CseError::Key(format!(
                        "the object's data key is wrapped with {}, not an RSA key",
                        env.wrap.v2_name()
                    )));
                }
                let private = private.as_ref().ok_or_else(|| {
                    CseError::Key("decrypting needs the RSA private key, not only the public one".into())
                })?;
                rsa_unwrap(private, &env.edk, bound(format))
            }
            Keyring::Aes { key, .. } => {
                no_context(context)?;
                if env.wrap != Wrap::AesGcm {
                    return Err(CseError::Key(format!(
                        "the object's data key is wrapped with {}, not a raw AES key",
                        env.wrap.v2_name()
                    )));
                }
                if env.edk.len() != 12 + 32 + 16 {
                    return Err(CseError::Envelope("the wrapped data key has the wrong length".into()));
                }
                let (nonce, sealed) = env.edk.split_at(12);
                let nonce =
                    Nonce::try_assume_unique_for_key(nonce).map_err(|_| CseError::Envelope("bad nonce".into()))?;
                let mut buf = Zeroizing::new(sealed.to_vec());
                let plain = aes_key(key)?
                    .open_in_place(nonce, Aad::from(bound(format).as_bytes()), &mut buf)
                    .map_err(|_| {
                        CseError::Key("the AES key does not open the object's data key (wrong key?)".into())
                    })?;
                <[u8; 32]>::try_from(&plain[..])
                    .map(Zeroizing::new)
                    .map_err(|_| CseError::Envelope("the data key is not 256 bits".into()))
            }
        }
    }
}

/// RSA-OAEP-SHA1 as AWS's clients wrap: OAEP with SHA-1 and MGF1-SHA-1,
/// empty label, over `0x20 ‖ data key ‖ algorithm string`.
fn rsa_wrap(public: &rsa::RsaPublicKey, data_key: &[u8; 32], alg: &str) -> Result<Vec<u8>, CseError> {
    let mut plain = Zeroizing::new(Vec::with_capacity(1 + 32 + alg.len()));
    plain.push(32);
    plain.extend_from_slice(data_key);
    plain.extend_from_slice(alg.as_bytes());
    public
        .encrypt(&mut rand_core::OsRng, rsa::Oaep::new::<sha1::Sha1>(), &plain)
        .map_err(|e| CseError::Crypto(format!("RSA-OAEP key wrap failed: {e}")))
}

fn rsa_unwrap(private: &rsa::RsaPrivateKey, edk: &[u8], alg: &str) -> Result<Zeroizing<[u8; 32]>, CseError> {
    // blinded: the private-key operation's timing does not follow the input
    let plain = Zeroizing::new(
        private
            .decrypt_blinded(&mut rand_core::OsRng, rsa::Oaep::new::<sha1::Sha1>(), edk)
            .map_err(|_| CseError::Key("the RSA key does not open the object's data key (wrong key?)".into()))?,
    );
    if plain.len() != 1 + 32 + alg.len() || plain[0] != 32 {
        return Err(CseError::Envelope("the RSA-wrapped data key is malformed".into()));
    }
    // the key is bound to the content algorithm: no reuse across formats
    if !strongroom_crypt::ct_eq(&plain[33..], alg.as_bytes()) {
        return Err(CseError::Envelope(
            "the RSA-wrapped data key is bound to another algorithm".into(),
        ));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&plain[1..33]);
    Ok(key)
}

/// Reads an RSA key from PEM: a private key (PKCS#8 or PKCS#1; encrypts and
/// decrypts) or a public key (SPKI or PKCS#1; encrypts only).
pub fn rsa_keyring_from_pem(pem: &str) -> Result<Keyring, CseError> {
    use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
    let bad = || CseError::Key("not an RSA key in PEM (PKCS#8, PKCS#1 or SPKI)".into());
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .ok()
        .or_else(|| rsa::RsaPrivateKey::from_pkcs1_pem(pem).ok());
    let public = match &private {
        Some(p) => p.to_public_key(),
        None => rsa::RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|_| bad())?,
    };
    use rsa::traits::PublicKeyParts;
    if public.size() < 256 {
        return Err(CseError::Key("RSA keys shorter than 2048 bits are refused".into()));
    }
    Ok(Keyring::Rsa {
        public: Box::new(public),
        private: private.map(Box::new),
        description: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn rsa_wrap_binds_the_algorithm() {
        let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let public = private.to_public_key();
        let edk = rsa_wrap(&public, &[7; 32], V3_SUITE).unwrap();
        assert_eq!(*rsa_unwrap(&private, &edk, V3_SUITE).unwrap(), [7; 32]);
        assert!(
            rsa_unwrap(&private, &edk, V2_CEK_ALG).is_err(),
            "a V3 key is not a V2 key"
        );
    }
}
