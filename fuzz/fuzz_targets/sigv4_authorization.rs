//! The SigV4 `Authorization` header and the query of pre-signed URLs are
//! untrusted input parsed before any signature is checked: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = strongroom_iam::parse_authorization(text);
    let (auth, query) = text.split_once('\n').unwrap_or((text, ""));
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(auth) {
        headers.insert(http::header::AUTHORIZATION, v);
    }
    headers.insert("x-amz-date", http::HeaderValue::from_static("20261127T000000Z"));
    let now = time::OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let _ = strongroom_iam::precheck::precheck(&headers, Some(query), now);
});
