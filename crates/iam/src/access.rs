//! The access hook s3s calls after verifying a signature and before any
//! operation: protocol checks s3s does not make (pre-sign lifetime, unsigned
//! `x-amz-*` headers, SigV2 refusal), then the authorization decision, then
//! the [`Principal`] handed to the operation.

use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};
use strongroom_store::Store;

use crate::{Identities, Principal};

/// Longest lifetime of a pre-signed URL (7 days), as AWS.
pub const MAX_PRESIGN_SECS: u64 = 604_800;

/// Protocol settings enforced by the hook.
#[derive(Clone, Debug)]
pub struct AccessSettings {
    /// Accept SigV2 (header and query) signatures.
    pub allow_sigv2: bool,
}

/// Authorization for S3 requests.
pub struct S3AccessHook {
    identities: Identities,
    store: Store,
    settings: AccessSettings,
    policies: crate::gate::PolicyCache,
}

impl S3AccessHook {
    pub fn new(identities: Identities, store: Store, settings: AccessSettings) -> S3AccessHook {
        S3AccessHook {
            identities,
            store,
            settings,
            policies: crate::gate::PolicyCache::default(),
        }
    }
}

pub(crate) fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// What the protocol checks read of a request.
struct Facts<'a> {
    headers: &'a http::HeaderMap,
    query: Option<&'a str>,
    op: &'a str,
}

/// The names of the signed headers, lower-case, if the request is SigV4.
fn signed_headers(cx: &Facts<'_>) -> Option<Vec<String>> {
    if let Some(auth) = cx.headers.get("authorization").and_then(|v| v.to_str().ok())
        && auth.starts_with("AWS4-HMAC-SHA256")
    {
        let list = auth.split("SignedHeaders=").nth(1)?.split(',').next()?;
        return Some(list.split(';').map(|s| s.trim().to_ascii_lowercase()).collect());
    }
    let q = cx.query;
    let list = query_param(q, "X-Amz-SignedHeaders")?;
    let decoded = percent_decode(list);
    Some(decoded.split(';').map(str::to_ascii_lowercase).collect())
}

pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1..i + 3)) {
            (b'%', Some(h)) if h.iter().all(u8::is_ascii_hexdigit) => {
                let hex = std::str::from_utf8(h).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b[i]);
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_sigv2(cx: &Facts<'_>) -> bool {
    let header_v2 = cx
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("AWS "));
    let query_v2 = query_param(cx.query, "AWSAccessKeyId").is_some();
    header_v2 || query_v2
}

impl S3AccessHook {
    fn protocol_checks(&self, cx: &Facts<'_>) -> S3Result<()> {
        if let Some(exp) = query_param(cx.query, "X-Amz-Expires") {
            if exp.starts_with('-') {
                return Err(s3_error!(AccessDenied, "Request has expired"));
            }
            let secs: u64 = exp
                .parse()
                .map_err(|_| s3_error!(AuthorizationQueryParametersError, "X-Amz-Expires should be a number"))?;
            if secs > MAX_PRESIGN_SECS {
                return Err(s3_error!(
                    AuthorizationQueryParametersError,
                    "X-Amz-Expires must be less than a week (in seconds) that is 604800"
                ));
            }
        }
        // Features whose headers we must not accept silently until they are
        // built: a lock we do not enforce would be a lie.
        for (name, _) in cx.headers {
            let n = name.as_str();
            // S3 Express One Zone only: refused on general purpose buckets
            if matches!(
                n,
                "x-amz-write-offset-bytes" | "x-amz-if-match-last-modified-time" | "x-amz-if-match-size"
            ) {
                return Err(s3_error!(
                    NotImplemented,
                    "This header is not supported by general purpose buckets"
                ));
            }
            if n.starts_with("x-amz-grant-") && cx.op != "CreateBucket" && !cx.op.ends_with("Acl") {
                return Err(s3_error!(
                    AccessControlListNotSupported,
                    "The bucket does not allow ACLs"
                ));
            }
        }
        if is_sigv2(cx) {
            if !self.settings.allow_sigv2 {
                return Err(s3_error!(AccessDenied, "Signature Version 2 is refused by this server"));
            }
        } else if let Some(signed) = signed_headers(cx) {
            for name in cx.headers.keys() {
                let n = name.as_str();
                if n.starts_with("x-amz-") && !signed.iter().any(|s| s == n) {
                    return Err(s3_error!(
                        AccessDenied,
                        "There were headers present in the request which were not signed"
                    ));
                }
            }
        }
        Ok(())
    }

    /// `x-amz-expected-bucket-owner` (and the copy source's counterpart):
    /// the request fails with 403 unless the bucket belongs to that account.
    fn expected_owner(&self, cx: &S3AccessContext<'_>) -> S3Result<()> {
        let dest = match cx.s3_path() {
            S3Path::Root => None,
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => Some(bucket.as_ref()),
        };
        self.owner_is(cx.headers(), "x-amz-expected-bucket-owner", dest)?;
        let source = cx
            .headers()
            .get("x-amz-copy-source")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_start_matches('/'))
            .and_then(|v| v.split('/').next());
        self.owner_is(cx.headers(), "x-amz-source-expected-bucket-owner", source)
    }

    /// 403 when `header` names an account that does not own `bucket`.
    fn owner_is(&self, headers: &http::HeaderMap, header: &str, bucket: Option<&str>) -> S3Result<()> {
        let Some(want) = headers.get(header).and_then(|v| v.to_str().ok()) else {
            return Ok(());
        };
        let Some(bucket) = bucket else { return Ok(()) };
        let owner = self
            .store
            .bucket(bucket)
            .map_err(|e| s3_error!(InternalError, "metadata read failed: {e}"))?
            .map(|b| b.owner);
        match owner {
            Some(o) if o != want => Err(s3_error!(AccessDenied, "Access Denied")),
            _ => Ok(()),
        }
    }
}

impl S3AccessHook {
    /// The caller and the authorization decision. Anonymous callers of a
    /// bucket that does not exist learn that it does not exist.
    fn decide(
        &self,
        credentials: Option<&s3s::auth::Credentials>,
        ask: &crate::gate::Ask<'_>,
    ) -> S3Result<(Principal, crate::gate::Gate)> {
        let authz = crate::gate::Authorizer {
            identities: &self.identities,
            store: &self.store,
            cache: &self.policies,
        };
        let principal = authz.caller(credentials, ask)?;
        match authz.authorize(&principal, ask) {
            Ok(gate) => Ok((principal, gate)),
            Err(e) => {
                if principal.is_anonymous()
                    && let S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } = ask.path
                    && self.store.bucket(bucket).ok().flatten().is_none()
                {
                    return Err(s3_error!(NoSuchBucket, "The specified bucket does not exist"));
                }
                Err(e)
            }
        }
    }

    /// The same decision as the hook's, for a bucket-level request s3s
    /// hands to a custom route (routes bypass the access hook): protocol
    /// checks, the caller, authorization, expected bucket owner. Inserts
    /// and returns the [`Principal`].
    pub fn check_route(
        &self,
        op: &str,
        bucket: &str,
        credentials: Option<&s3s::auth::Credentials>,
        headers: &http::HeaderMap,
        query: Option<&str>,
        extensions: &mut http::Extensions,
    ) -> S3Result<Principal> {
        if let Some(slot) = extensions.get::<crate::OperationSlot>() {
            let _ = slot.0.set(op.to_owned());
        }
        self.protocol_checks(&Facts { headers, query, op })?;
        let path = S3Path::Bucket { bucket: bucket.into() };
        let conn = extensions.get::<crate::ConnInfo>().cloned();
        let ask = crate::gate::Ask {
            op,
            path: &path,
            headers,
            query,
            conn: conn.as_ref(),
        };
        let (principal, gate) = self.decide(credentials, &ask)?;
        self.owner_is(headers, "x-amz-expected-bucket-owner", Some(bucket))?;
        extensions.insert(principal.clone());
        extensions.insert(gate);
        Ok(principal)
    }
}

#[async_trait::async_trait]
impl S3Access for S3AccessHook {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        if let Some(slot) = cx.extensions_mut().get::<crate::OperationSlot>() {
            let _ = slot.0.set(op.clone());
        }
        self.protocol_checks(&Facts {
            headers: cx.headers(),
            query: cx.uri().query(),
            op: &op,
        })?;
        let conn = cx.extensions_mut().get::<crate::ConnInfo>().cloned();
        let ask = crate::gate::Ask {
            op: &op,
            path: cx.s3_path(),
            headers: cx.headers(),
            query: cx.uri().query(),
            conn: conn.as_ref(),
        };
        let (principal, gate) = self.decide(cx.credentials(), &ask)?;
        self.expected_owner(cx)?;
        cx.extensions_mut().insert(principal);
        cx.extensions_mut().insert(gate);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_param_finds_exact_names() {
        let q = Some("X-Amz-Expires=60&X-Amz-ExpiresX=1&a");
        assert_eq!(query_param(q, "X-Amz-Expires"), Some("60"));
        assert_eq!(query_param(q, "a"), Some(""));
        assert_eq!(query_param(q, "b"), None);
    }

    #[test]
    fn percent_decode_handles_signed_header_lists() {
        assert_eq!(percent_decode("host%3Bx-amz-date"), "host;x-amz-date");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
    }
}
