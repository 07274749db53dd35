//! The S3 Control API's account-level Block Public Access
//! (`/v20180820/configuration/publicAccessBlock`, PUT/GET/DELETE, header
//! `x-amz-account-id`), on the S3 listeners. Verified with our SigV4
//! verifier (service `s3`); the account's root may manage it, other callers
//! need s3:PutAccountPublicAccessBlock / s3:GetAccountPublicAccessBlock.

use http::{Method, Response, StatusCode};
use strongroom_access::PublicAccessBlock;
use strongroom_access::config::account_pab_record;
use strongroom_iam::{ConnInfo, Identities, SignedRequest};
use strongroom_store::{Store, StoreError};

const PATH: &str = "/v20180820/configuration/publicAccessBlock";
/// Every S3 Control path starts so.
const PREFIX: &str = "/v20180820/";
const NS: &str = "http://awss3control.amazonaws.com/doc/2018-08-20/";

/// True for an S3 Control request: the Block Public Access path, or any
/// other S3 Control path with the `x-amz-account-id` header every S3
/// Control request carries (so that a bucket named `v20180820` stays a
/// bucket). The others (access points, jobs, Storage Lens...) are answered
/// NotImplemented here instead of reaching the S3 router as object reads.
pub(crate) fn is_control(parts: &http::request::Parts) -> bool {
    let path = parts.uri.path();
    path == PATH || (path.starts_with(PREFIX) && parts.headers.contains_key("x-amz-account-id"))
}

fn xml(status: StatusCode, body: String) -> Response<s3s::Body> {
    let mut r = Response::new(s3s::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    r
}

fn error(status: StatusCode, code: &str, msg: &str) -> Response<s3s::Body> {
    xml(
        status,
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{msg}</Message></Error>"),
    )
}

/// The boolean of `<Tag>true</Tag>` in a document (absent: false).
fn flag(doc: &str, tag: &str) -> Result<bool, ()> {
    let Some(start) = doc.find(&format!("<{tag}>")) else {
        return Ok(false);
    };
    let rest = &doc[start + tag.len() + 2..];
    let end = rest.find(&format!("</{tag}>")).ok_or(())?;
    match rest[..end].trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(()),
    }
}

/// Serves one request; returns the response and the operation name.
pub(crate) async fn handle(
    ids: &Identities,
    store: &Store,
    parts: http::request::Parts,
    body: crate::timed::TimedBody,
    info: &ConnInfo,
) -> (Response<s3s::Body>, String) {
    if parts.uri.path() != PATH {
        // changes nothing and reveals nothing: no need to authenticate
        drop(body);
        let msg = "This S3 Control operation is not implemented.";
        return (
            error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", msg),
            "s3control:Unknown".into(),
        );
    }
    let op = match parts.method {
        Method::PUT => "PutPublicAccessBlock",
        Method::GET => "GetPublicAccessBlock",
        Method::DELETE => "DeletePublicAccessBlock",
        _ => {
            return (
                error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "The specified method is not allowed against this resource.",
                ),
                "s3control:Unknown".into(),
            );
        }
    };
    let name = format!("s3control:{op}");
    let bytes = match crate::timed::collect(body, 64 * 1024).await {
        Ok(b) => b,
        Err(crate::timed::CollectError::TimedOut) => {
            let msg = crate::timed::TIMEOUT_MESSAGE;
            return (error(StatusCode::BAD_REQUEST, "RequestTimeout", msg), name);
        }
        Err(_) => {
            return (
                error(
                    StatusCode::BAD_REQUEST,
                    "MaxMessageLengthExceeded",
                    "Your request was too big.",
                ),
                name,
            );
        }
    };
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: PATH,
        query: Vec::new(),
        headers: &parts.headers,
        body: &bytes,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let who = match ids.verify_sigv4(&signed, "s3", now) {
        Ok((p, _)) => p,
        Err(e) => {
            let (_, msg) = e.code_and_message();
            return (error(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", &msg), name);
        }
    };
    let account = parts
        .headers
        .get("x-amz-account-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let action = if op == "GetPublicAccessBlock" {
        "s3:GetAccountPublicAccessBlock"
    } else {
        "s3:PutAccountPublicAccessBlock"
    };
    let ctx = strongroom_iam::context::global_context(&who, Some(info), &parts.headers, now);
    if account != who.account_id() || !strongroom_iam::authz::identity_allows(ids, &who, &ctx, action, "*") {
        return (error(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied"), name);
    }
    let record = account_pab_record(&account);
    let resp = match op {
        "PutPublicAccessBlock" => {
            let doc = String::from_utf8_lossy(&bytes);
            let parsed = (|| {
                Ok::<_, ()>(PublicAccessBlock {
                    block_public_acls: flag(&doc, "BlockPublicAcls")?,
                    ignore_public_acls: flag(&doc, "IgnorePublicAcls")?,
                    block_public_policy: flag(&doc, "BlockPublicPolicy")?,
                    restrict_public_buckets: flag(&doc, "RestrictPublicBuckets")?,
                })
            })();
            match parsed {
                Err(()) => error(
                    StatusCode::BAD_REQUEST,
                    "MalformedXML",
                    "The XML you provided was not well-formed or did not validate against our published schema",
                ),
                Ok(pab) => {
                    let v = serde_json::to_vec(&pab).unwrap_or_default();
                    match store
                        .commit(move |t| -> Result<(), StoreError> { t.put_system(&record, &v) })
                        .await
                    {
                        Ok(()) => xml(StatusCode::OK, String::new()),
                        Err(_) => error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalError",
                            "We encountered an internal error. Please try again.",
                        ),
                    }
                }
            }
        }
        "GetPublicAccessBlock" => match store
            .system(&record)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_slice::<PublicAccessBlock>(&v).ok())
        {
            None => error(
                StatusCode::NOT_FOUND,
                "NoSuchPublicAccessBlockConfiguration",
                "The public access block configuration was not found",
            ),
            Some(p) => xml(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><PublicAccessBlockConfiguration xmlns=\"{NS}\"><BlockPublicAcls>{}</BlockPublicAcls><IgnorePublicAcls>{}</IgnorePublicAcls><BlockPublicPolicy>{}</BlockPublicPolicy><RestrictPublicBuckets>{}</RestrictPublicBuckets></PublicAccessBlockConfiguration>",
                    p.block_public_acls, p.ignore_public_acls, p.block_public_policy, p.restrict_public_buckets
                ),
            ),
        },
        _ => match store
            .commit(move |t| -> Result<(), StoreError> { t.delete_system(&record) })
            .await
        {
            Ok(()) => xml(StatusCode::NO_CONTENT, String::new()),
            Err(_) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "We encountered an internal error. Please try again.",
            ),
        },
    };
    (resp, name)
}
