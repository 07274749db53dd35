//! The condition keys of an S3 request: the global `aws:*` keys, the keys
//! the typed input carries ([`Ask::keys`], request tags), and how the
//! request was signed (from the envelope's [`AuthFacts`]).

use std::sync::Arc;

use strongroom_iam::policy::Context;
use strongroom_iam::{ConnInfo, Principal};

use crate::ask::Ask;
use crate::envelope::AuthFacts;

/// What the decision needs besides the request's [`Ask`].
pub(crate) struct Env<'a> {
    pub who: &'a Principal,
    pub conn: Option<&'a ConnInfo>,
    pub headers: &'a http::HeaderMap,
    pub facts: &'a Arc<AuthFacts>,
    pub now: i64,
}

/// Builds the context of an S3 request.
pub(crate) fn s3_context(env: &Env<'_>, ask: &Ask) -> Context {
    let mut c = strongroom_iam::context::global_context(env.who, env.conn, env.headers, env.now);
    for (k, v) in &ask.keys {
        c.set(k, v.clone());
    }
    if let Some(tags) = &ask.request_tags {
        c.set_many("s3:RequestObjectTagKeys", tags.iter().map(|(k, _)| k.clone()).collect());
        for (k, v) in tags {
            c.set(&format!("s3:RequestObjectTag/{k}"), v.clone());
        }
    }
    if let Some(v) = env.headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()) {
        c.set("s3:x-amz-content-sha256", v);
    }
    let m = env.facts.mechanism;
    if let Some(v) = m.signature_version() {
        c.set("s3:signatureversion", v);
    }
    if let Some(k) = m.auth_type() {
        c.set("s3:authType", k);
    }
    if let Some(at) = env.facts.signed_at {
        c.set("s3:signatureAge", ((env.now - at).max(0) * 1000).to_string());
    }
    c
}
