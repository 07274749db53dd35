//! The CORS layer of the front door (S3 and website endpoints): preflight
//! `OPTIONS` requests are answered from the bucket's rules — no signature,
//! nothing changes, and the answer never tells whether a key (or the bucket)
//! exists — and a request that carries `Origin` gets the matching rule's
//! headers on its response, errors included (a page cannot read an error it
//! is not allowed to see). `Vary` is set on matches and misses alike.
//!
//! The bucket is the one s3s read from the request (the access layer leaves
//! it in a [`strongroom_iam::RequestSlot`]); a request s3s never parsed
//! (refused earlier) is matched on the bucket the path or Host names.

use http::{HeaderValue, Method, Response, StatusCode};
use strongroom_s3::cors;
use strongroom_store::Store;

use super::rewrite::error_response;

fn forbidden(msg: &str) -> Response<s3s::Body> {
    error_response(StatusCode::FORBIDDEN, "AccessForbidden", msg)
}

const NOT_ENABLED: &str = "CORSResponse: CORS is not enabled for this bucket.";
const NOT_ALLOWED: &str = "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The rules of `bucket`: None when it has none, or does not exist (a
/// preflight tells nothing about existence).
fn rules_of(store: &Store, bucket: Option<&str>) -> Option<Vec<cors::Rule>> {
    let b = store.bucket(bucket?).ok().flatten()?;
    cors::rules(&b)
}

fn set(resp: &mut Response<s3s::Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// Answers a preflight request for `bucket`.
pub(crate) fn preflight(store: &Store, headers: &http::HeaderMap, bucket: Option<&str>) -> Response<s3s::Body> {
    let Some(origin) = header(headers, "origin") else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
        );
    };
    let Some(method) = header(headers, "access-control-request-method") else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid Access-Control-Request-Method: null",
        );
    };
    let Some(rules) = rules_of(store, bucket) else {
        return forbidden(NOT_ENABLED);
    };
    let requested = header(headers, "access-control-request-headers");
    let names = requested.map(cors::header_names).unwrap_or_default();
    let mut resp = match cors::preflight(&rules, origin, method, &names) {
        Some(rule) => {
            let mut r = Response::new(s3s::Body::empty());
            for (n, v) in rule.headers_for(origin, requested) {
                set(&mut r, n, &v);
            }
            r
        }
        None => forbidden(NOT_ALLOWED),
    };
    set(&mut resp, "vary", cors::VARY);
    resp
}

/// Adds the CORS headers of a request that carried `Origin` to its
/// response. The method matched is the request's own, or the one it
/// announces in `Access-Control-Request-Method` (as ceph/s3-tests expect).
pub(crate) fn decorate(
    store: &Store,
    headers: &http::HeaderMap,
    method: &Method,
    bucket: Option<&str>,
    resp: &mut Response<s3s::Body>,
) {
    let Some(origin) = header(headers, "origin") else {
        return;
    };
    let Some(rules) = rules_of(store, bucket) else { return };
    let method = header(headers, "access-control-request-method").unwrap_or(method.as_str());
    if let Some(rule) = cors::actual(&rules, origin, method) {
        for (n, v) in rule.headers_for(origin, None) {
            set(resp, n, &v);
        }
    }
    set(resp, "vary", cors::VARY);
}

/// The bucket a request names by its path (path style) when no virtual
/// host names one: the first segment, percent-decoded; None for the
/// service root or a name no bucket can have.
pub(crate) fn path_bucket(path: &str) -> Option<String> {
    let first = path.trim_start_matches('/').split('/').next()?;
    let name = percent_encoding::percent_decode_str(first).decode_utf8().ok()?;
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    ok.then(|| name.into_owned())
}

#[cfg(test)]
mod tests {
    use super::path_bucket;

    #[test]
    fn path_buckets_are_valid_names_only() {
        assert_eq!(path_bucket("/assets/a/b.png").as_deref(), Some("assets"));
        assert_eq!(path_bucket("/assets").as_deref(), Some("assets"));
        assert_eq!(path_bucket("/").as_deref(), None);
        assert_eq!(path_bucket("/%61ssets/x").as_deref(), Some("assets"));
        assert_eq!(path_bucket("/Assets/x").as_deref(), None);
        assert_eq!(path_bucket("/a%2Fb/x").as_deref(), None);
    }
}
