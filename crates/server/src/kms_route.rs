//! The KMS endpoint on the S3 listeners: requests carrying
//! `X-Amz-Target: TrentService.*` are verified with our SigV4 verifier
//! (service `kms`) and answered by the built-in KMS's JSON 1.1 API.

use http::{HeaderValue, Response, StatusCode};
use strongroom_iam::{ConnInfo, Identities, SignedRequest};
use strongroom_kms::{Caller, Kms};

/// Largest KMS request body (policies are at most 32 KiB, plaintexts 4 KiB).
const MAX_BODY: usize = 256 * 1024;

/// True when the request is for KMS.
pub(crate) fn is_kms(parts: &http::request::Parts) -> bool {
    parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("TrentService."))
}

fn json(status: u16, body: Vec<u8>, rid: &str) -> Response<s3s::Body> {
    let mut r = Response::new(s3s::Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(rid) {
        h.insert("x-amzn-requestid", v);
    }
    r
}

fn error(status: u16, code: &str, msg: &str, rid: &str) -> Response<s3s::Body> {
    let body = serde_json::to_vec(&serde_json::json!({"__type": code, "message": msg})).unwrap_or_default();
    json(status, body, rid)
}

/// Serves one KMS request; returns the response and the operation name.
pub(crate) async fn handle(
    kms: &Kms,
    identities: &Identities,
    parts: http::request::Parts,
    body: crate::timed::TimedBody,
    info: &ConnInfo,
    rid: &str,
) -> (Response<s3s::Body>, String) {
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let op = format!("kms:{}", target.strip_prefix("TrentService.").unwrap_or("Unknown"));
    let bytes = match crate::timed::collect(body, MAX_BODY).await {
        Ok(b) => b,
        Err(crate::timed::CollectError::TimedOut) => {
            let msg = crate::timed::TIMEOUT_MESSAGE;
            return (error(400, "RequestTimeout", msg, rid), op);
        }
        Err(_) => {
            return (
                error(413, "ValidationException", "The request body is too large.", rid),
                op,
            );
        }
    };
    let path = percent_decode(parts.uri.path());
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: &path,
        query,
        headers: &parts.headers,
        body: &bytes,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let principal = match identities.verify_sigv4(&signed, "kms", now) {
        Ok((p, _region)) => p,
        Err(e) => {
            let (code, msg) = e.code_and_message();
            return (error(400, code, &msg, rid), op);
        }
    };
    let identity = (!principal.is_root()).then(|| {
        let ids = identities.clone();
        let who = principal.clone();
        let ctx = strongroom_iam::context::global_context(&who, Some(info), &parts.headers, now);
        strongroom_kms::IdentityCheck(std::sync::Arc::new(
            move |action: &str, resource: &str, keys: &strongroom_iam::policy::Context| {
                let mut ctx = ctx.clone();
                ctx.merge(keys);
                strongroom_iam::authz::identity_decision(&ids, &who, &ctx, action, resource)
            },
        ))
    });
    // (actions on no key are decided by the caller's identity policies in
    // the KMS API itself, which reads the request's condition keys)
    let caller = Caller {
        account_id: principal.account_id().to_owned(),
        arn: principal.identity_arn(),
        access_key: principal.access_key().to_owned(),
        source_ip: info.peer.ip().to_string(),
        via_service: None,
        identity,
    };
    let (status, out) = strongroom_kms::api::handle(kms, &caller, &target, &bytes).await;
    (json(status, out, rid), op)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}
