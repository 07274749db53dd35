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
        cipher_suite: None,
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
        cipher_suite: conn.negotiated_cipher_suite().and_then(|c| openssl_name(c.suite())),
    }
}

/// The OpenSSL name of a cipher suite rustls negotiates (the form AWS's
/// server access logs use); None for one not listed.
fn openssl_name(s: rustls::CipherSuite) -> Option<&'static str> {
    use rustls::CipherSuite as C;
    Some(match s {
        C::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        C::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => return None,
    })
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
