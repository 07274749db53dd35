//! TLS set-up: the operator's PEM certificate and key, or a self-signed
//! certificate generated into the data directory (key file mode 0600) for
//! localhost / 127.0.0.1 / ::1 and the names the configuration adds (see
//! [`names_for`]); generated again when those names change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where the certificate came from.
pub struct TlsSetup {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub cert_path: PathBuf,
    pub generated: bool,
}

/// Minimum TLS version accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinTls {
    V12,
    V13,
}

/// Loads (or generates) the certificate and builds the acceptor. Both
/// HTTP/1.1 and HTTP/2 are offered (ALPN); the server's preference decides
/// when a client offers both: HTTP/1.1 unless `prefer_h2`. Measured with
/// `scripts/h2_ratio.sh` (256 MiB, one stream, HTTP/2 time over HTTP/1.1
/// time): curl PUT 1.05x, GET 1.08x; rclone multipart upload 1.10x,
/// download 1.14x. (Before `crate::http2` answered `Expect:
/// 100-continue`, rclone's uploads were 7–8x slower over HTTP/2.)
pub fn setup(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    names: &[String],
    min: MinTls,
    prefer_h2: bool,
) -> Result<TlsSetup, TlsError> {
    let (cert_path, key_path, generated) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf(), false),
        (None, None) => {
            let c = data_dir.join("tls").join("cert.pem");
            let k = data_dir.join("tls").join("key.pem");
            let n = data_dir.join("tls").join("names.txt");
            let want = names.join("\n");
            // a certificate generated before without a names file covered
            // the three default names
            let had = std::fs::read_to_string(&n).unwrap_or_else(|_| names_for(None, None).join("\n"));
            let generated = if c.exists() && k.exists() && had == want {
                false
            } else {
                generate(&c, &k, names)?;
                std::fs::write(&n, &want)?;
                true
            };
            (c, k, generated)
        }
        _ => return Err(TlsError::new("--tls-cert and --tls-key go together")),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| TlsError::new(format!("reading {}: {e}", cert_path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::new(format!("reading {}: {e}", cert_path.display())))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| TlsError::new(format!("reading {}: {e}", key_path.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match min {
        MinTls::V12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinTls::V13 => &[&rustls::version::TLS13],
    };
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::new(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::new(e.to_string()))?;
    cfg.alpn_protocols = if prefer_h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec(), b"h2".to_vec()]
    };
    Ok(TlsSetup {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
        cert_path,
        generated,
    })
}

/// The names a generated certificate covers: localhost, 127.0.0.1 and ::1;
/// with an S3 domain `D` also `D` and `*.D` (virtual-hosted buckets, and
/// the `<account-id>.D` host the SDKs send S3 Control requests to when
/// the endpoint is `D`), `s3-control.D` and `*.s3-control.D` (an S3
/// Control endpoint of its own); with a website domain `W`, `W` and `*.W`.
pub fn names_for(domain: Option<&str>, website_domain: Option<&str>) -> Vec<String> {
    let mut out = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if let Some(d) = domain {
        out.extend([
            d.to_owned(),
            format!("*.{d}"),
            format!("s3-control.{d}"),
            format!("*.s3-control.{d}"),
        ]);
    }
    if let Some(w) = website_domain {
        out.extend([w.to_owned(), format!("*.{w}")]);
    }
    out.dedup();
    out
}

fn generate(cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    let ck = rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| TlsError::new(e.to_string()))?;
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(key, ck.signing_key.serialize_pem())?;
    strongroom_store::restrict_mode(key)?;
    std::fs::write(cert, ck.cert.pem())?;
    Ok(())
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

impl TlsError {
    fn new(m: impl Into<String>) -> TlsError {
        TlsError(m.into())
    }
}

impl From<std::io::Error> for TlsError {
    fn from(e: std::io::Error) -> Self {
        TlsError(e.to_string())
    }
}
