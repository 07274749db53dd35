//! HTTP/2 connections, served with the `h2` crate directly rather than
//! through hyper: hyper's HTTP/2 server never answers
//! `Expect: 100-continue` (hyperium/hyper#2743), and a client that asks for
//! it then waits its own timeout before sending each body. Go's default
//! (rclone, the AWS SDK for Go) is one second per request, so a multipart
//! upload over HTTP/2 ran ~8x slower than over HTTP/1.1
//! (`scripts/h2_ratio.sh`). Here, as hyper does for HTTP/1.1, `100
//! Continue` goes out when the handler first reads the body, so a request
//! refused on its headers never makes the client send the body.
//!
//! The rest is what hyper's HTTP/2 server did: the same settings, a `Date`
//! header, connection-specific headers stripped from responses,
//! `content-length` from an exact body size, flow control released as the
//! body is read, and a stream reset by the client dropping its handler.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

/// The header list a client may send (the front door's 8 KiB applies).
const MAX_HEADER_LIST: u32 = 64 * 1024;
/// Flow-control windows: what a client may send before the server reads it.
const STREAM_WINDOW: u32 = 1024 * 1024;
const CONN_WINDOW: u32 = 1024 * 1024;
/// Streams open at once on one connection.
const MAX_STREAMS: u32 = 200;
/// Response bytes queued per stream beyond the client's window.
const MAX_SEND_BUFFER: usize = 400 * 1024;
/// Streams a client may make the server reset before the connection goes.
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// The HTTP/2 preface a client without TLS opens with (prior knowledge).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A request body read from an HTTP/2 stream.
pub(crate) struct H2Body {
    recv: RecvStream,
    /// Fired when the handler first waits for the body: the stream's task
    /// answers `100 Continue`.
    wants_body: Option<oneshot::Sender<()>>,
    /// Bytes the request's `content-length` says are still to come.
    remaining: Option<u64>,
    data_done: bool,
}

impl H2Body {
    /// Never answer `100 Continue` for this body (it is read only to be
    /// discarded).
    pub(crate) fn disarm(&mut self) {
        self.wants_body = None;
    }
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        if !this.data_done {
            match this.recv.poll_data(cx) {
                Poll::Pending => {
                    // the handler waits for a body the client holds back
                    // until it is asked for (a stream already reset or
                    // ended never gets here)
                    if let Some(tx) = this.wants_body.take() {
                        let _ = tx.send(());
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(data))) => {
                    this.wants_body = None;
                    // the client may send as much again once this is read
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    if let Some(r) = this.remaining.as_mut() {
                        *r = r.saturating_sub(data.len() as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.wants_body = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.wants_body = None;
                    this.data_done = true;
                }
            }
        }
        match this.recv.poll_trailers(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(t))) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.recv.is_end_stream() {
            // HEADERS with END_STREAM: no body at all (hyper's Incoming::empty)
            return SizeHint::with_exact(0);
        }
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// Serves one HTTP/2 connection until the client closes it, an error ends
/// it, or `drain` turns true (then in-flight streams finish and the
/// connection closes with GOAWAY).
pub(crate) async fn serve<I, H, F>(
    io: I,
    handler: H,
    mut drain: tokio::sync::watch::Receiver<bool>,
) -> Result<(), h2::Error>
where
    I: AsyncRead + AsyncWrite + Unpin,
    H: Fn(Request<H2Body>) -> F,
    F: Future<Output = Response<s3s::Body>> + Send + 'static,
{
    let mut conn = h2::server::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .handshake::<_, Bytes>(io)
        .await?;
    let mut draining = false;
    loop {
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((req, respond))) => {
                    tokio::spawn(stream(req, respond, &handler));
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            _ = drain.wait_for(|d| *d), if !draining => {
                draining = true;
                conn.graceful_shutdown();
            }
        }
    }
}

/// One request: runs the handler (answering `100 Continue` when it first
/// reads the body) and sends its response. Returns a future that owns all
/// it needs, so it can be spawned.
fn stream<H, F>(
    req: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    handler: &H,
) -> impl Future<Output = ()> + Send + 'static
where
    H: Fn(Request<H2Body>) -> F,
    F: Future<Output = Response<s3s::Body>> + Send + 'static,
{
    let (parts, recv) = req.into_parts();
    let expects = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (wants_body, mut body_wanted) = if expects && !recv.is_end_stream() {
        let (tx, rx) = oneshot::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let remaining = content_length(&parts.headers);
    let body = H2Body {
        recv,
        wants_body,
        remaining,
        data_done: false,
    };
    let handling = handler(Request::from_parts(parts, body));
    async move {
        let mut handling = std::pin::pin!(handling);
        let resp = poll_fn(|cx| {
            if let Poll::Ready(resp) = handling.as_mut().poll(cx) {
                return Poll::Ready(Some(resp));
            }
            // a client that resets the stream cancels the request
            if respond.poll_reset(cx).is_ready() {
                return Poll::Ready(None);
            }
            if let Some(rx) = body_wanted.as_mut()
                && let Poll::Ready(wanted) = Pin::new(rx).poll(cx)
            {
                body_wanted = None;
                if wanted.is_ok() {
                    let mut cont = Response::new(());
                    *cont.status_mut() = StatusCode::CONTINUE;
                    if respond.send_informational(cont).is_err() {
                        respond.send_reset(Reason::INTERNAL_ERROR);
                        return Poll::Ready(None);
                    }
                }
            }
            Poll::Pending
        })
        .await;
        let Some(resp) = resp else { return };
        let (mut head, body) = resp.into_parts();
        strip_connection_headers(&mut head.headers);
        if !head.headers.contains_key(header::DATE)
            && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now()))
        {
            head.headers.insert(header::DATE, v);
        }
        let eos = body.is_end_stream();
        if !eos
            && let Some(n) = body.size_hint().exact()
            && !head.headers.contains_key(header::CONTENT_LENGTH)
        {
            head.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        let send = match respond.send_response(Response::from_parts(head, ()), eos) {
            Ok(send) => send,
            Err(e) => {
                tracing::debug!(error = %e, "sending the response head failed");
                respond.send_reset(Reason::INTERNAL_ERROR);
                return;
            }
        };
        if !eos {
            pipe(body, send).await;
        }
    }
}

/// Sends a response body, as the client's window allows.
async fn pipe(body: s3s::Body, mut send: SendStream<Bytes>) {
    let mut body = std::pin::pin!(body);
    loop {
        let frame = poll_fn(|cx| {
            if let Poll::Ready(frame) = body.as_mut().poll_frame(cx) {
                return Poll::Ready(Some(frame));
            }
            if send.poll_reset(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        let Some(frame) = frame else { return };
        match frame {
            None => {
                if send.send_data(Bytes::new(), true).is_err() {
                    send.send_reset(Reason::INTERNAL_ERROR);
                }
                return;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "response body failed; resetting the stream");
                send.send_reset(Reason::INTERNAL_ERROR);
                return;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let eos = body.is_end_stream();
                    if !data.is_empty() {
                        // claim a little of the window and hand h2 the whole
                        // chunk: claiming the chunk's size up front would pin
                        // connection window other streams may need
                        send.reserve_capacity(1);
                        loop {
                            if send.capacity() > 0 {
                                break;
                            }
                            match poll_fn(|cx| send.poll_capacity(cx)).await {
                                Some(Ok(_)) => {}
                                _ => return,
                            }
                        }
                    }
                    if send.send_data(data, eos).is_err() {
                        send.send_reset(Reason::INTERNAL_ERROR);
                        return;
                    }
                    if eos {
                        return;
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        send.reserve_capacity(0);
                        if send.send_trailers(trailers).is_err() {
                            send.send_reset(Reason::INTERNAL_ERROR);
                        }
                        return;
                    }
                }
            },
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
}

/// Headers HTTP/2 forbids (RFC 9113 §8.2.2): the front door may say
/// `Connection: close` for HTTP/1.1's sake.
fn strip_connection_headers(headers: &mut HeaderMap) {
    if let Some(named) = headers.remove(header::CONNECTION)
        && let Ok(list) = named.to_str()
    {
        for name in list.split(',') {
            headers.remove(name.trim());
        }
    }
    for name in [
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TE,
        header::HeaderName::from_static("keep-alive"),
        header::HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_headers_are_stripped_with_the_ones_they_name() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-hop"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::ETAG, HeaderValue::from_static("\"e\""));
        strip_connection_headers(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::ETAG));
    }
}
