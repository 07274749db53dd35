//! Prometheus metrics: requests by operation and status, bytes in and out,
//! latency histograms by operation, requests in flight. Rendered in the
//! text exposition format on the admin listener.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    in_flight: AtomicI64,
}

impl Metrics {
    pub(crate) fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn finish(&self, op: &str, status: u16, secs: f64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((op.to_owned(), status)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(op.to_owned()).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    pub(crate) fn add_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP strongroom_requests_total Requests by operation and HTTP status.\n# TYPE strongroom_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((op, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "strongroom_requests_total{{operation=\"{op}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP strongroom_request_duration_seconds Request latency by operation.\n# TYPE strongroom_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (op, h) in m.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "strongroom_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "strongroom_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "strongroom_request_duration_seconds_sum{{operation=\"{op}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "strongroom_request_duration_seconds_count{{operation=\"{op}\"}} {}",
                    h.count
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP strongroom_bytes_received_total Request body bytes received.\n# TYPE strongroom_bytes_received_total counter\nstrongroom_bytes_received_total {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP strongroom_bytes_sent_total Response body bytes sent.\n# TYPE strongroom_bytes_sent_total counter\nstrongroom_bytes_sent_total {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP strongroom_requests_in_flight Requests being served.\n# TYPE strongroom_requests_in_flight gauge\nstrongroom_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        out
    }
}
