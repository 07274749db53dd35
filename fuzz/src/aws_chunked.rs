//! aws-chunked request bodies (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, every
//! chunk signed, and `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, a checksum in
//! the trailer) are decoded from untrusted bytes on every SDK upload. Sent
//! whole, through the real server. Properties: a valid encoding of a
//! payload stores exactly that payload; an encoding with any one byte
//! changed is refused with a 4xx and leaves the object as it was, or (where
//! the byte was not part of what is read, e.g. a chunk extension) stores
//! exactly the original payload; never other bytes, never a 5xx.
//!
//! Input: mode, chunk size, flip position (2 bytes), flip mask, payload.

use crate::front::{BUCKET, amz_date, front, hex, sha256_hex, signing_key};
use ring::hmac;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn crc32_b64(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(crc32fast::hash(b).to_be_bytes())
}

/// One case.
pub fn run(data: &[u8]) {
    let [mode, size, p1, p2, mask, payload @ ..] = data else {
        return;
    };
    let f = front();
    let signed = mode % 2 == 0;
    // chunks of at least 8 KiB but the last, as AWS requires; stretch the
    // payload over several of them
    let chunk = 8192 + usize::from(*size) * 64;
    let stretch = 1 + usize::from(*mode / 2 % 4);
    let payload: Vec<u8> = payload.iter().cycle().take(payload.len() * stretch).copied().collect();
    let key = format!("chunked-{}", mode % 2);
    // what the object was before
    let before = b"the object before".to_vec();
    let a = f.signed("PUT", &format!("/{BUCKET}/{key}"), &[], &[], &before);
    assert_eq!(a.status, 200);

    let date = amz_date();
    let decoded = payload.len().to_string();
    let (hash, mut extra) = if signed {
        (
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            vec![("x-amz-decoded-content-length", decoded.as_str())],
        )
    } else {
        (
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            vec![
                ("x-amz-decoded-content-length", decoded.as_str()),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
            ],
        )
    };
    extra.push(("content-encoding", "aws-chunked"));
    let path = format!("/{BUCKET}/{key}");
    let (headers, seed) = f.sign("PUT", &path, &[], &extra, hash, "s3", &date);

    let mut body = Vec::new();
    if signed {
        let k = signing_key(&date[..8], "s3");
        let scope = format!("{}/us-east-1/s3/aws4_request", &date[..8]);
        let mut prev = seed;
        let mut pieces: Vec<&[u8]> = payload.chunks(chunk).collect();
        pieces.push(b"");
        for c in pieces {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{date}\n{scope}\n{prev}\n{EMPTY_SHA256}\n{}",
                sha256_hex(c)
            );
            let sig = hex(hmac::sign(&k, sts.as_bytes()).as_ref());
            body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", c.len()).as_bytes());
            body.extend_from_slice(c);
            body.extend_from_slice(b"\r\n");
            prev = sig;
        }
    } else {
        for c in payload.chunks(chunk) {
            body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            body.extend_from_slice(c);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{}\r\n\r\n", crc32_b64(&payload)).as_bytes());
    }
    if *mask != 0 {
        let at = (usize::from(*p1) << 8 | usize::from(*p2)) % body.len();
        body[at] ^= mask;
    }
    let mut headers = headers;
    headers.push(("content-length".into(), body.len().to_string()));
    let a = f.send("PUT", &path, &headers, body);
    assert!(a.status < 500, "{}: {}", a.status, String::from_utf8_lossy(&a.body));
    let now = f.get(&key);
    if *mask == 0 {
        assert_eq!(
            a.status,
            200,
            "a valid encoding refused: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert!(
            now.as_deref() == Some(&payload[..]),
            "stored bytes differ from the payload"
        );
    } else if a.status == 200 {
        assert!(
            now.as_deref() == Some(&payload[..]),
            "a changed encoding stored other bytes"
        );
    } else {
        assert!(
            now.as_deref() == Some(&before[..]),
            "a refused upload changed the object"
        );
    }
}
