//! What a load run measured: per operation its count, throughput, latency
//! percentiles and errors by code, with the client's own CPU use; printed
//! as a table, written as JSON, compared with an earlier run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bench_load::SseMode;

/// One operation's results in one worker (merged across workers).
#[derive(Default)]
pub struct Tally {
    /// Latencies in microseconds, successes and failures alike.
    lat: Vec<u32>,
    ok: u64,
    bytes: u64,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    pub fn ok(&mut self, us: u128, bytes: u64) {
        self.lat.push(u32::try_from(us).unwrap_or(u32::MAX));
        self.ok += 1;
        self.bytes += bytes;
    }

    pub fn err(&mut self, us: u128, code: String) {
        self.lat.push(u32::try_from(us).unwrap_or(u32::MAX));
        *self.errors.entry(code).or_default() += 1;
    }

    pub fn merge(&mut self, o: Tally) {
        self.lat.extend(o.lat);
        self.ok += o.ok;
        self.bytes += o.bytes;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

/// One operation's line of the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpReport {
    pub op: String,
    /// Successful operations.
    pub ok: u64,
    pub ops_per_s: f64,
    /// Object bytes moved by successful operations, 10^6 bytes a second.
    pub mb_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Failed operations by AWS error code (or transport error).
    pub errors: BTreeMap<String, u64>,
}

/// The `q` quantile (0..=1) of sorted microseconds, in milliseconds.
pub fn quantile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

impl OpReport {
    pub fn of(op: &str, mut t: Tally, wall: Duration) -> OpReport {
        t.lat.sort_unstable();
        let secs = wall.as_secs_f64().max(1e-9);
        OpReport {
            op: op.to_owned(),
            ok: t.ok,
            ops_per_s: t.ok as f64 / secs,
            mb_per_s: t.bytes as f64 / 1e6 / secs,
            p50_ms: quantile_ms(&t.lat, 0.50),
            p90_ms: quantile_ms(&t.lat, 0.90),
            p99_ms: quantile_ms(&t.lat, 0.99),
            p999_ms: quantile_ms(&t.lat, 0.999),
            max_ms: quantile_ms(&t.lat, 1.0),
            errors: t.errors,
        }
    }
}

/// A whole run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub workload: String,
    pub endpoint: String,
    pub http: String,
    pub concurrency: usize,
    pub size: String,
    pub sse: SseMode,
    pub seconds: f64,
    /// The client's CPU time over the wall time (1.0 = one core busy).
    pub client_cpu_cores: f64,
    pub ops: Vec<OpReport>,
}

impl Report {
    pub fn print(&self) {
        println!(
            "strongroom bench {} — {} over {}, {} in flight, size {}, SSE {:?}, {:.1} s",
            self.workload, self.endpoint, self.http, self.concurrency, self.size, self.sse, self.seconds
        );
        println!(
            "{:<10} {:>9} {:>11} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
            "op", "ok", "ops/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "p99.9", "max ms", "errors"
        );
        for o in &self.ops {
            println!(
                "{:<10} {:>9} {:>11.1} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}",
                o.op,
                o.ok,
                o.ops_per_s,
                o.mb_per_s,
                o.p50_ms,
                o.p90_ms,
                o.p99_ms,
                o.p999_ms,
                o.max_ms,
                o.errors.values().sum::<u64>()
            );
        }
        for o in &self.ops {
            for (code, n) in &o.errors {
                println!("  {} error {code}: {n}", o.op);
            }
        }
        println!(
            "client CPU: {:.0} % of one core{}",
            self.client_cpu_cores * 100.0,
            if self.client_cpu_cores > 0.5 {
                " — above half a core: the client may limit these figures (run it on another machine, or compare with wrk)"
            } else {
                ""
            }
        );
    }

    /// Each operation's figure as a fraction of the limits that bound it:
    /// writes of the disk's fsync'd sequential write, large reads of
    /// loopback TCP and of a loopback stream fed through AES-256-GCM from
    /// the page cache, small GETs of the bare hyper server.
    pub fn print_limits(&self, l: &crate::bench_limits::Limits) {
        println!("as a fraction of this machine's limits:");
        for o in &self.ops {
            let bounds: &[(&str, f64, f64)] = match o.op.as_str() {
                "PUT" | "MULTIPART" => &[("fsync'd sequential write", o.mb_per_s, l.fsync_write_mb_s)],
                "GET" if o.mb_per_s > 100.0 => &[
                    ("loopback TCP", o.mb_per_s, l.loopback_tcp_mb_s),
                    (
                        "loopback stream via page cache + AES-GCM",
                        o.mb_per_s,
                        l.decrypting_stream_mb_s,
                    ),
                ],
                "GET" | "STAT" => &[("bare hyper 4 KiB GET ops/s", o.ops_per_s, l.bare_hyper_4k_get_per_s)],
                _ => continue,
            };
            for (what, ours, limit) in bounds {
                if *limit > 0.0 {
                    println!("  {:<10} {:>6.1} % of {what}", o.op, 100.0 * ours / limit);
                }
            }
        }
    }

    /// Ratios of this run against `before`, operation by operation.
    pub fn print_compare(&self, before: &Report) {
        println!(
            "compared with the earlier run ({} {}, {}): this / earlier",
            before.workload, before.size, before.endpoint
        );
        println!(
            "{:<10} {:>10} {:>10} {:>10} {:>10}",
            "op", "ops/s", "MB/s", "p50", "p99"
        );
        let r = |a: f64, b: f64| if b > 0.0 { format!("{:.2}x", a / b) } else { "-".into() };
        for o in &self.ops {
            if let Some(b) = before.ops.iter().find(|b| b.op == o.op) {
                println!(
                    "{:<10} {:>10} {:>10} {:>10} {:>10}",
                    o.op,
                    r(o.ops_per_s, b.ops_per_s),
                    r(o.mb_per_s, b.mb_per_s),
                    r(o.p50_ms, b.p50_ms),
                    r(o.p99_ms, b.p99_ms)
                );
            }
        }
    }
}

/// CPU seconds this process has used (user + system, all threads).
pub fn client_cpu_seconds() -> f64 {
    // std offers no getrusage: /proc/self/stat fields 14 and 15 are
    // utime and stime in clock ticks
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // the command name (field 2) may hold spaces: count from its ')'
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // fields after ')' start at field 3: utime is field 14, stime 15
    (ticks(11) + ticks(12)) as f64 / clock_ticks()
}

/// Clock ticks a second (USER_HZ): 100 on Linux, as the kernel's ABI fixes
/// it for /proc.
fn clock_ticks() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.5), 500.0);
        assert_eq!(quantile_ms(&v, 0.99), 990.0);
        assert_eq!(quantile_ms(&v, 0.999), 999.0);
        assert_eq!(quantile_ms(&v, 1.0), 1000.0);
        assert_eq!(quantile_ms(&[7000], 0.5), 7.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn client_cpu_is_read_and_grows_with_work() {
        let a = client_cpu_seconds();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let b = client_cpu_seconds();
        assert!(b - a >= 0.1, "{a} -> {b}");
    }
}
