//! The front door: listeners (HTTP, HTTPS via rustls, admin), the request
//! envelope every service shares (request ids, connection facts, metrics,
//! AWS error bodies with RequestId and Resource), and graceful shutdown.
//!
//! It never decides access and never interprets S3 semantics: requests go
//! to the s3s service (which authenticates and calls the access hook) and
//! come back here to be labelled and counted.
#![forbid(unsafe_code)]

mod admin;
mod control_route;
mod front;
mod host;
mod http2;
mod kms_route;
mod metrics;
mod query_api;
mod service;
mod timed;
pub mod tls;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch::Receiver;

pub use front::{DOCUMENT_MAX, FrontDoor};
pub use host::BaseDomain;
pub use metrics::{BucketSeries, Metrics};
pub use service::s3_service;
pub use strongroom_iam::ConnInfo;
pub use watch::Limits;

/// How long in-flight requests get to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Bound listeners, ready to serve.
pub struct Listeners {
    pub http: Option<TcpListener>,
    pub https: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    pub admin: Option<TcpListener>,
    /// The static website endpoint, plain and over TLS.
    pub website: Option<TcpListener>,
    pub website_https: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    pub limits: Limits,
}

/// Serves until `shutdown` flips to true, then drains.
pub async fn serve(
    listeners: Listeners,
    front: Arc<FrontDoor>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    // every connection holds a receiver: the count of receivers is the
    // count of open connections, and `closed` waits for the last
    let (drain, draining) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    // HTTP and HTTPS share one count per address; the admin port has its
    // own, so a flood on the service ports cannot lock out /health
    let service = Gate {
        per_ip: Arc::default(),
        max: listeners.limits.per_ip,
        role: Role::Service,
    };
    let website = Gate {
        role: Role::Website,
        ..service.clone()
    };
    if let Some(l) = listeners.website {
        tasks.spawn(accept_loop(
            l,
            None,
            front.clone(),
            draining.clone(),
            shutdown.clone(),
            website.clone(),
        ));
    }
    if let Some((l, acc)) = listeners.website_https {
        tasks.spawn(accept_loop(
            l,
            Some(acc),
            front.clone(),
            draining.clone(),
            shutdown.clone(),
            website,
        ));
    }
    if let Some(l) = listeners.http {
        tasks.spawn(accept_loop(
            l,
            None,
            front.clone(),
            draining.clone(),
            shutdown.clone(),
            service.clone(),
        ));
    }
    if let Some((l, acc)) = listeners.https {
        tasks.spawn(accept_loop(
            l,
            Some(acc),
            front.clone(),
            draining.clone(),
            shutdown.clone(),
            service.clone(),
        ));
    }
    if let Some(l) = listeners.admin {
        let admin = Gate {
            per_ip: Arc::default(),
            max: listeners.limits.per_ip,
            role: Role::Admin,
        };
        tasks.spawn(accept_loop(
            l,
            None,
            front.clone(),
            draining.clone(),
            shutdown.clone(),
            admin,
        ));
    }
    drop(draining);
    let _ = shutdown.wait_for(|s| *s).await;
    while tasks.join_next().await.is_some() {}
    // the accept loops are gone, so only connections hold receivers
    tracing::info!(connections = drain.receiver_count(), "draining in-flight requests");
    let _ = drain.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, drain.closed()).await.is_err() {
        tracing::warn!("some requests did not finish within the drain timeout");
    }
    Ok(())
}

/// Who a listener admits, and what it serves.
#[derive(Clone)]
struct Gate {
    per_ip: Arc<watch::PerIp>,
    max: usize,
    role: Role,
}

/// What a listener serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// S3 and the control planes.
    Service,
    /// `/health` and `/metrics`.
    Admin,
    /// The static website endpoint.
    Website,
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    front: Arc<FrontDoor>,
    draining: Receiver<bool>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    gate: Gate,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(admitted) = watch::PerIp::admit(&gate.per_ip, peer.ip(), gate.max) else {
            tracing::debug!(%peer, "connection refused: too many open connections from this address");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let front = front.clone();
        let draining = draining.clone();
        let tls = tls.clone();
        let role = gate.role;
        tokio::spawn(async move {
            let _admitted = admitted;
            let mut stop = draining.clone();
            // a connection that has not begun a request yet does not hold
            // up a drain
            let opening = async {
                match tls {
                    None => {
                        let info = front::conn_plain(peer);
                        let (h2, io) = sniff_h2(stream).await?;
                        Some((info, h2, Io::Plain(io)))
                    }
                    Some(acc) => match tokio::time::timeout(Duration::from_secs(10), acc.accept(stream)).await {
                        Ok(Ok(s)) => {
                            let info = front::conn_tls(peer, s.get_ref().1);
                            let alpn_h2 = s.get_ref().1.alpn_protocol().map(|p| p == b"h2");
                            match alpn_h2 {
                                Some(h2) => Some((
                                    info,
                                    h2,
                                    Io::Tls(Box::new(Rewind {
                                        prefix: Vec::new(),
                                        at: 0,
                                        inner: s,
                                    })),
                                )),
                                // no ALPN: the first bytes say
                                None => {
                                    let (h2, io) = sniff_h2(s).await?;
                                    Some((info, h2, Io::Tls(Box::new(io))))
                                }
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            None
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            None
                        }
                    },
                }
            };
            let opened = tokio::select! {
                o = opening => o,
                _ = stop.wait_for(|d| *d) => None,
            };
            if let Some((info, h2, io)) = opened {
                match io {
                    Io::Plain(io) => serve_conn(io, h2, info, front, draining, role).await,
                    Io::Tls(io) => serve_conn(*io, h2, info, front, draining, role).await,
                }
            }
        });
    }
}

/// A connection after its protocol was chosen.
enum Io {
    Plain(Rewind<TcpStream>),
    Tls(Box<Rewind<tokio_rustls::server::TlsStream<TcpStream>>>),
}

/// Reads a connection's first bytes, up to the length of the HTTP/2
/// preface, and says whether they are it (prior knowledge: h2c, or TLS
/// without ALPN); the bytes are replayed to whichever protocol serves the
/// connection. None when the client sends nothing for
/// [`watch::CONN_IDLE`] or closes first. Reads wait for bytes; nothing
/// polls.
async fn sniff_h2<I>(mut io: I) -> Option<(bool, Rewind<I>)>
where
    I: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let look = async {
        let mut buf = Vec::with_capacity(http2::PREFACE.len());
        let mut chunk = [0u8; 24];
        loop {
            let want = http2::PREFACE.len() - buf.len();
            let n = io.read(&mut chunk[..want]).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf[..] != http2::PREFACE[..buf.len()] {
                return Some((false, buf));
            }
            if buf.len() == http2::PREFACE.len() {
                return Some((true, buf));
            }
        }
    };
    let (h2, prefix) = tokio::time::timeout(watch::CONN_IDLE, look).await.ok().flatten()?;
    Some((
        h2,
        Rewind {
            prefix,
            at: 0,
            inner: io,
        },
    ))
}

/// A connection whose first bytes were read to choose the protocol, and
/// are read again.
struct Rewind<I> {
    prefix: Vec<u8>,
    at: usize,
    inner: I,
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Rewind<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn serve_conn<I>(io: I, h2: bool, info: ConnInfo, front: Arc<FrontDoor>, mut draining: Receiver<bool>, role: Role)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = watch::Activity::new();
    let io = watch::Watched::new(io, activity.clone());
    let on_request = activity.clone();
    let handle = move |req: http::Request<timed::RequestBody>| {
        let front = front.clone();
        let info = info.clone();
        let in_flight = on_request.request();
        async move {
            let _in_flight = in_flight;
            match role {
                Role::Admin => admin::handle(&front, req),
                Role::Service => front.handle(req, info).await,
                Role::Website => front.handle_website(req, info).await,
            }
        }
    };
    if h2 {
        let conn = http2::serve(
            io,
            move |req: http::Request<http2::H2Body>| handle(req.map(timed::RequestBody::H2)),
            draining,
        );
        tokio::select! {
            r = conn => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "HTTP/2 connection ended with an error");
                }
            }
            () = activity.idle(watch::CONN_IDLE) => {
                tracing::debug!("idle connection closed");
            }
        }
        return;
    }
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let answer = handle(req.map(timed::RequestBody::H1));
        async move { Ok::<_, std::convert::Infallible>(answer.await) }
    });
    // hyper's own limit on header lines (100) stays: raising it costs two
    // allocations of that many entries on every request (measured ~5 % of
    // a 4 KiB GET); past it hyper answers 431 itself. Sizes are the front
    // door's, with AWS's error (8 KiB).
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(watch::HEADER_READ)
        .serve_connection(TokioIo::new(io), svc);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = draining.wait_for(|d| *d), if !closing => {
                // finish the request in flight, then close
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.idle(watch::CONN_IDLE) => {
                tracing::debug!("idle connection closed");
                return;
            }
        }
    }
}

/// Binds a TCP listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
