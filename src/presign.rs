//! `strongroom presign s3://bucket/key`: a SigV4 pre-signed URL, like
//! `aws s3 presign`, signed with the root credentials (environment, or the
//! file the server wrote when it generated them).

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;
use strongroom_iam::sigv4::{Presign, presign_url};

/// `strongroom presign` arguments.
#[derive(clap::Args, Debug)]
pub struct PresignArgs {
    /// s3://bucket/key
    pub url: String,
    /// Lifetime in seconds (1..=604800).
    #[arg(long, default_value_t = 3600)]
    pub expires_in: u64,
    /// HTTP method the URL is for.
    #[arg(long, default_value = "GET")]
    pub method: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Where a client command reaches the server and whose credentials it
/// signs with (`presign`, `logs`).
#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// Server endpoint.
    #[arg(long, env = "STRONGROOM_ENDPOINT", default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Data directory (for the generated root credentials and certificate).
    #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "strongroom-data")]
    pub data_dir: PathBuf,
}

impl ClientArgs {
    /// The endpoint without a trailing slash, and the Host it names.
    pub(crate) fn endpoint_and_host(&self) -> (&str, &str) {
        let endpoint = self.endpoint.trim_end_matches('/');
        (endpoint, endpoint.split_once("://").map_or(endpoint, |(_, h)| h))
    }
}

/// Now, as SigV4's `X-Amz-Date` writes it.
pub(crate) fn amz_date_now() -> anyhow::Result<String> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    Ok(time::OffsetDateTime::now_utc().format(fmt)?)
}

#[derive(Deserialize)]
struct CredFile {
    access_key: String,
    secret_key: String,
}

/// The caller's access key, secret and session token: the root's from
/// `STRONGROOM_ROOT_*`, else `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`
/// (with `AWS_SESSION_TOKEN` for temporary credentials), else the root
/// credentials the server generated in the data directory.
pub(crate) fn caller_credentials(data_dir: &std::path::Path) -> anyhow::Result<(String, String, Option<String>)> {
    if let (Ok(a), Ok(s)) = (
        std::env::var("STRONGROOM_ROOT_ACCESS_KEY"),
        std::env::var("STRONGROOM_ROOT_SECRET_KEY"),
    ) {
        return Ok((a, s, None));
    }
    if let (Ok(a), Ok(s)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        let token = std::env::var("AWS_SESSION_TOKEN").ok().filter(|t| !t.is_empty());
        return Ok((a, s, token));
    }
    let p = crate::serve::root_credentials_path(data_dir);
    let text = std::fs::read_to_string(&p)
        .with_context(|| format!("no credentials in the environment and none in {}", p.display()))?;
    let c: CredFile = toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
    Ok((c.access_key, c.secret_key, None))
}

pub fn run(a: &PresignArgs) -> anyhow::Result<()> {
    if !(1..=strongroom_iam::MAX_PRESIGN_SECS).contains(&a.expires_in) {
        bail!("--expires-in must be between 1 and 604800 seconds");
    }
    let method = a.method.to_ascii_uppercase();
    if !matches!(method.as_str(), "GET" | "PUT" | "DELETE" | "HEAD") {
        bail!("--method must be GET, PUT, DELETE or HEAD");
    }
    let rest = a.url.strip_prefix("s3://").context("expected s3://bucket/key")?;
    let (bucket, key) = rest.split_once('/').context("expected s3://bucket/key")?;
    if bucket.is_empty() || key.is_empty() {
        bail!("expected s3://bucket/key");
    }
    let (endpoint, host) = a.client.endpoint_and_host();
    // temporary credentials (STS) carry their token in the URL
    let (ak, sk, token) = caller_credentials(&a.client.data_dir)?;
    let amz_date = amz_date_now()?;
    let path = format!("/{bucket}/{key}");
    println!(
        "{}",
        presign_url(&Presign {
            method: &method,
            endpoint,
            host,
            path: &path,
            access_key: &ak,
            secret_key: &sk,
            region: &a.client.region,
            amz_date: &amz_date,
            expires_secs: a.expires_in,
            session_token: token.as_deref(),
        })
    );
    Ok(())
}
