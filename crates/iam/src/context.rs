//! The global condition keys of a request (`aws:*`): who calls, over
//! which connection, when. Every service's decision starts from these; S3
//! adds its own keys in the access crate, from s3s's typed input.

use http::HeaderMap;

use crate::policy::Context;
use crate::{CallerKind, ConnInfo, Principal};

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The `aws:*` keys of a request by `who` over `conn` at `now`.
pub fn global_context(who: &Principal, conn: Option<&ConnInfo>, h: &HeaderMap, now: i64) -> Context {
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
    c
}
