//! Content keys: from a data key and an envelope to the AES-256-GCM key,
//! IV and AAD that seal the object; V3's key derivation and commitment.

use ring::hkdf;
use strongroom_crypt::{GcmStream, ct_eq, fill_random};
use zeroize::Zeroizing;

use crate::envelope::{Content, V3_SUITE_BYTES};
use crate::{CommitmentPolicy, CseError, Format};

/// What seals one object's content.
pub struct ContentKey {
    key: Zeroizing<[u8; 32]>,
    iv: [u8; 12],
    aad: &'static [u8],
}

impl ContentKey {
    /// A GCM stream over the object's content.
    pub fn stream(&self) -> GcmStream {
        GcmStream::new(&self.key, &self.iv, self.aad)
    }

    /// AES-CTR from `offset` (ranged reads, unauthenticated).
    pub fn range(&self, offset: u64) -> Option<strongroom_crypt::GcmRange> {
        strongroom_crypt::GcmRange::new(&self.key, &self.iv, offset)
    }
}

/// V3's content IV: every byte 0x01 (the key is unique per object).
const V3_IV: [u8; 12] = [1; 12];

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Result<(), CseError> {
    let info = [&V3_SUITE_BYTES[..], label];
    prk.expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| CseError::Crypto("HKDF failed".into()))
}

/// V3: (content key, commitment) = HKDF-SHA512(salt = message id, data key)
/// expanded with "DERIVEKEY" and "COMMITKEY" after the suite id bytes.
fn derive(data_key: &[u8; 32], message_id: &[u8; 28]) -> Result<(Zeroizing<[u8; 32]>, [u8; 28]), CseError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA512, message_id).extract(data_key);
    let mut key = Zeroizing::new([0u8; 32]);
    expand(&prk, b"DERIVEKEY", &mut key[..])?;
    let mut commitment = [0u8; 28];
    expand(&prk, b"COMMITKEY", &mut commitment)?;
    Ok((key, commitment))
}

/// A fresh content key for a new object in `format`.
pub fn new_content(format: Format, data_key: &[u8; 32]) -> Result<(ContentKey, Content), CseError> {
    match format {
        Format::V2 => {
            let mut iv = [0u8; 12];
            fill_random(&mut iv).map_err(|_| CseError::Crypto("no randomness".into()))?;
            let ck = ContentKey {
                key: Zeroizing::new(*data_key),
                iv,
                aad: b"",
            };
            Ok((ck, Content::V2 { iv }))
        }
        Format::V3 => {
            let mut message_id = [0u8; 28];
            fill_random(&mut message_id).map_err(|_| CseError::Crypto("no randomness".into()))?;
            let (key, commitment) = derive(data_key, &message_id)?;
            let ck = ContentKey {
                key,
                iv: V3_IV,
                aad: &V3_SUITE_BYTES,
            };
            Ok((ck, Content::V3 { message_id, commitment }))
        }
    }
}

/// Whether `policy` lets an object in this format be read.
pub fn check_policy(content: &Content, policy: CommitmentPolicy) -> Result<(), CseError> {
    if matches!(content, Content::V2 { .. }) && policy == CommitmentPolicy::RequireEncryptRequireDecrypt {
        return Err(CseError::Policy(
            "the object is in the V2 format, without key commitment, and the commitment policy \
             REQUIRE_ENCRYPT_REQUIRE_DECRYPT refuses it (use --commitment-policy require-encrypt-allow-decrypt)"
                .into(),
        ));
    }
    Ok(())
}

/// The content key of a stored object, after the commitment policy and
/// (V3) the key commitment are checked.
pub fn open_content(content: &Content, data_key: &[u8; 32], policy: CommitmentPolicy) -> Result<ContentKey, CseError> {
    check_policy(content, policy)?;
    match content {
        Content::V2 { iv } => Ok(ContentKey {
            key: Zeroizing::new(*data_key),
            iv: *iv,
            aad: b"",
        }),
        Content::V3 { message_id, commitment } => {
            let (key, expected) = derive(data_key, message_id)?;
            if !ct_eq(&expected, commitment) {
                return Err(CseError::Crypto(
                    "the key commitment does not match the data key: the envelope was tampered with".into(),
                ));
            }
            Ok(ContentKey {
                key,
                iv: V3_IV,
                aad: &V3_SUITE_BYTES,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// AWS's known-answer vector (aws-sdk-ruby
    /// gems/aws-sdk-s3/spec/fixtures/encryption/kdf_kat.json).
    #[test]
    fn v3_key_derivation_matches_aws_known_answers() {
        let dk: [u8; 32] = hex("80d90dc4cc7e77d8a6332efa44eba56230a7fe7b89af37d1e501ab2e07c0a163")
            .try_into()
            .unwrap();
        let mid: [u8; 28] = hex("b8ea76bed24c7b85382a148cb9dcd1cfdfb765f55ded4dfa6e0c4c79")
            .try_into()
            .unwrap();
        let (key, commitment) = derive(&dk, &mid).unwrap();
        assert_eq!(
            key.to_vec(),
            hex("6dd14f546cc006e639126e83f5d4d1b118576bb5df97f38c6fb3a1db87bbc338")
        );
        assert_eq!(
            commitment.to_vec(),
            hex("f89818bc0a346d3a3426b68e9509b6b2ae5fe1f904aa329fb73625db")
        );
    }

    #[test]
    fn another_data_key_fails_the_commitment_before_any_decryption() {
        let (_, content) = new_content(Format::V3, &[1; 32]).unwrap();
        assert!(open_content(&content, &[1; 32], CommitmentPolicy::RequireEncryptRequireDecrypt).is_ok());
        assert!(matches!(
            open_content(&content, &[2; 32], CommitmentPolicy::RequireEncryptRequireDecrypt),
            Err(CseError::Crypto(_))
        ));
    }

    #[test]
    fn the_strictest_policy_refuses_v2() {
        let (_, content) = new_content(Format::V2, &[1; 32]).unwrap();
        assert!(matches!(
            open_content(&content, &[1; 32], CommitmentPolicy::RequireEncryptRequireDecrypt),
            Err(CseError::Policy(_))
        ));
        assert!(open_content(&content, &[1; 32], CommitmentPolicy::RequireEncryptAllowDecrypt).is_ok());
    }
}
