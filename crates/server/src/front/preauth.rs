//! What the front door does to an S3 request before s3s: the envelope's
//! one reading of its authentication ([`strongroom_access::envelope`]), the
//! constant-time SigV2 comparison, the SigV2 path form, and two checks
//! made as a body streams past: the digests a document request declares,
//! and that an aws-chunked body ends with its final chunk. Nothing here
//! reads a body before the signature is verified: both run as s3s reads.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Method;
use http_body::{Body, Frame, SizeHint};
use strongroom_s3::checksum::BodyDigests;

use strongroom_access::envelope::Query;

use crate::timed::{TimedBody, Verdict};

/// Where an aws-chunked framing is: in a chunk header line, or inside a
/// chunk's data (bytes left, with its CRLF).
enum FramingState {
    Header,
    Data(u64),
}

/// Follows an aws-chunked framing far enough to know whether its final
/// (zero-length) chunk arrived: s3s ends the decoded stream quietly when
/// the body stops at a chunk boundary, which would store a truncated
/// object. Decoding stays s3s's; a framing this cannot follow is refused.
struct Framing {
    state: FramingState,
    line: Vec<u8>,
    final_seen: bool,
    broken: bool,
}

/// Longest chunk header line followed (s3s's limit is smaller).
const MAX_CHUNK_LINE: usize = 4096;

impl Framing {
    fn new() -> Framing {
        Framing {
            state: FramingState::Header,
            line: Vec::new(),
            final_seen: false,
            broken: false,
        }
    }

    fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() && !self.final_seen && !self.broken {
            match self.state {
                FramingState::Header => match b.iter().position(|c| *c == b'\n') {
                    Some(i) => {
                        self.line.extend_from_slice(&b[..i]);
                        b = &b[i + 1..];
                        let line = std::mem::take(&mut self.line);
                        let size = std::str::from_utf8(&line)
                            .ok()
                            .and_then(|l| l.split([';', '\r']).next())
                            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok());
                        match size {
                            Some(0) => self.final_seen = true,
                            Some(n) => self.state = FramingState::Data(n.saturating_add(2)),
                            None => self.broken = true,
                        }
                    }
                    None => {
                        self.line.extend_from_slice(b);
                        self.broken = self.line.len() > MAX_CHUNK_LINE;
                        b = &[];
                    }
                },
                FramingState::Data(n) => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(b.len());
                    b = &b[take..];
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        FramingState::Header
                    } else {
                        FramingState::Data(left)
                    };
                }
            }
        }
    }
}

/// A request body watched as it streams: declared digests computed, an
/// aws-chunked framing followed to its final chunk. At the end a failed
/// check becomes an error (s3s stops, nothing is stored) and the verdict
/// says which AWS error to answer.
pub(crate) struct WatchedBody {
    inner: TimedBody,
    digests: Option<BodyDigests>,
    framing: Option<Framing>,
    /// A document's byte budget (s3s buffers documents whole).
    budget: Option<u64>,
    verdict: Verdict,
}

/// The largest document body (XML or JSON configuration, DeleteObjects,
/// CompleteMultipartUpload) served: AWS's largest legitimate ones (1,000
/// keys to delete, 10,000 parts to complete) are well under it.
pub const DOCUMENT_MAX: u64 = 4 * 1024 * 1024;

#[derive(Debug)]
struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request body refused: {}", self.0)
    }
}

impl std::error::Error for Refused {}

impl WatchedBody {
    fn verdict_at_end(&mut self) -> Option<&'static str> {
        if let Some(f) = self.framing.take()
            && !f.final_seen
        {
            return Some("IncompleteBody");
        }
        match self.digests.take().map(BodyDigests::finish) {
            Some(Err(code)) => Some(code),
            _ => None,
        }
    }
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if let Some(left) = this.budget.as_mut() {
                        match left.checked_sub(data.len() as u64) {
                            Some(l) => *left = l,
                            None => {
                                let _ = this.verdict.set("MaxMessageLengthExceeded");
                                return Poll::Ready(Some(Err(Box::new(Refused("MaxMessageLengthExceeded")))));
                            }
                        }
                    }
                    if let Some(d) = this.digests.as_mut() {
                        d.update(data);
                    }
                    if let Some(f) = this.framing.as_mut() {
                        f.feed(data);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => match this.verdict_at_end() {
                Some(code) => {
                    let _ = this.verdict.set(code);
                    Poll::Ready(Some(Err(Box::new(Refused(code)))))
                }
                None => Poll::Ready(None),
            },
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        // the verdict comes with the last poll, so never end early
        self.digests.is_none() && self.framing.is_none() && self.budget.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn is_aws_chunked(h: &http::HeaderMap) -> bool {
    h.get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"))
}

/// The body s3s gets, watched when it must be: a document request that
/// declares digests (s3s reads such bodies whole without checking
/// Content-MD5 / x-amz-checksum-*, and a corrupted DeleteObjects must not
/// delete other keys), and every aws-chunked body; and timed, so that a
/// stalled body ends the request. Err is the AWS error code of a
/// malformed digest header.
pub(crate) fn request_body(
    parts: &http::request::Parts,
    query: &Query,
    mut body: TimedBody,
    vhost_bucket: Option<&str>,
) -> Result<(s3s::Body, Verdict), &'static str> {
    let document = is_document_request(parts, query, vhost_bucket);
    let digests = if document {
        if super::content_length(&parts.headers) > DOCUMENT_MAX {
            return Err("MaxMessageLengthExceeded");
        }
        // on CompleteMultipartUpload, x-amz-checksum-* is the object's
        let completion = parts.method == Method::POST && query.has("uploadId");
        BodyDigests::declared(&parts.headers, !completion)?
    } else {
        None
    };
    let framing = is_aws_chunked(&parts.headers).then(Framing::new);
    let verdict = Verdict::default();
    body.set_verdict(verdict.clone());
    if !document && framing.is_none() {
        return Ok((s3s::Body::http_body_unsync(body), verdict));
    }
    let watched = WatchedBody {
        inner: body,
        digests,
        framing,
        budget: document.then_some(DOCUMENT_MAX),
        verdict: verdict.clone(),
    };
    Ok((s3s::Body::http_body_unsync(watched), verdict))
}

/// True for requests whose body is a document (DeleteObjects, tagging,
/// completion, bucket configurations) rather than object data: PUTs with
/// a sub-resource or on a bucket, and POSTs other than form uploads.
pub(crate) fn is_document_request(parts: &http::request::Parts, query: &Query, vhost_bucket: Option<&str>) -> bool {
    let signing = |k: &str| k.starts_with("X-Amz-") || matches!(k, "AWSAccessKeyId" | "Signature" | "Expires" | "x-id");
    let subresource = query
        .names()
        .any(|k| !signing(k) && !matches!(k, "partNumber" | "uploadId"));
    let path = parts.uri.path();
    let has_key = if vhost_bucket.is_some() {
        path.len() > 1
    } else {
        path.trim_start_matches('/')
            .split_once('/')
            .is_some_and(|(_, k)| !k.is_empty())
    };
    let streaming = parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"));
    if streaming {
        return false;
    }
    match parts.method {
        Method::PUT => subresource || !has_key,
        Method::POST => !parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data")),
        _ => false,
    }
}

/// SigV2 signs a bucket's resource as `/bucket/` even when the request line
/// says `/bucket` (path style); s3s signs the path as sent, so give it the
/// form the client signed. SigV4 requests are never touched (their
/// canonical URI is the path as sent).
pub(crate) fn sigv2_bucket_path(parts: &mut http::request::Parts) {
    let path = parts.uri.path();
    if path.len() > 1 && !path[1..].contains('/') {
        let new = match parts.uri.query() {
            Some(q) => format!("{path}/?{q}"),
            None => format!("{path}/"),
        };
        if let Ok(pq) = new.parse::<http::uri::PathAndQuery>() {
            let mut p = parts.uri.clone().into_parts();
            p.path_and_query = Some(pq);
            if let Ok(u) = http::Uri::from_parts(p) {
                parts.uri = u;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    #[test]
    fn framing_knows_whether_the_final_chunk_arrived() {
        let body = b"4;chunk-signature=aa\r\nabcd\r\n3;chunk-signature=bb\r\nefg\r\n0;chunk-signature=cc\r\n\r\n";
        for split in [1, 2, 5, 7, 13, body.len()] {
            let mut f = Framing::new();
            for piece in body.chunks(split) {
                f.feed(piece);
            }
            assert!(f.final_seen && !f.broken, "split {split}");
        }
        let cut = b"4;chunk-signature=aa\r\nabcd\r\n3;chunk-signature=bb\r\nefg\r\n";
        let mut f = Framing::new();
        f.feed(cut);
        assert!(!f.final_seen);
        // a chunk whose data contains "0;" is data, not the end
        let mut f = Framing::new();
        f.feed(b"5\r\n0;x\r\n\r\n");
        assert!(!f.final_seen);
        let mut f = Framing::new();
        f.feed(b"zz;chunk-signature=aa\r\n");
        assert!(f.broken && !f.final_seen);
    }

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(())
            .map(|r| r.into_parts().0)
            .unwrap_or_else(|_| Request::new(()).into_parts().0)
    }

    fn is_doc(p: &http::request::Parts, vhost: Option<&str>) -> bool {
        is_document_request(p, &Query::parse(p.uri.query()), vhost)
    }

    #[test]
    fn documents_are_told_apart_from_object_data() {
        assert!(is_doc(&parts(Method::POST, "/b?delete", &[]), None));
        assert!(is_doc(&parts(Method::PUT, "/b/k?tagging", &[]), None));
        assert!(is_doc(&parts(Method::PUT, "/b/k?tag%67ing", &[]), None));
        assert!(is_doc(&parts(Method::PUT, "/b", &[]), None));
        assert!(is_doc(&parts(Method::POST, "/b/k?uploadId=1", &[]), None));
        assert!(!is_doc(&parts(Method::PUT, "/b/k", &[]), None));
        assert!(!is_doc(&parts(Method::PUT, "/b/k?x-id=PutObject", &[]), None));
        assert!(!is_doc(&parts(Method::PUT, "/b/k?partNumber=1&uploadId=2", &[]), None));
        assert!(!is_doc(&parts(Method::PUT, "/k", &[]), Some("b")));
        assert!(!is_doc(
            &parts(
                Method::POST,
                "/b",
                &[("content-type", "multipart/form-data; boundary=x")]
            ),
            None
        ));
        assert!(!is_doc(
            &parts(
                Method::PUT,
                "/b/k?tagging",
                &[("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")]
            ),
            None
        ));
    }
}
