//! The envelope: what an S3 Encryption Client stores beside the
//! ciphertext (the wrapped data key, how it is wrapped, the IV or message
//! id and key commitment, the KMS encryption context or the material
//! description), in object metadata or an instruction file. Names and
//! encodings are AWS's (see docs/client-side-encryption.md); the format is
//! the contract with AWS's own clients.

use std::collections::BTreeMap;

use crate::CseError;

/// The content-encryption format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// `AES/GCM/NoPadding`: the data key encrypts directly, under a random
    /// 12-byte IV, no AAD; no key commitment.
    V2 { iv: [u8; 12] },
    /// `ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY` (115): the content key is
    /// derived from the data key and a random 28-byte message id, and a
    /// 28-byte commitment to the data key is stored and checked.
    V3 { message_id: [u8; 28], commitment: [u8; 28] },
}

/// How the data key is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    /// KMS, the encryption context bound (`kms+context`).
    KmsContext,
    /// A raw AES key, AES-GCM (`AES/GCM`).
    AesGcm,
    /// An RSA key pair, OAEP with SHA-1 (`RSA-OAEP-SHA1`).
    RsaOaepSha1,
}

impl Wrap {
    pub fn v2_name(self) -> &'static str {
        match self {
            Wrap::KmsContext => "kms+context",
            Wrap::AesGcm => "AES/GCM",
            Wrap::RsaOaepSha1 => "RSA-OAEP-SHA1",
        }
    }

    fn v3_code(self) -> &'static str {
        match self {
            Wrap::AesGcm => "02",
            Wrap::KmsContext => "12",
            Wrap::RsaOaepSha1 => "22",
        }
    }

    fn from_v2(s: &str) -> Result<Wrap, CseError> {
        match s {
            "kms+context" => Ok(Wrap::KmsContext),
            "AES/GCM" => Ok(Wrap::AesGcm),
            "RSA-OAEP-SHA1" => Ok(Wrap::RsaOaepSha1),
            "kms" | "AESWrap" | "RSA/ECB/OAEPWithSHA-256AndMGF1Padding" => Err(CseError::Unsupported(format!(
                "legacy key wrapping {s:?} (not read by this client)"
            ))),
            other => Err(CseError::Envelope(format!("unknown key wrapping {other:?}"))),
        }
    }

    fn from_v3(s: &str) -> Result<Wrap, CseError> {
        match s {
            "02" => Ok(Wrap::AesGcm),
            "12" => Ok(Wrap::KmsContext),
            "22" => Ok(Wrap::RsaOaepSha1),
            other => Err(CseError::Envelope(format!("unknown key wrapping code {other:?}"))),
        }
    }
}

/// V2's content algorithm name, also bound into V2 key wrapping.
pub const V2_CEK_ALG: &str = "AES/GCM/NoPadding";
/// V3's algorithm suite id as stored (`x-amz-c`) and bound into wrapping.
pub const V3_SUITE: &str = "115";
/// The suite id as raw bytes: V3's content AAD and HKDF info prefix.
pub const V3_SUITE_BYTES: [u8; 2] = [0x00, 0x73];
/// The suffix of instruction files.
pub const INSTRUCTION_SUFFIX: &str = ".instruction";

/// A parsed envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub content: Content,
    pub wrap: Wrap,
    /// The wrapped data key.
    pub edk: Vec<u8>,
    /// KMS: the encryption context as stored (with `aws:x-amz-cek-alg`);
    /// raw keys: the material description.
    pub context: BTreeMap<String, String>,
}

/// Where a reader finds the envelope.
#[derive(Debug)]
pub enum Located {
    Found(Envelope),
    /// Part or all of it is in `<key>.instruction`: read that and call
    /// [`Envelope::read`] again with it.
    NeedsInstruction,
}

fn b64(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(b)
}

fn unb64<const N: usize>(m: &BTreeMap<String, String>, name: &str) -> Result<[u8; N], CseError> {
    let v = unb64_vec(m, name)?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| CseError::Envelope(format!("{name} is {} bytes, not {N}", v.len())))
}

fn unb64_vec(m: &BTreeMap<String, String>, name: &str) -> Result<Vec<u8>, CseError> {
    let v = m
        .get(name)
        .ok_or_else(|| CseError::Envelope(format!("{name} is missing")))?;
    base64_simd::STANDARD
        .decode_to_vec(v.trim())
        .map_err(|_| CseError::Envelope(format!("{name} is not base64")))
}

fn json_map(m: &BTreeMap<String, String>, name: &str) -> Result<BTreeMap<String, String>, CseError> {
    match m.get(name) {
        None => Ok(BTreeMap::new()),
        Some(v) => {
            serde_json::from_str(v).map_err(|_| CseError::Envelope(format!("{name} is not a JSON object of strings")))
        }
    }
}

fn to_json(m: &BTreeMap<String, String>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".to_owned())
}

/// Keys only V2 (and V1) envelopes have.
const V2_KEYS: [&str; 7] = [
    "x-amz-key",
    "x-amz-key-v2",
    "x-amz-iv",
    "x-amz-cek-alg",
    "x-amz-wrap-alg",
    "x-amz-matdesc",
    "x-amz-tag-len",
];
/// Keys only V3 envelopes have.
const V3_KEYS: [&str; 7] = [
    "x-amz-c", "x-amz-3", "x-amz-w", "x-amz-d", "x-amz-i", "x-amz-t", "x-amz-m",
];
/// V3 keys that must stay in object metadata.
const V3_IN_OBJECT: [&str; 3] = ["x-amz-c", "x-amz-d", "x-amz-i"];

impl Envelope {
    /// Every key, as object metadata (names without `x-amz-meta-`).
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let ctx = to_json(&self.context);
        match &self.content {
            Content::V2 { iv } => {
                m.insert("x-amz-key-v2".into(), b64(&self.edk));
                m.insert("x-amz-iv".into(), b64(iv));
                m.insert("x-amz-cek-alg".into(), V2_CEK_ALG.into());
                m.insert("x-amz-tag-len".into(), "128".into());
                m.insert("x-amz-wrap-alg".into(), self.wrap.v2_name().into());
                m.insert("x-amz-matdesc".into(), ctx);
            }
            Content::V3 { message_id, commitment } => {
                m.insert("x-amz-c".into(), V3_SUITE.into());
                m.insert("x-amz-3".into(), b64(&self.edk));
                m.insert("x-amz-w".into(), self.wrap.v3_code().into());
                m.insert("x-amz-d".into(), b64(commitment));
                m.insert("x-amz-i".into(), b64(message_id));
                let name = if self.wrap == Wrap::KmsContext {
                    "x-amz-t"
                } else {
                    "x-amz-m"
                };
                m.insert(name.into(), ctx);
            }
        }
        m
    }

    /// For instruction-file storage: (object metadata, instruction file
    /// body). V2 puts everything in the file; V3 keeps `x-amz-c`,
    /// `x-amz-d` and `x-amz-i` with the object, as AWS's clients require.
    pub fn to_instruction(&self) -> (BTreeMap<String, String>, String) {
        let mut all = self.to_metadata();
        let mut object = BTreeMap::new();
        if matches!(self.content, Content::V3 { .. }) {
            for k in V3_IN_OBJECT {
                if let Some(v) = all.remove(k) {
                    object.insert(k.to_owned(), v);
                }
            }
        }
        (object, to_json(&all))
    }

    /// Parses an instruction file's body.
    pub fn parse_instruction(body: &[u8]) -> Result<BTreeMap<String, String>, CseError> {
        serde_json::from_slice(body)
            .map_err(|_| CseError::Envelope("the instruction file is not a JSON object of strings".into()))
    }

    /// Whether object metadata says the object is client-side encrypted
    /// (in either format, either storage).
    pub fn is_encrypted(meta: &BTreeMap<String, String>) -> bool {
        V2_KEYS.iter().chain(V3_KEYS.iter()).any(|k| meta.contains_key(*k))
    }

    /// Reads an envelope from object metadata and, when it needs one, the
    /// instruction file's keys. Mixed formats, keys in the wrong place and
    /// anything malformed are refused.
    pub fn read(
        meta: &BTreeMap<String, String>,
        instruction: Option<&BTreeMap<String, String>>,
    ) -> Result<Located, CseError> {
        let has = |m: &BTreeMap<String, String>, k: &str| m.contains_key(k);
        let v2_here = V2_KEYS.iter().any(|k| has(meta, k));
        let v3_here = V3_KEYS.iter().any(|k| has(meta, k));
        if v2_here && v3_here {
            return Err(CseError::Envelope(
                "object metadata mixes V2 and V3 envelope keys".into(),
            ));
        }
        if has(meta, "x-amz-key") && !has(meta, "x-amz-key-v2") {
            return Err(CseError::Unsupported(
                "V1 envelopes (x-amz-key) are not read by this client".into(),
            ));
        }
        if has(meta, "x-amz-key-v2") {
            return Self::v2(meta).map(Located::Found);
        }
        if v2_here {
            return Err(CseError::Envelope("incomplete V2 envelope in object metadata".into()));
        }
        if has(meta, "x-amz-3") {
            return Self::v3(meta).map(Located::Found);
        }
        if v3_here {
            // V3 with the rest in the instruction file
            let Some(ins) = instruction else {
                return Ok(Located::NeedsInstruction);
            };
            if V3_IN_OBJECT.iter().any(|k| has(ins, k)) || V2_KEYS.iter().any(|k| has(ins, k)) {
                return Err(CseError::Envelope(
                    "the instruction file is tampered: it carries keys that belong to the object".into(),
                ));
            }
            let mut all = ins.clone();
            for k in V3_KEYS {
                if let Some(v) = meta.get(k) {
                    if all.contains_key(k) {
                        return Err(CseError::Envelope(format!(
                            "{k} is both in the object metadata and the instruction file"
                        )));
                    }
                    all.insert(k.to_owned(), v.clone());
                }
            }
            return Self::v3(&all).map(Located::Found);
        }
        // nothing in the metadata: a V2 envelope in the instruction file
        let Some(ins) = instruction else {
            return Ok(Located::NeedsInstruction);
        };
        if V3_KEYS.iter().any(|k| has(ins, k)) {
            return Err(CseError::Envelope(
                "the instruction file carries V3 keys without the object's commitment".into(),
            ));
        }
        Self::v2(ins).map(Located::Found)
    }

    fn v2(m: &BTreeMap<String, String>) -> Result<Envelope, CseError> {
        let cek = m.get("x-amz-cek-alg").map(String::as_str);
        if cek != Some(V2_CEK_ALG) {
            return Err(CseError::Unsupported(format!(
                "content algorithm {cek:?} (only {V2_CEK_ALG} is read; CBC is a legacy mode)"
            )));
        }
        if let Some(t) = m.get("x-amz-tag-len")
            && t != "128"
        {
            return Err(CseError::Envelope(format!("tag length {t:?} (only 128 bits)")));
        }
        let wrap = Wrap::from_v2(
            m.get("x-amz-wrap-alg")
                .ok_or_else(|| CseError::Envelope("x-amz-wrap-alg is missing".into()))?,
        )?;
        Ok(Envelope {
            content: Content::V2 {
                iv: unb64(m, "x-amz-iv")?,
            },
            wrap,
            edk: unb64_vec(m, "x-amz-key-v2")?,
            context: json_map(m, "x-amz-matdesc")?,
        })
    }

    fn v3(m: &BTreeMap<String, String>) -> Result<Envelope, CseError> {
        match m.get("x-amz-c").map(String::as_str) {
            Some(V3_SUITE) => {}
            other => {
                return Err(CseError::Envelope(format!(
                    "algorithm suite {other:?} (only {V3_SUITE})"
                )));
            }
        }
        let wrap = Wrap::from_v3(
            m.get("x-amz-w")
                .ok_or_else(|| CseError::Envelope("x-amz-w is missing".into()))?,
        )?;
        let context = if wrap == Wrap::KmsContext {
            json_map(m, "x-amz-t")?
        } else {
            json_map(m, "x-amz-m")?
        };
        Ok(Envelope {
            content: Content::V3 {
                message_id: unb64(m, "x-amz-i")?,
                commitment: unb64(m, "x-amz-d")?,
            },
            wrap,
            edk: unb64_vec(m, "x-amz-3")?,
            context,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn v3() -> Envelope {
        Envelope {
            content: Content::V3 {
                message_id: [7; 28],
                commitment: [9; 28],
            },
            wrap: Wrap::KmsContext,
            edk: vec![1, 2, 3],
            context: [("aws:x-amz-cek-alg".to_owned(), "115".to_owned())].into(),
        }
    }

    fn v2() -> Envelope {
        Envelope {
            content: Content::V2 { iv: [4; 12] },
            wrap: Wrap::AesGcm,
            edk: vec![5; 60],
            context: BTreeMap::new(),
        }
    }

    fn found(l: Located) -> Envelope {
        match l {
            Located::Found(e) => e,
            Located::NeedsInstruction => panic!("needs an instruction file"),
        }
    }

    #[test]
    fn v3_metadata_uses_aws_names_and_round_trips() {
        let m = v3().to_metadata();
        assert_eq!(m["x-amz-c"], "115");
        assert_eq!(m["x-amz-w"], "12");
        assert_eq!(m["x-amz-t"], r#"{"aws:x-amz-cek-alg":"115"}"#);
        assert_eq!(m["x-amz-3"], "AQID");
        assert!(!m.contains_key("x-amz-iv") && !m.contains_key("x-amz-tag-len"));
        assert_eq!(found(Envelope::read(&m, None).unwrap()), v3());
    }

    #[test]
    fn v2_metadata_uses_aws_names_and_round_trips() {
        let m = v2().to_metadata();
        assert_eq!(m["x-amz-cek-alg"], "AES/GCM/NoPadding");
        assert_eq!(m["x-amz-wrap-alg"], "AES/GCM");
        assert_eq!(m["x-amz-tag-len"], "128");
        assert_eq!(m["x-amz-matdesc"], "{}");
        assert_eq!(found(Envelope::read(&m, None).unwrap()), v2());
    }

    #[test]
    fn instruction_files_keep_v3_commitment_with_the_object() {
        let (object, file) = v3().to_instruction();
        assert_eq!(object.keys().collect::<Vec<_>>(), ["x-amz-c", "x-amz-d", "x-amz-i"]);
        let ins = Envelope::parse_instruction(file.as_bytes()).unwrap();
        assert!(matches!(
            Envelope::read(&object, None).unwrap(),
            Located::NeedsInstruction
        ));
        assert_eq!(found(Envelope::read(&object, Some(&ins)).unwrap()), v3());
        // the attack: an instruction file that brings its own commitment
        let mut forged = ins.clone();
        forged.insert("x-amz-d".into(), object["x-amz-d"].clone());
        assert!(Envelope::read(&object, Some(&forged)).is_err());
    }

    #[test]
    fn v2_instruction_files_hold_everything() {
        let (object, file) = v2().to_instruction();
        assert!(object.is_empty());
        let ins = Envelope::parse_instruction(file.as_bytes()).unwrap();
        assert!(matches!(
            Envelope::read(&object, None).unwrap(),
            Located::NeedsInstruction
        ));
        assert_eq!(found(Envelope::read(&object, Some(&ins)).unwrap()), v2());
    }

    #[test]
    fn mixed_or_malformed_envelopes_are_refused() {
        let mut m = v3().to_metadata();
        m.insert("x-amz-iv".into(), "AAAAAAAAAAAAAAAA".into());
        assert!(Envelope::read(&m, None).is_err(), "mixed formats");
        let mut m = v3().to_metadata();
        m.insert("x-amz-c".into(), "114".into());
        assert!(Envelope::read(&m, None).is_err(), "other suite");
        let mut m = v3().to_metadata();
        m.insert("x-amz-d".into(), "AAAA".into());
        assert!(Envelope::read(&m, None).is_err(), "short commitment");
        let mut m = v2().to_metadata();
        m.insert("x-amz-cek-alg".into(), "AES/CBC/PKCS5Padding".into());
        assert!(matches!(Envelope::read(&m, None), Err(CseError::Unsupported(_))));
        let mut m = v2().to_metadata();
        m.insert("x-amz-tag-len".into(), "96".into());
        assert!(Envelope::read(&m, None).is_err());
    }
}
