//! `strongroom logs BUCKET`: reads the server access logs delivered for a
//! bucket, through the S3 API with the caller's credentials (so a user
//! sees only the logs their policies let them read), and prints the
//! records that match the filters, or a summary of them.
//!
//! The target bucket and prefix come from the bucket's GetBucketLogging
//! answer, or from `--target` when logging has since been turned off.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use strongroom_iam::sigv4::{SigningInput, signature};
use strongroom_s3::logging::record::Record;
use time::OffsetDateTime;

/// `strongroom logs` arguments.
#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The logged (source) bucket.
    pub bucket: String,
    /// Only records of keys that start with this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only records at or after this time: RFC 3339
    /// (`2026-12-02T10:00:00Z`) or an age (`90s`, `15m`, `2h`, `7d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only records before this time (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// Only this operation (`REST.GET.OBJECT`, ...; case-insensitive).
    #[arg(long)]
    pub operation: Option<String>,
    /// Only this HTTP status.
    #[arg(long)]
    pub status: Option<u16>,
    /// Only this requester (an ARN, or `-` for anonymous requests).
    #[arg(long)]
    pub requester: Option<String>,
    /// Print a summary instead of the records.
    #[arg(long)]
    pub summary: bool,
    /// Where the logs are, `s3://target-bucket/prefix`, when the bucket's
    /// logging configuration no longer says.
    #[arg(long)]
    pub target: Option<String>,
    /// CA certificate (PEM) to trust for an https endpoint; default: the
    /// server's generated certificate in the data directory when there is
    /// one, else the system's roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub client: crate::presign::ClientArgs,
}

/// The filters of one query.
#[derive(Debug, Default)]
struct Filter {
    bucket: String,
    prefix: Option<String>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    operation: Option<String>,
    status: Option<u16>,
    requester: Option<String>,
}

impl Filter {
    fn keeps(&self, r: &Record) -> bool {
        let t = r.time.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        r.bucket == self.bucket
            && self
                .prefix
                .as_deref()
                .is_none_or(|p| r.key.as_deref().is_some_and(|k| k.starts_with(p)))
            && self.since.is_none_or(|s| t >= s)
            && self.until.is_none_or(|u| t < u)
            && self
                .operation
                .as_deref()
                .is_none_or(|o| r.operation.eq_ignore_ascii_case(o))
            && self.status.is_none_or(|s| r.status == s)
            && self
                .requester
                .as_deref()
                .is_none_or(|q| r.requester.as_deref().unwrap_or("-") == q)
    }
}

/// `--since` / `--until`: RFC 3339, or an age before now.
fn when(v: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: i64 = n
        .parse()
        .with_context(|| format!("{v:?}: expected RFC 3339 or an age like 15m"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("{v:?}: expected RFC 3339 or an age like 15m"),
    };
    Ok(now - time::Duration::seconds(secs))
}

/// A signed S3 client of one endpoint.
struct S3 {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    endpoint: String,
    host: String,
    region: String,
    access_key: String,
    secret_key: zeroize::Zeroizing<String>,
    token: Option<String>,
}

/// Characters escaped in a request path and query (SigV4's unreserved set
/// is kept; the path keeps its `/`).
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const PATH: &percent_encoding::AsciiSet = &QUERY.remove(b'/');

impl S3 {
    /// GET `path?query`, signed with SigV4 in the Authorization header;
    /// the body of a 200, else the S3 error.
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Bytes> {
        let amz_date = crate::presign::amz_date_now()?;
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let mut headers = vec![
            ("host".to_owned(), self.host.clone()),
            ("x-amz-content-sha256".to_owned(), empty.to_owned()),
            ("x-amz-date".to_owned(), amz_date.clone()),
        ];
        if let Some(t) = &self.token {
            headers.push(("x-amz-security-token".to_owned(), t.clone()));
        }
        let sig = signature(
            &SigningInput {
                method: "GET",
                path,
                query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                headers: headers.clone(),
                payload_hash: empty,
                amz_date: &amz_date,
                region: &self.region,
                service: "s3",
            },
            &self.secret_key,
        );
        let mut names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/s3/aws4_request, SignedHeaders={}, Signature={sig}",
            self.access_key,
            &amz_date[..8],
            self.region,
            names.join(";")
        );
        let qs = query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    percent_encoding::utf8_percent_encode(k, QUERY),
                    percent_encoding::utf8_percent_encode(v, QUERY)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let uri = format!(
            "{}{}{}{qs}",
            self.endpoint,
            percent_encoding::utf8_percent_encode(path, PATH),
            if qs.is_empty() { "" } else { "?" }
        );
        let mut req = http::Request::get(&uri).header("authorization", auth);
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            req = req.header(k, v);
        }
        let resp = self.client.request(req.body(Empty::new())?).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let code = xml_texts(&body, "Code").into_iter().next().unwrap_or_default();
            let msg = xml_texts(&body, "Message").into_iter().next().unwrap_or_default();
            bail!(
                "GET {path}: {status} {code} {msg}{}",
                if code.is_empty() { text } else { "".into() }
            );
        }
        Ok(body)
    }
}

/// The text of every element named `name` (any depth), in order.
pub(crate) fn xml_texts(xml: &[u8], name: &str) -> Vec<String> {
    let mut r = quick_xml::Reader::from_reader(xml);
    let mut out = Vec::new();
    let mut inside = false;
    let mut buf = Vec::new();
    loop {
        match r.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Start(e)) => {
                inside = e.local_name().as_ref() == name.as_bytes();
                if inside {
                    out.push(String::new());
                }
            }
            Ok(quick_xml::events::Event::Text(t)) if inside => {
                if let (Some(last), Ok(s)) = (out.last_mut(), t.decode()) {
                    last.push_str(&quick_xml::escape::unescape(&s).unwrap_or_default());
                }
            }
            Ok(quick_xml::events::Event::GeneralRef(g)) if inside => {
                if let (Some(last), Ok(s)) = (out.last_mut(), g.decode()) {
                    let entity = format!("&{s};");
                    last.push_str(&quick_xml::escape::unescape(&entity).unwrap_or_default());
                }
            }
            Ok(quick_xml::events::Event::End(_)) => inside = false,
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

fn connector(a: &LogsArgs) -> anyhow::Result<hyper_rustls::HttpsConnector<HttpConnector>> {
    let generated = a.client.data_dir.join("tls").join("cert.pem");
    let ca = a.ca_file.clone().or_else(|| generated.exists().then_some(generated));
    let b = hyper_rustls::HttpsConnectorBuilder::new();
    let b = match ca {
        Some(path) => {
            use rustls_pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pki_types::CertificateDer::pem_file_iter(&path)
                .with_context(|| format!("reading {}", path.display()))?
            {
                roots
                    .add(c.with_context(|| format!("reading {}", path.display()))?)
                    .with_context(|| format!("{}", path.display()))?;
            }
            let cfg = rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            b.with_tls_config(cfg)
        }
        None => b
            .with_native_roots()
            .context("loading the system's root certificates")?,
    };
    Ok(b.https_or_http().enable_http1().build())
}

/// Where a bucket's logs are: target bucket and prefix.
async fn location(s3: &S3, a: &LogsArgs) -> anyhow::Result<(String, String)> {
    if let Some(t) = &a.target {
        let rest = t
            .strip_prefix("s3://")
            .context("--target: expected s3://bucket/prefix")?;
        let (b, p) = rest.split_once('/').unwrap_or((rest, ""));
        return Ok((b.to_owned(), p.to_owned()));
    }
    let xml = s3.get(&format!("/{}", a.bucket), &[("logging", "")]).await?;
    let Some(target) = xml_texts(&xml, "TargetBucket").into_iter().next() else {
        bail!(
            "logging is not enabled on {} (pass --target s3://bucket/prefix to read logs delivered earlier)",
            a.bucket
        );
    };
    let prefix = xml_texts(&xml, "TargetPrefix").into_iter().next().unwrap_or_default();
    Ok((target, prefix))
}

/// The log objects under `prefix` last modified at or after `since` (a log
/// object is written after every record it holds).
async fn log_objects(
    s3: &S3,
    target: &str,
    prefix: &str,
    since: Option<OffsetDateTime>,
) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = vec![("list-type", "2"), ("prefix", prefix)];
        if let Some(t) = &token {
            q.push(("continuation-token", t));
        }
        let xml = s3.get(&format!("/{target}"), &q).await?;
        let names = xml_texts(&xml, "Key");
        let modified = xml_texts(&xml, "LastModified");
        for (i, k) in names.into_iter().enumerate() {
            let m = modified
                .get(i)
                .and_then(|m| OffsetDateTime::parse(m, &time::format_description::well_known::Rfc3339).ok());
            if since.is_none_or(|s| m.is_none_or(|m| m >= s)) {
                keys.push(k);
            }
        }
        token = xml_texts(&xml, "NextContinuationToken").into_iter().next();
        if token.is_none() {
            return Ok(keys);
        }
    }
}

/// What `--summary` prints.
#[derive(Default)]
struct Summary {
    requests: u64,
    errors: u64,
    bytes_sent: u64,
    by_op_status: HashMap<(String, u16), u64>,
    keys: HashMap<String, u64>,
    requesters: HashMap<String, u64>,
    first: Option<OffsetDateTime>,
    last: Option<OffsetDateTime>,
}

impl Summary {
    fn add(&mut self, r: &Record) {
        self.requests += 1;
        if r.status >= 400 {
            self.errors += 1;
        }
        self.bytes_sent += r.bytes_sent.unwrap_or(0);
        *self
            .by_op_status
            .entry((r.operation.to_string(), r.status))
            .or_default() += 1;
        if let Some(k) = &r.key {
            *self.keys.entry(k.to_string()).or_default() += 1;
        }
        *self
            .requesters
            .entry(r.requester.as_deref().unwrap_or("-").to_owned())
            .or_default() += 1;
        self.first = self.first.min(r.time).or(r.time);
        self.last = self.last.max(r.time);
    }

    fn print(&self) {
        let rate = if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 * 100.0 / self.requests as f64
        };
        println!("requests: {}", self.requests);
        println!("errors:   {} ({rate:.1}%)", self.errors);
        println!("bytes sent: {}", self.bytes_sent);
        if let (Some(f), Some(l)) = (self.first, self.last) {
            let rfc = time::format_description::well_known::Rfc3339;
            println!(
                "from {} to {}",
                f.format(&rfc).unwrap_or_default(),
                l.format(&rfc).unwrap_or_default()
            );
        }
        println!("\nby operation and status:");
        let mut ops: Vec<_> = self.by_op_status.iter().collect();
        ops.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for ((op, status), n) in ops {
            println!("  {n:>8}  {status}  {op}");
        }
        for (title, counts) in [("top keys", &self.keys), ("top requesters", &self.requesters)] {
            println!("\n{title}:");
            let mut v: Vec<_> = counts.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            for (k, n) in v.into_iter().take(10) {
                println!("  {n:>8}  {k}");
            }
        }
    }
}

pub fn run(a: &LogsArgs) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let filter = Filter {
        bucket: a.bucket.clone(),
        prefix: a.prefix.clone(),
        since: a.since.as_deref().map(|v| when(v, now)).transpose()?,
        until: a.until.as_deref().map(|v| when(v, now)).transpose()?,
        operation: a.operation.clone(),
        status: a.status,
        requester: a.requester.clone(),
    };
    let (access_key, secret_key, token) = crate::presign::caller_credentials(&a.client.data_dir)?;
    let (endpoint, host) = a.client.endpoint_and_host();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let s3 = S3 {
            client: Client::builder(TokioExecutor::new()).build(connector(a)?),
            endpoint: endpoint.to_owned(),
            host: host.to_owned(),
            region: a.client.region.clone(),
            access_key,
            secret_key: zeroize::Zeroizing::new(secret_key),
            token,
        };
        let (target, prefix) = location(&s3, a).await?;
        let mut summary = Summary::default();
        for key in log_objects(&s3, &target, &prefix, filter.since).await? {
            let body = s3.get(&format!("/{target}/{key}"), &[]).await?;
            for line in String::from_utf8_lossy(&body).lines() {
                let Some(r) = Record::parse(line) else {
                    continue;
                };
                if !filter.keeps(&r) {
                    continue;
                }
                if a.summary {
                    summary.add(&r);
                } else {
                    println!("{line}");
                }
            }
        }
        if a.summary {
            summary.print();
        }
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn times_are_rfc3339_or_ages() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(when("15m", now).unwrap(), now - time::Duration::minutes(15));
        assert_eq!(when("2d", now).unwrap(), now - time::Duration::days(2));
        assert_eq!(
            when("2026-12-02T10:00:00Z", now).unwrap().unix_timestamp(),
            1_796_205_600
        );
        assert!(when("yesterday", now).is_err());
        assert!(when("5y", now).is_err());
    }

    #[test]
    fn xml_texts_read_escaped_values() {
        let xml = b"<R><Contents><Key>a&amp;b</Key></Contents><Contents><Key>c</Key></Contents></R>";
        assert_eq!(xml_texts(xml, "Key"), vec!["a&b".to_owned(), "c".to_owned()]);
        assert!(xml_texts(b"<R/>", "Key").is_empty());
    }
}
