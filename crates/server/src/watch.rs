//! Connection limits: what keeps idle, slow and numerous connections from
//! holding the server. Each connection's IO is wrapped so its last read or
//! write is known; a connection that carries no request and has moved no
//! byte for [`CONN_IDLE`] is closed (this covers a client that connects
//! and never sends a byte, which no HTTP-level timeout sees: HTTP-version
//! detection waits for the first bytes). Header sections must arrive
//! within hyper's header-read timeout, bodies keep moving
//! ([`crate::timed`]), and one source address holds at most
//! [`Limits::per_ip`] connections at a time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// How long a connection with no request in flight may move no byte.
pub const CONN_IDLE: Duration = Duration::from_secs(30);
/// How long a request's header section may take to arrive.
pub const HEADER_READ: Duration = Duration::from_secs(20);

/// Connection limits of a server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections one source address may hold open at once.
    pub per_ip: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { per_ip: 1024 }
    }
}

/// Open connections per source address.
#[derive(Default)]
pub(crate) struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; leaving frees its place.
pub(crate) struct Admitted {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// A place for a connection from `ip`, or None when it holds `max`.
    /// A poisoned table admits nobody (fails closed).
    pub(crate) fn admit(table: &Arc<PerIp>, ip: IpAddr, max: usize) -> Option<Admitted> {
        let mut open = table.open.lock().ok()?;
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Admitted {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut open) = self.table.open.lock()
            && let Some(n) = open.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What a connection's watchdog reads: when bytes last moved, and how
/// many requests are being served.
pub(crate) struct Activity {
    start: Instant,
    /// Milliseconds since `start` of the last read or write.
    last_ms: AtomicU64,
    pub(crate) in_flight: AtomicUsize,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    /// Resolves once the connection has been idle for `limit` with no
    /// request in flight.
    pub(crate) async fn idle(&self, limit: Duration) {
        loop {
            let idle = self.idle_for();
            if idle >= limit && self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            // a busy connection is looked at again an eighth of the limit later
            let wait = limit.saturating_sub(idle).max(limit / 8);
            tokio::time::sleep(wait).await;
        }
    }

    /// Counts a request as in flight until the guard drops.
    pub(crate) fn request(self: &Arc<Activity>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }
}

pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's IO, noting every byte that moves.
pub(crate) struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I> Watched<I> {
    pub(crate) fn new(io: I, activity: Arc<Activity>) -> Watched<I> {
        Watched { io, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_holds_at_most_its_share_and_leaving_frees_a_place() {
        let t = Arc::new(PerIp::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap_or(IpAddr::from([127, 0, 0, 2]));
        let b: IpAddr = IpAddr::from([127, 0, 0, 1]);
        let first = PerIp::admit(&t, a, 2);
        let second = PerIp::admit(&t, a, 2);
        assert!(first.is_some() && second.is_some());
        assert!(PerIp::admit(&t, a, 2).is_none(), "a third connection from one address");
        assert!(PerIp::admit(&t, b, 2).is_some(), "another address is not held back");
        drop(first);
        assert!(PerIp::admit(&t, a, 2).is_some(), "a freed place is given again");
        drop(second);
    }

    #[tokio::test]
    async fn idle_waits_for_no_request_in_flight_and_no_bytes() {
        let limit = Duration::from_millis(200);
        let a = Activity::new();
        let busy = a.request();
        let idle = tokio::time::timeout(limit * 4, a.idle(limit));
        assert!(idle.await.is_err(), "a connection serving a request is never idle");
        drop(busy);
        let t0 = Instant::now();
        a.idle(limit).await;
        assert!(t0.elapsed() >= limit, "the request's end counts as activity");
    }
}
