//! SigV2 verification with a constant-time comparison, run before s3s's own
//! check (which compares SigV2 signatures with `!=`). Only a request whose
//! signature is right reaches s3s's comparison, so its timing tells an
//! attacker nothing. Both verifiers build the string to sign the same way
//! (AWS's "Signing and Authenticating REST Requests"); should they ever
//! disagree, the request fails: closed, not open.

use http::HeaderMap;
use ring::hmac;
use subtle::ConstantTimeEq;

use strongroom_iam::Identities;

use crate::envelope::{Query, V2_SIGNED};

/// A request as SigV2 sees it.
pub struct V2Request<'a> {
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub raw_path: &'a str,
    /// The query, decoded once by the envelope.
    pub query: &'a Query,
    pub headers: &'a HeaderMap,
    /// The bucket named by a virtual-hosted-style Host header.
    pub vhost_bucket: Option<&'a str>,
}

/// What the pre-check found.
#[derive(Debug, PartialEq, Eq)]
pub enum V2Check {
    /// Not a SigV2 request, or one s3s must judge (unknown key, malformed).
    NotApplicable,
    Valid,
    Invalid,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut it = h.get_all(name).iter();
    let first = it.next()?;
    if it.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// The SigV2 string to sign; `date_or_expires` is the Date line.
fn string_to_sign(r: &V2Request<'_>, date_or_expires: &str) -> String {
    let mut s = String::with_capacity(256);
    s.push_str(r.method);
    s.push('\n');
    s.push_str(header(r.headers, "content-md5").unwrap_or_default());
    s.push('\n');
    s.push_str(header(r.headers, "content-type").unwrap_or_default());
    s.push('\n');
    s.push_str(date_or_expires);
    s.push('\n');
    let mut names: Vec<&str> = r
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|n| n.starts_with("x-amz-"))
        .collect();
    names.sort_unstable();
    names.dedup();
    for n in names {
        let values: Vec<&str> = r
            .headers
            .get_all(n)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .collect();
        s.push_str(n);
        s.push(':');
        s.push_str(&values.join(","));
        s.push('\n');
    }
    if let Some(b) = r.vhost_bucket {
        s.push('/');
        s.push_str(b);
    }
    s.push_str(r.raw_path);
    let mut first = true;
    for q in V2_SIGNED {
        if let Some(v) = r.query.get(q) {
            s.push(if first { '?' } else { '&' });
            first = false;
            s.push_str(q);
            if !v.is_empty() {
                s.push('=');
                s.push_str(v);
            }
        }
    }
    s
}

/// Verifies a SigV2 request's signature in constant time.
pub fn check(r: &V2Request<'_>, ids: &Identities) -> V2Check {
    let auth = r
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.strip_prefix("AWS "));
    let (access_key, given, date) = match auth {
        Some(a) => {
            let Some((ak, sig)) = a.split_once(':') else {
                return V2Check::NotApplicable;
            };
            let date = if r.headers.contains_key("x-amz-date") {
                ""
            } else {
                header(r.headers, "date").unwrap_or_default()
            };
            (ak.to_owned(), sig.to_owned(), date.to_owned())
        }
        None => {
            let (Some(ak), Some(sig), Some(exp)) = (
                r.query.get("AWSAccessKeyId"),
                r.query.get("Signature"),
                r.query.get("Expires"),
            ) else {
                return V2Check::NotApplicable;
            };
            (ak.to_owned(), sig.to_owned(), exp.to_owned())
        }
    };
    let sts = string_to_sign(r, &date);
    let Some(expected) = ids.with_secret(&access_key, |secret| {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
        base64_simd::STANDARD.encode_to_string(hmac::sign(&key, sts.as_bytes()).as_ref())
    }) else {
        return V2Check::NotApplicable;
    };
    if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        V2Check::Valid
    } else {
        V2Check::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example (Object GET, "Signing and Authenticating
    /// REST Requests"): the string to sign of a virtual-hosted GET.
    #[test]
    fn aws_example_string_to_sign_and_signature() {
        let mut h = HeaderMap::new();
        h.insert(
            "date",
            http::HeaderValue::from_static("Tue, 27 Mar 2007 19:36:42 +0000"),
        );
        let q = Query::default();
        let r = V2Request {
            method: "GET",
            raw_path: "/photos/puppy.jpg",
            query: &q,
            headers: &h,
            vhost_bucket: Some("awsexamplebucket1"),
        };
        let sts = string_to_sign(&r, "Tue, 27 Mar 2007 19:36:42 +0000");
        assert_eq!(
            sts,
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
        let key = hmac::Key::new(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        let sig = base64_simd::STANDARD.encode_to_string(hmac::sign(&key, sts.as_bytes()).as_ref());
        assert_eq!(sig, "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
    }

    #[test]
    fn subresources_and_amz_headers_are_canonical() {
        let mut h = HeaderMap::new();
        h.append("x-amz-meta-b", http::HeaderValue::from_static(" 2 "));
        h.append("x-amz-meta-a", http::HeaderValue::from_static("1"));
        h.append("x-amz-meta-a", http::HeaderValue::from_static("3"));
        let q = Query::parse(Some("uploads&prefix=x&acl"));
        let r = V2Request {
            method: "PUT",
            raw_path: "/b/k",
            query: &q,
            headers: &h,
            vhost_bucket: None,
        };
        assert_eq!(
            string_to_sign(&r, ""),
            "PUT\n\n\n\nx-amz-meta-a:1,3\nx-amz-meta-b:2\n/b/k?acl&uploads"
        );
    }
}
