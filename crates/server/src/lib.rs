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
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use front::FrontDoor;
pub use host::BaseDomain;
pub use metrics::Metrics;
pub use strongroom_iam::ConnInfo;

/// How long in-flight requests get to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Bound listeners, ready to serve.
pub struct Listeners {
    pub http: Option<TcpListener>,
    pub https: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    pub admin: Option<TcpListener>,
}

/// Serves until `shutdown` flips to true, then drains.
pub async fn serve(
    listeners: Listeners,
    front: Arc<FrontDoor>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let graceful = Arc::new(GracefulShutdown::new());
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(l) = listeners.http {
        tasks.spawn(accept_loop(
            l,
            None,
            front.clone(),
            graceful.clone(),
            shutdown.clone(),
            false,
        ));
    }
    if let Some((l, acc)) = listeners.https {
        tasks.spawn(accept_loop(
            l,
            Some(acc),
            front.clone(),
            graceful.clone(),
            shutdown.clone(),
            false,
        ));
    }
    if let Some(l) = listeners.admin {
        tasks.spawn(accept_loop(
            l,
            None,
            front.clone(),
            graceful.clone(),
            shutdown.clone(),
            true,
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

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    front: Arc<FrontDoor>,
    graceful: Arc<GracefulShutdown>,
    mut shutdown: watch::Receiver<bool>,
    admin: bool,
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
        let _ = stream.set_nodelay(true);
        let front = front.clone();
        let graceful = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    let info = front::conn_plain(peer);
                    serve_conn(TokioIo::new(stream), info, front, graceful, admin).await;
                }
                Some(acc) => match tokio::time::timeout(Duration::from_secs(10), acc.accept(stream)).await {
                    Ok(Ok(s)) => {
                        let info = front::conn_tls(peer, s.get_ref().1);
                        serve_conn(TokioIo::new(s), info, front, graceful, admin).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
}

async fn serve_conn<I>(io: TokioIo<I>, info: ConnInfo, front: Arc<FrontDoor>, graceful: Watcher, admin: bool)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let front = front.clone();
        let info = info.clone();
        async move {
            if admin {
                Ok::<_, std::convert::Infallible>(admin::handle(&front, req))
            } else {
                Ok(front.handle(req, info).await)
            }
        }
    });
    let builder = ConnBuilder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, svc);
    let conn = graceful.watch(conn.into_owned());
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Binds a TCP listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
