//! `strongroom bench limits`: this machine's physical limits, measured in
//! the same run as the figures they bound — fsync'd sequential write and
//! fsync latency of the disk under `--dir`, AES-256-GCM per core, loopback
//! TCP, one loopback stream fed through AES-256-GCM from the page cache
//! (what a single-stream GET of an encrypted object cannot do without),
//! and a bare hyper server answering the same 4 KiB body (the HTTP
//! framework's ceiling, driven by the load generator's own client).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::Method;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bench_load::Target;
use crate::bench_load_report::quantile_ms;

/// The limits, as printed and written with --json.
#[derive(Debug, Serialize, Deserialize)]
pub struct Limits {
    /// Sequential write of `write_bytes` then fdatasync, 10^6 bytes/s.
    pub fsync_write_mb_s: f64,
    pub write_bytes: u64,
    /// 4 KiB write + fdatasync, milliseconds.
    pub fsync_p50_ms: f64,
    pub fsync_p99_ms: f64,
    /// AES-256-GCM sealing on one core, 10^6 bytes/s.
    pub aes_gcm_mb_s_per_core: f64,
    /// One loopback TCP stream, 10^6 bytes/s.
    pub loopback_tcp_mb_s: f64,
    /// One loopback stream whose sender reads 256 KiB pieces of a file in
    /// the page cache and runs each through AES-256-GCM before sending,
    /// 10^6 bytes/s (0 in files written before it was measured).
    #[serde(default)]
    pub decrypting_stream_mb_s: f64,
    /// A bare hyper server's 4 KiB GETs a second (16 in flight, same
    /// client as the load generator, both in this process).
    pub bare_hyper_4k_get_per_s: f64,
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

fn fsync_write(dir: &std::path::Path, total: u64) -> anyhow::Result<f64> {
    let path = dir.join("strongroom-limits.tmp");
    let chunk = vec![0x5au8; 8 << 20];
    let t = Instant::now();
    let mut f = std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?;
    let mut left = total;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64))?;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    f.sync_data()?;
    let d = t.elapsed();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(mb_s(total, d))
}

fn fsync_latency(dir: &std::path::Path, n: usize) -> anyhow::Result<(f64, f64)> {
    let path = dir.join("strongroom-limits-fsync.tmp");
    let mut f = std::fs::File::create(&path)?;
    let block = [0xa5u8; 4096];
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    drop(f);
    std::fs::remove_file(&path)?;
    lat.sort_unstable();
    Ok((quantile_ms(&lat, 0.5), quantile_ms(&lat, 0.99)))
}

/// A fixed AES-256-GCM key, and sealing under it with the i-th nonce: the
/// cipher's cost, for the limits that include it.
struct Sealer(ring::aead::LessSafeKey);

impl Sealer {
    fn new() -> anyhow::Result<Sealer> {
        use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
        let key = UnboundKey::new(&AES_256_GCM, &[7u8; 32]).map_err(|_| anyhow::anyhow!("aes key"))?;
        Ok(Sealer(LessSafeKey::new(key)))
    }

    fn seal(&self, i: u64, buf: &mut [u8]) -> anyhow::Result<()> {
        use ring::aead::{Aad, Nonce};
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&i.to_le_bytes());
        let _tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), buf)
            .map_err(|_| anyhow::anyhow!("seal"))?;
        Ok(())
    }
}

fn aes_gcm_per_core() -> anyhow::Result<f64> {
    let key = Sealer::new()?;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let t = Instant::now();
    let mut i = 0u64;
    while t.elapsed() < Duration::from_millis(700) {
        key.seal(i, &mut buf)?;
        i += 1;
        done += buf.len() as u64;
    }
    Ok(mb_s(done, t.elapsed()))
}

/// A loopback listener that reads one connection to its end; the task
/// answers the bytes it read.
async fn sink() -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<std::io::Result<u64>>)> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut s, _) = l.accept().await?;
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let r = s.read(&mut buf).await?;
            if r == 0 {
                return Ok::<u64, std::io::Error>(n);
            }
            n += r as u64;
        }
    });
    Ok((addr, reader))
}

async fn loopback_tcp(total: u64) -> anyhow::Result<f64> {
    let (addr, reader) = sink().await?;
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let chunk = vec![1u8; 1 << 20];
    let t = Instant::now();
    let mut left = total;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64))?;
        s.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    s.shutdown().await?;
    let got = reader.await??;
    Ok(mb_s(got, t.elapsed()))
}

/// The single-stream GET's floor under SSE-S3: one task reads 256 KiB
/// pieces of a file the page cache holds, seals each with AES-256-GCM (the
/// cost of opening it) and writes it to one loopback stream.
async fn decrypting_stream(dir: &std::path::Path, total: u64) -> anyhow::Result<f64> {
    use std::os::unix::fs::FileExt;
    const FILE: u64 = 256 << 20;
    const PIECE: usize = 256 << 10;
    let path = dir.join("strongroom-limits-read.tmp");
    {
        let mut f = std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?;
        let chunk = vec![0x3cu8; 8 << 20];
        for _ in 0..FILE / chunk.len() as u64 {
            f.write_all(&chunk)?;
        }
    }
    let f = std::fs::File::open(&path)?;
    let mut buf = vec![0u8; PIECE];
    // in the page cache before the clock starts
    for at in (0..FILE).step_by(PIECE) {
        f.read_exact_at(&mut buf, at)?;
    }
    let key = Sealer::new()?;
    let (addr, reader) = sink().await?;
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let t = Instant::now();
    let mut sent = 0u64;
    let mut i = 0u64;
    while sent < total {
        f.read_exact_at(&mut buf, sent % FILE)?;
        key.seal(i, &mut buf)?;
        i += 1;
        s.write_all(&buf).await?;
        sent += PIECE as u64;
    }
    s.shutdown().await?;
    let got = reader.await??;
    let d = t.elapsed();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(mb_s(got, d))
}

/// A hyper server answering every request with the same 4 KiB body.
async fn bare_hyper(duration: Duration) -> anyhow::Result<f64> {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let body = Bytes::from(vec![b'x'; 4096]);
    let server = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let _ = s.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    let body = body.clone();
                    async move { Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(body))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    let target = Arc::new(Target::new(
        &format!("http://{addr}"),
        "us-east-1",
        None,
        None,
        false,
        16,
        1,
    )?);
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut hs = Vec::new();
    for _ in 0..16 {
        let (target, count, stop) = (target.clone(), count.clone(), stop.clone());
        hs.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(a) = target
                    .send(Method::GET, "/x", &[], &[], Bytes::new(), None, false)
                    .await
                    && a.status == 200
                {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let t = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let n = count.load(Ordering::Relaxed);
    let d = t.elapsed();
    for h in hs {
        let _ = h.await;
    }
    server.abort();
    Ok(n as f64 / d.as_secs_f64())
}

/// Measures and prints the limits (and writes them as JSON when asked).
pub async fn run(dir: &std::path::Path, write_bytes: u64, json: Option<&str>) -> anyhow::Result<()> {
    println!("strongroom bench limits — this machine, now (disk: {})", dir.display());
    let fsync_write_mb_s = fsync_write(dir, write_bytes)?;
    let (fsync_p50_ms, fsync_p99_ms) = fsync_latency(dir, 200)?;
    let aes = aes_gcm_per_core()?;
    let tcp = loopback_tcp(2 << 30).await?;
    let decrypting = decrypting_stream(dir, 2 << 30).await?;
    let hyper = bare_hyper(Duration::from_secs(3)).await?;
    let l = Limits {
        fsync_write_mb_s,
        write_bytes,
        fsync_p50_ms,
        fsync_p99_ms,
        aes_gcm_mb_s_per_core: aes,
        loopback_tcp_mb_s: tcp,
        decrypting_stream_mb_s: decrypting,
        bare_hyper_4k_get_per_s: hyper,
    };
    println!("{:<44} {:>12}", "limit", "value");
    println!(
        "{:<44} {:>9.0} MB/s",
        format!("sequential write + fdatasync ({} MiB)", write_bytes >> 20),
        l.fsync_write_mb_s
    );
    println!("{:<44} {:>9.2} ms", "4 KiB write + fdatasync, p50", l.fsync_p50_ms);
    println!("{:<44} {:>9.2} ms", "4 KiB write + fdatasync, p99", l.fsync_p99_ms);
    println!("{:<44} {:>9.0} MB/s", "AES-256-GCM, one core", l.aes_gcm_mb_s_per_core);
    println!("{:<44} {:>9.0} MB/s", "loopback TCP, one stream", l.loopback_tcp_mb_s);
    println!(
        "{:<44} {:>9.0} MB/s",
        "loopback stream via page cache + AES-GCM", l.decrypting_stream_mb_s
    );
    println!(
        "{:<44} {:>9.0} /s",
        "bare hyper 4 KiB GET, 16 in flight", l.bare_hyper_4k_get_per_s
    );
    if let Some(j) = json {
        let text = serde_json::to_string_pretty(&l)?;
        if j == "-" {
            println!("{text}");
        } else {
            std::fs::write(j, text + "\n").with_context(|| format!("writing {j}"))?;
        }
    }
    Ok(())
}
