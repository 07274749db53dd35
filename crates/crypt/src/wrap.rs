//! Key wrapping: `WRAP_FORMAT || salt (32) || AES-256-GCM(kek', key) || tag`
//! where kek' = HKDF-SHA256(salt, kek, "strongroom wrap v1") and the nonce
//! is zero (kek' is used once). `context` is authenticated, binding the
//! wrapped key to what it protects (mode, bucket, master-key id...).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroize;

use crate::{CryptError, Key, fill_random, hkdf};

/// First byte of every wrapped key.
pub const WRAP_FORMAT: u8 = 1;
const SALT: usize = 32;
const INFO: &[u8] = b"strongroom wrap v1";

fn one_use_key(kek: &Key, salt: &[u8]) -> Result<LessSafeKey, CryptError> {
    let mut k = hkdf(kek, salt, INFO)?;
    let unbound = UnboundKey::new(&AES_256_GCM, &k).map_err(|_| CryptError::Malformed);
    k.zeroize();
    Ok(LessSafeKey::new(unbound?))
}

/// Wraps `key` under `kek`, authenticating `context`.
pub fn wrap(kek: &Key, key: &Key, context: &[u8]) -> Result<Vec<u8>, CryptError> {
    let mut salt = [0u8; SALT];
    fill_random(&mut salt)?;
    let sealing = one_use_key(kek, &salt)?;
    let mut buf = key.bytes().to_vec();
    let res = sealing.seal_in_place_append_tag(Nonce::assume_unique_for_key([0; 12]), Aad::from(context), &mut buf);
    if res.is_err() {
        buf.zeroize();
        return Err(CryptError::Malformed);
    }
    let mut out = Vec::with_capacity(1 + SALT + buf.len());
    out.push(WRAP_FORMAT);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Unwraps a key wrapped by [`wrap`] with the same `kek` and `context`.
pub fn unwrap(kek: &Key, blob: &[u8], context: &[u8]) -> Result<Key, CryptError> {
    let Some((&WRAP_FORMAT, rest)) = blob.split_first() else {
        return Err(CryptError::Malformed);
    };
    if rest.len() != SALT + 32 + 16 {
        return Err(CryptError::Malformed);
    }
    let (salt, sealed) = rest.split_at(SALT);
    let opening = one_use_key(kek, salt)?;
    let mut buf = sealed.to_vec();
    let res = opening
        .open_in_place(Nonce::assume_unique_for_key([0; 12]), Aad::from(context), &mut buf)
        .map(|p| Key::from_slice(p));
    buf.zeroize();
    res.map_err(|_| CryptError::Auth)?.ok_or(CryptError::Malformed)
}

/// Seals arbitrary bytes (KMS Encrypt, at most a few KiB) under `kek` in
/// the wrap format: `WRAP_FORMAT || salt (32) || ciphertext || tag`.
pub fn seal_bytes(kek: &Key, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptError> {
    let mut salt = [0u8; SALT];
    fill_random(&mut salt)?;
    let sealing = one_use_key(kek, &salt)?;
    let mut buf = plaintext.to_vec();
    sealing
        .seal_in_place_append_tag(Nonce::assume_unique_for_key([0; 12]), Aad::from(context), &mut buf)
        .map_err(|_| CryptError::Malformed)?;
    let mut out = Vec::with_capacity(1 + SALT + buf.len());
    out.push(WRAP_FORMAT);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens bytes sealed by [`seal_bytes`].
pub fn open_bytes(kek: &Key, blob: &[u8], context: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptError> {
    let Some((&WRAP_FORMAT, rest)) = blob.split_first() else {
        return Err(CryptError::Malformed);
    };
    if rest.len() < SALT + 16 {
        return Err(CryptError::Malformed);
    }
    let (salt, sealed) = rest.split_at(SALT);
    let opening = one_use_key(kek, salt)?;
    let mut buf = zeroize::Zeroizing::new(sealed.to_vec());
    let n = opening
        .open_in_place(Nonce::assume_unique_for_key([0; 12]), Aad::from(context), &mut buf)
        .map_err(|_| CryptError::Auth)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// HMAC-SHA256 of `secret` under `salt`: how a customer-provided key is
/// recognised later without being stored.
pub fn keyed_hash(salt: &[u8], secret: &[u8]) -> [u8; 32] {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt), secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trips_and_binds_context_and_kek() -> Result<(), CryptError> {
        let (kek, key) = (Key::random()?, Key::random()?);
        let blob = wrap(&kek, &key, b"ctx")?;
        assert_eq!(blob.len(), 1 + 32 + 48);
        assert_eq!(unwrap(&kek, &blob, b"ctx")?.bytes(), key.bytes());
        assert_eq!(unwrap(&kek, &blob, b"other").err(), Some(CryptError::Auth));
        assert_eq!(unwrap(&Key::random()?, &blob, b"ctx").err(), Some(CryptError::Auth));
        let mut bad = blob.clone();
        bad[40] ^= 1;
        assert_eq!(unwrap(&kek, &bad, b"ctx").err(), Some(CryptError::Auth));
        assert_eq!(unwrap(&kek, &blob[..50], b"ctx").err(), Some(CryptError::Malformed));
        // two wraps of the same key differ (fresh salt)
        assert_ne!(wrap(&kek, &key, b"ctx")?, blob);
        Ok(())
    }

    #[test]
    fn wrap_format_golden() -> Result<(), CryptError> {
        // a blob made by this format's first version must stay readable
        let kek = Key([7u8; 32]);
        let key = Key([9u8; 32]);
        let salt = [1u8; 32];
        let sealing = one_use_key(&kek, &salt)?;
        let mut buf = key.bytes().to_vec();
        sealing
            .seal_in_place_append_tag(Nonce::assume_unique_for_key([0; 12]), Aad::from(b"g"), &mut buf)
            .map_err(|_| CryptError::Malformed)?;
        let blob = [[WRAP_FORMAT].as_slice(), &salt, &buf].concat();
        let hex: String = blob.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            &hex[..66],
            "010101010101010101010101010101010101010101010101010101010101010101"
        );
        assert_eq!(&hex[66..], GOLDEN_WRAP_TAIL);
        assert_eq!(unwrap(&kek, &blob, b"g")?.bytes(), &[9u8; 32]);
        Ok(())
    }

    // computed independently with Python `cryptography` (HKDF + AESGCM)
    const GOLDEN_WRAP_TAIL: &str =
        "4e203a8410d043a371501b966c634743e96dfc59400db2a670b08b486050b6b0b08d8b2a78f4707922b1e4d9a01efeda";

    #[test]
    fn keyed_hash_is_hmac_sha256() {
        // RFC 4231 test case 2
        let h = keyed_hash(b"Jefe", b"what do ya want for nothing?");
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
