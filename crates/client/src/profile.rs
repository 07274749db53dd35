//! Where to connect and as whom, as the AWS CLI decides it: flags, then
//! environment variables, then the named profile of `~/.aws/config` and
//! `~/.aws/credentials` (INI, read with `rust-ini`).

use std::path::{Path, PathBuf};

use ini::Ini;
use zeroize::Zeroizing;

use crate::{ClientError, Credentials};

/// What a command line may say (each falls back as the AWS CLI does).
#[derive(Default, Clone, Debug)]
pub struct SettingsArgs {
    /// The S3 endpoint.
    pub endpoint_url: Option<String>,
    /// The KMS endpoint (never taken from the S3 endpoint's flag: an S3
    /// server must not be able to choose the data keys).
    pub kms_endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub ca_bundle: Option<PathBuf>,
}

/// Resolved settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The S3 endpoint (scheme://host[:port]); None: AWS's own.
    pub s3_endpoint: String,
    /// The KMS endpoint: `--kms-endpoint-url`, `AWS_ENDPOINT_URL_KMS`, the
    /// global `AWS_ENDPOINT_URL` or the profile's `endpoint_url` (which
    /// name one endpoint for every service, as Strongroom serves both),
    /// else AWS's own — never the S3-only `--endpoint-url` or
    /// `AWS_ENDPOINT_URL_S3`.
    pub kms_endpoint: String,
    pub region: String,
    pub credentials: Credentials,
    pub ca_bundle: Option<PathBuf>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home_file(var: &str, default: &str) -> Option<PathBuf> {
    env(var)
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".aws").join(default)))
}

fn load(path: Option<PathBuf>) -> Result<Option<Ini>, ClientError> {
    let Some(p) = path else { return Ok(None) };
    if !p.exists() {
        return Ok(None);
    }
    Ini::load_from_file(&p)
        .map(Some)
        .map_err(|e| ClientError::Config(format!("{}: {e}", p.display())))
}

/// A key of `profile` in the config file (`[profile NAME]`, or `[default]`)
/// or the credentials file (`[NAME]`).
fn get(ini: Option<&Ini>, section: &str, key: &str) -> Option<String> {
    ini?.section(Some(section))?
        .get(key)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Whether an http(s) URL's host is a loopback address or `localhost`.
fn is_loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn trim_endpoint(e: &str) -> String {
    e.trim_end_matches('/').to_owned()
}

impl Settings {
    pub fn resolve(a: &SettingsArgs) -> Result<Settings, ClientError> {
        let profile = a
            .profile
            .clone()
            .or_else(|| env("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_owned());
        let config = load(home_file("AWS_CONFIG_FILE", "config"))?;
        let creds_file = load(home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"))?;
        let config_section = if profile == "default" {
            "default".to_owned()
        } else {
            format!("profile {profile}")
        };
        let conf = |key: &str| get(config.as_ref(), &config_section, key);
        let cred = |key: &str| get(creds_file.as_ref(), &profile, key).or_else(|| conf(key));
        let region = a
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| conf("region"))
            .unwrap_or_else(|| "us-east-1".to_owned());
        // a profile named on the command line beats the environment's keys
        let from_env = a.profile.is_none();
        let credentials = match (
            env("AWS_ACCESS_KEY_ID").filter(|_| from_env),
            env("AWS_SECRET_ACCESS_KEY").filter(|_| from_env),
        ) {
            (Some(access_key), Some(secret)) => Credentials {
                access_key,
                secret_key: Zeroizing::new(secret),
                session_token: env("AWS_SESSION_TOKEN").map(Zeroizing::new),
            },
            _ => match (cred("aws_access_key_id"), cred("aws_secret_access_key")) {
                (Some(access_key), Some(secret)) => Credentials {
                    access_key,
                    secret_key: Zeroizing::new(secret),
                    session_token: cred("aws_session_token").map(Zeroizing::new),
                },
                _ => {
                    return Err(ClientError::Config(format!(
                        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or give profile {profile:?} keys in ~/.aws/credentials"
                    )));
                }
            },
        };
        let global = env("AWS_ENDPOINT_URL").or_else(|| conf("endpoint_url"));
        let s3_endpoint = a
            .endpoint_url
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| global.clone())
            .as_deref()
            .map_or_else(|| format!("https://s3.{region}.amazonaws.com"), trim_endpoint);
        let kms_endpoint = a
            .kms_endpoint_url
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_KMS"))
            .or(global)
            .as_deref()
            .map_or_else(|| format!("https://kms.{region}.amazonaws.com"), trim_endpoint);
        for e in [&s3_endpoint, &kms_endpoint] {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(ClientError::Config(format!(
                    "endpoint {e:?} must start with http:// or https://"
                )));
            }
        }
        // data keys cross to KMS in the clear over http://: only on this machine
        if kms_endpoint.starts_with("http://") && !is_loopback(&kms_endpoint) {
            return Err(ClientError::Config(format!(
                "KMS endpoint {kms_endpoint}: data keys travel to and from KMS; use https:// (http:// only on loopback)"
            )));
        }
        let ca_bundle = a
            .ca_bundle
            .clone()
            .or_else(|| env("AWS_CA_BUNDLE").map(PathBuf::from))
            .or_else(|| conf("ca_bundle").map(PathBuf::from));
        Ok(Settings {
            s3_endpoint,
            kms_endpoint,
            region,
            credentials,
            ca_bundle,
        })
    }
}
