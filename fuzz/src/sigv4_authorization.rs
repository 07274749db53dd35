//! The SigV4 `Authorization` header and the query of pre-signed URLs are
//! untrusted input read before any signature is checked: never panic, and
//! whatever the envelope accepts names exactly one mechanism whose signed
//! headers cover every `x-amz-*` header of the request.

use strongroom_access::envelope::{Mechanism, Rules, examine};

/// One case.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = strongroom_iam::parse_authorization(text);
    let (auth, query) = text.split_once('\n').unwrap_or((text, ""));
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(auth) {
        headers.insert(http::header::AUTHORIZATION, v);
    }
    headers.insert("x-amz-date", http::HeaderValue::from_static("20261127T000000Z"));
    let Ok(uri) = format!("/b/k?{query}").parse::<http::Uri>() else {
        return;
    };
    let rules = Rules {
        region: "us-east-1".into(),
        allow_sigv2: true,
    };
    if let Ok(f) = examine(&http::Method::GET, &uri, &headers, &rules, 1_795_000_000) {
        if matches!(f.mechanism, Mechanism::HeaderV4 | Mechanism::QueryV4) {
            assert!(f.signed_headers.iter().any(|h| h == "x-amz-date"), "{f:?}");
            assert!(f.access_key.is_some());
        }
    }
}
