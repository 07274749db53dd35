//! Settings for `serve`: flags, environment, and a TOML `--config` file
//! holding the same keys (flags win), plus the `--bootstrap` accounts file.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;

/// `strongroom serve` flags. Every one may also be set in `--config`.
#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// Data directory.
    #[arg(long, env = "STRONGROOM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address, or "off".
    #[arg(long)]
    pub http: Option<String>,
    /// HTTPS listen address, or "off".
    #[arg(long)]
    pub https: Option<String>,
    /// Admin listener (/health, /metrics), or "off".
    #[arg(long)]
    pub admin: Option<String>,
    /// TLS certificate chain (PEM). Default: a self-signed one in the data dir.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Lowest TLS version accepted: 1.2 or 1.3.
    #[arg(long)]
    pub tls_min: Option<String>,
    /// Region this server answers for.
    #[arg(long)]
    pub region: Option<String>,
    /// Base domain for virtual-hosted-style requests (<bucket>.<domain>).
    #[arg(long)]
    pub domain: Option<String>,
    /// Refuse SigV2 signatures (header and query).
    #[arg(long)]
    pub no_sigv2: bool,
    /// TOML file with these settings.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// TOML file of accounts to create at start-up if missing.
    #[arg(long)]
    pub bootstrap: Option<PathBuf>,
}

/// The `--config` file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub http: Option<String>,
    pub https: Option<String>,
    pub admin: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_min: Option<String>,
    pub region: Option<String>,
    pub domain: Option<String>,
    pub sigv2: Option<bool>,
    pub bootstrap: Option<PathBuf>,
}

/// Resolved settings.
#[derive(Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_min: strongroom_server::tls::MinTls,
    pub region: String,
    pub domain: Option<String>,
    pub sigv2: bool,
    pub bootstrap: Option<PathBuf>,
}

fn addr(v: Option<String>, default: &str, what: &str) -> anyhow::Result<Option<SocketAddr>> {
    let v = v.unwrap_or_else(|| default.to_owned());
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    Ok(Some(
        v.parse().with_context(|| format!("--{what}: not an address: {v}"))?,
    ))
}

impl Settings {
    pub fn resolve(a: ServeArgs) -> anyhow::Result<Settings> {
        let f: FileConfig = match &a.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let tls_min = match a.tls_min.or(f.tls_min).as_deref() {
            None | Some("1.2") => strongroom_server::tls::MinTls::V12,
            Some("1.3") => strongroom_server::tls::MinTls::V13,
            Some(other) => bail!("--tls-min: expected 1.2 or 1.3, got {other}"),
        };
        Ok(Settings {
            data_dir: a
                .data_dir
                .or(f.data_dir)
                .unwrap_or_else(|| PathBuf::from("strongroom-data")),
            http: addr(a.http.or(f.http), "127.0.0.1:9000", "http")?,
            https: addr(a.https.or(f.https), "127.0.0.1:9443", "https")?,
            admin: addr(a.admin.or(f.admin), "127.0.0.1:9001", "admin")?,
            tls_cert: a.tls_cert.or(f.tls_cert),
            tls_key: a.tls_key.or(f.tls_key),
            tls_min,
            region: a.region.or(f.region).unwrap_or_else(|| "us-east-1".to_owned()),
            domain: a.domain.or(f.domain),
            sigv2: if a.no_sigv2 { false } else { f.sigv2.unwrap_or(true) },
            bootstrap: a.bootstrap.or(f.bootstrap),
        })
    }
}

/// The `--bootstrap` file: `[[account]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootstrap {
    #[serde(default)]
    pub account: Vec<BootstrapAccount>,
}

/// One account of the bootstrap file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapAccount {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub canonical_id: Option<String>,
    pub access_key: String,
    pub secret_key: String,
}

impl Bootstrap {
    pub fn load(p: &std::path::Path) -> anyhow::Result<Bootstrap> {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    }
}
