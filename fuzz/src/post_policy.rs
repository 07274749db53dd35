//! Browser uploads (POST Object) carry an untrusted, base64 JSON policy
//! whose signature the server checks and whose conditions it enforces.
//! Signed correctly as the account root, with conditions the fuzzer
//! writes, through the real server. Properties: never a 5xx; an upload that
//! is accepted stored exactly the file under the key, and its policy had
//! not expired, covered the file's size with any content-length-range and
//! matched every `eq` condition on the key and bucket; an upload that is
//! refused stored nothing; one whose signature is wrong is always refused.
//!
//! Input: mode (bit 0: corrupt the signature; bits 1-2: expiration in the
//! past, near future, far future, or the fuzz text), a file-size byte, then
//! the JSON text of extra conditions.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::front::{AK, BUCKET, amz_date, front, hex, signing_key};
use ring::hmac;
use s3s::post_policy::{PostPolicy, PostPolicyCondition};

const BOUNDARY: &str = "fuzzboundary7MA4YWxkTrZu0gW";

fn field(body: &mut Vec<u8>, name: &str, value: &[u8]) {
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(value);
    body.extend_from_slice(b"\r\n");
}

fn iso(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");
    t.format(&fmt).expect("date")
}

/// One case.
pub fn run(data: &[u8]) {
    let [mode, size, extra @ ..] = data else { return };
    let Ok(extra) = std::str::from_utf8(extra) else { return };
    let f = front();
    static N: AtomicU64 = AtomicU64::new(0);
    let key = format!("pp/{}", N.fetch_add(1, Ordering::Relaxed));
    let file = vec![b'z'; usize::from(*size) * 3];
    let date = amz_date();
    let credential = format!("{AK}/{}/us-east-1/s3/aws4_request", &date[..8]);
    let now = time::OffsetDateTime::now_utc();
    let expiration = match (mode >> 1) % 4 {
        0 => iso(now - time::Duration::hours(1)),
        1 => iso(now + time::Duration::minutes(10)),
        2 => iso(now + time::Duration::days(3650)),
        _ => extra.chars().take(40).collect(),
    };
    let extra = if extra.trim().is_empty() {
        String::new()
    } else {
        format!(",{extra}")
    };
    let policy = format!(
        r#"{{"expiration":{},"conditions":[{{"bucket":"{BUCKET}"}},["starts-with","$key","pp/"],{{"x-amz-algorithm":"AWS4-HMAC-SHA256"}},{{"x-amz-credential":"{credential}"}},{{"x-amz-date":"{date}"}}{extra}]}}"#,
        serde_json::Value::String(expiration),
    );
    let b64 = base64_simd::STANDARD.encode_to_string(policy.as_bytes());
    let mut sig = hex(hmac::sign(&signing_key(&date[..8], "s3"), b64.as_bytes()).as_ref());
    let corrupt = mode & 1 == 1;
    if corrupt {
        sig.replace_range(0..1, if sig.starts_with('0') { "1" } else { "0" });
    }
    let mut body = Vec::new();
    field(&mut body, "key", key.as_bytes());
    field(&mut body, "x-amz-algorithm", b"AWS4-HMAC-SHA256");
    field(&mut body, "x-amz-credential", credential.as_bytes());
    field(&mut body, "x-amz-date", date.as_bytes());
    field(&mut body, "policy", b64.as_bytes());
    field(&mut body, "x-amz-signature", sig.as_bytes());
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let headers = vec![
        (
            "content-type".to_owned(),
            format!("multipart/form-data; boundary={BOUNDARY}"),
        ),
        ("content-length".to_owned(), body.len().to_string()),
    ];
    let a = f.send("POST", &format!("/{BUCKET}"), &headers, body);
    let text = String::from_utf8_lossy(&a.body);
    assert!(a.status < 500, "{}: {text}\n{policy}", a.status);
    let stored = f.get(&key);
    if (200..300).contains(&a.status) {
        assert!(!corrupt, "a wrong signature was accepted\n{policy}");
        assert!(
            stored.as_deref() == Some(&file[..]),
            "accepted, but the object is not the file"
        );
        let p = PostPolicy::from_json(&policy).expect("an accepted policy parses");
        let exp = time::OffsetDateTime::from(p.expiration.clone());
        assert!(
            exp > now - time::Duration::seconds(5),
            "an expired policy was accepted\n{policy}"
        );
        for c in &p.conditions {
            match c {
                PostPolicyCondition::Eq { field, value } if field == "key" => assert_eq!(value, &key, "{policy}"),
                PostPolicyCondition::Eq { field, value } if field == "bucket" => assert_eq!(value, BUCKET, "{policy}"),
                PostPolicyCondition::StartsWith { field, prefix } if field == "key" => {
                    assert!(key.starts_with(prefix.as_str()), "{policy}");
                }
                PostPolicyCondition::ContentLengthRange { min, max } => {
                    let n = file.len() as u64;
                    assert!(
                        *min <= n && n <= *max,
                        "size {n} outside {min}..={max} accepted\n{policy}"
                    );
                }
                _ => {}
            }
        }
    } else {
        assert!(
            stored.is_none(),
            "a refused upload ({}) stored an object: {text}",
            a.status
        );
    }
}
