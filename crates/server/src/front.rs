//! The request envelope shared by every service: a request id, connection
//! facts for authorization (listener, TLS version), the call into s3s, and
//! the AWS touches s3s leaves out (x-amz-request-id / x-amz-id-2 on every
//! response, RequestId and Resource in error bodies, no body on HEAD/304).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use ring::rand::{SecureRandom, SystemRandom};
use s3s::service::S3Service;
use strongroom_iam::{ConnInfo, OperationSlot};

use crate::Metrics;

/// Connection facts of a plain-HTTP connection.
pub(crate) fn conn_plain(peer: SocketAddr) -> ConnInfo {
    ConnInfo {
        peer,
        secure: false,
        tls_version: None,
    }
}

/// Connection facts of a TLS connection (negotiated version).
pub(crate) fn conn_tls(peer: SocketAddr, conn: &rustls::ServerConnection) -> ConnInfo {
    let tls_version = conn.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    });
    ConnInfo {
        peer,
        secure: true,
        tls_version,
    }
}

/// Routes requests to the services and wraps their answers.
pub struct FrontDoor {
    s3: S3Service,
    identities: strongroom_iam::Identities,
    vhost: Option<crate::BaseDomain>,
    pub(crate) metrics: Arc<Metrics>,
    rng: SystemRandom,
    kms: Option<Arc<strongroom_kms::Kms>>,
    pub(crate) key_service: Option<Arc<dyn strongroom_kms::KeyService>>,
    trusted_proxies: Vec<std::net::IpAddr>,
}

impl FrontDoor {
    pub fn new(
        s3: S3Service,
        identities: strongroom_iam::Identities,
        vhost: Option<crate::BaseDomain>,
        metrics: Arc<Metrics>,
    ) -> FrontDoor {
        FrontDoor {
            s3,
            identities,
            vhost,
            metrics,
            rng: SystemRandom::new(),
            kms: None,
            key_service: None,
            trusted_proxies: Vec::new(),
        }
    }

    /// Proxies (TLS terminators) whose `X-Forwarded-Proto: https` makes a
    /// plain connection count as secure (aws:SecureTransport, SSE-C).
    pub fn with_trusted_proxies(mut self, proxies: Vec<std::net::IpAddr>) -> FrontDoor {
        self.trusted_proxies = proxies;
        self
    }

    /// Serves the built-in KMS's API on the same listeners (when `serve`).
    pub fn with_kms(mut self, kms: Arc<strongroom_kms::Kms>, serve: bool) -> FrontDoor {
        self.kms = serve.then_some(kms);
        self
    }

    /// The key service S3 uses, for its request metrics.
    pub fn with_key_service(mut self, k: Arc<dyn strongroom_kms::KeyService>) -> FrontDoor {
        self.key_service = Some(k);
        self
    }

    fn ids(&self) -> (String, String) {
        let mut b = [0u8; 40];
        let _ = self.rng.fill(&mut b);
        let (a, rest) = b.split_at(8);
        let rid = hex_simd::encode_to_string(a, hex_simd::AsciiCase::Upper);
        let id2 = base64_id(rest);
        (rid, id2)
    }

    /// The bucket a virtual-hosted-style Host header names.
    fn vhost_bucket(&self, parts: &http::request::Parts) -> Option<String> {
        let d = self.vhost.as_ref()?;
        let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok())?;
        let vh = s3s::host::S3Host::parse_host_header(d, host).ok()?;
        vh.bucket().map(str::to_owned)
    }

    pub(crate) async fn handle(&self, req: Request<Incoming>, mut info: ConnInfo) -> Response<s3s::Body> {
        if !info.secure
            && self.trusted_proxies.contains(&info.peer.ip())
            && req
                .headers()
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.eq_ignore_ascii_case("https"))
        {
            info.secure = true;
        }
        let started = Instant::now();
        self.metrics.start();
        let (rid, id2) = self.ids();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let len_in = content_length(req.headers());
        self.metrics.add_in(len_in);
        let (parts, body) = req.into_parts();
        if crate::control_route::is_control(&parts) {
            let store = self.identities.store().clone();
            let (resp, op) = crate::control_route::handle(&self.identities, &store, parts, body, &info).await;
            return self.finish(resp, &rid, &id2, &method, &op, &info, &path, started);
        }
        if let Some(service) = crate::query_api::service_of(&parts) {
            let (resp, op) = crate::query_api::handle(service, &self.identities, parts, body, &info, &rid).await;
            return self.finish(resp, &rid, &id2, &method, &op, &info, &path, started);
        }
        if let Some(kms) = &self.kms
            && crate::kms_route::is_kms(&parts)
        {
            let (resp, op) = crate::kms_route::handle(kms, &self.identities, parts, body, &info, &rid).await;
            return self.finish(resp, &rid, &id2, &method, &op, &info, &path, started);
        }
        self.handle_s3(Request::from_parts(parts, body), info, rid, id2, started)
            .await
    }

    async fn handle_s3(
        &self,
        req: Request<Incoming>,
        info: ConnInfo,
        rid: String,
        id2: String,
        started: Instant,
    ) -> Response<s3s::Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        if let Err((status, code, msg)) =
            strongroom_iam::precheck::precheck(req.headers(), req.uri().query(), time::OffsetDateTime::now_utc())
        {
            let mut resp = error_response(status, code, msg);
            add_error_details(&mut resp, &path, &rid);
            return self.finish(resp, &rid, &id2, &method, "Unknown", &info, &path, started);
        }
        let slot = OperationSlot::default();
        let (mut parts, body) = req.into_parts();
        let vhost_bucket = self.vhost_bucket(&parts);
        if vhost_bucket.is_none() {
            sigv2_bucket_path(&mut parts);
        }
        let v2 = strongroom_iam::sigv2::check(
            &strongroom_iam::sigv2::V2Request {
                method: parts.method.as_str(),
                raw_path: parts.uri.path(),
                query: parts.uri.query(),
                headers: &parts.headers,
                vhost_bucket: vhost_bucket.as_deref(),
            },
            &self.identities,
        );
        if v2 == strongroom_iam::sigv2::V2Check::Invalid {
            let mut resp = error_response(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            );
            add_error_details(&mut resp, &path, &rid);
            return self.finish(resp, &rid, &id2, &method, "Unknown", &info, &path, started);
        }
        parts.extensions.insert(info.clone());
        parts.extensions.insert(slot.clone());
        let body = if is_document_request(&parts, vhost_bucket.as_deref()) && declares_digest(&parts.headers) {
            // s3s reads these XML bodies whole without checking their
            // Content-MD5 / x-amz-checksum-*; a corrupted DeleteObjects must
            // not delete other keys
            let limited = http_body_util::Limited::new(body, MAX_DOCUMENT);
            let bytes = match http_body_util::BodyExt::collect(limited).await {
                Ok(c) => c.to_bytes(),
                Err(_) => {
                    let mut resp = error_response(
                        StatusCode::BAD_REQUEST,
                        "MaxMessageLengthExceeded",
                        "Your request was too big.",
                    );
                    add_error_details(&mut resp, &path, &rid);
                    return self.finish(resp, &rid, &id2, &method, "Unknown", &info, &path, started);
                }
            };
            // on CompleteMultipartUpload, x-amz-checksum-* is the object's
            let completion = parts.method == Method::POST
                && parts
                    .uri
                    .query()
                    .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("uploadId=")));
            if let Err(code) = strongroom_s3::checksum::verify_small_body(&parts.headers, &bytes, !completion) {
                let msg = if code == "InvalidDigest" {
                    "The Content-MD5 you specified was invalid."
                } else {
                    "The Content-MD5 or checksum value that you specified did not match what the server received."
                };
                let mut resp = error_response(StatusCode::BAD_REQUEST, code, msg);
                add_error_details(&mut resp, &path, &rid);
                return self.finish(resp, &rid, &id2, &method, "Unknown", &info, &path, started);
            }
            s3s::Body::from(bytes)
        } else {
            s3s::Body::from(body)
        };
        let req = Request::from_parts(parts, body);

        let mut resp = match self.s3.call(req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = ?e, request_id = %rid, "service failed");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                )
            }
        };
        if method == Method::POST && resp.status() == StatusCode::BAD_REQUEST {
            policy_condition_is_403(&mut resp);
        }
        let status = resp.status();
        if status.as_u16() >= 400 {
            add_error_details(&mut resp, &path, &rid);
        }
        if method == Method::HEAD && status.as_u16() >= 400 || status == StatusCode::NOT_MODIFIED {
            *resp.body_mut() = s3s::Body::empty();
            resp.headers_mut().remove(http::header::CONTENT_LENGTH);
            resp.headers_mut().remove(http::header::CONTENT_TYPE);
        }
        let op = slot.0.get().map_or("Unknown", String::as_str).to_owned();
        if op == "GetObjectAttributes" && status == StatusCode::OK {
            unquote_etag(&mut resp);
        }
        self.finish(resp, &rid, &id2, &method, &op, &info, &path, started)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        mut resp: Response<s3s::Body>,
        rid: &str,
        id2: &str,
        method: &Method,
        op: &str,
        info: &ConnInfo,
        path: &str,
        started: Instant,
    ) -> Response<s3s::Body> {
        let status = resp.status();
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(rid) {
            h.insert("x-amz-request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(id2) {
            h.insert("x-amz-id-2", v);
        }
        if method != Method::HEAD {
            self.metrics.add_out(content_length(resp.headers()));
        }
        let secs = started.elapsed().as_secs_f64();
        self.metrics.finish(op, status.as_u16(), secs);
        tracing::info!(
            request_id = %rid,
            peer = %info.peer,
            tls = info.secure,
            %method,
            path = %path,
            operation = op,
            status = status.as_u16(),
            ms = (secs * 1000.0) as u64,
            "request"
        );
        resp
    }
}

/// Largest XML document read to check its digest (s3s's own cap is the same).
const MAX_DOCUMENT: usize = 4 * 1024 * 1024;

/// True for requests whose body is a document (DeleteObjects, tagging,
/// completion, bucket configurations) rather than object data: PUTs with
/// a sub-resource or on a bucket, and POSTs other than form uploads.
fn is_document_request(parts: &http::request::Parts, vhost_bucket: Option<&str>) -> bool {
    let signing = |k: &str| k.starts_with("X-Amz-") || matches!(k, "AWSAccessKeyId" | "Signature" | "Expires" | "x-id");
    let subresource = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split('=').next().unwrap_or(kv))
        .any(|k| !signing(k) && !matches!(k, "partNumber" | "uploadId"));
    let path = parts.uri.path();
    let has_key = if vhost_bucket.is_some() {
        path.len() > 1
    } else {
        path.trim_start_matches('/')
            .split_once('/')
            .is_some_and(|(_, k)| !k.is_empty())
    };
    let streaming = parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"));
    if streaming {
        return false;
    }
    match parts.method {
        Method::PUT => subresource || !has_key,
        Method::POST => !parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data")),
        _ => false,
    }
}

/// True when the request declares a digest of its body.
fn declares_digest(h: &http::HeaderMap) -> bool {
    h.contains_key("content-md5")
        || ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"]
            .iter()
            .any(|a| h.contains_key(format!("x-amz-checksum-{a}").as_str()))
}

/// SigV2 signs a bucket's resource as `/bucket/` even when the request line
/// says `/bucket` (path style); s3s signs the path as sent, so give it the
/// form the client signed. SigV4 requests are never touched (their
/// canonical URI is the path as sent).
fn sigv2_bucket_path(parts: &mut http::request::Parts) {
    let v2_header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("AWS "));
    let v2_query = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("AWSAccessKeyId=")));
    if !(v2_header || v2_query) {
        return;
    }
    let path = parts.uri.path();
    if path.len() > 1 && !path[1..].contains('/') {
        let new = match parts.uri.query() {
            Some(q) => format!("{path}/?{q}"),
            None => format!("{path}/"),
        };
        if let Ok(pq) = new.parse::<http::uri::PathAndQuery>() {
            let mut p = parts.uri.clone().into_parts();
            p.path_and_query = Some(pq);
            if let Ok(u) = http::Uri::from_parts(p) {
                parts.uri = u;
            }
        }
    }
}

/// A POST object whose form breaks a condition of its signed policy is
/// refused by AWS with 403 AccessDenied ("Invalid according to Policy");
/// s3s answers 400 InvalidPolicyDocument for both that and a malformed
/// policy. Only the condition failures are re-labelled.
fn policy_condition_is_403(resp: &mut Response<s3s::Body>) {
    let Some(bytes) = resp.body().bytes() else { return };
    let Ok(text) = std::str::from_utf8(&bytes) else { return };
    let condition_failed = text.contains("<Code>InvalidPolicyDocument</Code>")
        && (text.contains("Policy condition")
            || text.contains("not specified in the policy")
            || text.contains("does not match bucket in URL"));
    if condition_failed {
        *resp = error_response(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Invalid according to Policy: Policy Condition failed",
        );
    }
}

/// GetObjectAttributes carries the ETag without quotes (AWS); s3s's XML
/// writer always quotes it.
fn unquote_etag(resp: &mut Response<s3s::Body>) {
    let Some(bytes) = resp.body().bytes() else { return };
    let Ok(text) = std::str::from_utf8(&bytes) else { return };
    if !text.contains("<ETag>\"") {
        return;
    }
    let new = text.replace("<ETag>\"", "<ETag>").replace("\"</ETag>", "</ETag>");
    let len = new.len();
    *resp.body_mut() = s3s::Body::from(Bytes::from(new));
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        resp.headers_mut().insert(http::header::CONTENT_LENGTH, v);
    }
}

fn content_length(h: &http::HeaderMap) -> u64 {
    h.get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn base64_id(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(b)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Adds `<Resource>` and `<RequestId>` to an AWS error body (s3s writes
/// Code and Message only).
fn add_error_details(resp: &mut Response<s3s::Body>, path: &str, rid: &str) {
    let Some(bytes) = resp.body().bytes() else { return };
    let Ok(text) = std::str::from_utf8(&bytes) else { return };
    let Some(at) = text.rfind("</Error>") else { return };
    let mut extra = String::new();
    if !text.contains("<Message>")
        && let Some(msg) = text
            .split("<Code>")
            .nth(1)
            .and_then(|r| r.split("</Code>").next())
            .and_then(default_message)
    {
        extra.push_str(&format!("<Message>{msg}</Message>"));
    }
    if !text.contains("<Resource>") {
        extra.push_str(&format!("<Resource>{}</Resource>", xml_escape(path)));
    }
    if !text.contains("<RequestId>") {
        extra.push_str(&format!("<RequestId>{rid}</RequestId>"));
    }
    let new = format!("{}{}{}", &text[..at], extra, &text[at..]);
    let len = new.len();
    *resp.body_mut() = s3s::Body::from(Bytes::from(new));
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        resp.headers_mut().insert(http::header::CONTENT_LENGTH, v);
    }
}

/// AWS's messages for errors s3s reports with a code only.
fn default_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        }
        "AccessDenied" => "Access Denied",
        "InvalidAccessKeyId" => "The AWS Access Key Id you provided does not exist in our records.",
        "InvalidBucketName" => "The specified bucket is not valid.",
        "NoSuchBucket" => "The specified bucket does not exist",
        "NoSuchKey" => "The specified key does not exist.",
        "KeyTooLongError" => "Your key is too long",
        "InvalidURI" => "Couldn't parse the specified URI.",
        "MalformedXML" => "The XML you provided was not well-formed or did not validate against our published schema",
        "InvalidArgument" => "Invalid Argument",
        "InvalidRequest" => "Invalid Request",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "RequestTimeTooSkewed" => "The difference between the request time and the current time is too large.",
        "NotImplemented" => "A header you provided implies functionality that is not implemented.",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "InternalError" => "We encountered an internal error. Please try again.",
        _ => return None,
    })
}

fn error_response(status: StatusCode, code: &str, msg: &str) -> Response<s3s::Body> {
    let body =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{msg}</Message></Error>");
    let mut r = Response::new(s3s::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(())
            .map(|r| r.into_parts().0)
            .unwrap_or_else(|_| Request::new(()).into_parts().0)
    }

    #[test]
    fn documents_are_told_apart_from_object_data() {
        assert!(is_document_request(&parts(Method::POST, "/b?delete", &[]), None));
        assert!(is_document_request(&parts(Method::PUT, "/b/k?tagging", &[]), None));
        assert!(is_document_request(&parts(Method::PUT, "/b", &[]), None));
        assert!(is_document_request(&parts(Method::POST, "/b/k?uploadId=1", &[]), None));
        assert!(!is_document_request(&parts(Method::PUT, "/b/k", &[]), None));
        assert!(!is_document_request(
            &parts(Method::PUT, "/b/k?x-id=PutObject", &[]),
            None
        ));
        assert!(!is_document_request(
            &parts(Method::PUT, "/b/k?partNumber=1&uploadId=2", &[]),
            None
        ));
        assert!(!is_document_request(&parts(Method::PUT, "/k", &[]), Some("b")));
        assert!(!is_document_request(
            &parts(
                Method::POST,
                "/b",
                &[("content-type", "multipart/form-data; boundary=x")]
            ),
            None
        ));
        assert!(!is_document_request(
            &parts(
                Method::PUT,
                "/b/k?tagging",
                &[("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")]
            ),
            None
        ));
    }
}
