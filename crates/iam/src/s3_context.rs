//! The request context of an S3 request: the condition keys policies may
//! test, read from the caller, the connection, the headers and the query.

use http::HeaderMap;

use crate::access::{percent_decode, query_param};
use crate::policy::Context;
use crate::{CallerKind, ConnInfo, Principal};

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Parses `k1=v1&k2=v2` (URL-encoded) tag sets.
fn tag_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Unix seconds of the request's signing time, if it carries one.
fn signed_at(h: &HeaderMap, query: Option<&str>) -> Option<i64> {
    let raw = header(h, "x-amz-date")
        .map(str::to_owned)
        .or_else(|| query_param(query, "X-Amz-Date").map(percent_decode))?;
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(&raw, &fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// Builds the context of an S3 request.
pub fn s3_context(who: &Principal, conn: Option<&ConnInfo>, h: &HeaderMap, query: Option<&str>, now: i64) -> Context {
    let mut c = Context::new();
    let secure = conn.is_some_and(|c| c.secure);
    c.set("aws:SecureTransport", if secure { "true" } else { "false" });
    if let Some(conn) = conn {
        let ip = match conn.peer.ip() {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(conn.peer.ip(), std::net::IpAddr::V4),
            ip => ip,
        };
        c.set("aws:SourceIp", ip.to_string());
        if let Some(v) = &conn.tls_version {
            c.set("s3:TlsVersion", v.trim_start_matches("TLSv"));
        }
    }
    let t = time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let rfc = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    c.set("aws:CurrentTime", rfc);
    c.set("aws:EpochTime", now.to_string());
    if !who.is_anonymous() {
        c.set("aws:PrincipalArn", who.arn());
        c.set("aws:PrincipalAccount", who.account_id());
        c.set("aws:PrincipalType", who.principal_type());
        c.set("aws:userid", who.userid());
        if let CallerKind::User { name, .. } = who.kind() {
            c.set("aws:username", name.clone());
        }
        if who.is_temporary() {
            c.set(
                "aws:MultiFactorAuthPresent",
                if who.mfa_at().is_some() { "true" } else { "false" },
            );
        }
        if let Some(at) = who.mfa_at() {
            c.set("aws:MultiFactorAuthAge", (now - at).max(0).to_string());
        }
    } else {
        c.set("aws:PrincipalType", "Anonymous");
        c.set("aws:userid", "anonymous");
    }
    if let Some(v) = header(h, "referer") {
        c.set("aws:Referer", v);
    }
    if let Some(v) = header(h, "user-agent") {
        c.set("aws:UserAgent", v);
    }
    for (hdr, key) in [
        ("x-amz-server-side-encryption", "s3:x-amz-server-side-encryption"),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
        ),
        (
            "x-amz-server-side-encryption-customer-algorithm",
            "s3:x-amz-server-side-encryption-customer-algorithm",
        ),
        ("x-amz-acl", "s3:x-amz-acl"),
        ("x-amz-content-sha256", "s3:x-amz-content-sha256"),
        ("x-amz-object-lock-mode", "s3:object-lock-mode"),
        (
            "x-amz-object-lock-retain-until-date",
            "s3:object-lock-retain-until-date",
        ),
        ("x-amz-object-lock-legal-hold", "s3:object-lock-legal-hold"),
        ("x-amz-metadata-directive", "s3:x-amz-metadata-directive"),
        ("x-amz-copy-source", "s3:x-amz-copy-source"),
        ("x-amz-storage-class", "s3:x-amz-storage-class"),
    ] {
        if let Some(v) = header(h, hdr) {
            c.set(key, v);
        }
    }
    if let Some(until) = header(h, "x-amz-object-lock-retain-until-date")
        && let Some(ts) = crate::policy::parse_date_secs(until)
    {
        let days = ((ts - now as f64) / 86_400.0).ceil().max(0.0);
        c.set("s3:object-lock-remaining-retention-days", format!("{days}"));
    }
    for (q, key) in [
        ("prefix", "s3:prefix"),
        ("delimiter", "s3:delimiter"),
        ("max-keys", "s3:max-keys"),
        ("versionId", "s3:VersionId"),
    ] {
        if let Some(v) = query_param(query, q) {
            c.set(key, percent_decode(v));
        }
    }
    if let Some(tags) = header(h, "x-amz-tagging") {
        let pairs = tag_pairs(tags);
        c.set_many(
            "s3:RequestObjectTagKeys",
            pairs.iter().map(|(k, _)| k.clone()).collect(),
        );
        for (k, v) in pairs {
            c.set(&format!("s3:RequestObjectTag/{k}"), v);
        }
    }
    // how the request was signed
    let auth = header(h, "authorization").unwrap_or_default();
    let (version, kind) = if auth.starts_with("AWS4-HMAC-SHA256") {
        (Some("AWS4-HMAC-SHA256"), Some("REST-HEADER"))
    } else if auth.starts_with("AWS ") {
        (Some("AWS"), Some("REST-HEADER"))
    } else if query_param(query, "X-Amz-Algorithm").is_some() {
        (Some("AWS4-HMAC-SHA256"), Some("REST-QUERY-STRING"))
    } else if query_param(query, "AWSAccessKeyId").is_some() {
        (Some("AWS"), Some("REST-QUERY-STRING"))
    } else {
        (None, None)
    };
    if let Some(v) = version {
        c.set("s3:signatureversion", v);
    }
    if let Some(k) = kind {
        c.set("s3:authType", k);
    }
    if let Some(at) = signed_at(h, query) {
        c.set("s3:signatureAge", ((now - at).max(0) * 1000).to_string());
    }
    c
}
