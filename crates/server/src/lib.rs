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
mod kms_route;
mod metrics;
mod query_api;
mod timed;
pub mod tls;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;

pub use front::{DOCUMENT_MAX, FrontDoor};
pub use host::BaseDomain;
pub use metrics::{BucketSeries, Metrics};
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
    let graceful = Arc::new(GracefulShutdown::new());
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
            graceful.clone(),
            shutdown.clone(),
            website.clone(),
        ));
    }
    if let Some((l, acc)) = listeners.website_https {
        tasks.spawn(accept_loop(
            l,
            Some(acc),
            front.clone(),
            graceful.clone(),
            shutdown.clone(),
            website,
        ));
    }
    if let Some(l) = listeners.http {
        tasks.spawn(accept_loop(
            l,
            None,
            front.clone(),
            graceful.clone(),
            shutdown.clone(),
            service.clone(),
        ));
    }
    if let Some((l, acc)) = listeners.https {
        tasks.spawn(accept_loop(
            l,
            Some(acc),
            front.clone(),
            graceful.clone(),
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
            graceful.clone(),
            shutdown.clone(),
            admin,
        ));
    }
    let _ = shutdown.wait_for(|s| *s).await;
    while tasks.join_next().await.is_some() {}
    tracing::info!(connections = graceful.count(), "draining in-flight requests");
    // the accept loops are gone, so this is the last handle; connections
    // hold only watchers
    match Arc::try_unwrap(graceful) {
        Ok(g) => {
            if tokio::time::timeout(DRAIN_TIMEOUT, g.shutdown()).await.is_err() {
                tracing::warn!("some requests did not finish within the drain timeout");
            }
        }
        Err(g) => {
            let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
            while g.count() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
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
    graceful: Arc<GracefulShutdown>,
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
        let graceful = graceful.watcher();
        let tls = tls.clone();
        let role = gate.role;
        tokio::spawn(async move {
            let _admitted = admitted;
            match tls {
                None => {
                    let info = front::conn_plain(peer);
                    serve_conn(stream, info, front, graceful, role).await;
                }
                Some(acc) => match tokio::time::timeout(Duration::from_secs(10), acc.accept(stream)).await {
                    Ok(Ok(s)) => {
                        let info = front::conn_tls(peer, s.get_ref().1);
                        serve_conn(s, info, front, graceful, role).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
}

async fn serve_conn<I>(io: I, info: ConnInfo, front: Arc<FrontDoor>, graceful: Watcher, role: Role)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = watch::Activity::new();
    let io = TokioIo::new(watch::Watched::new(io, activity.clone()));
    let on_request = activity.clone();
    let svc = hyper::service::service_fn(move |req| {
        let front = front.clone();
        let info = info.clone();
        let in_flight = on_request.request();
        async move {
            let _in_flight = in_flight;
            Ok::<_, std::convert::Infallible>(match role {
                Role::Admin => admin::handle(&front, req),
                Role::Service => front.handle(req, info).await,
                Role::Website => front.handle_website(req, info).await,
            })
        }
    });
    let mut builder = ConnBuilder::new(TokioExecutor::new());
    // hyper's own limit on header lines (100) stays: raising it costs two
    // allocations of that many entries on every request (measured ~5 % of
    // a 4 KiB GET); past it hyper answers 431 itself. Sizes are the front
    // door's, with AWS's error (8 KiB).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(watch::HEADER_READ);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_H2_HEADER_LIST);
    let conn = builder.serve_connection(io, svc);
    let conn = graceful.watch(conn.into_owned());
    tokio::select! {
        r = conn => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        () = activity.idle(watch::CONN_IDLE) => {
            tracing::debug!("idle connection closed");
        }
    }
}

/// The HTTP/2 header list hyper accepts (the front door's 8 KiB applies).
const MAX_H2_HEADER_LIST: u32 = 64 * 1024;

/// Binds a TCP listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
