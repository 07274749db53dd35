//! `strongroom bench`: performance measured, not claimed. Figures are
//! ratios against a baseline measured in the same run on the same build.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum, default_value = "encryption")]
    pub what: What,
    /// Object sizes in MiB.
    #[arg(long, value_delimiter = ',', default_value = "1,256")]
    pub sizes_mib: Vec<usize>,
    /// Objects written and read per size and mode (the 256 MiB size uses
    /// fewer: at least 3).
    #[arg(long, default_value_t = 40)]
    pub iterations: usize,
    /// Directory for the scratch store (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Bytes `limits` writes for the sequential-write figure.
    #[arg(long, default_value = "1GiB")]
    pub write_size: String,
    /// The load generator's settings (put, get, stat, delete, list, mixed,
    /// multipart).
    #[command(flatten)]
    pub load: crate::bench_load::LoadArgs,
}

#[derive(clap::ValueEnum, Clone, Debug)]
pub enum What {
    /// SSE-S3 sealing vs the plaintext data path (write + fsync, read).
    Encryption,
    /// PUT and GET over loopback HTTP: SSE-S3 vs a plaintext server of the
    /// same build.
    Http,
    /// Authorization cost: GETs through a 20-statement bucket policy and an
    /// IAM user's policies vs the owner on a bucket without a policy.
    Authz,
    /// Load generator against any S3 endpoint: PUTs (over --keys objects
    /// at random, or a fresh key each with --keys 0).
    Put,
    /// Load generator: GETs of a data set of --keys objects made first.
    Get,
    /// Load generator: HEADs of a data set of --keys objects.
    Stat,
    /// Load generator: DELETEs of a data set of --keys objects (stops when
    /// all are gone).
    Delete,
    /// Load generator: ListObjectsV2 pages (--list-max-keys) over a data set.
    List,
    /// Load generator: a mix of GET, stat, PUT and DELETE (--mix).
    Mixed,
    /// Load generator: whole multipart uploads (--part-size parts).
    Multipart,
    /// This machine's limits: fsync'd sequential write and fsync latency
    /// of the disk under --dir (default: the current directory),
    /// AES-256-GCM per core, loopback TCP, a bare hyper server's 4 KiB GETs.
    Limits,
}

fn mibs(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64().max(1e-9)
}

pub fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let load = |op, mixed| rt.block_on(crate::bench_load::run(op, mixed, &a.load));
    use crate::bench_load::Op;
    match a.what {
        What::Put => return load(Op::Put, false),
        What::Get => return load(Op::Get, false),
        What::Stat => return load(Op::Stat, false),
        What::Delete => return load(Op::Delete, false),
        What::List => return load(Op::List, false),
        What::Mixed => return load(Op::Get, true),
        What::Multipart => return load(Op::Multipart, false),
        What::Limits => {
            let dir = a.dir.clone().unwrap_or_else(|| ".".into());
            let size = crate::bench_load::parse_size(&a.write_size)?;
            return rt.block_on(crate::bench_limits::run(&dir, size, a.load.json.as_deref()));
        }
        What::Encryption | What::Http | What::Authz => {}
    }
    if matches!(a.what, What::Http) {
        return rt.block_on(crate::bench_http::run(&a.sizes_mib, a.iterations));
    }
    if matches!(a.what, What::Authz) {
        return rt.block_on(crate::bench_authz::run(a.iterations * 50));
    }
    rt.block_on(async {
        let store = strongroom_store::Store::open(&dir).context("opening the scratch store")?;
        println!(
            "strongroom bench encryption — data path in-process, store in {}",
            dir.display()
        );
        println!(
            "{:>8} {:>6} {:>12} {:>12} {:>12} {:>12}",
            "size", "mode", "write MiB/s", "read MiB/s", "write ratio", "read ratio"
        );
        for &mib in &a.sizes_mib {
            let size = mib * 1024 * 1024;
            let mut data = vec![0u8; size];
            strongroom_crypt::fill_random(&mut data).map_err(|e| anyhow::anyhow!("{e}"))?;
            let data = Bytes::from(data);
            let n = if mib >= 64 {
                a.iterations.clamp(3, 6)
            } else {
                a.iterations.max(3)
            };
            let (mut pw, mut pr, mut ew, mut er) = (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
            // one warm-up each, then alternate so drift hits both alike
            strongroom_s3::bench::write_read(&store, &data, false).await?;
            strongroom_s3::bench::write_read(&store, &data, true).await?;
            for _ in 0..n {
                let (w, r) = strongroom_s3::bench::write_read(&store, &data, false).await?;
                pw += w;
                pr += r;
                let (w, r) = strongroom_s3::bench::write_read(&store, &data, true).await?;
                ew += w;
                er += r;
            }
            let total = size * n;
            println!(
                "{:>6}Mi {:>6} {:>12.1} {:>12.1} {:>12} {:>12}",
                mib,
                "plain",
                mibs(total, pw),
                mibs(total, pr),
                "1.00",
                "1.00"
            );
            println!(
                "{:>6}Mi {:>6} {:>12.1} {:>12.1} {:>12.2} {:>12.2}",
                mib,
                "sse-s3",
                mibs(total, ew),
                mibs(total, er),
                ew.as_secs_f64() / pw.as_secs_f64().max(1e-9),
                er.as_secs_f64() / pr.as_secs_f64().max(1e-9)
            );
        }
        println!("ratio = time with SSE-S3 / time of the plaintext baseline (1.10 = 10 % overhead)");
        Ok(())
    })
}
