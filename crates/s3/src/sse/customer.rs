//! SSE-C request fields: the customer's key, checked (AES256, 256 bits,
//! matching MD5, TLS only) and held only for the request; and the refusal
//! of SSE headers on reads.

use s3s::S3Result;
use strongroom_crypt::Key;

use super::{invalid_argument, invalid_request};
use crate::checksum::unb64;

/// `x-amz-server-side-encryption-customer-*` (or the copy-source ones).
#[derive(Default)]
pub(crate) struct CustomerFields {
    pub algorithm: Option<String>,
    pub key: Option<String>,
    pub key_md5: Option<String>,
}

impl CustomerFields {
    fn present(&self) -> bool {
        self.algorithm.is_some() || self.key.is_some() || self.key_md5.is_some()
    }
}

/// A validated customer-provided key.
pub(crate) struct CustomerKey {
    pub(crate) key: Key,
    pub(crate) md5: String,
}

/// GET and HEAD take no server-side encryption headers (the object says
/// how it is encrypted): AWS answers 400 to a read that names them.
pub(crate) fn refuse_on_read(h: &http::HeaderMap) -> S3Result<()> {
    let named = [
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-context",
        "x-amz-server-side-encryption-bucket-key-enabled",
    ]
    .iter()
    .any(|n| h.contains_key(*n));
    if named {
        return Err(invalid_argument(
            "x-amz-server-side-encryption header is not supported for this operation.",
        ));
    }
    Ok(())
}

/// Checks SSE-C fields: AES256, a 256-bit key, its MD5, over TLS.
pub(crate) fn customer_key(f: &CustomerFields, secure: bool) -> S3Result<Option<CustomerKey>> {
    if !f.present() {
        return Ok(None);
    }
    if !secure {
        return Err(invalid_request(
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
        ));
    }
    let (Some(alg), Some(key), Some(md5)) = (&f.algorithm, &f.key, &f.key_md5) else {
        return Err(invalid_argument(if f.algorithm.is_none() {
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm."
        } else if f.key.is_none() {
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key."
        } else {
            "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key."
        }));
    };
    if alg != "AES256" {
        return Err(invalid_argument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
        ));
    }
    let mut raw = unb64(key).unwrap_or_default();
    let k = Key::from_slice(&raw);
    let digest = <md5::Md5 as md5::Digest>::digest(&raw);
    zeroize::Zeroize::zeroize(&mut raw);
    let Some(k) = k else {
        return Err(invalid_argument(
            "The secret key was invalid for the specified algorithm.",
        ));
    };
    let given = unb64(md5).unwrap_or_default();
    if !strongroom_crypt::ct_eq(&given, digest.as_slice()) {
        return Err(invalid_argument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ));
    }
    Ok(Some(CustomerKey {
        key: k,
        md5: md5.clone(),
    }))
}
