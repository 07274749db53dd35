//! AES-256-GCM as a stream (NIST SP 800-38D with a 96-bit IV), for
//! formats that seal a whole object as one GCM message — the S3 Encryption
//! Client's — which ring's one-shot API cannot do in flat memory. Built
//! from RustCrypto's AES (AES-NI when present), 32-bit big-endian CTR and
//! GHASH (CLMUL when present); the tests pin it to ring's AES-256-GCM.
//!
//! Decryption hands out plaintext before the tag is checked: a caller must
//! keep it from anyone until [`GcmStream::verify`] says it is authentic.

use aes::Aes256;
use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher, StreamCipherSeek};
use ghash::GHash;
use ghash::universal_hash::UniversalHash;

use zeroize::Zeroize;

use crate::{CryptError, ct_eq};

/// GCM's tag, in bytes (the S3 Encryption Client's 128 bits).
pub const GCM_TAG: usize = 16;
/// GCM's IV, in bytes.
pub const GCM_IV: usize = 12;
/// The longest GCM message: 2^39 - 256 bits (SP 800-38D §5.2.1.1).
pub const GCM_MAX: u64 = (1 << 36) - 32;

type Ctr = ctr::Ctr32BE<Aes256>;

/// One GCM message being sealed or opened.
pub struct GcmStream {
    ctr: Ctr,
    ghash: GHash,
    /// E(K, J0): the tag's mask.
    mask: [u8; 16],
    /// Ciphertext not yet hashed (less than one block).
    partial: [u8; 16],
    partial_len: usize,
    aad_len: u64,
    ct_len: u64,
}

impl GcmStream {
    /// Starts a message under `key` and `iv`, authenticating `aad`.
    pub fn new(key: &[u8; 32], iv: &[u8; GCM_IV], aad: &[u8]) -> GcmStream {
        let aes = Aes256::new(key.into());
        let mut h = aes::Block::default();
        aes.encrypt_block(&mut h);
        let mut ghash = GHash::new(&h);
        // with the tag mask, the hash key would let anyone forge tags
        h.as_mut_slice().zeroize();
        let mut j0 = [0u8; 16];
        j0[..GCM_IV].copy_from_slice(iv);
        j0[15] = 1;
        let mut mask = aes::Block::from(j0);
        aes.encrypt_block(&mut mask);
        ghash.update_padded(aad);
        // the first data block is encrypted under inc32(J0)
        j0[15] = 2;
        GcmStream {
            ctr: Ctr::new(key.into(), &j0.into()),
            ghash,
            mask: mask.into(),
            partial: [0; 16],
            partial_len: 0,
            aad_len: aad.len() as u64,
            ct_len: 0,
        }
    }

    fn count(&mut self, n: usize) -> Result<(), CryptError> {
        self.ct_len = self.ct_len.saturating_add(n as u64);
        if self.ct_len > GCM_MAX {
            return Err(CryptError::Malformed);
        }
        Ok(())
    }

    fn hash(&mut self, mut ct: &[u8]) {
        if self.partial_len > 0 {
            let take = (16 - self.partial_len).min(ct.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&ct[..take]);
            self.partial_len += take;
            ct = &ct[take..];
            if self.partial_len < 16 {
                return;
            }
            let block = aes::Block::from(self.partial);
            self.ghash.update(&[block]);
            self.partial_len = 0;
        }
        let whole = ct.len() / 16 * 16;
        for chunk in ct[..whole].chunks_exact(16) {
            self.ghash.update(&[*aes::Block::from_slice(chunk)]);
        }
        let rest = &ct[whole..];
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    /// Encrypts `buf` in place, the next bytes of the message.
    pub fn encrypt(&mut self, buf: &mut [u8]) -> Result<(), CryptError> {
        self.count(buf.len())?;
        self.ctr.apply_keystream(buf);
        self.hash(buf);
        Ok(())
    }

    /// Decrypts `buf` in place. Not authentic until [`GcmStream::verify`].
    pub fn decrypt(&mut self, buf: &mut [u8]) -> Result<(), CryptError> {
        self.count(buf.len())?;
        self.hash(buf);
        self.ctr.apply_keystream(buf);
        Ok(())
    }

    fn tag(&mut self) -> [u8; GCM_TAG] {
        if self.partial_len > 0 {
            let n = self.partial_len;
            let rest = self.partial;
            self.ghash.update_padded(&rest[..n]);
            self.partial_len = 0;
        }
        let mut lens = [0u8; 16];
        lens[..8].copy_from_slice(&(self.aad_len * 8).to_be_bytes());
        lens[8..].copy_from_slice(&(self.ct_len * 8).to_be_bytes());
        self.ghash.update(&[aes::Block::from(lens)]);
        let s = self.ghash.clone().finalize();
        let mut tag = [0u8; GCM_TAG];
        for (i, t) in tag.iter_mut().enumerate() {
            *t = s[i] ^ self.mask[i];
        }
        tag
    }

    /// The tag that ends a sealed message.
    pub fn finish(mut self) -> [u8; GCM_TAG] {
        self.tag()
    }

    /// Whether the opened message is authentic (constant time).
    pub fn verify(mut self, tag: &[u8]) -> Result<(), CryptError> {
        if ct_eq(&self.tag(), tag) {
            Ok(())
        } else {
            Err(CryptError::Auth)
        }
    }
}

impl Drop for GcmStream {
    fn drop(&mut self) {
        self.mask.zeroize();
        self.partial.zeroize();
    }
}

/// AES-256-CTR over a GCM message's ciphertext from byte `offset`, for
/// ranged reads of formats that allow them *without authentication*: the
/// caller must say so to its user.
pub struct GcmRange {
    ctr: Ctr,
}

impl GcmRange {
    /// None past GCM's longest message.
    pub fn new(key: &[u8; 32], iv: &[u8; GCM_IV], offset: u64) -> Option<GcmRange> {
        if offset > GCM_MAX {
            return None;
        }
        let mut j = [0u8; 16];
        j[..GCM_IV].copy_from_slice(iv);
        j[15] = 2;
        let mut ctr = Ctr::new(key.into(), &j.into());
        ctr.try_seek(offset).ok()?;
        Some(GcmRange { ctr })
    }

    pub fn apply(&mut self, buf: &mut [u8]) {
        self.ctr.apply_keystream(buf);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

    fn ring_seal(key: &[u8; 32], iv: &[u8; 12], aad: &[u8], pt: &[u8]) -> Vec<u8> {
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
        let mut buf = pt.to_vec();
        k.seal_in_place_append_tag(Nonce::assume_unique_for_key(*iv), Aad::from(aad), &mut buf)
            .unwrap();
        buf
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn matches_ring_for_every_length_and_chunking() {
        let key: [u8; 32] = bytes(32, 7).try_into().unwrap();
        let iv: [u8; 12] = bytes(12, 9).try_into().unwrap();
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 1000, 4099] {
            for aad in [&b""[..], b"AES/GCM/NoPadding", &bytes(37, 1)] {
                let pt = bytes(len, 3);
                let want = ring_seal(&key, &iv, aad, &pt);
                for chunk in [1usize, 5, 16, 17, 64, 4096] {
                    let mut s = GcmStream::new(&key, &iv, aad);
                    let mut ct = pt.clone();
                    for c in ct.chunks_mut(chunk) {
                        s.encrypt(c).unwrap();
                    }
                    ct.extend_from_slice(&s.finish());
                    assert_eq!(ct, want, "len {len} chunk {chunk} aad {}", aad.len());
                    let mut o = GcmStream::new(&key, &iv, aad);
                    let mut back = want[..len].to_vec();
                    for c in back.chunks_mut(chunk) {
                        o.decrypt(c).unwrap();
                    }
                    assert_eq!(back, pt);
                    o.verify(&want[len..]).unwrap();
                }
            }
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_fails_verification() {
        let key = [5u8; 32];
        let iv = [6u8; 12];
        let sealed = ring_seal(&key, &iv, b"a", &bytes(50, 0));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x10;
            let mut o = GcmStream::new(&key, &iv, b"a");
            let mut body = bad[..50].to_vec();
            o.decrypt(&mut body).unwrap();
            assert_eq!(o.verify(&bad[50..]), Err(CryptError::Auth), "byte {i}");
        }
        let mut o = GcmStream::new(&key, &iv, b"b");
        let mut body = sealed[..50].to_vec();
        o.decrypt(&mut body).unwrap();
        assert_eq!(o.verify(&sealed[50..]), Err(CryptError::Auth), "other aad");
    }

    #[test]
    fn a_range_decrypts_from_any_offset() {
        let key = [1u8; 32];
        let iv = [2u8; 12];
        let pt = bytes(1000, 4);
        let sealed = ring_seal(&key, &iv, b"", &pt);
        for start in [0usize, 1, 15, 16, 17, 500, 999] {
            let mut part = sealed[start..1000].to_vec();
            GcmRange::new(&key, &iv, start as u64).unwrap().apply(&mut part);
            assert_eq!(part, &pt[start..]);
        }
    }
}
