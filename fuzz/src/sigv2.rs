//! SigV2 (`Authorization: AWS <key>:<signature>`) is still accepted where
//! configured, and is read before any decision: Strongroom's constant-time
//! verifier runs first, s3s's after. Property, through the real server: a
//! request signed by AWS's documented algorithm is accepted; the same
//! request with any signed part changed after signing (the signature, the
//! date, an `x-amz-*` header, an added unsigned `x-amz-*` header or
//! Content-Type, another key, another method, a sub-resource) is refused
//! with 403 and never answers the object.
//!
//! Input: mutation, then a value the mutation uses (and the signed
//! `x-amz-fuzz` header's value).

use std::sync::OnceLock;

use crate::front::{AK, BUCKET, SK, front};
use ring::hmac;

fn string_to_sign(method: &str, ctype: &str, date: &str, amz: &[(&str, &str)], resource: &str) -> String {
    let mut amz: Vec<(String, String)> = amz
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    amz.sort();
    let mut s = format!("{method}\n\n{ctype}\n{date}\n");
    for (k, v) in amz {
        s.push_str(&format!("{k}:{v}\n"));
    }
    s.push_str(resource);
    s
}

fn sign(sts: &str) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, SK.as_bytes());
    base64_simd::STANDARD.encode_to_string(hmac::sign(&k, sts.as_bytes()).as_ref())
}

fn setup() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let f = front();
        for key in ["v2obj", "v2other"] {
            let a = f.signed("PUT", &format!("/{BUCKET}/{key}"), &[], &[], key.as_bytes());
            assert_eq!(a.status, 200);
        }
    });
}

/// One case.
pub fn run(data: &[u8]) {
    let [mutation, rest @ ..] = data else { return };
    let Ok(value) = std::str::from_utf8(rest) else { return };
    // header values must be sendable; outside printable US-ASCII a header
    // has no agreed SigV2 reading, and the server refuses it (closed)
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) || value.trim() != value || value.is_empty() {
        return;
    }
    setup();
    let f = front();
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let mut method = "GET";
    let mut resource = format!("/{BUCKET}/v2obj");
    let mut target = resource.clone();
    let fuzz_header = ("x-amz-fuzz", value);
    let sts = string_to_sign(method, "", &date, &[fuzz_header], &resource);
    let mut sig = sign(&sts);
    let mut headers: Vec<(String, String)> =
        vec![("date".into(), date.clone()), ("x-amz-fuzz".into(), value.to_owned())];
    let m = mutation % 9;
    match m {
        0 => {}
        1 => {
            // one signature character changed
            let i = value.len() % sig.len();
            let mut b = sig.into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            sig = String::from_utf8(b).expect("ascii");
        }
        2 => {
            if value == date {
                return;
            }
            headers[0].1 = value.to_owned();
        }
        3 => {
            let other = format!("{value}x");
            headers[1].1 = other;
        }
        4 => headers.push(("x-amz-extra".into(), value.to_owned())),
        5 => target = format!("/{BUCKET}/v2other"),
        6 => method = "HEAD",
        7 => headers.push(("content-type".into(), value.to_owned())),
        _ => {
            // a sub-resource the signature did not cover
            target = format!("{target}?tagging");
            resource.clear();
        }
    }
    headers.push(("authorization".into(), format!("AWS {AK}:{sig}")));
    let a = f.send(method, &target, &headers, Vec::new());
    if m == 0 {
        assert_eq!(
            a.status,
            200,
            "a valid SigV2 request refused: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(a.body, b"v2obj");
    } else {
        assert_eq!(
            a.status,
            403,
            "mutation {m} ({value:?}) accepted: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert!(!a.body.starts_with(b"v2"), "object bytes answered to a refused request");
    }
}
