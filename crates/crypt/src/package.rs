//! The package stream. Plaintext of length `n` is cut into
//! `max(1, ceil(n / PACKAGE))` packages; package `i` is stored as
//! `layer_L(... layer_1(plain_i))`, each layer adding a [`TAG`]-byte
//! AES-256-GCM tag, under
//! * key: HKDF-SHA256(salt = stream salt, ikm = data key of the layer,
//!   info = "strongroom package v1"),
//! * nonce: 4 zero bytes || i as big-endian u64,
//! * associated data: "SRP1" || i (u64 BE) || final flag (1 byte) || layer (1 byte).
//!
//! An empty stream is one empty final package (TAG bytes a layer).

use bytes::{Bytes, BytesMut};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroize;

use crate::{CryptError, Key, hkdf};

/// Plaintext bytes a package.
pub const PACKAGE: usize = 64 * 1024;
/// Bytes a layer adds to each package.
pub const TAG: usize = 16;
const INFO: &[u8] = b"strongroom package v1";

/// Number of packages of a stream of `plain_len` bytes.
pub fn packages(plain_len: u64) -> u64 {
    plain_len.div_ceil(PACKAGE as u64).max(1)
}

/// Stored size of a stream of `plain_len` bytes with `layers` layers.
pub fn sealed_len(plain_len: u64, layers: usize) -> u64 {
    plain_len + packages(plain_len) * (TAG * layers) as u64
}

/// The packages covering plaintext `[start, end)`: (first package index,
/// stored offset of it, stored length through the last one).
pub fn sealed_span(plain_len: u64, layers: usize, start: u64, end: u64) -> (u64, u64, u64) {
    let stride = (PACKAGE + TAG * layers) as u64;
    let first = start / PACKAGE as u64;
    let last = if end == 0 { 0 } else { (end - 1) / PACKAGE as u64 };
    let last = last.min(packages(plain_len) - 1);
    let offset = first * stride;
    let stop = ((last + 1) * stride).min(sealed_len(plain_len, layers));
    (first, offset, stop.saturating_sub(offset))
}

/// The stream keys of one stream, one a layer, innermost first.
pub struct StreamKeys(Vec<LessSafeKey>);

impl StreamKeys {
    /// Derives the stream keys from the data keys and the stream's salt.
    pub fn derive(data_keys: &[&Key], salt: &[u8; 16]) -> Result<StreamKeys, CryptError> {
        let mut keys = Vec::with_capacity(data_keys.len());
        for dk in data_keys {
            let mut k = hkdf(dk, salt, INFO)?;
            let unbound = UnboundKey::new(&AES_256_GCM, &k).map_err(|_| CryptError::Malformed);
            k.zeroize();
            keys.push(LessSafeKey::new(unbound?));
        }
        if keys.is_empty() {
            return Err(CryptError::Malformed);
        }
        Ok(StreamKeys(keys))
    }

    /// Number of layers.
    pub fn layers(&self) -> usize {
        self.0.len()
    }

    fn nonce(index: u64) -> Nonce {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&index.to_be_bytes());
        Nonce::assume_unique_for_key(n)
    }

    fn aad(index: u64, last: bool, layer: usize) -> [u8; 14] {
        let mut a = [0u8; 14];
        a[..4].copy_from_slice(b"SRP1");
        a[4..12].copy_from_slice(&index.to_be_bytes());
        a[12] = u8::from(last);
        a[13] = u8::try_from(layer).unwrap_or(u8::MAX);
        a
    }

    /// Seals `buf[start..]` (one package of plaintext) in place, appending
    /// one tag a layer.
    fn seal_at(&self, index: u64, last: bool, buf: &mut BytesMut, start: usize) -> Result<(), CryptError> {
        for (layer, k) in self.0.iter().enumerate() {
            let region = buf.get_mut(start..).ok_or(CryptError::Malformed)?;
            let tag = k
                .seal_in_place_separate_tag(Self::nonce(index), Aad::from(Self::aad(index, last, layer)), region)
                .map_err(|_| CryptError::Malformed)?;
            buf.extend_from_slice(tag.as_ref());
        }
        Ok(())
    }

    /// Opens one stored package in place; returns its plaintext length
    /// (the plaintext is `buf[..len]`).
    fn open_at(&self, index: u64, last: bool, buf: &mut [u8]) -> Result<usize, CryptError> {
        let mut len = buf.len();
        for (layer, k) in self.0.iter().enumerate().rev() {
            let region = buf.get_mut(..len).ok_or(CryptError::Malformed)?;
            len = k
                .open_in_place(Self::nonce(index), Aad::from(Self::aad(index, last, layer)), region)
                .map_err(|_| CryptError::Auth)?
                .len();
        }
        Ok(len)
    }
}

/// Seals a plaintext stream, package by package, into one buffer: sealed
/// packages, then the pending package's plaintext, which is held back
/// until more data (or the end) shows whether it is the last. Sealed bytes
/// are handed out without copying.
pub struct Sealer {
    keys: StreamKeys,
    index: u64,
    buf: BytesMut,
    /// Where the pending (unsealed) plaintext starts in `buf`.
    pending: usize,
}

impl Sealer {
    pub fn new(keys: StreamKeys) -> Sealer {
        Sealer {
            keys,
            index: 0,
            buf: BytesMut::with_capacity(2 * (PACKAGE + 2 * TAG)),
            pending: 0,
        }
    }

    /// Adds plaintext.
    pub fn update(&mut self, mut data: &[u8]) -> Result<(), CryptError> {
        while !data.is_empty() {
            if self.buf.len() - self.pending == PACKAGE {
                self.keys.seal_at(self.index, false, &mut self.buf, self.pending)?;
                self.pending = self.buf.len();
                self.index += 1;
            }
            let n = data.len().min(PACKAGE - (self.buf.len() - self.pending));
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        Ok(())
    }

    /// The packages sealed so far (not yet taken).
    pub fn take(&mut self) -> Bytes {
        let sealed = self.buf.split_to(self.pending).freeze();
        self.pending = 0;
        sealed
    }

    /// Seals the last package; returns everything not yet taken.
    pub fn finish(mut self) -> Result<Bytes, CryptError> {
        let start = self.pending;
        self.keys.seal_at(self.index, true, &mut self.buf, start)?;
        self.pending = self.buf.len();
        Ok(self.take())
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        // pending plaintext does not outlive the sealer
        if let Some(p) = self.buf.get_mut(self.pending..) {
            p.zeroize();
        }
    }
}

/// Opens packages of a stream whose plaintext length is known.
pub struct Opener {
    keys: StreamKeys,
    last: u64,
    plain_len: u64,
}

impl Opener {
    pub fn new(keys: StreamKeys, plain_len: u64) -> Opener {
        Opener {
            keys,
            last: packages(plain_len) - 1,
            plain_len,
        }
    }

    /// Stored bytes of one whole package (the last may be shorter).
    pub fn stride(&self) -> usize {
        PACKAGE + TAG * self.keys.layers()
    }

    /// Opens package `index` from its stored bytes, in place; returns the
    /// plaintext length (the plaintext is `buf[..len]`).
    pub fn open(&self, index: u64, buf: &mut [u8]) -> Result<usize, CryptError> {
        if index > self.last {
            return Err(CryptError::Malformed);
        }
        let plain = if index == self.last {
            self.plain_len - index * PACKAGE as u64
        } else {
            PACKAGE as u64
        };
        if buf.len() as u64 != plain + (TAG * self.keys.layers()) as u64 {
            return Err(CryptError::Malformed);
        }
        self.keys.open_at(index, index == self.last, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_all(keys: StreamKeys, data: &[u8], step: usize) -> Result<Vec<u8>, CryptError> {
        let mut s = Sealer::new(keys);
        let mut out = Vec::new();
        for c in data.chunks(step.max(1)) {
            s.update(c)?;
            out.extend_from_slice(&s.take());
        }
        out.extend_from_slice(&s.finish()?);
        Ok(out)
    }

    fn open_range(
        keys: StreamKeys,
        sealed: &[u8],
        plain_len: u64,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, CryptError> {
        let layers = keys.layers();
        let (first, off, len) = sealed_span(plain_len, layers, start, end);
        let o = Opener::new(keys, plain_len);
        let region = &sealed[off as usize..(off + len) as usize];
        let mut plain = Vec::new();
        for (i, pkg) in region.chunks(o.stride()).enumerate() {
            let mut b = pkg.to_vec();
            let n = o.open(first + i as u64, &mut b)?;
            plain.extend_from_slice(&b[..n]);
        }
        let skip = (start - first * PACKAGE as u64) as usize;
        Ok(plain[skip..skip + (end - start) as usize].to_vec())
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn round_trips_at_package_boundaries_with_one_and_two_layers() -> Result<(), CryptError> {
        let (k1, k2, salt) = (Key::random()?, Key::random()?, [3u8; 16]);
        for layers in [vec![&k1], vec![&k1, &k2]] {
            for n in [0, 1, PACKAGE - 1, PACKAGE, PACKAGE + 1, 3 * PACKAGE + 17] {
                let d = data(n);
                for step in [1000, PACKAGE, 7 * PACKAGE] {
                    let sealed = seal_all(StreamKeys::derive(&layers, &salt)?, &d, step)?;
                    assert_eq!(sealed.len() as u64, sealed_len(n as u64, layers.len()));
                    let all = open_range(StreamKeys::derive(&layers, &salt)?, &sealed, n as u64, 0, n as u64)?;
                    assert_eq!(all, d);
                }
                if n > 2 {
                    let sealed = seal_all(StreamKeys::derive(&layers, &salt)?, &d, 4096)?;
                    for (a, b) in [
                        (1, n as u64 - 1),
                        (n as u64 / 2, n as u64 / 2 + 1),
                        (n as u64 - 1, n as u64),
                    ] {
                        let part = open_range(StreamKeys::derive(&layers, &salt)?, &sealed, n as u64, a, b)?;
                        assert_eq!(part, &d[a as usize..b as usize], "n={n} range {a}..{b}");
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn reorder_truncation_splice_and_wrong_key_fail() -> Result<(), CryptError> {
        let k = Key::random()?;
        let salt = [5u8; 16];
        let n = 3 * PACKAGE;
        let d = data(n);
        let sealed = seal_all(StreamKeys::derive(&[&k], &salt)?, &d, PACKAGE)?;
        let stride = PACKAGE + TAG;
        let o = Opener::new(StreamKeys::derive(&[&k], &salt)?, n as u64);
        // package 1 presented as package 0
        let mut p1 = sealed[stride..2 * stride].to_vec();
        assert_eq!(o.open(0, &mut p1), Err(CryptError::Auth));
        // truncation: the stream cut after two packages, claimed 2 packages long
        let short = Opener::new(StreamKeys::derive(&[&k], &salt)?, 2 * PACKAGE as u64);
        let mut p1 = sealed[stride..2 * stride].to_vec();
        assert_eq!(short.open(1, &mut p1), Err(CryptError::Auth));
        // a package of another stream (other salt) at the same index
        let other = seal_all(StreamKeys::derive(&[&k], &[6u8; 16])?, &d, PACKAGE)?;
        let mut p0 = other[..stride].to_vec();
        assert_eq!(o.open(0, &mut p0), Err(CryptError::Auth));
        // a flipped bit
        let mut p0 = sealed[..stride].to_vec();
        p0[100] ^= 0x80;
        assert_eq!(o.open(0, &mut p0), Err(CryptError::Auth));
        // wrong key
        let wrong = Opener::new(StreamKeys::derive(&[&Key::random()?], &salt)?, n as u64);
        let mut p0 = sealed[..stride].to_vec();
        assert_eq!(wrong.open(0, &mut p0), Err(CryptError::Auth));
        // a layer missing
        let two = Opener::new(StreamKeys::derive(&[&k, &k], &salt)?, n as u64);
        let mut p0 = sealed[..stride].to_vec();
        assert_eq!(two.open(0, &mut p0), Err(CryptError::Malformed));
        Ok(())
    }

    #[test]
    fn ciphertext_does_not_contain_plaintext() -> Result<(), CryptError> {
        let k = Key::random()?;
        let d = b"STRONGROOM-PLAINTEXT-MARKER ".repeat(5000);
        let sealed = seal_all(StreamKeys::derive(&[&k], &[1u8; 16])?, &d, 9999)?;
        assert!(!sealed.windows(27).any(|w| w == b"STRONGROOM-PLAINTEXT-MARKER"));
        Ok(())
    }

    #[test]
    fn package_format_golden() -> Result<(), CryptError> {
        let k = Key([0x11; 32]);
        let sealed = seal_all(StreamKeys::derive(&[&k], &[0x22; 16])?, b"strongroom", 4)?;
        let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GOLDEN_PACKAGE);
        Ok(())
    }

    // computed independently with Python `cryptography` (HKDF + AESGCM)
    const GOLDEN_PACKAGE: &str = "0b3768f6f72bf393eac9d7fbb110571e426d586e0eb393765df6";

    #[test]
    fn spans() {
        let s = (PACKAGE + TAG) as u64;
        assert_eq!(sealed_span(0, 1, 0, 0), (0, 0, TAG as u64));
        assert_eq!(sealed_span(10, 1, 2, 5), (0, 0, 26));
        assert_eq!(
            sealed_span(3 * PACKAGE as u64, 1, PACKAGE as u64, PACKAGE as u64 + 1),
            (1, s, s)
        );
        assert_eq!(
            sealed_span(3 * PACKAGE as u64 + 5, 1, 3 * PACKAGE as u64, 3 * PACKAGE as u64 + 5),
            (3, 3 * s, 21)
        );
    }
}
