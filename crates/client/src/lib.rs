//! A small signed client of any AWS-compatible S3 and KMS endpoint (ours,
//! AWS, MinIO, ...): SigV4 from `aws-sigv4`, HTTP/1.1 over hyper with
//! rustls, settings from the environment and the AWS config files as the
//! AWS CLI reads them. What the command-line tools speak (client-side
//! encryption, and the settings of the load generator, which signs with its
//! own SigV4 on the hot path); it knows nothing of the server.
#![forbid(unsafe_code)]

mod kms;
mod profile;
mod s3;

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use zeroize::Zeroizing;

pub use kms::Kms;
pub use profile::{Settings, SettingsArgs};
pub use s3::{ObjectHead, S3, s3_key_path};

/// A request body: bytes or a stream of them.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Wraps bytes as a request body.
pub fn full(b: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(b.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// What went wrong talking to an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an error (its code and message).
    #[error("{service} answered {status} {code}: {message}")]
    Service {
        service: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{0}")]
    Transport(String),
    #[error("configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The AWS error code of a service error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status of a service error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Service { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Credentials; the secret is zeroized and never printed.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// One endpoint, signed for one service.
#[derive(Clone)]
pub(crate) struct Signer {
    pub(crate) http: HyperClient<Https, Body>,
    /// scheme://authority, no path.
    pub(crate) base: String,
    pub(crate) region: String,
    pub(crate) service: &'static str,
    pub(crate) creds: Credentials,
}

impl Signer {
    /// Signs and sends. `uri_path_and_query` is already percent-encoded;
    /// `payload` is the body's SHA-256 (hex) or None for UNSIGNED-PAYLOAD.
    pub(crate) async fn send(
        &self,
        method: http::Method,
        path_and_query: &str,
        headers: Vec<(http::HeaderName, String)>,
        body: Body,
        payload: Option<&[u8]>,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        let uri = format!("{}{}", self.base, path_and_query);
        let host = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, h)| h)
            .to_owned();
        let mut req = http::Request::builder().method(method.clone()).uri(&uri);
        req = req.header(http::header::HOST, &host);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let mut req = req.body(body).map_err(|e| ClientError::Transport(e.to_string()))?;
        let identity = aws_credential_types::Credentials::new(
            &self.creds.access_key,
            self.creds.secret_key.as_str(),
            self.creds.session_token.as_ref().map(|t| t.as_str().to_owned()),
            None,
            "strongroom",
        )
        .into();
        let mut settings = SigningSettings::default();
        if self.service == "s3" {
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?
            .into();
        let signed_headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = match payload {
            Some(b) => SignableBody::Bytes(b),
            None => SignableBody::UnsignedPayload,
        };
        let signable = SignableRequest::new(
            method.as_str(),
            uri.as_str(),
            signed_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            body,
        )
        .map_err(|e| ClientError::Transport(format!("signing: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ClientError::Transport(format!("signing: {e}")))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut req);
        self.http
            .request(req)
            .await
            .map_err(|e| ClientError::Transport(format!("{}: {e}", self.base)))
    }
}

/// The most a small answer (an error, a listing page, an instruction
/// file, a KMS answer) may be: a hostile server cannot make us hold more.
pub const SMALL_ANSWER_MAX: usize = 4 << 20;

/// Reads a whole small response body (at most [`SMALL_ANSWER_MAX`]).
pub(crate) async fn read_all(
    resp: http::Response<hyper::body::Incoming>,
) -> Result<(http::response::Parts, Bytes), ClientError> {
    let (parts, body) = resp.into_parts();
    let bytes = http_body_util::Limited::new(body, SMALL_ANSWER_MAX)
        .collect()
        .await
        .map_err(|e| ClientError::Transport(format!("reading the answer: {e}")))?
        .to_bytes();
    Ok((parts, bytes))
}

/// TLS settings of a client: the system's roots plus `ca_bundle`.
pub fn tls_config(ca_bundle: Option<&std::path::Path>) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        let _ = roots.add(c);
    }
    if let Some(p) = ca_bundle {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(p)
            .map_err(|e| ClientError::Config(format!("CA bundle {}: {e}", p.display())))?;
        for c in certs {
            let c = c.map_err(|e| ClientError::Config(format!("CA bundle {}: {e}", p.display())))?;
            roots
                .add(c)
                .map_err(|e| ClientError::Config(format!("CA bundle {}: {e}", p.display())))?;
        }
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The HTTP client: HTTP/1.1, TLS with the system roots plus `ca_bundle`.
pub(crate) fn http_client(ca_bundle: Option<&std::path::Path>) -> Result<HyperClient<Https, Body>, ClientError> {
    let tls = tls_config(ca_bundle)?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(HyperClient::builder(TokioExecutor::new()).build(https))
}

/// `<Code>` and `<Message>` of an S3 error document.
pub(crate) fn s3_error(status: u16, body: &[u8]) -> ClientError {
    let text = String::from_utf8_lossy(body);
    let field = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        text.split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&close))
            .map(|(v, _)| quick_xml::escape::unescape(v).map_or_else(|_| v.to_owned(), |c| c.into_owned()))
            .unwrap_or_default()
    };
    let mut code = field("Code");
    if code.is_empty() {
        code = match status {
            404 => "NotFound".into(),
            403 => "Forbidden".into(),
            _ => format!("Http{status}"),
        };
    }
    ClientError::Service {
        service: "S3",
        status,
        code,
        message: field("Message"),
    }
}
