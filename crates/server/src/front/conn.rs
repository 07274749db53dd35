//! Connection facts for authorization (aws:SecureTransport, aws:SourceIp,
//! s3:TlsVersion), built once per connection.

use std::net::SocketAddr;

use strongroom_iam::ConnInfo;

/// Connection facts of a plain-HTTP connection.
pub(crate) fn conn_plain(peer: SocketAddr) -> ConnInfo {
    ConnInfo {
        peer,
        secure: false,
        tls_version: None,
    }
}

/// Connection facts of a TLS connection (negotiated version).
pub(crate) fn conn_tls(peer: SocketAddr, conn: &rustls::ServerConnection) -> ConnInfo {
    let tls_version = conn.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    });
    ConnInfo {
        peer,
        secure: true,
        tls_version,
    }
}

/// A trusted TLS-terminating proxy's `X-Forwarded-Proto: https` makes a
/// plain connection count as secure.
pub(crate) fn forwarded_secure(info: &mut ConnInfo, trusted: &[std::net::IpAddr], headers: &http::HeaderMap) {
    if !info.secure
        && trusted.contains(&info.peer.ip())
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
    {
        info.secure = true;
    }
}
