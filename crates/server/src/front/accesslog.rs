//! Access-log capture: every request addressed to a bucket with server
//! access logging on — authenticated or anonymous, allowed or denied,
//! failed, pre-signed, a preflight, a website read — becomes exactly one
//! record, written to the spool (`strongroom_s3::logging`) before its
//! response leaves — and, for a request that may have changed something,
//! made durable first. If the record cannot be written (or made durable)
//! the request is answered 500 instead: nothing is acknowledged unlogged.
//!
//! Facts come from what s3s read and the decision saw (a [`RequestSlot`]),
//! the response, and the connection; the bucket's owner and logging
//! configuration from the record the decision read, or for answers given
//! before a decision, from the bucket record read here.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use strongroom_iam::{ConnInfo, Identities, OperationSlot, RequestFacts, RequestSlot};
use strongroom_s3::logging::{self, Durability, record::Record};

use super::FrontDoor;
use super::rewrite::{error_code, error_response};

/// What the record needs of the request itself, taken before it is
/// consumed: cheap handles (the method, the URI and header values share
/// the request's buffers), turned into text only when a record is made.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    user_agent: Option<HeaderValue>,
    referer: Option<HeaderValue>,
    host: Option<HeaderValue>,
    /// The object bytes a write carries (x-amz-decoded-content-length for
    /// aws-chunked bodies).
    pub(crate) request_len: Option<u64>,
    remote_ip: std::net::IpAddr,
}

impl Meta {
    pub(crate) fn of(
        parts_method: &http::Method,
        uri: &http::Uri,
        version: http::Version,
        h: &HeaderMap,
        info: &ConnInfo,
        trusted: &[std::net::IpAddr],
    ) -> Meta {
        let text = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
        let n = |n: &str| text(n).and_then(|s| s.parse::<u64>().ok());
        // behind a trusted proxy, the client it names
        let forwarded = trusted
            .contains(&info.peer.ip())
            .then(|| text("x-forwarded-for"))
            .flatten()
            .and_then(|v| v.split(',').next())
            .and_then(|s| s.trim().parse::<std::net::IpAddr>().ok());
        Meta {
            method: parts_method.clone(),
            uri: uri.clone(),
            version,
            user_agent: h.get(http::header::USER_AGENT).cloned(),
            referer: h.get(http::header::REFERER).cloned(),
            host: h.get(http::header::HOST).cloned(),
            request_len: n("x-amz-decoded-content-length").or(n("content-length")),
            remote_ip: forwarded.unwrap_or_else(|| info.peer.ip()),
        }
    }

    fn method(&self) -> &str {
        self.method.as_str()
    }
}

/// The bucket a record is about, with its owner and logging configuration.
pub(crate) struct Source {
    pub bucket: String,
    pub owner: String,
    pub logging: Option<String>,
}

impl FrontDoor {
    /// The source of a request's record: the decided bucket record's facts,
    /// else the record of `bucket` read now; None for no bucket.
    pub(crate) fn log_source(&self, facts: &RequestFacts, fallback: Option<&str>) -> Option<Source> {
        let bucket = facts.bucket.clone().or_else(|| fallback.map(str::to_owned))?;
        if let (Some(owner), Some(logging)) = (&facts.decided_owner, &facts.decided_logging) {
            return Some(Source {
                bucket,
                owner: owner.clone(),
                logging: logging.clone(),
            });
        }
        let rec = self.identities.store().bucket(&bucket).ok().flatten()?;
        Some(Source {
            owner: rec.owner.clone(),
            logging: rec.configs.get(strongroom_access::config::LOGGING_CONFIG).cloned(),
            bucket,
        })
    }

    /// Spools the record of one request when its bucket logs. Returns the
    /// response to send: the one given, or a 500 when the record could not
    /// be written (or made durable). `rider`: the request's provisional
    /// record, if its write's commit carried one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn access_log(
        &self,
        src: Option<Source>,
        operation: String,
        meta: &Meta,
        facts: &RequestFacts,
        signature: Option<(&'static str, &'static str)>,
        info: &ConnInfo,
        ids: (&str, &str),
        started: Instant,
        rider: Option<&Rider>,
        resp: Response<s3s::Body>,
    ) -> Response<s3s::Body> {
        let (Some(src), Some(journal)) = (src, &self.access_log) else {
            return resp;
        };
        if src.logging.is_none() {
            return resp;
        }
        let status = resp.status();
        let h = resp.headers();
        let len = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let head = meta.method == http::Method::HEAD;
        let outcome = Outcome {
            status: status.as_u16(),
            error_code: if status.as_u16() >= 400 {
                error_code(&resp)
            } else {
                None
            },
            bytes_sent: if head {
                None
            } else {
                len("content-length").filter(|n| *n > 0)
            },
            object_size: match meta.method() {
                "GET" | "HEAD" if status.is_success() => h
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit('/').next())
                    .and_then(|v| v.parse().ok())
                    .or(len("content-length")),
                "PUT" | "POST" => meta.request_len,
                _ => None,
            },
            version_id: h
                .get("x-amz-version-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        // a write whose commit carried its provisional record: that is its
        // record when the answer is the one assumed, else a final record
        // supersedes it, durable before the answer; any other request that
        // may have changed something waits for its record to be durable; a
        // read or a refusal only for it to be written
        let carried = rider.and_then(|r| r.inner.carried());
        if carried.is_some() && outcome == assumed(meta) {
            return resp;
        }
        let Some(cfg) = logging::config(src.logging.as_deref()) else {
            return resp;
        };
        let rec = record(
            &self.identities,
            (&src.bucket, &src.owner),
            operation,
            meta,
            facts,
            signature,
            info,
            ids,
            started,
            outcome,
        );
        let durability = match carried {
            Some(c) => Durability::Rode(logging::pending_ref(&c.row, &c.name)),
            None if !matches!(meta.method(), "GET" | "HEAD" | "OPTIONS") && status.as_u16() < 400 => Durability::Wait,
            None => Durability::Batched,
        };
        match logging::spool(journal, cfg, &src.bucket, &src.owner, rec.line(), durability).await {
            Ok(()) => resp,
            Err(e) => {
                tracing::error!(bucket = %src.bucket, error = %e, "access-log record not durable: request failed");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                )
            }
        }
    }

    /// The rider of an S3 request when access logs are on: the provisional
    /// record its first writing commit carries, made assuming the usual
    /// answer (the commit is the last step of a write).
    pub(crate) fn rider(
        &self,
        meta: &Meta,
        slot: &RequestSlot,
        op: &OperationSlot,
        info: &ConnInfo,
        ids: (&str, &str),
        started: Instant,
    ) -> Option<Rider> {
        // reads commit nothing worth a record's row
        if matches!(meta.method(), "GET" | "HEAD" | "OPTIONS") {
            return None;
        }
        let journal = self.access_log.clone()?;
        let identities = self.identities.clone();
        let (meta, slot, op, info) = (meta.clone(), slot.clone(), op.clone(), info.clone());
        let (rid, id2) = (ids.0.to_owned(), ids.1.to_owned());
        let seqs: Arc<std::sync::Mutex<Vec<u64>>> = Arc::default();
        let made = seqs.clone();
        let j = journal.clone();
        let inner = strongroom_store::rider::Rider::new(Box::new(move || {
            let (seq, row) = slot.with(|facts| {
                let (Some(bucket), Some(owner), Some(Some(logging))) = (
                    facts.bucket.as_deref(),
                    facts.decided_owner.as_deref(),
                    facts.decided_logging.as_ref(),
                ) else {
                    return None;
                };
                let cfg = logging::config(Some(logging))?;
                let operation = op.0.get().map_or_else(
                    || format!("REST.{}.UNKNOWN", meta.method()),
                    |n| logging::record::operation(n, meta.method()),
                );
                let rec = record(
                    &identities,
                    (bucket, owner),
                    operation,
                    &meta,
                    facts,
                    facts.signature,
                    &info,
                    (&rid, &id2),
                    started,
                    assumed(&meta),
                );
                logging::provisional_row(&j, &cfg, bucket, owner, &rec.line())
            })??;
            if let Ok(mut m) = made.lock() {
                m.push(seq);
            }
            Some(row)
        }));
        Some(Rider { inner, seqs, journal })
    }
}

/// What the response says, for the record.
#[derive(PartialEq, Eq)]
pub(crate) struct Outcome {
    status: u16,
    error_code: Option<String>,
    bytes_sent: Option<u64>,
    object_size: Option<u64>,
    version_id: Option<String>,
}

/// The answer a provisional record assumes: success without a body or a
/// version id (200; 204 for a DELETE).
fn assumed(meta: &Meta) -> Outcome {
    Outcome {
        status: if meta.method == http::Method::DELETE { 204 } else { 200 },
        error_code: None,
        bytes_sent: None,
        object_size: matches!(meta.method(), "PUT" | "POST")
            .then_some(meta.request_len)
            .flatten(),
        version_id: None,
    }
}

/// A request's provisional record offered to its write's commit. Dropped
/// when the request is answered (or abandoned): its provisional records
/// are settled then.
pub(crate) struct Rider {
    pub(crate) inner: Arc<strongroom_store::rider::Rider>,
    /// Sequences of the provisional records made.
    seqs: Arc<std::sync::Mutex<Vec<u64>>>,
    journal: Arc<strongroom_s3::logging::journal::Journal>,
}

impl Drop for Rider {
    fn drop(&mut self) {
        let seqs = self.seqs.lock().map(|s| s.clone()).unwrap_or_default();
        if !seqs.is_empty() {
            self.journal.settle(&seqs);
        }
    }
}

/// The record of one request, borrowing what it can.
#[allow(clippy::too_many_arguments)]
fn record<'a>(
    identities: &Identities,
    (bucket, owner): (&'a str, &'a str),
    operation: String,
    meta: &'a Meta,
    facts: &'a RequestFacts,
    signature: Option<(&'static str, &'static str)>,
    info: &'a ConnInfo,
    ids: (&'a str, &'a str),
    started: Instant,
    outcome: Outcome,
) -> Record<'a> {
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let owner = identities.canonical_id(owner).map_or(Cow::Borrowed(owner), Cow::Owned);
    let text = |v: &'a Option<HeaderValue>| v.as_ref().and_then(|v| v.to_str().ok()).map(Cow::Borrowed);
    let target = meta.uri.path_and_query().map_or(meta.uri.path(), |p| p.as_str());
    Record {
        owner,
        bucket: Cow::Borrowed(bucket),
        time: Some(time::OffsetDateTime::now_utc()),
        remote_ip: Cow::Owned(meta.remote_ip.to_string()),
        requester: facts.requester.as_deref().map(Cow::Borrowed),
        request_id: Cow::Borrowed(ids.0),
        operation: Cow::Owned(operation),
        key: facts.key.as_deref().map(Cow::Borrowed),
        method: Cow::Borrowed(meta.method()),
        target: Cow::Borrowed(target),
        http_version: Cow::Borrowed(match meta.version {
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        }),
        status: outcome.status,
        error_code: outcome.error_code.map(Cow::Owned),
        bytes_sent: outcome.bytes_sent,
        object_size: outcome.object_size,
        total_ms: ms,
        turnaround_ms: ms,
        referer: text(&meta.referer),
        user_agent: text(&meta.user_agent),
        version_id: outcome.version_id.map(Cow::Owned),
        host_id: Cow::Borrowed(ids.1),
        signature_version: signature.map(|s| Cow::Borrowed(s.0)),
        cipher_suite: info.cipher_suite.map(Cow::Borrowed),
        auth_type: signature.map(|s| Cow::Borrowed(s.1)),
        host: text(&meta.host),
        tls_version: info.tls_version.as_deref().map(Cow::Borrowed),
    }
}
