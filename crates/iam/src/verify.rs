//! SigV4 verification of requests to the services s3s does not serve
//! (KMS now; IAM, STS, Glacier and S3 Control later): header-signed
//! requests with the body hashed here. It shares the canonical-request code
//! with the signer in [`crate::sigv4`], which is pinned to AWS's vectors,
//! and compares signatures in constant time.

use http::HeaderMap;

use crate::sigv4::{SigningInput, sha256_hex, signature};
use crate::{Identities, Principal};

/// Most a request's clock may differ from ours.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// Why a request was not authenticated, by the error names AWS's JSON
/// services use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No Authorization header (MissingAuthenticationTokenException).
    Missing,
    /// Malformed Authorization (IncompleteSignatureException).
    Incomplete(String),
    /// Unknown access key (UnrecognizedClientException).
    UnknownKey,
    /// Signature mismatch (InvalidSignatureException).
    BadSignature,
    /// Clock skew (InvalidSignatureException "Signature expired").
    Expired,
}

impl AuthError {
    /// The AWS error type and message.
    pub fn code_and_message(&self) -> (&'static str, String) {
        match self {
            AuthError::Missing => (
                "MissingAuthenticationTokenException",
                "Missing Authentication Token".into(),
            ),
            AuthError::Incomplete(m) => ("IncompleteSignatureException", m.clone()),
            AuthError::UnknownKey => (
                "UnrecognizedClientException",
                "The security token included in the request is invalid.".into(),
            ),
            AuthError::BadSignature => (
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
            ),
            AuthError::Expired => ("InvalidSignatureException", "Signature expired".into()),
        }
    }
}

/// Parts of `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
struct AuthHeader<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed: Vec<&'a str>,
    signature: &'a str,
}

fn parse_auth(v: &str) -> Result<AuthHeader<'_>, AuthError> {
    let rest = v
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or_else(|| AuthError::Incomplete("Unsupported authorization type".into()))?;
    let mut cred = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(c) = part.strip_prefix("Credential=") {
            cred = Some(c);
        } else if let Some(s) = part.strip_prefix("SignedHeaders=") {
            signed = Some(s);
        } else if let Some(s) = part.strip_prefix("Signature=") {
            sig = Some(s);
        }
    }
    let incomplete = |what: &str| AuthError::Incomplete(format!("Authorization header requires '{what}' parameter."));
    let cred = cred.ok_or_else(|| incomplete("Credential"))?;
    let signed = signed.ok_or_else(|| incomplete("SignedHeaders"))?;
    let signature = sig.ok_or_else(|| incomplete("Signature"))?;
    let mut c = cred.split('/');
    let (Some(access_key), Some(date), Some(region), Some(service), Some("aws4_request"), None) =
        (c.next(), c.next(), c.next(), c.next(), c.next(), c.next())
    else {
        return Err(AuthError::Incomplete("Credential is malformed.".into()));
    };
    Ok(AuthHeader {
        access_key,
        date,
        region,
        service,
        signed: signed.split(';').collect(),
        signature,
    })
}

/// The parts of a SigV4 `Authorization` header: access key, scope date,
/// region, service and signed header names (for tools and fuzzing; the
/// verifier uses the same parser).
pub fn parse_authorization(v: &str) -> Result<(String, String, String, String, Vec<String>), AuthError> {
    let a = parse_auth(v)?;
    Ok((
        a.access_key.to_owned(),
        a.date.to_owned(),
        a.region.to_owned(),
        a.service.to_owned(),
        a.signed.iter().map(|s| (*s).to_owned()).collect(),
    ))
}

/// Canonical form of a header value: trimmed, inner runs of spaces as one.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_amz_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// A request to verify.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Decoded path.
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Identities {
    /// Verifies a header-signed SigV4 request for `service` and returns its
    /// principal and the region it was signed for.
    pub fn verify_sigv4(
        &self,
        req: &SignedRequest<'_>,
        service: &str,
        now_unix: i64,
    ) -> Result<(Principal, String), AuthError> {
        let auth = req
            .headers
            .get(http::header::AUTHORIZATION)
            .ok_or(AuthError::Missing)?
            .to_str()
            .map_err(|_| AuthError::Incomplete("Authorization header is not ASCII".into()))?;
        let a = parse_auth(auth)?;
        if a.service != service {
            return Err(AuthError::Incomplete(format!(
                "Credential should be scoped to correct service: '{service}'."
            )));
        }
        let amz_date = req
            .headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                AuthError::Incomplete(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
                )
            })?;
        let t = parse_amz_date(amz_date).ok_or_else(|| AuthError::Incomplete("X-Amz-Date is malformed".into()))?;
        if (now_unix - t).abs() > MAX_SKEW_SECS {
            return Err(AuthError::Expired);
        }
        if !amz_date.starts_with(a.date) {
            return Err(AuthError::Incomplete(
                "Credential date does not match X-Amz-Date".into(),
            ));
        }
        if !a.signed.contains(&"host") {
            return Err(AuthError::Incomplete("'Host' must be a signed header".into()));
        }
        let mut headers = Vec::with_capacity(a.signed.len());
        for name in &a.signed {
            let values: Vec<String> = req
                .headers
                .get_all(*name)
                .iter()
                .map(|v| canonical_value(&String::from_utf8_lossy(v.as_bytes())))
                .collect();
            if values.is_empty() {
                return Err(AuthError::BadSignature);
            }
            headers.push(((*name).to_owned(), values.join(",")));
        }
        // every x-amz-* header must be signed
        for name in req.headers.keys() {
            if name.as_str().starts_with("x-amz-") && !a.signed.contains(&name.as_str()) {
                return Err(AuthError::Incomplete(format!(
                    "Header {} must be signed",
                    name.as_str()
                )));
            }
        }
        let body_hash = sha256_hex(req.body);
        if let Some(declared) = req.headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok())
            && declared != body_hash
        {
            return Err(AuthError::BadSignature);
        }
        let input = SigningInput {
            method: req.method,
            path: req.path,
            query: req.query.clone(),
            headers,
            payload_hash: &body_hash,
            amz_date,
            region: a.region,
            service,
        };
        let ok: bool = self
            .with_secret(a.access_key, |secret| {
                let want = signature(&input, secret);
                subtle::ConstantTimeEq::ct_eq(want.as_bytes(), a.signature.as_bytes()).into()
            })
            .ok_or(AuthError::UnknownKey)?;
        if !ok {
            return Err(AuthError::BadSignature);
        }
        let token = req.headers.get("x-amz-security-token").and_then(|v| v.to_str().ok());
        let p = self.principal(a.access_key, token).map_err(|_| AuthError::UnknownKey)?;
        Ok((p, a.region.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_authorization_header() {
        let a = parse_auth("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc")
            .ok();
        let a = a.as_ref();
        assert_eq!(a.map(|a| a.access_key), Some("AKID"));
        assert_eq!(a.map(|a| a.service), Some("kms"));
        assert_eq!(a.map(|a| a.signed.clone()), Some(vec!["host", "x-amz-date"]));
        assert!(
            parse_auth("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kms, SignedHeaders=host, Signature=a")
                .is_err()
        );
        assert!(parse_auth("AWS AKID:sig").is_err());
    }

    #[test]
    fn canonical_values_collapse_spaces() {
        assert_eq!(canonical_value("  a   b  c "), "a b c");
    }
}
