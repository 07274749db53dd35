//! Object checksums as S3 names them: CRC32, CRC32C, CRC64NVME, SHA1, SHA256
//! (values are base64 of the big-endian digest), plus the MD5 behind ETags.

use crc_fast::{CrcAlgorithm, Digest as Crc};
use md5::Digest as _;
use s3s::S3Error;

use crate::error::custom;

/// A checksum algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algo {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algo {
    pub(crate) const ALL: [Algo; 5] = [Algo::Crc32, Algo::Crc32c, Algo::Crc64Nvme, Algo::Sha1, Algo::Sha256];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Algo::Crc32 => "CRC32",
            Algo::Crc32c => "CRC32C",
            Algo::Crc64Nvme => "CRC64NVME",
            Algo::Sha1 => "SHA1",
            Algo::Sha256 => "SHA256",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Algo, S3Error> {
        Algo::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                custom(
                    "InvalidRequest",
                    http::StatusCode::BAD_REQUEST,
                    "Value for x-amz-checksum-algorithm header is invalid.",
                )
            })
    }

    /// The header (and trailer) carrying this checksum.
    pub(crate) fn header(self) -> &'static str {
        match self {
            Algo::Crc32 => "x-amz-checksum-crc32",
            Algo::Crc32c => "x-amz-checksum-crc32c",
            Algo::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algo::Sha1 => "x-amz-checksum-sha1",
            Algo::Sha256 => "x-amz-checksum-sha256",
        }
    }

    pub(crate) fn is_crc(self) -> bool {
        matches!(self, Algo::Crc32 | Algo::Crc32c | Algo::Crc64Nvme)
    }

    fn crc(self) -> Option<CrcAlgorithm> {
        match self {
            Algo::Crc32 => Some(CrcAlgorithm::Crc32IsoHdlc),
            Algo::Crc32c => Some(CrcAlgorithm::Crc32Iscsi),
            Algo::Crc64Nvme => Some(CrcAlgorithm::Crc64Nvme),
            Algo::Sha1 | Algo::Sha256 => None,
        }
    }

    /// Raw digest length in bytes.
    pub(crate) fn len(self) -> usize {
        match self {
            Algo::Crc32 | Algo::Crc32c => 4,
            Algo::Crc64Nvme => 8,
            Algo::Sha1 => 20,
            Algo::Sha256 => 32,
        }
    }

    pub(crate) fn hasher(self) -> Hasher {
        match self.crc() {
            Some(c) => Hasher::Crc(self, Crc::new(c)),
            None if self == Algo::Sha1 => Hasher::Sha(
                self,
                ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
            ),
            None => Hasher::Sha(self, ring::digest::Context::new(&ring::digest::SHA256)),
        }
    }

    /// Digest of `data` in one go.
    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        h.finish()
    }

    /// CRC of A||B from crc(A), crc(B) and len(B) (full-object multipart).
    pub(crate) fn combine(self, a: &[u8], b: &[u8], b_len: u64) -> Option<Vec<u8>> {
        let c = self.crc()?;
        let n = self.len();
        let ua = be_to_u64(a)?;
        let ub = be_to_u64(b)?;
        let out = crc_fast::checksum_combine(c, ua, ub, b_len);
        let bytes = out.to_be_bytes();
        bytes.get(8 - n..).map(<[u8]>::to_vec)
    }
}

fn be_to_u64(b: &[u8]) -> Option<u64> {
    if b.len() > 8 {
        return None;
    }
    Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// A running checksum.
pub(crate) enum Hasher {
    Crc(Algo, Crc),
    Sha(Algo, ring::digest::Context),
}

impl Hasher {
    pub(crate) fn algo(&self) -> Algo {
        match self {
            Hasher::Crc(a, _) | Hasher::Sha(a, _) => *a,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc(_, c) => c.update(data),
            Hasher::Sha(_, s) => s.update(data),
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc(a, c) => {
                let v = c.finalize().to_be_bytes();
                v.get(8 - a.len()..).map(<[u8]>::to_vec).unwrap_or_default()
            }
            Hasher::Sha(_, s) => s.finish().as_ref().to_vec(),
        }
    }
}

/// MD5 (for ETags and Content-MD5).
pub(crate) struct Md5(md5::Md5);

impl Md5 {
    pub(crate) fn new() -> Md5 {
        Md5(md5::Md5::new())
    }
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub(crate) fn finish(self) -> [u8; 16] {
        self.0.finalize().into()
    }
}

pub(crate) fn b64(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(b)
}

pub(crate) fn unb64(s: &str) -> Option<Vec<u8>> {
    base64_simd::STANDARD.decode_to_vec(s.trim()).ok()
}

pub(crate) fn hex(b: &[u8]) -> String {
    hex_simd::encode_to_string(b, hex_simd::AsciiCase::Lower)
}

/// The 16 bytes of an MD5 hex string (zeros if malformed: ETags are ours).
pub(crate) fn unhex16(s: &str) -> [u8; 16] {
    let v = hex_simd::decode_to_vec(s).unwrap_or_default();
    <[u8; 16]>::try_from(v.as_slice()).unwrap_or([0; 16])
}

/// The digests a document request declares (Content-MD5, any
/// `x-amz-checksum-*`), computed as its body streams past: nothing is
/// buffered, and the verdict is known when the body ends.
pub struct BodyDigests {
    md5: Option<([u8; 16], Md5)>,
    checksums: Vec<(Vec<u8>, Hasher)>,
}

impl BodyDigests {
    /// The digests `headers` declare (None when there are none), or the
    /// AWS error code of a malformed one. `x-amz-checksum-*` headers are
    /// skipped when `checksums` is false (on CompleteMultipartUpload they
    /// are the object's checksum).
    pub fn declared(headers: &http::HeaderMap, checksums: bool) -> Result<Option<BodyDigests>, &'static str> {
        let md5 = match headers.get("content-md5") {
            None => None,
            Some(v) => {
                let want = v
                    .to_str()
                    .ok()
                    .and_then(unb64)
                    .and_then(|d| <[u8; 16]>::try_from(d.as_slice()).ok())
                    .ok_or("InvalidDigest")?;
                Some((want, Md5::new()))
            }
        };
        let mut list = Vec::new();
        for a in Algo::ALL.into_iter().filter(|_| checksums) {
            if let Some(v) = headers.get(a.header()) {
                let want = v.to_str().ok().and_then(unb64).ok_or("InvalidDigest")?;
                list.push((want, a.hasher()));
            }
        }
        Ok((md5.is_some() || !list.is_empty()).then_some(BodyDigests { md5, checksums: list }))
    }

    pub fn update(&mut self, data: &[u8]) {
        if let Some((_, m)) = &mut self.md5 {
            m.update(data);
        }
        for (_, h) in &mut self.checksums {
            h.update(data);
        }
    }

    /// `Err("BadDigest")` unless every declared digest matches.
    pub fn finish(self) -> Result<(), &'static str> {
        if let Some((want, m)) = self.md5
            && m.finish() != want
        {
            return Err("BadDigest");
        }
        for (want, h) in self.checksums {
            if h.finish() != want {
                return Err("BadDigest");
            }
        }
        Ok(())
    }
}

/// Verifies Content-MD5 and any `x-amz-checksum-*` header against a small,
/// fully read body. Returns the AWS error code of the first mismatch.
pub fn verify_small_body(headers: &http::HeaderMap, body: &[u8], checksums: bool) -> Result<(), &'static str> {
    match BodyDigests::declared(headers, checksums)? {
        None => Ok(()),
        Some(mut d) => {
            d.update(body);
            d.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Check values from the CRC catalogue ("123456789") and FIPS 180 ("abc").
    #[test]
    fn known_answers() {
        let check = b"123456789";
        assert_eq!(hex(&Algo::Crc32.digest(check)), "cbf43926");
        assert_eq!(hex(&Algo::Crc32c.digest(check)), "e3069283");
        assert_eq!(hex(&Algo::Crc64Nvme.digest(check)), "ae8b14860a799888");
        assert_eq!(
            hex(&Algo::Sha1.digest(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&Algo::Sha256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut m = Md5::new();
        m.update(b"");
        assert_eq!(hex(&m.finish()), "d41d8cd98f00b204e9800998ecf8427e");
    }

    /// The full-object CRC of a multipart upload equals the CRC of the whole.
    #[test]
    fn combine_equals_whole() {
        for a in [Algo::Crc32, Algo::Crc32c, Algo::Crc64Nvme] {
            let x = b"hello, ";
            let y = b"world";
            let whole = a.digest(b"hello, world");
            let combined = a.combine(&a.digest(x), &a.digest(y), y.len() as u64);
            assert_eq!(combined, Some(whole), "{a:?}");
        }
    }

    #[test]
    fn small_bodies_are_checked_against_their_digests() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "content-md5",
            http::HeaderValue::from_static("XUFAKrxLKna5cZ2REBfFkg=="),
        );
        assert_eq!(verify_small_body(&h, b"hello", true), Ok(()));
        assert_eq!(verify_small_body(&h, b"hellO", true), Err("BadDigest"));
        h.insert("content-md5", http::HeaderValue::from_static("nope"));
        assert_eq!(verify_small_body(&h, b"hello", true), Err("InvalidDigest"));
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-checksum-crc32", http::HeaderValue::from_static("NhCmhg=="));
        assert_eq!(verify_small_body(&h, b"hello", true), Ok(()));
        assert_eq!(verify_small_body(&h, b"world", true), Err("BadDigest"));
    }

    #[test]
    fn algorithm_names_parse_case_insensitively() {
        assert_eq!(Algo::parse("crc64nvme").ok(), Some(Algo::Crc64Nvme));
        assert!(Algo::parse("md5").is_err());
    }
}
