//! PutBucketEncryption and GetBucketEncryption with BlockedEncryptionTypes,
//! which s3s 0.14's DTOs do not model (its parser refuses the element as
//! MalformedXML). Path-style `/<bucket>?encryption` requests come here as an
//! s3s custom route: s3s has verified the signature; [`check_access`]
//! makes the access hook's decision; the document is parsed by s3s's own
//! XML code once the extra element is taken out. Virtual-hosted requests
//! still go to the s3s handlers (without BlockedEncryptionTypes).

use std::sync::Arc;

use http::{Extensions, HeaderMap, Method, StatusCode, Uri};
use s3s::dto::ServerSideEncryptionConfiguration;
use s3s::route::S3Route;
use s3s::xml::Deserialize;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};
use strongroom_iam::S3AccessHook;

use super::config;
use crate::Strongroom;
use crate::error::{custom, no_such_bucket, store};

/// Largest encryption configuration document.
const MAX_DOC: usize = 64 * 1024;

pub struct EncryptionRoute {
    s3: Strongroom,
    hook: Arc<S3AccessHook>,
}

impl EncryptionRoute {
    pub fn new(s3: Strongroom, hook: Arc<S3AccessHook>) -> EncryptionRoute {
        EncryptionRoute { s3, hook }
    }
}

/// The bucket of a path-style bucket-level request.
fn bucket_of(uri: &Uri) -> Option<&str> {
    let b = uri.path().strip_prefix('/')?;
    (!b.is_empty() && !b.contains('/')).then_some(b)
}

fn is_encryption_query(uri: &Uri) -> bool {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .any(|kv| kv.split('=').next() == Some("encryption"))
}

#[async_trait::async_trait]
impl S3Route for EncryptionRoute {
    fn is_match(&self, method: &Method, uri: &Uri, _headers: &HeaderMap, _ext: &mut Extensions) -> bool {
        (method == Method::PUT || method == Method::GET) && bucket_of(uri).is_some() && is_encryption_query(uri)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let op = if req.method == Method::PUT {
            "PutBucketEncryption"
        } else {
            "GetBucketEncryption"
        };
        let bucket = bucket_of(&req.uri).unwrap_or_default().to_owned();
        self.hook.check_route(
            op,
            &bucket,
            req.credentials.as_ref(),
            &req.headers,
            req.uri.query(),
            &mut req.extensions,
        )?;
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let bucket = bucket_of(&req.uri).unwrap_or_default().to_owned();
        if req.method == Method::GET {
            let b = store(self.s3.store.bucket(&bucket))?.ok_or_else(no_such_bucket)?;
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
        config::set(&self.s3, &bucket, Some(json)).await?;
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
