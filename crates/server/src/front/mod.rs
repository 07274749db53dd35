//! The request envelope shared by every service: a request id, connection
//! facts for authorization ([`conn`]), the pre-authentication reading of
//! an S3 request ([`preauth`]), the call into s3s, and the AWS touches s3s
//! leaves out ([`rewrite`]): x-amz-request-id / x-amz-id-2 on every
//! response, RequestId and Resource in error bodies, no body on HEAD/304,
//! `Connection: close` on an error that leaves a request body unread.

mod accesslog;
mod conn;
mod cors;
mod preauth;
mod rewrite;
mod website;

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, StatusCode};
use ring::rand::{SecureRandom, SystemRandom};
use s3s::service::S3Service;
use strongroom_iam::{ConnInfo, OperationSlot, RequestFacts, RequestSlot};

pub(crate) use conn::{conn_plain, conn_tls};
pub use preauth::DOCUMENT_MAX;
use rewrite::{add_error_details, error_response};

use crate::{Metrics, timed};

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
    rules: strongroom_access::Rules,
    /// `<bucket>.<website-domain>` names a website endpoint's bucket.
    website_domain: Option<crate::BaseDomain>,
    /// The spool of server access-log records (None: nothing is logged).
    access_log: Option<Arc<strongroom_s3::logging::journal::Journal>>,
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
            rules: strongroom_access::Rules {
                region: "us-east-1".into(),
                allow_sigv2: true,
            },
            website_domain: None,
            access_log: None,
        }
    }

    /// Records requests to logging buckets into `journal`.
    pub fn with_access_log(mut self, journal: Arc<strongroom_s3::logging::journal::Journal>) -> FrontDoor {
        self.access_log = Some(journal);
        self
    }

    /// The domain of the website endpoint (`<bucket>.<domain>`).
    pub fn with_website_domain(mut self, d: Option<crate::BaseDomain>) -> FrontDoor {
        self.website_domain = d;
        self
    }

    /// An anonymous GET or HEAD of `bucket`/`key` through the S3 request
    /// path (the website endpoint's reads): the same envelope, decision and
    /// handler as any S3 request, with only the range and conditional
    /// headers of `from` passed on.
    pub(crate) async fn anonymous_read(
        &self,
        method: &Method,
        bucket: &str,
        key: &str,
        from: &http::HeaderMap,
        info: &ConnInfo,
    ) -> Response<s3s::Body> {
        const PASS: &[&str] = &[
            "range",
            "if-match",
            "if-none-match",
            "if-modified-since",
            "if-unmodified-since",
        ];
        const KEY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~')
            .remove(b'/');
        let internal = || {
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "We encountered an internal error. Please try again.",
            )
        };
        let uri = format!("/{bucket}/{}", percent_encoding::utf8_percent_encode(key, KEY));
        let mut b = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(http::header::HOST, "127.0.0.1");
        for n in PASS {
            if let Some(v) = from.get(*n) {
                b = b.header(*n, v.clone());
            }
        }
        let Ok(req) = b.body(s3s::Body::empty()) else {
            return internal();
        };
        let (mut parts, body) = req.into_parts();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let facts =
            match strongroom_access::envelope::examine(&parts.method, &parts.uri, &parts.headers, &self.rules, now) {
                Ok(f) => f,
                Err(r) => return error_response(r.status, r.code, &r.message),
            };
        parts.extensions.insert(info.clone());
        parts.extensions.insert(OperationSlot::default());
        parts.extensions.insert(Arc::new(facts));
        match self.s3.call(Request::from_parts(parts, body)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = ?e, "service failed");
                internal()
            }
        }
    }

    /// What the envelope enforces: the region signatures must be scoped
    /// to, whether SigV2 is accepted.
    pub fn with_rules(mut self, rules: strongroom_access::Rules) -> FrontDoor {
        self.rules = rules;
        self
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
    fn vhost_bucket(&self, headers: &http::HeaderMap) -> Option<String> {
        let d = self.vhost.as_ref()?;
        let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok())?;
        let vh = s3s::host::S3Host::parse_host_header(d, host).ok()?;
        vh.bucket().map(str::to_owned)
    }

    pub(crate) async fn handle(&self, req: Request<timed::RequestBody>, mut info: ConnInfo) -> Response<s3s::Body> {
        conn::forwarded_secure(&mut info, &self.trusted_proxies, req.headers());
        let started = Instant::now();
        self.metrics.start();
        let (rid, id2) = self.ids();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let len_in = content_length(req.headers());
        self.metrics.add_in(len_in);
        let (parts, body) = req.into_parts();
        // from here on an unread body is drained a little before the
        // connection closes (see TimedBody's Drop)
        let body = timed::TimedBody::new(body);
        if let Some((status, code, msg)) = oversized(&parts.uri, &parts.headers) {
            let mut resp = error_response(status, code, msg);
            add_error_details(&mut resp, &path, &rid);
            close_after(&mut resp);
            drop(body);
            return self.finish(resp, &rid, &id2, &method, "Unknown", &info, &path, started);
        }
        if parts.method == Method::OPTIONS {
            // a CORS preflight: no signature, no operation
            let meta = accesslog::Meta::of(
                &parts.method,
                &parts.uri,
                parts.version,
                &parts.headers,
                &info,
                &self.trusted_proxies,
            );
            let bucket = self
                .vhost_bucket(&parts.headers)
                .or_else(|| cors::path_bucket(parts.uri.path()));
            let mut resp = cors::preflight(self.identities.store(), &parts.headers, bucket.as_deref());
            if resp.status().as_u16() >= 400 {
                add_error_details(&mut resp, &path, &rid);
            }
            drop(body);
            let facts = RequestFacts {
                bucket: bucket.clone(),
                ..RequestFacts::default()
            };
            let src = self.log_source(&facts, None);
            let resp = self
                .access_log(
                    src,
                    "REST.OPTIONS.PREFLIGHT".into(),
                    &meta,
                    &facts,
                    None,
                    &info,
                    (&rid, &id2),
                    started,
                    None,
                    resp,
                )
                .await;
            return self.finish(resp, &rid, &id2, &method, "Preflight", &info, &path, started);
        }
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

    /// An S3 request, with the CORS headers of its bucket on the answer
    /// when it carries `Origin`, and its access-log record spooled when
    /// its bucket logs.
    async fn handle_s3(
        &self,
        req: Request<timed::TimedBody>,
        info: ConnInfo,
        rid: String,
        id2: String,
        started: Instant,
    ) -> Response<s3s::Body> {
        let cors_headers = req
            .headers()
            .contains_key(http::header::ORIGIN)
            .then(|| req.headers().clone());
        let method = req.method().clone();
        let meta = accesslog::Meta::of(
            req.method(),
            req.uri(),
            req.version(),
            req.headers(),
            &info,
            &self.trusted_proxies,
        );
        // for answers s3s never parsed (refused before it)
        let fallback = self
            .vhost_bucket(req.headers())
            .or_else(|| cors::path_bucket(req.uri().path()));
        let slot = RequestSlot::default();
        let op = OperationSlot::default();
        let serve = self.serve_s3(
            req,
            info.clone(),
            rid.clone(),
            id2.clone(),
            started,
            slot.clone(),
            op.clone(),
        );
        // with access logs on, a write's first commit carries its record
        let rider = self.rider(&meta, &slot, &op, &info, (&rid, &id2), started);
        let mut resp = match &rider {
            Some(r) => strongroom_store::rider::ride(r.inner.clone(), serve).await,
            None => serve.await,
        };
        let facts = slot.get();
        if let Some(h) = &cors_headers {
            let bucket = facts.bucket.as_deref().or(fallback.as_deref());
            cors::decorate(self.identities.store(), h, &method, bucket, &mut resp);
        }
        let src = self.log_source(&facts, fallback.as_deref());
        self.count_bucket(src.as_ref(), &method, meta.request_len, &resp);
        let operation = match op.0.get() {
            Some(name) => strongroom_s3::logging::record::operation(name, method.as_str()),
            None => format!("REST.{method}.UNKNOWN"),
        };
        self.access_log(
            src,
            operation,
            &meta,
            &facts,
            facts.signature,
            &info,
            (&rid, &id2),
            started,
            rider.as_ref(),
            resp,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn serve_s3(
        &self,
        req: Request<timed::TimedBody>,
        info: ConnInfo,
        rid: String,
        id2: String,
        started: Instant,
        request_slot: RequestSlot,
        slot: OperationSlot,
    ) -> Response<s3s::Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let has_body = req.headers().contains_key(http::header::CONTENT_LENGTH) && content_length(req.headers()) > 0
            || req.headers().contains_key(http::header::TRANSFER_ENCODING);
        let refuse = |status: StatusCode, code: &str, msg: &str| {
            let mut resp = error_response(status, code, msg);
            add_error_details(&mut resp, &path, &rid);
            if has_body {
                close_after(&mut resp);
            }
            self.finish(resp, &rid, &id2, &method, "Unknown", &info, &path, started)
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let facts = match strongroom_access::envelope::examine(req.method(), req.uri(), req.headers(), &self.rules, now)
        {
            Ok(f) => f,
            Err(r) => return refuse(r.status, r.code, &r.message),
        };
        let m = facts.mechanism;
        let signature = m.auth_type().filter(|_| m.signature_version().is_some()).map(|a| {
            (
                if m.is_sigv2() { "SigV2" } else { "SigV4" },
                if a == "REST-QUERY-STRING" {
                    "QueryString"
                } else {
                    "AuthHeader"
                },
            )
        });
        request_slot.update(|f| f.signature = signature);
        let (mut parts, body) = req.into_parts();
        let vhost_bucket = self.vhost_bucket(&parts.headers);
        if facts.mechanism.is_sigv2() {
            if vhost_bucket.is_none() {
                preauth::sigv2_bucket_path(&mut parts);
            }
            let v2 = strongroom_access::sigv2::check(
                &strongroom_access::sigv2::V2Request {
                    method: parts.method.as_str(),
                    raw_path: parts.uri.path(),
                    query: &facts.query,
                    headers: &parts.headers,
                    vhost_bucket: vhost_bucket.as_deref(),
                },
                &self.identities,
            );
            if v2 == strongroom_access::sigv2::V2Check::Invalid {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                );
            }
        }
        let (body, verdict) = match preauth::request_body(&parts, &facts.query, body, vhost_bucket.as_deref()) {
            Ok(b) => b,
            Err(code) => {
                let msg = match code {
                    "MaxMessageLengthExceeded" => "Your request was too big.",
                    _ => "The Content-MD5 you specified was invalid.",
                };
                return refuse(StatusCode::BAD_REQUEST, code, msg);
            }
        };
        parts.extensions.insert(info.clone());
        parts.extensions.insert(slot.clone());
        parts.extensions.insert(request_slot);
        parts.extensions.insert(Arc::new(facts));
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
        if let Some(code) = verdict.get() {
            // the body failed a check as it streamed: nothing was stored
            let msg = match *code {
                "IncompleteBody" => {
                    "The request body ended before its final aws-chunked chunk, or did not match x-amz-decoded-content-length"
                }
                "RequestTimeout" => timed::TIMEOUT_MESSAGE,
                "MaxMessageLengthExceeded" => "Your request was too big.",
                _ => "The Content-MD5 or checksum value that you specified did not match what the server received.",
            };
            resp = error_response(StatusCode::BAD_REQUEST, code, msg);
        }
        if method == Method::POST && resp.status() == StatusCode::BAD_REQUEST {
            rewrite::policy_condition_is_403(&mut resp);
        }
        let status = resp.status();
        if status.as_u16() >= 400 {
            add_error_details(&mut resp, &path, &rid);
            if has_body {
                close_after(&mut resp);
            }
        }
        if method == Method::HEAD && status.as_u16() >= 400 || status == StatusCode::NOT_MODIFIED {
            *resp.body_mut() = s3s::Body::empty();
            resp.headers_mut().remove(http::header::CONTENT_LENGTH);
            resp.headers_mut().remove(http::header::CONTENT_TYPE);
        }
        let op = slot.0.get().map_or("Unknown", String::as_str).to_owned();
        if op == "GetObjectAttributes" && status == StatusCode::OK {
            rewrite::unquote_etag(&mut resp);
        }
        self.finish(resp, &rid, &id2, &method, &op, &info, &path, started)
    }

    /// Counts a request to an existing bucket in the per-bucket metrics.
    pub(crate) fn count_bucket(
        &self,
        src: Option<&accesslog::Source>,
        method: &Method,
        bytes_in: Option<u64>,
        resp: &Response<s3s::Body>,
    ) {
        if let Some(s) = src {
            let out = if method == Method::HEAD {
                0
            } else {
                content_length(resp.headers())
            };
            self.metrics
                .bucket(&s.bucket, resp.status().as_u16(), bytes_in.unwrap_or(0), out);
        }
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

/// The largest header section AWS accepts (400 RequestHeaderSectionTooLarge).
const MAX_HEADER_SECTION: usize = 8 * 1024;
/// The longest request target served: an S3 key is at most 1,024 bytes
/// (3 KiB percent-encoded) and a pre-signed query with a session token
/// a few KiB more.
const MAX_URI: usize = 16 * 1024;

/// A request too big to read on: its header section or its URI.
fn oversized(uri: &http::Uri, headers: &http::HeaderMap) -> Option<(StatusCode, &'static str, &'static str)> {
    let section: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if section > MAX_HEADER_SECTION {
        return Some((
            StatusCode::BAD_REQUEST,
            "RequestHeaderSectionTooLarge",
            "Your request header section exceeds the maximum allowed size.",
        ));
    }
    let uri = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri > MAX_URI {
        return Some((
            StatusCode::BAD_REQUEST,
            "InvalidURI",
            "Couldn't parse the specified URI: it is longer than 16384 bytes.",
        ));
    }
    None
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

/// An error answered before the request body was read: hyper will close
/// the connection rather than drain it, and the client must be told.
fn close_after(resp: &mut Response<s3s::Body>) {
    resp.headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
}
