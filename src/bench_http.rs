//! `strongroom bench http`: PUT and GET through real sockets and the whole
//! request path (SigV4, MD5, CRC64NVME, the store), against two servers of
//! this build started in-process on loopback: one as `serve` runs it
//! (SSE-S3 by default), one storing plaintext (the baseline, reachable only
//! from here).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use strongroom_iam::{Identities, NewAccount};
use strongroom_s3::{S3Settings, Strongroom};
use strongroom_server::{FrontDoor, Listeners, Metrics};
use strongroom_store::Store;

const AK: &str = "AKIABENCH00000000001";
const SK: &str = "BenchSecretKey00000000000000000000000001";

/// One server: its address and the sender that stops it.
pub(crate) struct Running {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) stop: tokio::sync::watch::Sender<bool>,
    pub(crate) ids: Identities,
    _dir: tempfile::TempDir,
}

pub(crate) async fn start(plaintext: bool) -> anyhow::Result<Running> {
    let dir = tempfile::tempdir_in(std::env::var_os("STRONGROOM_BENCH_DIR").unwrap_or_else(|| "/var/tmp".into()))?;
    let store = Store::open(dir.path())?;
    let k = strongroom_crypt::Key::random().map_err(|e| anyhow::anyhow!("{e}"))?;
    let master = Arc::new(strongroom_crypt::MasterKeys::parse(&strongroom_crypt::key_line(&k))?);
    let ids = Identities::load(store.clone(), master.clone()).await?;
    ids.ensure(NewAccount {
        id: "999999999999".into(),
        name: "bench".into(),
        email: "bench@localhost".into(),
        canonical_id: None,
        access_key: AK.into(),
        secret_key: SK.into(),
    })
    .await?;
    let audit = strongroom_kms::Audit::open(dir.path())?;
    let kms = strongroom_kms::Kms::open(
        store.clone(),
        master.clone(),
        audit,
        strongroom_kms::KmsSettings {
            region: "us-east-1".into(),
            rate_limit: 0,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut crypt = strongroom_s3::sse::Encryption::new(master, kms, Duration::from_secs(300));
    if plaintext {
        crypt = crypt.plaintext_baseline_for_bench();
    }
    let s3 = Strongroom::new(
        store.clone(),
        ids.clone(),
        S3Settings {
            region: "us-east-1".into(),
        },
        crypt,
    );
    let service = strongroom_server::s3_service(s3, &ids, &store, "us-east-1", None);
    let front = Arc::new(FrontDoor::new(service, ids.clone(), None, Arc::new(Metrics::default())));
    let l = strongroom_server::bind("127.0.0.1:0".parse()?).await?;
    let addr = l.local_addr()?;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let listeners = Listeners {
        http: Some(l),
        https: None,
        admin: None,
        website: None,
        website_https: None,
        limits: strongroom_server::Limits::default(),
    };
    tokio::spawn(async move {
        if let Err(e) = strongroom_server::serve(listeners, front, rx).await {
            eprintln!("bench server: {e}");
        }
    });
    Ok(Running {
        addr,
        stop,
        ids,
        _dir: dir,
    })
}

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Sends a SigV4-signed request as the bench account's root.
async fn send(
    c: &HttpClient,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Bytes,
) -> anyhow::Result<(u16, usize)> {
    send_as(c, addr, (AK, SK), method, path, body).await
}

/// Sends a SigV4-signed request (UNSIGNED-PAYLOAD) with the given
/// credentials; returns status and the number of body bytes read.
pub(crate) async fn send_as(
    c: &HttpClient,
    addr: std::net::SocketAddr,
    (ak, sk): (&str, &str),
    method: &str,
    path: &str,
    body: Bytes,
) -> anyhow::Result<(u16, usize)> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let amz_date = time::OffsetDateTime::now_utc().format(&fmt)?;
    let host = addr.to_string();
    let headers = vec![
        ("host".to_owned(), host.clone()),
        ("x-amz-content-sha256".to_owned(), "UNSIGNED-PAYLOAD".to_owned()),
        ("x-amz-date".to_owned(), amz_date.clone()),
    ];
    let sig = strongroom_iam::sigv4::signature(
        &strongroom_iam::sigv4::SigningInput {
            method,
            path: path.split_once('?').map_or(path, |(p, _)| p),
            query: path
                .split_once('?')
                .map(|(_, q)| {
                    q.split('&')
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            (k.to_owned(), v.to_owned())
                        })
                        .collect()
                })
                .unwrap_or_default(),
            headers,
            payload_hash: "UNSIGNED-PAYLOAD",
            amz_date: &amz_date,
            region: "us-east-1",
            service: "s3",
        },
        sk,
    );
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={ak}/{}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}",
        &amz_date[..8]
    );
    let len = body.len();
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{host}{path}"))
        .header("host", host)
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .header("x-amz-date", amz_date)
        .header("authorization", auth)
        .header("content-length", len)
        .body(Full::new(body))?;
    let resp = c.request(req).await?;
    let status = resp.status().as_u16();
    let mut b = resp.into_body();
    let mut n = 0;
    while let Some(f) = b.frame().await {
        if let Ok(d) = f?.into_data() {
            n += d.len();
        }
    }
    Ok((status, n))
}

fn mibs(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64().max(1e-9)
}

pub async fn run(sizes_mib: &[usize], iterations: usize) -> anyhow::Result<()> {
    let base = start(true).await?;
    let enc = start(false).await?;
    let c: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    for s in [&base, &enc] {
        let (st, _) = send(&c, s.addr, "PUT", "/bench", Bytes::new()).await?;
        if st != 200 {
            bail!("creating the bench bucket answered {st}");
        }
    }
    println!("strongroom bench http — PUT and GET over loopback HTTP, one client, same build");
    println!(
        "{:>8} {:>9} {:>12} {:>12} {:>10} {:>10}",
        "size", "mode", "PUT MiB/s", "GET MiB/s", "PUT ratio", "GET ratio"
    );
    for &mib in sizes_mib {
        let size = mib * 1024 * 1024;
        let mut data = vec![0u8; size];
        strongroom_crypt::fill_random(&mut data).map_err(|e| anyhow::anyhow!("{e}"))?;
        let data = Bytes::from(data);
        let n = if mib >= 64 {
            iterations.clamp(3, 6)
        } else {
            iterations.max(3)
        };
        let mut t = [[Duration::ZERO; 2]; 2]; // [mode][put, get]
        for i in 0..=n {
            for (m, srv) in [&base, &enc].into_iter().enumerate() {
                let path = format!("/bench/o{mib}-{i}");
                let t0 = Instant::now();
                let (st, _) = send(&c, srv.addr, "PUT", &path, data.clone()).await?;
                let put = t0.elapsed();
                let t0 = Instant::now();
                let (gs, got) = send(&c, srv.addr, "GET", &path, Bytes::new()).await?;
                let get = t0.elapsed();
                if st != 200 || gs != 200 || got != size {
                    bail!("bench request failed: PUT {st}, GET {gs}, {got} of {size} bytes");
                }
                if i > 0 {
                    // the first round warms up
                    t[m][0] += put;
                    t[m][1] += get;
                }
            }
        }
        let total = size * n;
        let ratio = |m: usize, k: usize| t[m][k].as_secs_f64() / t[0][k].as_secs_f64().max(1e-9);
        for (m, name) in ["plain", "sse-s3"].iter().enumerate() {
            println!(
                "{:>6}Mi {:>9} {:>12.1} {:>12.1} {:>10.3} {:>10.3}",
                mib,
                name,
                mibs(total, t[m][0]),
                mibs(total, t[m][1]),
                ratio(m, 0),
                ratio(m, 1)
            );
        }
    }
    println!("ratio = time with SSE-S3 / time of the plaintext baseline (1.10 = 10 % overhead)");
    let _ = base.stop.send(true);
    let _ = enc.stop.send(true);
    Ok(())
}
