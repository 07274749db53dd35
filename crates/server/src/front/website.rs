//! The static website endpoint (`--website`, `--website-https`): anonymous
//! GET and HEAD of a bucket configured as a website. Every read it makes
//! goes through the S3 request path as the anonymous principal — the same
//! envelope, decision and handler as any request — so a bucket policy is
//! what makes a site public and Block Public Access blocks it (403).
//!
//! As AWS's website endpoints: the index document for `/` and for keys
//! ending in `/`; `dir` answered with a 302 to `dir/` when only
//! `dir/index.html` exists; `x-amz-website-redirect-location` (301);
//! RedirectAllRequestsTo; routing rules before the read and after an
//! error; the error document with the original status; AWS's HTML error
//! pages otherwise; 405 for any other method; CORS as on the S3 endpoint.
//! The bucket comes from `Host: <bucket>.<website-domain>`, or for other
//! hosts (machines without wildcard DNS) from the first path segment.

use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, StatusCode};
use s3s::host::S3Host;
use strongroom_iam::ConnInfo;
use strongroom_s3::website::{self, Redirection};

use super::{FrontDoor, conn, cors};
use crate::timed;

/// Bytes of an error answer read to learn its code.
const ERROR_BODY_MAX: usize = 64 * 1024;

/// Where a website request lands: its bucket, the key it names (decoded),
/// and the path prefix that names the bucket (path style) for relative
/// redirects.
struct Target {
    bucket: Option<String>,
    key: String,
    prefix: String,
}

fn page(
    status: StatusCode,
    code: &str,
    message: &str,
    key: Option<&str>,
    rid: &str,
    id2: &str,
    head: bool,
) -> Response<s3s::Body> {
    let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    let key_line = key.map(|k| format!("<li>Key: {}</li>\n", esc(k))).unwrap_or_default();
    let html = format!(
        "<html>\n<head><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n<ul>\n<li>Code: {}</li>\n<li>Message: {}</li>\n{key_line}<li>RequestId: {}</li>\n<li>HostId: {}</li>\n</ul>\n<hr/>\n</body>\n</html>\n",
        esc(code),
        esc(message),
        esc(rid),
        esc(id2)
    );
    let mut r = Response::new(if head {
        s3s::Body::empty()
    } else {
        s3s::Body::from(html)
    });
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn redirect(r: &Redirection) -> Response<s3s::Body> {
    let mut resp = Response::new(s3s::Body::empty());
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    if let Ok(v) = HeaderValue::from_str(&r.location) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp
}

/// The `<Code>` and `<Message>` of an S3 error answer.
async fn error_of(resp: Response<s3s::Body>) -> (String, String) {
    let limited = http_body_util::Limited::new(resp.into_body(), ERROR_BODY_MAX);
    let bytes = http_body_util::BodyExt::collect(limited)
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let field = |name: &str| {
        let open = format!("<{name}>");
        text.split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&format!("</{name}>")))
            .map(|(v, _)| {
                quick_xml::escape::unescape(v)
                    .map(|c| c.into_owned())
                    .unwrap_or_else(|_| v.to_owned())
            })
            .unwrap_or_default()
    };
    (field("Code"), field("Message"))
}

impl FrontDoor {
    /// Serves one request of the website endpoint.
    pub(crate) async fn handle_website(
        &self,
        req: Request<timed::RequestBody>,
        mut info: ConnInfo,
    ) -> Response<s3s::Body> {
        conn::forwarded_secure(&mut info, &self.trusted_proxies, req.headers());
        let started = Instant::now();
        self.metrics.start();
        let (rid, id2) = self.ids();
        let (parts, body) = req.into_parts();
        // an unread body is drained a little before the connection closes
        drop(timed::TimedBody::new(body));
        let path = parts.uri.path().to_owned();
        let meta = super::accesslog::Meta::of(
            &parts.method,
            &parts.uri,
            parts.version,
            &parts.headers,
            &info,
            &self.trusted_proxies,
        );
        let target = self.website_target(&parts);
        let mut resp = self.website(&parts, &info, &target, &rid, &id2).await;
        let bucket = target.as_ref().and_then(|t| t.bucket.clone());
        if parts.method != Method::OPTIONS {
            cors::decorate(
                self.identities.store(),
                &parts.headers,
                &parts.method,
                bucket.as_deref(),
                &mut resp,
            );
        }
        // the website request itself is the record (its reads are internal)
        let facts = strongroom_iam::RequestFacts {
            bucket,
            key: target.as_ref().map(|t| t.key.clone()).filter(|k| !k.is_empty()),
            ..strongroom_iam::RequestFacts::default()
        };
        let operation = if parts.method == Method::OPTIONS {
            "REST.OPTIONS.PREFLIGHT".to_owned()
        } else {
            format!("WEBSITE.{}.OBJECT", parts.method)
        };
        let src = self.log_source(&facts, None);
        self.count_bucket(src.as_ref(), &parts.method, None, &resp);
        let resp = self
            .access_log(
                src,
                operation,
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
        self.finish(resp, &rid, &id2, &parts.method, "Website", &info, &path, started)
    }

    /// The bucket and key a website request names.
    fn website_target(&self, parts: &http::request::Parts) -> Option<Target> {
        let raw = parts.uri.path().strip_prefix('/').unwrap_or(parts.uri.path());
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        let host = parts.headers.get(http::header::HOST).and_then(|h| h.to_str().ok());
        let vhost = self
            .website_domain
            .as_ref()
            .zip(host)
            .and_then(|(d, h)| d.parse_host_header(h).ok()?.bucket().map(str::to_owned));
        Some(match vhost {
            Some(bucket) => Target {
                bucket: Some(bucket),
                key: decode(raw)?,
                prefix: "/".to_owned(),
            },
            None => {
                let (b, key) = raw.split_once('/').unwrap_or((raw, ""));
                Target {
                    bucket: cors::path_bucket(&format!("/{b}")),
                    key: decode(key)?,
                    prefix: format!("/{b}/"),
                }
            }
        })
    }

    async fn website(
        &self,
        parts: &http::request::Parts,
        info: &ConnInfo,
        target: &Option<Target>,
        rid: &str,
        id2: &str,
    ) -> Response<s3s::Body> {
        let head = parts.method == Method::HEAD;
        let Some(t) = target else {
            return page(
                StatusCode::BAD_REQUEST,
                "InvalidURI",
                "Couldn't parse the specified URI.",
                None,
                rid,
                id2,
                head,
            );
        };
        if parts.method == Method::OPTIONS {
            return cors::preflight(self.identities.store(), &parts.headers, t.bucket.as_deref());
        }
        if parts.method != Method::GET && !head {
            return page(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
                None,
                rid,
                id2,
                false,
            );
        }
        let no_bucket = || {
            page(
                StatusCode::NOT_FOUND,
                "NoSuchBucket",
                "The specified bucket does not exist",
                None,
                rid,
                id2,
                head,
            )
        };
        let Some(bucket) = t.bucket.as_deref() else {
            return no_bucket();
        };
        let rec = match self.identities.store().bucket(bucket) {
            Ok(Some(r)) => r,
            Ok(None) => return no_bucket(),
            Err(e) => {
                tracing::error!(error = %e, "bucket record not readable");
                return page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                    None,
                    rid,
                    id2,
                    head,
                );
            }
        };
        let site = match website::site(&rec) {
            Ok(Some(s)) => s,
            Ok(None) => {
                return page(
                    StatusCode::NOT_FOUND,
                    "NoSuchWebsiteConfiguration",
                    "The specified bucket does not have a website configuration",
                    None,
                    rid,
                    id2,
                    head,
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "unreadable website configuration");
                return page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                    None,
                    rid,
                    id2,
                    head,
                );
            }
        };
        let scheme = if info.secure { "https" } else { "http" };
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        if let Some(r) = site.redirect_all(&t.key, scheme) {
            return redirect(&r);
        }
        let key = website::key_for(&t.key, &site);
        if let Some(rule) = site.rule(&key, None) {
            return redirect(&rule.redirect(&key, host, scheme));
        }
        let resp = self
            .anonymous_read(&parts.method, bucket, &key, &parts.headers, info)
            .await;
        let status = resp.status();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            if let Some(to) = resp.headers().get("x-amz-website-redirect-location").cloned() {
                let mut r = Response::new(s3s::Body::empty());
                *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
                r.headers_mut().insert(http::header::LOCATION, to);
                return r;
            }
            return resp;
        }
        let (code, message) = error_of(resp).await;
        let absent = matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN);
        // `dir` names a directory whose index document exists: `dir/`
        if absent
            && !t.key.is_empty()
            && !t.key.ends_with('/')
            && let Some(suffix) = &site.index
        {
            let index = format!("{}/{suffix}", t.key);
            if self
                .anonymous_read(&Method::HEAD, bucket, &index, &http::HeaderMap::new(), info)
                .await
                .status()
                == StatusCode::OK
            {
                return redirect(&Redirection {
                    status: 302,
                    location: format!("{}{}/", t.prefix, t.key),
                });
            }
        }
        if let Some(rule) = site.rule(&key, Some(status.as_u16())) {
            return redirect(&rule.redirect(&key, host, scheme));
        }
        if absent && let Some(doc) = &site.error {
            let mut r = self
                .anonymous_read(&parts.method, bucket, doc, &http::HeaderMap::new(), info)
                .await;
            if r.status() == StatusCode::OK {
                *r.status_mut() = status;
                return r;
            }
        }
        page(status, &code, &message, Some(&key), rid, id2, head)
    }
}
