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
    /// Static website endpoint (anonymous GET/HEAD of website buckets), or "off".
    #[arg(long)]
    pub website: Option<String>,
    /// The website endpoint over TLS (same certificate as --https), or "off" (default).
    #[arg(long)]
    pub website_https: Option<String>,
    /// Domain of the website endpoint: `<bucket>.<website-domain>` names the
    /// bucket; without it (or for other hosts) the first path segment does.
    #[arg(long)]
    pub website_domain: Option<String>,
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
    /// Master keyring (one 256-bit key a line, 64 hex digits; the last is
    /// active). Default: `<data-dir>/master.keys`, generated on first start.
    /// STRONGROOM_MASTER_KEYS (comma-separated) overrides both.
    #[arg(long)]
    pub master_key_file: Option<PathBuf>,
    /// KMS cryptographic requests a second per account (0 = unlimited).
    #[arg(long)]
    pub kms_rate_limit: Option<u32>,
    /// Seconds an S3 Bucket Key is reused before a new one is made.
    #[arg(long)]
    pub bucket_key_ttl: Option<u64>,
    /// Address of a TLS-terminating proxy whose X-Forwarded-Proto is
    /// trusted (repeatable).
    #[arg(long)]
    pub trusted_proxy: Vec<std::net::IpAddr>,
    /// Use an external AWS-KMS-compatible endpoint for SSE-KMS instead of
    /// the built-in KMS (credentials from STRONGROOM_KMS_ACCESS_KEY and
    /// STRONGROOM_KMS_SECRET_KEY).
    #[arg(long)]
    pub kms_endpoint: Option<String>,
    /// Region to sign external KMS requests for (default: --region).
    #[arg(long)]
    pub kms_region: Option<String>,
    /// External KMS key used when a request names none.
    #[arg(long)]
    pub kms_default_key: Option<String>,
    /// Connections one client address may hold open at once (default 1024).
    #[arg(long)]
    pub max_connections_per_ip: Option<usize>,
    /// Seconds between deliveries of server access logs (default 60).
    #[arg(long)]
    pub log_delivery_interval: Option<u64>,
    /// Length of a lifecycle-rule day in seconds (default 86400). For
    /// tests only: shorter days make rules expire objects in seconds.
    #[arg(long)]
    pub lifecycle_day_seconds: Option<u64>,
    /// Buckets with their own series in /metrics: a number N (the first N
    /// buckets seen; default 100) or a comma-separated list of names; the
    /// others are summed as `_other`.
    #[arg(long)]
    pub bucket_metrics: Option<String>,
    /// Prefer HTTP/2 over HTTP/1.1 when a TLS client offers both (ALPN);
    /// by default HTTP/1.1 is preferred (5–14 % faster for one large
    /// transfer, `scripts/h2_ratio.sh`) and HTTP/2 serves clients that
    /// offer only it.
    #[arg(long)]
    pub prefer_http2: bool,
}

/// The `--config` file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub http: Option<String>,
    pub https: Option<String>,
    pub admin: Option<String>,
    pub website: Option<String>,
    pub website_https: Option<String>,
    pub website_domain: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_min: Option<String>,
    pub region: Option<String>,
    pub domain: Option<String>,
    pub sigv2: Option<bool>,
    pub bootstrap: Option<PathBuf>,
    pub master_key_file: Option<PathBuf>,
    pub kms_rate_limit: Option<u32>,
    pub bucket_key_ttl: Option<u64>,
    pub trusted_proxy: Option<Vec<std::net::IpAddr>>,
    pub kms_endpoint: Option<String>,
    pub kms_region: Option<String>,
    pub kms_default_key: Option<String>,
    pub max_connections_per_ip: Option<usize>,
    pub log_delivery_interval: Option<u64>,
    pub lifecycle_day_seconds: Option<u64>,
    pub bucket_metrics: Option<String>,
    pub prefer_http2: Option<bool>,
}

/// Resolved settings.
#[derive(Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub website: Option<SocketAddr>,
    pub website_https: Option<SocketAddr>,
    pub website_domain: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_min: strongroom_server::tls::MinTls,
    pub prefer_http2: bool,
    pub region: String,
    pub domain: Option<String>,
    pub sigv2: bool,
    pub bootstrap: Option<PathBuf>,
    pub master_key_file: Option<PathBuf>,
    pub kms_rate_limit: u32,
    pub bucket_key_ttl: std::time::Duration,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub kms_endpoint: Option<String>,
    pub kms_region: Option<String>,
    pub kms_default_key: String,
    pub limits: strongroom_server::Limits,
    pub log_delivery_interval: std::time::Duration,
    pub lifecycle_day: std::time::Duration,
    pub bucket_metrics: strongroom_server::BucketSeries,
}

/// AWS KMS's default request quota for symmetric cryptographic operations
/// in most regions.
const DEFAULT_KMS_RATE: u32 = 5500;

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
            website: addr(a.website.or(f.website), "127.0.0.1:9080", "website")?,
            website_https: addr(a.website_https.or(f.website_https), "off", "website-https")?,
            website_domain: a.website_domain.or(f.website_domain),
            tls_cert: a.tls_cert.or(f.tls_cert),
            tls_key: a.tls_key.or(f.tls_key),
            tls_min,
            prefer_http2: a.prefer_http2 || f.prefer_http2.unwrap_or(false),
            region: a.region.or(f.region).unwrap_or_else(|| "us-east-1".to_owned()),
            domain: a.domain.or(f.domain),
            sigv2: if a.no_sigv2 { false } else { f.sigv2.unwrap_or(true) },
            bootstrap: a.bootstrap.or(f.bootstrap),
            master_key_file: a.master_key_file.or(f.master_key_file),
            kms_rate_limit: a.kms_rate_limit.or(f.kms_rate_limit).unwrap_or(DEFAULT_KMS_RATE),
            bucket_key_ttl: std::time::Duration::from_secs(a.bucket_key_ttl.or(f.bucket_key_ttl).unwrap_or(300)),
            kms_endpoint: a.kms_endpoint.or(f.kms_endpoint),
            kms_region: a.kms_region.or(f.kms_region),
            kms_default_key: a
                .kms_default_key
                .or(f.kms_default_key)
                .unwrap_or_else(|| "alias/aws/s3".to_owned()),
            limits: strongroom_server::Limits {
                per_ip: match a.max_connections_per_ip.or(f.max_connections_per_ip) {
                    Some(0) => bail!("--max-connections-per-ip: must be at least 1"),
                    Some(n) => n,
                    None => strongroom_server::Limits::default().per_ip,
                },
            },
            log_delivery_interval: match a.log_delivery_interval.or(f.log_delivery_interval) {
                Some(0) => bail!("--log-delivery-interval: must be at least 1 second"),
                Some(n) => std::time::Duration::from_secs(n),
                None => std::time::Duration::from_secs(60),
            },
            lifecycle_day: match a.lifecycle_day_seconds.or(f.lifecycle_day_seconds) {
                Some(0) => bail!("--lifecycle-day-seconds: must be at least 1 second"),
                Some(n) => std::time::Duration::from_secs(n),
                None => std::time::Duration::from_secs(86_400),
            },
            bucket_metrics: bucket_series(a.bucket_metrics.as_deref().or(f.bucket_metrics.as_deref()))?,
            trusted_proxies: if a.trusted_proxy.is_empty() {
                f.trusted_proxy.unwrap_or_default()
            } else {
                a.trusted_proxy
            },
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
    /// IAM users of the account (`[[account.user]]`).
    #[serde(default)]
    pub user: Vec<BootstrapUser>,
}

/// One IAM user of a bootstrap account: a known access key and inline
/// policies (name to JSON document), so tests start with known users.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapUser {
    pub name: String,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    #[serde(default)]
    pub policies: std::collections::BTreeMap<String, String>,
}

impl Bootstrap {
    pub fn load(p: &std::path::Path) -> anyhow::Result<Bootstrap> {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    }
}

/// `--bucket-metrics`: a count of buckets, or the names of the buckets.
fn bucket_series(v: Option<&str>) -> anyhow::Result<strongroom_server::BucketSeries> {
    use strongroom_server::BucketSeries;
    let Some(v) = v.map(str::trim) else {
        return Ok(BucketSeries::default());
    };
    if let Ok(n) = v.parse::<usize>() {
        return Ok(BucketSeries::First(n));
    }
    let names: std::collections::BTreeSet<String> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        bail!("--bucket-metrics: a number or a comma-separated list of bucket names");
    }
    Ok(BucketSeries::Only(names))
}
