//! `strongroom bench put|get|stat|delete|list|mixed|multipart`: a load
//! generator for any S3 endpoint (ours, AWS, MinIO, Garage, moto), in the
//! manner of MinIO's `warp`. Requests are signed with our own SigV4
//! (`strongroom_iam::sigv4`; no AWS SDK on the hot path) and sent over
//! HTTP/1.1 or HTTP/2 (h2c or TLS with ALPN) by `concurrency` workers for
//! a duration or an operation count. The report gives per operation
//! ops/s, MB/s, latency percentiles and errors by AWS code, and the
//! client's own CPU use, so a reader can see whether the client was the
//! bottleneck; `--json` writes it for scripts and `--compare FILE` prints
//! ratios against an earlier run.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::bench_load_report::{OpReport, Report, Tally, client_cpu_seconds};

/// The load's shape: what `strongroom bench <workload>` takes.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// The S3 endpoint (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the
    /// profile's, as the AWS CLI decides).
    #[arg(long)]
    pub endpoint_url: Option<String>,
    #[arg(long)]
    pub profile: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    /// PEM file of CA certificates to trust (besides the system's).
    #[arg(long)]
    pub ca_bundle: Option<std::path::PathBuf>,
    /// The bucket to use (created when missing).
    #[arg(long, default_value = "strongroom-bench")]
    pub bucket: String,
    /// Key prefix of the objects the run makes.
    #[arg(long, default_value = "bench/")]
    pub prefix: String,
    /// Object size (`4KiB`, `1MiB`, `1GiB`, bytes) or a range `MIN-MAX`
    /// (each object's size uniform in it).
    #[arg(long, default_value = "4KiB")]
    pub size: String,
    /// Requests in flight (one connection each over HTTP/1.1).
    #[arg(long, short = 'c', default_value_t = 16)]
    pub concurrency: usize,
    /// How long to run, in seconds (unless --ops is given).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many operations instead of after --duration.
    #[arg(long)]
    pub ops: Option<u64>,
    /// Objects the workload spreads over: GET/stat/list read a data set of
    /// this many, made first; PUT overwrites them at random (so it may not
    /// write them all: `get --keys N --keep` makes a whole data set for
    /// later `--reuse`). 0 with put: a fresh key for every PUT.
    #[arg(long, default_value_t = 64)]
    pub keys: u64,
    /// Ratios of a mixed workload.
    #[arg(long, default_value = "get=45,stat=30,put=15,delete=10")]
    pub mix: String,
    /// Server-side encryption of the objects written.
    #[arg(long, value_enum, default_value = "none")]
    pub sse: SseMode,
    /// The KMS key of --sse kms (default: the account's aws/s3 key).
    #[arg(long)]
    pub kms_key_id: Option<String>,
    /// S3 Bucket Key with --sse kms.
    #[arg(long)]
    pub bucket_key: bool,
    /// Checksum sent with each PUT (computed once per size: the bodies are
    /// the same bytes).
    #[arg(long, value_enum, default_value = "none")]
    pub checksum: ChecksumMode,
    /// Sign the payload's SHA-256 instead of UNSIGNED-PAYLOAD.
    #[arg(long)]
    pub sign_payload: bool,
    /// HTTP/2 (ALPN h2 over TLS; prior knowledge, h2c, over plain HTTP).
    #[arg(long)]
    pub http2: bool,
    /// With --http2: connections the in-flight requests are spread over,
    /// round robin (1, the default, multiplexes them all on one, as an
    /// SDK's HTTP/2 client does).
    #[arg(long, default_value_t = 1)]
    pub h2_connections: usize,
    /// Keys a LIST asks for (max-keys).
    #[arg(long, default_value_t = 1000)]
    pub list_max_keys: u32,
    /// Part size of the multipart workload.
    #[arg(long, default_value = "8MiB")]
    pub part_size: String,
    /// Leave the objects the run made.
    #[arg(long)]
    pub keep: bool,
    /// The data set is there already (an earlier run's, kept with --keep,
    /// same --prefix and --keys): do not write it again.
    #[arg(long)]
    pub reuse: bool,
    /// Write the report as JSON to this file (`-`: standard output).
    #[arg(long)]
    pub json: Option<String>,
    /// Print ratios against the report of an earlier run (a --json file).
    #[arg(long)]
    pub compare: Option<std::path::PathBuf>,
    /// Print each figure as a fraction of this machine's limits (the
    /// --json file of `strongroom bench limits`).
    #[arg(long)]
    pub limits: Option<std::path::PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SseMode {
    None,
    S3,
    Kms,
    C,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumMode {
    None,
    Crc32c,
    Sha256,
}

/// One kind of request the generator sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Put,
    Get,
    Stat,
    Delete,
    List,
    Multipart,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "PUT",
            Op::Get => "GET",
            Op::Stat => "STAT",
            Op::Delete => "DELETE",
            Op::List => "LIST",
            Op::Multipart => "MULTIPART",
        }
    }
}

/// `4KiB`, `1MiB`, `10MB`, `123`: bytes.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().with_context(|| format!("size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "ki" | "k" => 1 << 10,
        "mib" | "mi" | "m" => 1 << 20,
        "gib" | "gi" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        u => bail!("size {s:?}: unknown unit {u:?}"),
    };
    n.checked_mul(mult).with_context(|| format!("size {s:?} too large"))
}

/// A size or a uniform range of sizes.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub min: u64,
    pub max: u64,
}

impl Sizes {
    pub fn parse(s: &str) -> anyhow::Result<Sizes> {
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (parse_size(a)?, parse_size(b)?),
            None => {
                let n = parse_size(s)?;
                (n, n)
            }
        };
        if min > max {
            bail!("size range {s:?}: minimum above maximum");
        }
        Ok(Sizes { min, max })
    }

    fn pick(&self, rng: &mut fastrand::Rng) -> u64 {
        if self.min == self.max {
            self.min
        } else {
            rng.u64(self.min..=self.max)
        }
    }
}

fn parse_mix(s: &str) -> anyhow::Result<Vec<(Op, u32)>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, w) = part
            .split_once('=')
            .with_context(|| format!("mix {part:?}: want op=weight"))?;
        let op = match name.trim().to_ascii_lowercase().as_str() {
            "get" => Op::Get,
            "put" => Op::Put,
            "stat" | "head" => Op::Stat,
            "delete" => Op::Delete,
            "list" => Op::List,
            n => bail!("mix: unknown operation {n:?}"),
        };
        let w: u32 = w.trim().parse().with_context(|| format!("mix weight {w:?}"))?;
        if w > 0 {
            out.push((op, w));
        }
    }
    if out.is_empty() {
        bail!("mix {s:?}: no operation with a weight");
    }
    Ok(out)
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Where requests go and how they are signed.
pub(crate) struct Target {
    /// One client (one connection pool) per HTTP/2 connection wanted;
    /// one for HTTP/1.1, whose pool opens a connection per request in flight.
    clients: Vec<Client<Https, Full<Bytes>>>,
    next: std::sync::atomic::AtomicUsize,
    /// scheme://authority
    base: String,
    host: String,
    region: String,
    access_key: String,
    secret_key: Zeroizing<String>,
    token: Option<Zeroizing<String>>,
    /// Whether requests carry SigV4 (false: the bare ceiling's unsigned GETs).
    signed: bool,
    /// The day's signing key, derived once a day instead of every request.
    day_key: std::sync::Mutex<Option<(String, ring::hmac::Key)>>,
}

/// What an answer was: status, body bytes read, AWS error code, the ETag.
pub(crate) struct Answer {
    pub status: u16,
    pub bytes: u64,
    pub code: Option<String>,
    pub etag: Option<String>,
    pub body: Option<Bytes>,
}

impl Answer {
    /// No request was sent (the delete workload ran out of objects).
    const NONE: Answer = Answer {
        status: 0,
        bytes: 0,
        code: None,
        etag: None,
        body: None,
    };
}

impl Target {
    pub(crate) fn new(
        base: &str,
        region: &str,
        creds: Option<(&str, &str, Option<&str>)>,
        ca_bundle: Option<&std::path::Path>,
        http2: bool,
        conns: usize,
        h2_conns: usize,
    ) -> anyhow::Result<Target> {
        let base = base.trim_end_matches('/').to_owned();
        let uri: http::Uri = base.parse().with_context(|| format!("endpoint {base:?}"))?;
        let host = uri.authority().context("endpoint without a host")?.to_string();
        let tls = strongroom_client::tls_config(ca_bundle)?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        let b = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let https = if http2 {
            b.enable_http2().wrap_connector(http)
        } else {
            b.enable_http1().wrap_connector(http)
        };
        let mut cb = Client::builder(TokioExecutor::new());
        cb.pool_max_idle_per_host(conns.max(1));
        if http2 {
            // bulk transfer: windows far above the 64 KiB default
            cb.http2_only(true)
                .http2_initial_stream_window_size(16 << 20)
                .http2_initial_connection_window_size(64 << 20)
                .http2_adaptive_window(false);
        }
        let (access_key, secret_key, token) = match creds {
            Some((a, s, t)) => (
                a.to_owned(),
                Zeroizing::new(s.to_owned()),
                t.map(|t| Zeroizing::new(t.to_owned())),
            ),
            None => (String::new(), Zeroizing::new(String::new()), None),
        };
        let n = if http2 { h2_conns.max(1) } else { 1 };
        Ok(Target {
            clients: (0..n).map(|_| cb.build(https.clone())).collect(),
            next: std::sync::atomic::AtomicUsize::new(0),
            base,
            host,
            region: region.to_owned(),
            access_key,
            secret_key,
            token,
            signed: creds.is_some(),
            day_key: std::sync::Mutex::new(None),
        })
    }

    /// The signing key of `date` (`YYYYMMDD`).
    fn day_key(&self, date: &str) -> ring::hmac::Key {
        let mut k = self.day_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*k {
            Some((d, key)) if d == date => key.clone(),
            _ => {
                let key = strongroom_iam::sigv4::signing_key(&self.secret_key, date, &self.region, "s3");
                *k = Some((date.to_owned(), key.clone()));
                key
            }
        }
    }

    /// Sends one request: `path` is `/bucket/key` of URL-safe characters,
    /// `query` decoded pairs, `headers` extra headers (x-amz-* ones are
    /// signed). Reads the whole answer, keeping the body only when
    /// `keep_body`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        payload_hash: Option<&str>,
        keep_body: bool,
    ) -> anyhow::Result<Answer> {
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, QUERY).to_string();
        let qs: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
        let uri = if qs.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{}", self.base, qs.join("&"))
        };
        let mut req = http::Request::builder().method(method.clone()).uri(uri);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if self.signed {
            let payload = payload_hash.unwrap_or("UNSIGNED-PAYLOAD");
            let amz_date = crate::presign::amz_date_now()?;
            let mut signed: Vec<(String, String)> = vec![
                ("host".into(), self.host.clone()),
                ("x-amz-content-sha256".into(), payload.into()),
                ("x-amz-date".into(), amz_date.clone()),
            ];
            if let Some(t) = &self.token {
                signed.push(("x-amz-security-token".into(), t.to_string()));
                req = req.header("x-amz-security-token", t.as_str());
            }
            for (k, v) in headers {
                if k.as_str().starts_with("x-amz-") || k.as_str() == "content-md5" {
                    signed.push((k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()));
                }
            }
            let names = {
                let mut n: Vec<&str> = signed.iter().map(|(k, _)| k.as_str()).collect();
                n.sort_unstable();
                n.join(";")
            };
            let key = self.day_key(&amz_date[..8]);
            let sig = strongroom_iam::sigv4::signature_with(
                &strongroom_iam::sigv4::SigningInput {
                    method: method.as_str(),
                    path,
                    query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                    headers: signed,
                    payload_hash: payload,
                    amz_date: &amz_date,
                    region: &self.region,
                    service: "s3",
                },
                &key,
            );
            req = req
                .header("x-amz-content-sha256", payload)
                .header("x-amz-date", &amz_date)
                .header(
                    http::header::AUTHORIZATION,
                    format!(
                        "AWS4-HMAC-SHA256 Credential={}/{}/{}/s3/aws4_request, SignedHeaders={names}, Signature={sig}",
                        self.access_key,
                        &amz_date[..8],
                        self.region
                    ),
                );
        }
        let req = req.body(Full::new(body))?;
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.clients.len();
        let client = self.clients.get(i).context("no client")?;
        let resp = client.request(req).await?;
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let keep = keep_body || status >= 300;
        let mut b = resp.into_body();
        let mut bytes = 0u64;
        let mut kept = Vec::new();
        while let Some(f) = b.frame().await {
            if let Ok(d) = f?.into_data() {
                bytes += d.len() as u64;
                if keep && kept.len() < (4 << 20) {
                    kept.extend_from_slice(&d);
                }
            }
        }
        let code = (status >= 300).then(|| {
            xml_first(&kept, "Code").unwrap_or_else(|| match status {
                404 => "NotFound".into(),
                403 => "Forbidden".into(),
                s => format!("Http{s}"),
            })
        });
        Ok(Answer {
            status,
            bytes,
            code,
            etag,
            body: keep.then(|| Bytes::from(kept)),
        })
    }
}

/// What a query value may hold unencoded (SigV4: unreserved only).
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The text of the first `<name>` element of an XML answer.
fn xml_first(body: &[u8], name: &str) -> Option<String> {
    crate::logs::xml_texts(body, name).into_iter().next()
}

/// Everything the workers share.
struct Plan {
    target: Target,
    bucket: String,
    prefix: String,
    sizes: Sizes,
    part_size: u64,
    /// Random bytes, as long as the largest object (bodies are slices).
    data: Bytes,
    /// SSE headers of writes.
    put_headers: Headers,
    /// The whole headers of a PUT when every object has one size (SSE and
    /// checksum, computed once: the bodies are the same bytes).
    fixed_put: Option<Headers>,
    /// SSE-C's key headers, which reads must send too.
    read_headers: Headers,
    /// The body's SHA-256 with --sign-payload (one size only).
    payload_hash: Option<String>,
    checksum: ChecksumMode,
    keys: u64,
    list_max_keys: u32,
    /// Next fresh key number.
    fresh: AtomicU64,
    /// Next data-set key the delete workload removes.
    next_delete: AtomicU64,
    /// Operations started (against --ops).
    started: AtomicU64,
    ops_limit: Option<u64>,
    /// A mixed workload: PUTs make fresh objects its DELETEs remove.
    mixed: bool,
    stop: AtomicBool,
    /// Live totals for the progress line: ops, bytes, errors.
    live: [AtomicU64; 3],
}

impl Plan {
    fn key(&self, i: u64) -> String {
        format!("{}{i:010}", self.prefix)
    }

    fn path(&self, key: &str) -> String {
        format!("/{}/{key}", self.bucket)
    }

    fn body(&self, size: u64) -> Bytes {
        self.data
            .slice(..usize::try_from(size).unwrap_or(usize::MAX).min(self.data.len()))
    }

    /// Headers of a PUT of `size` bytes (SSE, checksum).
    fn put_headers_for(&self, size: u64) -> Headers {
        let mut h = self.put_headers.clone();
        match self.checksum {
            ChecksumMode::None => {}
            ChecksumMode::Crc32c => {
                let c = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &self.body(size));
                let v = base64_simd::STANDARD.encode_to_string((c as u32).to_be_bytes());
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.push((HeaderName::from_static("x-amz-checksum-crc32c"), v));
                }
            }
            ChecksumMode::Sha256 => {
                let d = ring::digest::digest(&ring::digest::SHA256, &self.body(size));
                let v = base64_simd::STANDARD.encode_to_string(d.as_ref());
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.push((HeaderName::from_static("x-amz-checksum-sha256"), v));
                }
            }
        }
        h
    }

    async fn put(&self, key: &str, size: u64) -> anyhow::Result<Answer> {
        let computed;
        let headers = match &self.fixed_put {
            Some(h) => h,
            None => {
                computed = self.put_headers_for(size);
                &computed
            }
        };
        self.target
            .send(
                Method::PUT,
                &self.path(key),
                &[],
                headers,
                self.body(size),
                self.payload_hash.as_deref(),
                false,
            )
            .await
    }

    async fn multipart(&self, key: &str, size: u64) -> anyhow::Result<Answer> {
        let path = self.path(key);
        let a = self
            .target
            .send(
                Method::POST,
                &path,
                &[("uploads", "")],
                &self.put_headers,
                Bytes::new(),
                None,
                true,
            )
            .await?;
        if a.status != 200 {
            return Ok(a);
        }
        let body = a.body.unwrap_or_default();
        let id = xml_first(&body, "UploadId").context("CreateMultipartUpload answered no UploadId")?;
        let mut sent = a.bytes;
        let mut etags = Vec::new();
        let parts = size.div_ceil(self.part_size).max(1);
        for n in 1..=parts {
            let len = self.part_size.min(size - (n - 1) * self.part_size);
            let num = n.to_string();
            let a = self
                .target
                .send(
                    Method::PUT,
                    &path,
                    &[("partNumber", &num), ("uploadId", &id)],
                    &self.read_headers,
                    self.body(len),
                    None,
                    false,
                )
                .await?;
            sent += a.bytes;
            if a.status != 200 {
                return Ok(a);
            }
            etags.push(a.etag.unwrap_or_default());
        }
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, e) in etags.iter().enumerate() {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{e}</ETag></Part>",
                i + 1
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let mut a = self
            .target
            .send(
                Method::POST,
                &path,
                &[("uploadId", &id)],
                &[],
                Bytes::from(xml),
                None,
                true,
            )
            .await?;
        // CompleteMultipartUpload can answer 200 with an error in the body
        if a.status == 200
            && let Some(code) = a.body.as_deref().and_then(|b| xml_first(b, "Code"))
        {
            a.status = 500;
            a.code = Some(code);
        }
        a.bytes += sent;
        Ok(a)
    }

    /// One operation; returns the bytes it moved (the object's, not the
    /// headers').
    async fn run_op(
        &self,
        op: Op,
        rng: &mut fastrand::Rng,
        pending_deletes: &mut Vec<String>,
    ) -> anyhow::Result<Answer> {
        match op {
            Op::Put => {
                let size = self.sizes.pick(rng);
                let key = if self.mixed {
                    format!("{}mixed-{}", self.prefix, self.fresh.fetch_add(1, Ordering::Relaxed))
                } else if self.keys == 0 {
                    self.key(self.fresh.fetch_add(1, Ordering::Relaxed))
                } else {
                    self.key(rng.u64(0..self.keys))
                };
                let mut a = self.put(&key, size).await?;
                if self.mixed && a.status < 300 {
                    pending_deletes.push(key);
                }
                a.bytes = size;
                Ok(a)
            }
            Op::Multipart => {
                let size = self.sizes.pick(rng);
                let key = self.key(self.fresh.fetch_add(1, Ordering::Relaxed));
                let mut a = self.multipart(&key, size).await?;
                a.bytes = size;
                Ok(a)
            }
            Op::Get | Op::Stat => {
                let key = self.key(rng.u64(0..self.keys.max(1)));
                let m = if op == Op::Get { Method::GET } else { Method::HEAD };
                self.target
                    .send(m, &self.path(&key), &[], &self.read_headers, Bytes::new(), None, false)
                    .await
            }
            Op::Delete => {
                // the delete workload removes the data set; a mixed one
                // the objects its own PUTs made (the worker turns a DELETE
                // with nothing of its own to remove into a PUT)
                let key = match pending_deletes.pop() {
                    Some(k) => k,
                    None => {
                        let i = self.next_delete.fetch_add(1, Ordering::Relaxed);
                        if i + 1 >= self.keys {
                            self.stop.store(true, Ordering::Relaxed);
                        }
                        if i >= self.keys {
                            return Ok(Answer::NONE);
                        }
                        self.key(i)
                    }
                };
                self.target
                    .send(Method::DELETE, &self.path(&key), &[], &[], Bytes::new(), None, false)
                    .await
            }
            Op::List => {
                // a page from a random place in the data set: a range scan
                // that starts anywhere, not the same first page each time
                let max = self.list_max_keys.to_string();
                let after = (self.keys > 0).then(|| self.key(rng.u64(0..self.keys)));
                let mut q = vec![("list-type", "2"), ("max-keys", max.as_str()), ("prefix", &self.prefix)];
                if let Some(a) = &after {
                    q.push(("start-after", a));
                }
                self.target
                    .send(
                        Method::GET,
                        &format!("/{}", self.bucket),
                        &q,
                        &[],
                        Bytes::new(),
                        None,
                        false,
                    )
                    .await
            }
        }
    }
}

/// Per-worker results, merged at the end.
type Tallies = BTreeMap<Op, Tally>;

async fn worker(plan: Arc<Plan>, mix: Arc<Vec<(Op, u32)>>, seed: u64, until: Option<Instant>) -> Tallies {
    let mut rng = fastrand::Rng::with_seed(seed);
    let total: u32 = mix.iter().map(|(_, w)| w).sum();
    let mut tallies = Tallies::new();
    let mut mine = Vec::new();
    loop {
        if plan.stop.load(Ordering::Relaxed) || until.is_some_and(|u| Instant::now() >= u) {
            break;
        }
        if let Some(limit) = plan.ops_limit
            && plan.started.fetch_add(1, Ordering::Relaxed) >= limit
        {
            break;
        }
        let mut pick = rng.u32(0..total);
        let mut op = mix
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or(Op::Get, |(o, _)| *o);
        if op == Op::Delete && plan.mixed && mine.is_empty() {
            op = Op::Put;
        }
        let t = Instant::now();
        let r = plan.run_op(op, &mut rng, &mut mine).await;
        let us = t.elapsed().as_micros();
        let tally = tallies.entry(op).or_default();
        match r {
            Ok(a) if a.status == 0 => {}
            Ok(a) if a.status < 300 => {
                tally.ok(us, a.bytes);
                plan.live[0].fetch_add(1, Ordering::Relaxed);
                plan.live[1].fetch_add(a.bytes, Ordering::Relaxed);
            }
            Ok(a) => {
                tally.err(us, a.code.unwrap_or_else(|| format!("Http{}", a.status)));
                plan.live[2].fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let mut msg = format!("transport: {e}");
                msg.truncate(80);
                tally.err(us, msg);
                plan.live[2].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    tallies
}

/// Runs `mix` with `concurrency` workers for `duration` (or until the plan
/// stops); returns the merged tallies and the wall time.
async fn drive(
    plan: &Arc<Plan>,
    mix: Vec<(Op, u32)>,
    concurrency: usize,
    duration: Option<Duration>,
) -> (Tallies, Duration) {
    let mix = Arc::new(mix);
    let started = Instant::now();
    let until = duration.map(|d| started + d);
    let progress = std::io::stderr().is_terminal().then(|| {
        let plan = plan.clone();
        tokio::spawn(async move {
            let mut last = [0u64; 3];
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let now: Vec<u64> = plan.live.iter().map(|a| a.load(Ordering::Relaxed)).collect();
                eprint!(
                    "\r{:>6.1}s  {:>10} ops/s  {:>9.1} MB/s  {:>6} errors   ",
                    started.elapsed().as_secs_f64(),
                    now[0] - last[0],
                    (now[1] - last[1]) as f64 / 1e6,
                    now[2]
                );
                last = [now[0], now[1], now[2]];
            }
        })
    });
    let mut handles = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        handles.push(tokio::spawn(worker(
            plan.clone(),
            mix.clone(),
            0x5eed_0000 + i as u64,
            until,
        )));
    }
    let mut all = Tallies::new();
    for h in handles {
        if let Ok(t) = h.await {
            for (op, t) in t {
                all.entry(op).or_default().merge(t);
            }
        }
    }
    let wall = started.elapsed();
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    (all, wall)
}

/// Headers sent with a request.
type Headers = Vec<(HeaderName, HeaderValue)>;

/// The SSE headers of writes, and those reads must repeat (SSE-C's key).
fn sse_headers(a: &LoadArgs) -> anyhow::Result<(Headers, Headers)> {
    let h = |n: &'static str, v: &str| -> anyhow::Result<(HeaderName, HeaderValue)> {
        Ok((HeaderName::from_static(n), HeaderValue::from_str(v)?))
    };
    Ok(match a.sse {
        SseMode::None => (Vec::new(), Vec::new()),
        SseMode::S3 => (vec![h("x-amz-server-side-encryption", "AES256")?], Vec::new()),
        SseMode::Kms => {
            let mut v = vec![h("x-amz-server-side-encryption", "aws:kms")?];
            if let Some(k) = &a.kms_key_id {
                v.push(h("x-amz-server-side-encryption-aws-kms-key-id", k)?);
            }
            if a.bucket_key {
                v.push(h("x-amz-server-side-encryption-bucket-key-enabled", "true")?);
            }
            (v, Vec::new())
        }
        SseMode::C => {
            let mut key = [0u8; 32];
            strongroom_crypt::fill_random(&mut key).map_err(|e| anyhow::anyhow!("{e}"))?;
            let md5 = {
                use md5::Digest;
                md5::Md5::digest(key)
            };
            let c = vec![
                h("x-amz-server-side-encryption-customer-algorithm", "AES256")?,
                h(
                    "x-amz-server-side-encryption-customer-key",
                    &base64_simd::STANDARD.encode_to_string(key),
                )?,
                h(
                    "x-amz-server-side-encryption-customer-key-md5",
                    &base64_simd::STANDARD.encode_to_string(md5),
                )?,
            ];
            (c.clone(), c)
        }
    })
}

/// `strongroom bench <workload>`.
pub async fn run(workload: Op, mixed: bool, a: &LoadArgs) -> anyhow::Result<()> {
    let settings = strongroom_client::Settings::resolve(&strongroom_client::SettingsArgs {
        endpoint_url: a.endpoint_url.clone(),
        kms_endpoint_url: None,
        profile: a.profile.clone(),
        region: a.region.clone(),
        ca_bundle: a.ca_bundle.clone(),
    })?;
    let creds = &settings.credentials;
    let target = Target::new(
        &settings.s3_endpoint,
        &settings.region,
        Some((
            creds.access_key.as_str(),
            creds.secret_key.as_str(),
            creds.session_token.as_ref().map(|t| t.as_str()),
        )),
        settings.ca_bundle.as_deref(),
        a.http2,
        a.concurrency,
        a.h2_connections,
    )?;
    if a.sse == SseMode::C && !settings.s3_endpoint.starts_with("https://") {
        eprintln!("note: SSE-C over plain HTTP is refused by S3 (and by Strongroom); use an https:// endpoint");
    }
    let sizes = Sizes::parse(&a.size)?;
    let part_size = parse_size(&a.part_size)?.max(5 << 20);
    let longest = usize::try_from(if workload == Op::Multipart {
        sizes.max.min(part_size)
    } else {
        sizes.max
    })?;
    let mut data = vec![0u8; longest];
    strongroom_crypt::fill_random(&mut data).map_err(|e| anyhow::anyhow!("{e}"))?;
    let data = Bytes::from(data);
    let payload_hash = if a.sign_payload {
        if sizes.min != sizes.max {
            bail!("--sign-payload needs one object size, not a range");
        }
        Some(hex_simd::encode_to_string(
            ring::digest::digest(&ring::digest::SHA256, &data[..longest]).as_ref(),
            hex_simd::AsciiCase::Lower,
        ))
    } else {
        None
    };
    let (put_headers, read_headers) = sse_headers(a)?;
    let mut plan = Plan {
        target,
        bucket: a.bucket.clone(),
        prefix: a.prefix.clone(),
        sizes,
        part_size,
        data,
        put_headers,
        fixed_put: None,
        read_headers,
        payload_hash,
        checksum: a.checksum,
        keys: a.keys,
        list_max_keys: a.list_max_keys,
        fresh: AtomicU64::new(0),
        next_delete: AtomicU64::new(0),
        started: AtomicU64::new(0),
        ops_limit: a.ops,
        mixed,
        stop: AtomicBool::new(false),
        live: Default::default(),
    };
    if sizes.min == sizes.max {
        plan.fixed_put = Some(plan.put_headers_for(sizes.max));
    }
    let plan = Arc::new(plan);
    // the bucket: made when missing
    let made = plan
        .target
        .send(
            Method::PUT,
            &format!("/{}", a.bucket),
            &[],
            &[],
            Bytes::new(),
            None,
            false,
        )
        .await?;
    if made.status >= 300 && made.code.as_deref() != Some("BucketAlreadyOwnedByYou") {
        bail!(
            "creating bucket {}: {} {}",
            a.bucket,
            made.status,
            made.code.unwrap_or_default()
        );
    }
    // the data set reads and deletes use
    let needs_data = matches!(workload, Op::Get | Op::Stat | Op::List | Op::Delete) || mixed;
    if needs_data && a.keys > 0 && !a.reuse {
        eprintln!("preparing {} objects of {} ...", a.keys, a.size);
        let next = Arc::new(AtomicU64::new(0));
        let mut hs = Vec::new();
        for i in 0..a.concurrency.max(1) {
            let (plan, next) = (plan.clone(), next.clone());
            hs.push(tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(i as u64);
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= plan.keys {
                        return Ok(());
                    }
                    let a = plan.put(&plan.key(k), plan.sizes.pick(&mut rng)).await?;
                    if a.status >= 300 {
                        bail!(
                            "preparing the data set: PUT answered {} {}",
                            a.status,
                            a.code.unwrap_or_default()
                        );
                    }
                }
            }));
        }
        for h in hs {
            h.await??;
        }
    }
    let mix = if mixed { parse_mix(&a.mix)? } else { vec![(workload, 1)] };
    let duration = a.ops.is_none().then(|| Duration::from_secs_f64(a.duration.max(0.1)));
    let cpu0 = client_cpu_seconds();
    let (tallies, wall) = drive(&plan, mix, a.concurrency, duration).await;
    let cpu = client_cpu_seconds() - cpu0;
    let name = if mixed { "mixed" } else { workload.name() };
    let report = Report {
        workload: name.to_ascii_lowercase(),
        endpoint: settings.s3_endpoint.clone(),
        http: match (a.http2, a.h2_connections) {
            (false, _) => "HTTP/1.1".into(),
            (true, 0 | 1) => "HTTP/2".into(),
            (true, n) => format!("HTTP/2 over {n} connections"),
        },
        concurrency: a.concurrency,
        size: a.size.clone(),
        sse: a.sse,
        seconds: wall.as_secs_f64(),
        client_cpu_cores: cpu / wall.as_secs_f64().max(1e-9),
        ops: tallies
            .into_iter()
            .map(|(op, t)| OpReport::of(op.name(), t, wall))
            .collect(),
    };
    report.print();
    if let Some(f) = &a.compare {
        let before: Report = serde_json::from_slice(&std::fs::read(f).with_context(|| format!("{}", f.display()))?)
            .with_context(|| format!("{}: not a bench report", f.display()))?;
        report.print_compare(&before);
    }
    if let Some(f) = &a.limits {
        let l: crate::bench_limits::Limits =
            serde_json::from_slice(&std::fs::read(f).with_context(|| format!("{}", f.display()))?)
                .with_context(|| format!("{}: not a limits report", f.display()))?;
        report.print_limits(&l);
    }
    if let Some(j) = &a.json {
        let text = serde_json::to_string_pretty(&report)?;
        if j == "-" {
            println!("{text}");
        } else {
            std::fs::write(j, text + "\n").with_context(|| format!("writing {j}"))?;
        }
    }
    if !a.keep && !a.reuse {
        cleanup(&plan, a.concurrency).await;
    }
    Ok(())
}

/// Deletes what the run made: the data set and fresh keys.
async fn cleanup(plan: &Arc<Plan>, concurrency: usize) {
    let fresh = plan.fresh.load(Ordering::Relaxed);
    let mut keys: Vec<String> = (0..plan.keys).map(|i| plan.key(i)).collect();
    if plan.mixed {
        keys.extend((0..fresh).map(|i| format!("{}mixed-{i}", plan.prefix)));
    } else {
        keys.extend((0..fresh).map(|i| plan.key(i)));
    }
    keys.sort();
    keys.dedup();
    let keys = Arc::new(std::sync::Mutex::new(keys));
    let mut hs = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (plan, keys) = (plan.clone(), keys.clone());
        hs.push(tokio::spawn(async move {
            loop {
                let Some(k) = keys.lock().ok().and_then(|mut k| k.pop()) else {
                    return;
                };
                let _ = plan
                    .target
                    .send(Method::DELETE, &plan.path(&k), &[], &[], Bytes::new(), None, false)
                    .await;
            }
        }));
    }
    for h in hs {
        let _ = h.await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn sizes_read_as_warp_and_the_aws_cli_write_them() {
        assert_eq!(parse_size("4KiB").unwrap(), 4096);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("4XB").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999GiB").is_err());
        let r = Sizes::parse("1KiB-1MiB").unwrap();
        assert_eq!((r.min, r.max), (1024, 1 << 20));
        assert!(Sizes::parse("2KiB-1KiB").is_err());
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..1000 {
            let s = r.pick(&mut rng);
            assert!((1024..=1 << 20).contains(&s));
        }
    }

    #[test]
    fn a_mix_names_known_operations_with_weights() {
        let m = parse_mix("get=45,stat=30,put=15,delete=10").unwrap();
        assert_eq!(m, vec![(Op::Get, 45), (Op::Stat, 30), (Op::Put, 15), (Op::Delete, 10)]);
        assert!(parse_mix("get=0").is_err());
        assert!(parse_mix("copy=5").is_err());
        assert!(parse_mix("get").is_err());
    }
}
