//! SigV4 signing (the verifying side is s3s's; this side signs pre-signed
//! URLs for `strongroom presign` and is pinned to AWS's documented examples
//! so the two can be checked against the same vectors).

use ring::hmac;

/// Characters S3 leaves unencoded in a canonical URI or query.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    hex_simd::encode_to_string(b, hex_simd::AsciiCase::Lower)
}

pub(crate) fn sha256_hex(b: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), msg)
}

/// What a signature covers.
pub struct SigningInput<'a> {
    pub method: &'a str,
    /// Decoded path, e.g. `/bucket/key`.
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    /// Lower-case header names and values to sign.
    pub headers: Vec<(String, String)>,
    pub payload_hash: &'a str,
    /// `YYYYMMDDTHHMMSSZ`
    pub amz_date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The hex signature of `input` under `secret`.
pub fn signature(input: &SigningInput<'_>, secret: &str) -> String {
    let date = input.amz_date.get(..8).unwrap_or_default();
    signature_with(input, &signing_key(secret, date, input.region, input.service))
}

/// The key a day's signatures in one region and service are made with
/// (`kSigning`), for a client that signs many requests.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(k_date.as_ref(), region.as_bytes());
    let k_service = hmac_sha256(k_region.as_ref(), service.as_bytes());
    let k_signing = hmac_sha256(k_service.as_ref(), b"aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
}

/// The hex signature of `input` under a [`signing_key`] of its date,
/// region and service.
pub fn signature_with(input: &SigningInput<'_>, key: &hmac::Key) -> String {
    let mut query: Vec<(String, String)> = input
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers = input.headers.clone();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method,
        uri_encode(input.path, true),
        canonical_query,
        canonical_headers,
        signed_headers,
        input.payload_hash
    );
    let date = input.amz_date.get(..8).unwrap_or_default();
    let scope = format!("{date}/{}/{}/aws4_request", input.region, input.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        input.amz_date,
        sha256_hex(canonical_request.as_bytes())
    );
    hex(hmac::sign(key, string_to_sign.as_bytes()).as_ref())
}

/// A pre-signed URL request.
pub struct Presign<'a> {
    pub method: &'a str,
    /// `http://host:port` (no trailing slash)
    pub endpoint: &'a str,
    /// Host header value the client will send.
    pub host: &'a str,
    /// Decoded path, `/bucket/key`.
    pub path: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub region: &'a str,
    pub amz_date: &'a str,
    pub expires_secs: u64,
    /// Session token of temporary credentials (signed as
    /// X-Amz-Security-Token).
    pub session_token: Option<&'a str>,
}

/// Builds a SigV4 query-signed URL.
pub fn presign_url(p: &Presign<'_>) -> String {
    let date = p.amz_date.get(..8).unwrap_or_default();
    let credential = format!("{}/{date}/{}/s3/aws4_request", p.access_key, p.region);
    let mut query = vec![
        ("X-Amz-Algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        ("X-Amz-Credential".to_owned(), credential),
        ("X-Amz-Date".to_owned(), p.amz_date.to_owned()),
        ("X-Amz-Expires".to_owned(), p.expires_secs.to_string()),
        ("X-Amz-SignedHeaders".to_owned(), "host".to_owned()),
    ];
    if let Some(t) = p.session_token {
        query.push(("X-Amz-Security-Token".to_owned(), t.to_owned()));
    }
    let sig = signature(
        &SigningInput {
            method: p.method,
            path: p.path,
            query: query.clone(),
            headers: vec![("host".to_owned(), p.host.to_owned())],
            payload_hash: "UNSIGNED-PAYLOAD",
            amz_date: p.amz_date,
            region: p.region,
            service: "s3",
        },
        p.secret_key,
    );
    query.push(("X-Amz-Signature".to_owned(), sig));
    let qs = query
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k, false), uri_encode(v, false)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{}{}?{qs}", p.endpoint, uri_encode(p.path, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    /// AWS S3 API reference, "Signature Calculations for the Authorization
    /// Header", example GET Object with a Range header.
    #[test]
    fn aws_example_get_object_header_signature() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let input = SigningInput {
            method: "GET",
            path: "/test.txt",
            query: vec![],
            headers: vec![
                ("host".into(), "examplebucket.s3.amazonaws.com".into()),
                ("range".into(), "bytes=0-9".into()),
                ("x-amz-content-sha256".into(), empty.into()),
                ("x-amz-date".into(), "20130524T000000Z".into()),
            ],
            payload_hash: empty,
            amz_date: "20130524T000000Z",
            region: "us-east-1",
            service: "s3",
        };
        assert_eq!(
            signature(&input, SK),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// Same reference, example GET Bucket Lifecycle (query parameter, no value).
    #[test]
    fn aws_example_get_lifecycle_signature() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let input = SigningInput {
            method: "GET",
            path: "/",
            query: vec![("lifecycle".into(), String::new())],
            headers: vec![
                ("host".into(), "examplebucket.s3.amazonaws.com".into()),
                ("x-amz-content-sha256".into(), empty.into()),
                ("x-amz-date".into(), "20130524T000000Z".into()),
            ],
            payload_hash: empty,
            amz_date: "20130524T000000Z",
            region: "us-east-1",
            service: "s3",
        };
        assert_eq!(
            signature(&input, SK),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
    }

    /// AWS S3 API reference, "Authenticating Requests: Using Query
    /// Parameters", the pre-signed GET example.
    #[test]
    fn aws_example_presigned_url() {
        let url = presign_url(&Presign {
            method: "GET",
            endpoint: "https://examplebucket.s3.amazonaws.com",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            access_key: AK,
            secret_key: SK,
            region: "us-east-1",
            amz_date: "20130524T000000Z",
            expires_secs: 86400,
            session_token: None,
        });
        assert!(
            url.ends_with("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"));
    }

    #[test]
    fn uri_encoding_keeps_unreserved_and_slashes() {
        assert_eq!(uri_encode("/a b/ü~", true), "/a%20b/%C3%BC~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }
}
