//! Request bodies that cannot stall a request forever: a body that sends
//! nothing for [`BODY_IDLE`] ends with [`TimedOut`], which the front door
//! answers as AWS does (400 RequestTimeout, then closes the connection).
//! Connections that carry no request at all are the connection
//! watchdog's ([`crate::watch`]).

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::http2::H2Body;
use tokio::time::{Instant, Sleep};

/// How long a request body may send nothing before the request fails.
pub(crate) const BODY_IDLE: Duration = Duration::from_secs(20);

/// What was wrong with a request body as it streamed, as the AWS error
/// code to answer: set by the body, read by the front door once the
/// handler is done (whatever error the handler made of it).
pub(crate) type Verdict = Arc<OnceLock<&'static str>>;

/// The error a stalled body ends with.
#[derive(Debug)]
pub(crate) struct TimedOut;

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request body sent nothing for {} s", BODY_IDLE.as_secs())
    }
}

impl std::error::Error for TimedOut {}

/// A request body as the connection delivers it: hyper's over HTTP/1.1,
/// ours over HTTP/2 (see [`crate::http2`]).
pub(crate) enum RequestBody {
    H1(Incoming),
    H2(H2Body),
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut *self {
            RequestBody::H1(b) => Pin::new(b).poll_frame(cx).map(|f| f.map(|r| r.map_err(Into::into))),
            RequestBody::H2(b) => Pin::new(b).poll_frame(cx).map(|f| f.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::H1(b) => b.is_end_stream(),
            RequestBody::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::H1(b) => b.size_hint(),
            RequestBody::H2(b) => b.size_hint(),
        }
    }
}

/// A request body with an inactivity deadline. The timer is armed only
/// while the body is waited on and moved only when it would fire, so a
/// streaming upload pays one `Instant::now` per frame.
pub(crate) struct TimedBody {
    /// None once handed to the lingering drain (see `Drop`).
    inner: Option<RequestBody>,
    sleep: Option<Pin<Box<Sleep>>>,
    last: Instant,
    /// Whether the body was ever waited on: the deadline runs from the
    /// first read (a client that waits for `100 Continue` sends nothing
    /// before it).
    polled: bool,
    timed_out: bool,
    verdict: Option<Verdict>,
}

impl TimedBody {
    pub(crate) fn new(inner: RequestBody) -> TimedBody {
        TimedBody {
            inner: Some(inner),
            sleep: None,
            last: Instant::now(),
            polled: false,
            timed_out: false,
            verdict: None,
        }
    }

    /// Records a timeout in `verdict` too.
    pub(crate) fn set_verdict(&mut self, verdict: Verdict) {
        self.verdict = Some(verdict);
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.timed_out {
            return Poll::Ready(Some(Err(Box::new(TimedOut))));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if !this.polled {
            this.polled = true;
            this.last = Instant::now();
        }
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.last = Instant::now();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => loop {
                let deadline = this.last + BODY_IDLE;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if Instant::now() >= this.last + BODY_IDLE {
                    this.timed_out = true;
                    if let Some(v) = &this.verdict {
                        let _ = v.set("RequestTimeout");
                    }
                    return Poll::Ready(Some(Err(Box::new(TimedOut))));
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map(Body::size_hint).unwrap_or_default()
    }
}

/// At most this much of an unread request body is read and discarded
/// after an early answer (an error decided before the body was needed).
const LINGER_BYTES: u64 = 8 * 1024 * 1024;
/// ... and for at most this long.
const LINGER_TIME: Duration = Duration::from_secs(5);

/// A request body dropped unread (the request was answered before it was
/// needed) is read and discarded for a bounded amount and time, so that a
/// client still sending it — most do not wait for `100-continue` — reads
/// the answer instead of a connection reset (over TLS, an EOF in the middle
/// of its write). Beyond the bounds the connection is closed (the answer
/// says `Connection: close`): no stranger makes the server read more.
impl Drop for TimedBody {
    fn drop(&mut self) {
        let Some(mut inner) = self.inner.take() else { return };
        if self.timed_out || inner.is_end_stream() {
            return;
        }
        // reading it must not ask a client that waits for it to send it;
        // and an HTTP/2 body is still drained rather than dropped: a
        // RST_STREAM(NO_ERROR) right after the answer is legal, but curl
        // 7.88 takes it for an error
        if let RequestBody::H2(b) = &mut inner {
            b.disarm();
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let drain = async {
                let mut read = 0u64;
                while let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut inner).await {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if read > LINGER_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(LINGER_TIME, drain).await;
        });
    }
}

/// True when a body error (possibly wrapped) is a [`TimedOut`].
pub(crate) fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<TimedOut>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Why a small document body could not be read whole.
pub(crate) enum CollectError {
    TooLarge,
    TimedOut,
    Broken,
}

/// Reads a document body of at most `max` bytes.
pub(crate) async fn collect(body: TimedBody, max: usize) -> Result<Bytes, CollectError> {
    let limited = http_body_util::Limited::new(body, max);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(CollectError::TooLarge),
        Err(e) if is_timeout(&*e) => Err(CollectError::TimedOut),
        Err(_) => Err(CollectError::Broken),
    }
}

/// AWS's words for a body that stalled.
pub(crate) const TIMEOUT_MESSAGE: &str = "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.";
