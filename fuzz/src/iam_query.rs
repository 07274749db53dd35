//! The IAM and STS Query APIs read an untrusted
//! `application/x-www-form-urlencoded` body (Action, names, policy
//! documents, paths, tags...) once its SigV4 signature checks out. Sent
//! signed as the account root, through the real server. Properties: every
//! answer is 200 or a 4xx with an AWS XML error naming its Code (never a
//! 5xx or a panic), and a refused request leaves every durable IAM/STS/KMS
//! record exactly as it was.
//!
//! Input: first byte picks IAM or STS, the rest is the form body.

use crate::front::{amz_date, code, front, sha256_hex};

/// One case.
pub fn run(data: &[u8]) {
    let [svc, body @ ..] = data else { return };
    let service = if svc % 2 == 0 { "iam" } else { "sts" };
    let f = front();
    let before = f.system_records();
    let date = amz_date();
    let ctype = "application/x-www-form-urlencoded; charset=utf-8";
    let (mut headers, _) = f.sign(
        "POST",
        "/",
        &[],
        &[("content-type", ctype)],
        &sha256_hex(body),
        service,
        &date,
    );
    headers.push(("content-length".into(), body.len().to_string()));
    let a = f.send("POST", "/", &headers, body.to_vec());
    let text = String::from_utf8_lossy(&a.body);
    assert!(
        a.status == 200 || (400..500).contains(&a.status),
        "{service}: {}: {text}",
        a.status
    );
    if a.status != 200 {
        assert!(
            text.contains("<ErrorResponse") && !code(&a.body).is_empty(),
            "{service}: error body: {text}"
        );
        assert!(
            f.system_records() == before,
            "{service}: a refused request changed state: {text}"
        );
    }
}
