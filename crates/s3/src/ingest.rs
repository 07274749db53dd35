//! Streaming a request body into a blob while computing its MD5 (ETag) and
//! checksum, then verifying everything the client declared: Content-MD5,
//! x-amz-checksum-* (header or aws-chunked trailer) and the length
//! (x-amz-content-sha256 is verified by s3s as the body streams). Nothing is buffered beyond one chunk (or the inline
//! threshold); a failed verification discards the blob, so a rejected
//! request changes nothing.

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, StatusCode};
use s3s::dto::{ChecksumAlgorithm, StreamingBlob};
use s3s::{S3Error, S3ErrorCode, S3Result, TrailingHeaders, s3_error};
use strongroom_crypt::Key;
use strongroom_store::{PendingSegment, Store};

use crate::sse::SealedWriter;

use crate::checksum::{Algo, Hasher, Md5, b64, unb64};
use crate::error::{custom, store};

/// What the client asked us to check about the body's checksum.
#[derive(Debug, Default)]
pub(crate) struct ChecksumRequest {
    /// Algorithm to compute (and store).
    pub algo: Option<Algo>,
    /// Value declared in a header.
    pub expected: Option<Vec<u8>>,
    /// The value arrives in an aws-chunked trailer.
    pub trailer: bool,
}

/// Reads the checksum declaration of a write request. `given` holds the
/// five x-amz-checksum-* values as s3s parsed them.
pub(crate) fn checksum_request(
    headers: &HeaderMap,
    algorithm: Option<&ChecksumAlgorithm>,
    given: [(Algo, Option<&String>); 5],
) -> S3Result<ChecksumRequest> {
    let mut req = ChecksumRequest::default();
    let declared: Vec<(Algo, &String)> = given.into_iter().filter_map(|(a, v)| v.map(|v| (a, v))).collect();
    if declared.len() > 1 {
        return Err(invalid_request(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ));
    }
    let sdk_algo = headers
        .get("x-amz-sdk-checksum-algorithm")
        .and_then(|v| v.to_str().ok())
        .map(Algo::parse)
        .transpose()?;
    let algo = match algorithm {
        Some(a) => Some(Algo::parse(a.as_str())?),
        None => sdk_algo,
    };
    let trailer = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .map(|t| {
            Algo::ALL
                .into_iter()
                .find(|a| a.header().eq_ignore_ascii_case(t.trim()))
                .ok_or_else(|| invalid_request("The value specified in the x-amz-trailer header is not supported"))
        })
        .transpose()?;
    if let Some((a, v)) = declared.first() {
        // a value that cannot be this algorithm's digest cannot match it
        let raw = unb64(v).filter(|r| r.len() == a.len()).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!("The {} you specified did not match the calculated checksum.", a.name()),
            )
        })?;
        if algo.is_some_and(|x| x != *a) {
            return Err(invalid_request(
                "Value for x-amz-sdk-checksum-algorithm header is invalid.",
            ));
        }
        req.algo = Some(*a);
        req.expected = Some(raw);
    } else if let Some(t) = trailer {
        if algo.is_some_and(|x| x != t) {
            return Err(invalid_request(
                "Value for x-amz-sdk-checksum-algorithm header is invalid.",
            ));
        }
        req.algo = Some(t);
        req.trailer = true;
    } else {
        req.algo = algo;
    }
    Ok(req)
}

/// PutObject and UploadPart need a length (or chunked framing): 411
/// MissingContentLength otherwise, as AWS answers.
pub(crate) fn require_length(headers: &HeaderMap) -> S3Result<()> {
    if headers.contains_key(http::header::CONTENT_LENGTH) || headers.contains_key(http::header::TRANSFER_ENCODING) {
        return Ok(());
    }
    Err(custom(
        "MissingContentLength",
        StatusCode::LENGTH_REQUIRED,
        "You must provide the Content-Length HTTP header.",
    ))
}

pub(crate) fn invalid_request(msg: impl Into<String>) -> S3Error {
    custom("InvalidRequest", StatusCode::BAD_REQUEST, msg)
}

/// What the body turned out to be.
pub(crate) struct Ingested {
    pub pending: PendingSegment,
    pub md5: [u8; 16],
    pub size: u64,
    /// The algorithm and raw digest computed.
    pub checksum: Option<(Algo, Vec<u8>)>,
}

/// Declared facts about a body.
pub(crate) struct BodyClaims<'a> {
    pub content_length: Option<i64>,
    pub content_md5: Option<&'a str>,
    pub checksum: ChecksumRequest,
    pub headers: &'a HeaderMap,
    pub trailers: Option<&'a TrailingHeaders>,
    pub max_size: u64,
    /// Compute this algorithm even when the client named none (S3 stores a
    /// CRC64NVME for every new object).
    pub default_algo: Option<Algo>,
}

/// Streams `body` into a new blob sealed under `keys` (the object's data
/// keys) and verifies it against `claims`.
pub(crate) async fn ingest(
    store_: &Store,
    body: Option<StreamingBlob>,
    claims: BodyClaims<'_>,
    keys: &[Key],
) -> S3Result<Ingested> {
    // an empty Content-MD5 header is malformed, not absent
    let empty_md5 = claims.headers.get("content-md5").is_some_and(|v| v.is_empty());
    let content_md5 = if empty_md5 { Some("") } else { claims.content_md5 };
    let content_md5 = content_md5
        .map(|m| {
            unb64(m)
                .filter(|r| r.len() == 16)
                .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid."))
        })
        .transpose()?;
    if let Some(len) = claims.content_length
        && u64::try_from(len).is_ok_and(|l| l > claims.max_size)
    {
        return Err(too_large());
    }

    let declared_len = if is_aws_chunked(claims.headers) {
        decoded_length(claims.headers).ok()
    } else {
        claims.content_length.and_then(|l| u64::try_from(l).ok())
    };
    let mut md5 = Md5Lane::for_body(declared_len);
    let algo = claims.checksum.algo.or(claims.default_algo);
    let mut hasher: Option<Hasher> = algo.map(Algo::hasher);
    let mut writer = store(SealedWriter::new(store_.blob_writer(), keys))?;
    let mut size: u64 = 0;

    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk: Bytes = chunk.map_err(body_error)?;
            size += chunk.len() as u64;
            if size > claims.max_size {
                writer.discard();
                return Err(too_large());
            }
            md5.update(&chunk).await?;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            store(writer.write(chunk).await)?;
        }
    }

    // aws-chunked: the decoded length is the signed x-amz-decoded-content-length
    let declared = if is_aws_chunked(claims.headers) {
        Some(decoded_length(claims.headers)?)
    } else {
        claims.content_length.map(|l| u64::try_from(l).unwrap_or(u64::MAX))
    };
    if let Some(len) = declared
        && len != size
    {
        writer.discard();
        return Err(s3_error!(
            IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header."
        ));
    }
    let md5 = md5.finish().await?;
    if let Some(want) = content_md5
        && want != md5
    {
        writer.discard();
        return Err(s3_error!(
            BadDigest,
            "The Content-MD5 you specified did not match what we received."
        ));
    }
    let checksum = hasher.map(|h| (h.algo(), h.finish()));
    if let Some((a, got)) = &checksum {
        let expected = if claims.checksum.trailer {
            let name = a.header();
            let v = claims
                .trailers
                .and_then(|t| t.read(|h| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)))
                .flatten();
            match v {
                Some(v) => Some(
                    unb64(&v)
                        .ok_or_else(|| invalid_request(format!("Value for {name} trailing header is invalid.")))?,
                ),
                None => None,
            }
        } else {
            claims.checksum.expected.clone()
        };
        if let Some(want) = expected
            && &want != got
        {
            writer.discard();
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!("The {} you specified did not match the calculated checksum.", a.name()),
            ));
        }
    }
    let pending = store(writer.finish().await)?;
    Ok(Ingested {
        pending,
        md5,
        size,
        checksum,
    })
}

/// Bodies at least this large have their MD5 computed on the blocking
/// pool, alongside the checksum, sealing and writing: MD5 is the slowest
/// stage of a large upload (one core at ~800 MB/s, md5-asm), and inline it
/// adds to the others instead of overlapping them.
const MD5_OFF_TASK_FROM: u64 = 16 * 1024 * 1024;

/// Body bytes gathered before they are handed to the pool as one job.
const MD5_BATCH: usize = 1024 * 1024;

/// Where a body's MD5 is computed. Off the task, one job at a time holds a
/// pool thread, and only while it hashes: an upload that trickles holds
/// none while it waits (a thread held for a whole upload would let
/// hundreds of slow uploads take the pool that blob writes need).
enum Md5Lane {
    Inline(Md5),
    Pool {
        /// The digest so far, when no job holds it.
        md5: Option<Md5>,
        /// Chunks not yet handed to a job (at most [`MD5_BATCH`] bytes).
        batch: Vec<Bytes>,
        batched: usize,
        /// The job in flight: it gives the digest back.
        inflight: Option<tokio::task::JoinHandle<Md5>>,
    },
}

fn md5_lost() -> S3Error {
    s3_error!(InternalError, "the MD5 of the body was not computed")
}

impl Md5Lane {
    fn for_body(declared_len: Option<u64>) -> Md5Lane {
        if declared_len.is_none_or(|l| l < MD5_OFF_TASK_FROM) {
            return Md5Lane::Inline(Md5::new());
        }
        Md5Lane::Pool {
            md5: Some(Md5::new()),
            batch: Vec::new(),
            batched: 0,
            inflight: None,
        }
    }

    async fn update(&mut self, chunk: &Bytes) -> S3Result<()> {
        match self {
            Md5Lane::Inline(m) => m.update(chunk),
            Md5Lane::Pool { batch, batched, .. } => {
                *batched += chunk.len();
                batch.push(chunk.clone());
                if *batched >= MD5_BATCH {
                    self.hand_off().await?;
                }
            }
        }
        Ok(())
    }

    /// Hands the gathered chunks to a job, once the previous job is done
    /// (the body waits for MD5 only when MD5 falls a batch behind).
    async fn hand_off(&mut self) -> S3Result<()> {
        let Md5Lane::Pool {
            md5,
            batch,
            batched,
            inflight,
        } = self
        else {
            return Ok(());
        };
        if let Some(job) = inflight.take() {
            *md5 = Some(job.await.map_err(|_| md5_lost())?);
        }
        let mut m = md5.take().ok_or_else(md5_lost)?;
        let chunks = std::mem::take(batch);
        *batched = 0;
        *inflight = Some(tokio::task::spawn_blocking(move || {
            for c in &chunks {
                m.update(c);
            }
            m
        }));
        Ok(())
    }

    async fn finish(mut self) -> S3Result<[u8; 16]> {
        self.hand_off().await?;
        match self {
            Md5Lane::Inline(m) => Ok(m.finish()),
            Md5Lane::Pool { inflight, md5, .. } => match inflight {
                Some(job) => Ok(job.await.map_err(|_| md5_lost())?.finish()),
                None => md5.map(Md5::finish).ok_or_else(md5_lost),
            },
        }
    }
}

/// `x-amz-decoded-content-length` of an aws-chunked body (required).
fn decoded_length(h: &HeaderMap) -> S3Result<u64> {
    h.get("x-amz-decoded-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            custom(
                "MissingContentLength",
                StatusCode::LENGTH_REQUIRED,
                "You must provide the x-amz-decoded-content-length header with aws-chunked bodies.",
            )
        })
}

fn is_aws_chunked(h: &HeaderMap) -> bool {
    h.get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("STREAMING-"))
}

fn too_large() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::EntityTooLarge,
        "Your proposed upload exceeds the maximum allowed object size.",
    )
}

fn body_error(e: s3s::StdError) -> S3Error {
    let text = e.to_string();
    // s3s verifies x-amz-content-sha256 while the body streams
    if text.contains("Sha256Mismatch") {
        return custom(
            "XAmzContentSHA256Mismatch",
            StatusCode::BAD_REQUEST,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
    }
    if text.contains("SignatureMismatch") {
        return S3Error::with_message(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    tracing::debug!(error = %text, "request body ended abnormally");
    s3_error!(IncompleteBody, "The request body terminated unexpectedly")
}

/// Stored form of a computed checksum.
pub(crate) fn stored(c: &Option<(Algo, Vec<u8>)>, kind: &str) -> Option<strongroom_store::Checksum> {
    c.as_ref().map(|(a, v)| strongroom_store::Checksum {
        algorithm: a.name().to_owned(),
        value: b64(v),
        kind: kind.to_owned(),
    })
}
