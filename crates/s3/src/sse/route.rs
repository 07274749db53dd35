//! PutBucketEncryption and GetBucketEncryption with BlockedEncryptionTypes,
//! which s3s 0.14's DTOs do not model (its parser refuses the element as
//! MalformedXML). Path-style `/<bucket>?encryption` requests come here as an
//! s3s custom route: s3s has verified the signature; `check_access` makes
//! the access layer's decision on the same facts the route acts on; the
//! document is parsed by s3s's own XML code once the extra element is
//! taken out. The route matches only a path that is a plain bucket name and
//! a query (as the envelope decoded it) that is exactly `encryption`:
//! anything else, virtual-hosted requests included, goes to the s3s
//! handlers (without BlockedEncryptionTypes) and their typed decision.

use http::{Extensions, HeaderMap, Method, StatusCode, Uri};
use s3s::dto::ServerSideEncryptionConfiguration;
use s3s::route::S3Route;
use s3s::xml::Deserialize;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};
use strongroom_access::S3Authorization;
use strongroom_access::ask::Ask;
use strongroom_access::table::Op;

use super::config;
use crate::Strongroom;
use crate::error::custom;

/// Largest encryption configuration document.
const MAX_DOC: usize = 64 * 1024;

pub struct EncryptionRoute {
    s3: Strongroom,
    hook: S3Authorization,
}

impl EncryptionRoute {
    pub fn new(s3: Strongroom, hook: S3Authorization) -> EncryptionRoute {
        EncryptionRoute { s3, hook }
    }
}

/// The bucket of a path-style bucket-level request whose path is a plain
/// bucket name (no encoding, so every reader sees the same name).
fn bucket_of(uri: &Uri) -> Option<&str> {
    let b = uri.path().strip_prefix('/')?;
    let plain = (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-');
    plain.then_some(b)
}

/// True when the query, as the envelope decoded it, is `encryption` alone
/// (with the SDKs' `x-id` hint at most, or pre-signed parameters).
fn is_encryption_query(ext: &Extensions) -> bool {
    let Some(facts) = ext.get::<std::sync::Arc<strongroom_access::AuthFacts>>() else {
        return false;
    };
    let q = &facts.query;
    q.has("encryption")
        && q.names()
            .all(|n| n == "encryption" || n == "x-id" || n.starts_with("X-Amz-") || n.starts_with("x-amz-"))
}

#[async_trait::async_trait]
impl S3Route for EncryptionRoute {
    fn is_match(&self, method: &Method, uri: &Uri, _headers: &HeaderMap, ext: &mut Extensions) -> bool {
        (method == Method::PUT || method == Method::GET) && bucket_of(uri).is_some() && is_encryption_query(ext)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let op = if req.method == Method::PUT {
            Op::PutBucketEncryption
        } else {
            Op::GetBucketEncryption
        };
        let bucket = bucket_of(&req.uri).ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))?;
        let expected = req
            .headers
            .get("x-amz-expected-bucket-owner")
            .and_then(|v| v.to_str().ok());
        let ask = Ask::for_bucket(op, bucket, expected);
        self.hook.authorize_ask(req, ask)
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        // the bucket record the decision read, under the name it read
        let b = crate::decided_bucket(&req)?;
        if req.method == Method::GET {
            let Some(cfg) = config::of(&b) else {
                return Err(custom(
                    "ServerSideEncryptionConfigurationNotFoundError",
                    StatusCode::NOT_FOUND,
                    "The server side encryption configuration was not found",
                ));
            };
            let mut resp = S3Response::new(Body::from(config::document(&cfg)));
            resp.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/xml"),
            );
            return Ok(resp);
        }
        let mut body = req.input;
        let bytes = body
            .store_all_limited(MAX_DOC)
            .await
            .map_err(|_| s3_error!(MaxMessageLengthExceeded, "Your request was too big."))?;
        if bytes.is_empty() {
            return Err(s3_error!(MissingRequestBodyError, "Request Body is empty"));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| s3_error!(MalformedXML))?;
        let (rest, blocked) = config::take_blocked(text)?;
        let mut d = s3s::xml::Deserializer::new(rest.as_bytes());
        let doc = ServerSideEncryptionConfiguration::deserialize(&mut d).map_err(|_| {
            custom(
                "MalformedXML",
                StatusCode::BAD_REQUEST,
                "The XML you provided was not well-formed or did not validate against our published schema",
            )
        })?;
        let mut cfg = config::parse(doc)?;
        cfg.blocked = blocked;
        let json = serde_json::to_string(&cfg).map_err(|_| s3_error!(InternalError))?;
        config::set(&self.s3, &b, Some(json)).await?;
        Ok(S3Response::new(Body::empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::config::take_blocked;

    #[test]
    fn blocked_types_are_taken_out_of_the_document() {
        let doc = "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BlockedEncryptionTypes><EncryptionType>SSE-C</EncryptionType></BlockedEncryptionTypes></Rule></ServerSideEncryptionConfiguration>";
        let (rest, t) = take_blocked(doc).ok().unwrap_or_default();
        assert_eq!(t, vec!["SSE-C".to_owned()]);
        assert!(
            !rest.contains("Blocked")
                && rest.contains("<SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>")
        );
        let none = doc.replace("SSE-C", "NONE");
        assert_eq!(take_blocked(&none).ok().map(|r| r.1), Some(Vec::new()));
        assert!(take_blocked(&doc.replace("SSE-C", "SSE-KMS")).is_err());
        assert!(take_blocked(&doc.replace("</BlockedEncryptionTypes>", "")).is_err());
        assert_eq!(take_blocked("<a/>").ok().map(|r| r.0), Some("<a/>".to_owned()));
    }
}
