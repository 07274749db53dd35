//! Persisted record types. Every record is stored as one format-version byte
//! followed by its JSON encoding; [`RECORD_FORMAT`] is frozen once data exists
//! in the field, and a new layout gets a new number and a reader for the old.
//!
//! These are plain data: the rules that fill them in live in the `s3` crate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::StoreError;

/// Format version of every record written by this build.
pub const RECORD_FORMAT: u8 = 1;

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![RECORD_FORMAT];
    serde_json::to_writer(&mut out, v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, StoreError> {
    match b.split_first() {
        Some((&RECORD_FORMAT, rest)) => serde_json::from_slice(rest).map_err(|e| StoreError::Corrupt(e.to_string())),
        Some((v, _)) => Err(StoreError::Corrupt(format!("unknown record format {v}"))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

/// A 128-bit random blob identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct BlobId(pub [u8; 16]);

impl BlobId {
    /// A fresh random id.
    pub fn random() -> Result<BlobId, StoreError> {
        let mut b = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
            .map_err(|_| StoreError::Corrupt("random source failed".into()))?;
        Ok(BlobId(b))
    }

    /// Lower-case hex form (file name).
    pub fn hex(&self) -> String {
        hex_simd::encode_to_string(self.0, hex_simd::AsciiCase::Lower)
    }
}

/// A run of bytes of an object: inline in the metadata store or a blob file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Segment {
    pub id: BlobId,
    /// Plaintext length (the stored length follows from the package format
    /// when `salt` is set).
    pub len: u64,
    pub inline: bool,
    /// Hex salt of this segment's encrypted stream (see the `crypt` crate);
    /// absent for data stored before encryption existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// Encryption layers of the stream (1, or 2 for DSSE).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub layers: u8,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// How the data keys of an object version (or multipart upload) are
/// protected; filled in and interpreted by the `s3` crate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SseRecord {
    /// `AES256`, `aws:kms`, `aws:kms:dsse` or `SSE-C`.
    pub mode: String,
    /// KMS key ARN (SSE-KMS, DSSE-KMS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// The caller's encryption context, base64 JSON as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default)]
    pub bucket_key: bool,
    /// One wrapped data key a layer, innermost first.
    pub keys: Vec<WrappedKey>,
    /// SSE-C: how the customer's key is recognised (never the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerKeyCheck>,
}

/// A data key wrapped by `by`: `master:<key id>`, `kms` (a KMS ciphertext
/// blob), `bucket-key` (wrapped under a bucket key whose KMS ciphertext is
/// `outer`) or `customer`. Values are base64.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub by: String,
    pub blob: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer: Option<String>,
}

/// A salted keyed hash of a customer-provided key, and its MD5 as the
/// client sent it (AWS echoes it back).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerKeyCheck {
    pub salt: String,
    pub hash: String,
    pub key_md5: String,
}

/// A stored checksum: algorithm name as S3 spells it (CRC32, CRC32C,
/// CRC64NVME, SHA1, SHA256), base64 value, and type (FULL_OBJECT/COMPOSITE).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    pub algorithm: String,
    pub value: String,
    pub kind: String,
}

/// Representation headers and user metadata stored with an object.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ObjectHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    pub website_redirect: Option<String>,
    pub storage_class: Option<String>,
    pub user: BTreeMap<String, String>,
}

/// One object (the current version of a key).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// Milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
    pub owner: String,
    pub version_id: Option<String>,
    pub headers: ObjectHeaders,
    pub tags: Vec<(String, String)>,
    pub checksum: Option<Checksum>,
    /// Data in order. For a multipart object, one segment a part.
    pub segments: Vec<Segment>,
    /// For multipart objects: each part's size, ETag and checksum value.
    pub parts: Vec<PartSummary>,
    /// The multipart upload this object was completed from (a repeated
    /// CompleteMultipartUpload of it succeeds again, as in AWS).
    #[serde(default)]
    pub upload_id: Option<String>,
    /// Encryption at rest (absent only for data written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<SseRecord>,
    /// A delete marker of a versioned bucket (no data).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_marker: bool,
    /// Object Lock retention of this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Object Lock legal hold of this version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

/// Object Lock retention: `GOVERNANCE` or `COMPLIANCE` until a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub mode: String,
    /// Milliseconds since the Unix epoch.
    pub until_ms: i64,
}

/// What an object remembers of each of its parts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartSummary {
    pub size: u64,
    pub etag: String,
    pub checksum: Option<String>,
}

/// A bucket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    /// This incarnation of the name: random at creation, so a bucket
    /// deleted and created again (by anyone) is a different bucket to a
    /// request decided on the old one. Empty for buckets made by older
    /// builds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Owning account id.
    pub owner: String,
    pub created_ms: i64,
    /// LocationConstraint as given at creation (None = us-east-1).
    pub location: Option<String>,
    pub tags: Option<Vec<(String, String)>>,
    /// Sub-resource configurations (policy, encryption, ...) by name, as
    /// their owning crates serialize them.
    pub configs: BTreeMap<String, String>,
}

/// An in-progress multipart upload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub owner: String,
    pub initiated_ms: i64,
    pub headers: ObjectHeaders,
    pub tags: Vec<(String, String)>,
    pub checksum_algorithm: Option<String>,
    pub checksum_type: Option<String>,
    /// Encryption of the object being assembled; every part is sealed
    /// under its data keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<SseRecord>,
    /// Object Lock of the object being assembled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

/// One uploaded part.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartRecord {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified_ms: i64,
    pub segment: Segment,
    pub checksum: Option<Checksum>,
}

/// An account with its root credentials. The secret is needed in clear to
/// verify SigV4, so it is kept sealed under the server master key
/// (`sealed_secret`, filled by the `iam` crate) and `secret_key` is empty
/// on disk; records written before sealing existed carry it in clear and
/// are re-sealed at start-up.
#[derive(Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub email: String,
    pub canonical_id: String,
    pub access_key: String,
    #[serde(default)]
    pub secret_key: String,
    /// `<master key id>:<base64 of the sealed secret>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_secret: Option<String>,
}

impl Drop for Account {
    /// Secret keys do not outlive the record that carries them.
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret_key);
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}
