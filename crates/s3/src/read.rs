//! Reading a segment as a stream of pieces with read-ahead: the next piece
//! is read (and opened, when encrypted) on the blocking pool while the
//! current one is being sent, so disk, decryption and the socket overlap.
//! Memory stays bounded: at most READ_AHEAD pieces are in flight.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use strongroom_store::SegmentReader;

pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync>>;

/// Pieces in flight at once.
const READ_AHEAD: usize = 2;

/// Streams `pieces` (stored offset, stored length) of `reader`, each turned
/// into output bytes by `finish(piece index, stored bytes)`.
pub(crate) fn read_ahead<F>(reader: SegmentReader, pieces: Vec<(u64, usize)>, finish: F) -> ByteStream
where
    F: Fn(usize, Bytes) -> std::io::Result<Vec<Bytes>> + Send + Sync + 'static,
{
    let inline = reader.is_inline();
    let reader = Arc::new(reader);
    let finish = Arc::new(finish);
    let jobs = pieces.into_iter().enumerate().map(move |(i, (off, len))| {
        let (r, f) = (reader.clone(), finish.clone());
        async move {
            if inline {
                f(i, r.read_at(off, len)?)
            } else {
                // allocated here, on the runtime thread that frees it once
                // sent: buffers allocated on blocking-pool threads stayed
                // cached in those threads' mimalloc heaps (1 MiB GETs, 16
                // in flight: peak RSS 261 MiB then, 112 MiB so)
                let buf = Vec::with_capacity(len);
                // in the page cache: read and open here, no trip through
                // the blocking pool (its wake-ups cost more than the copy)
                match r.read_cached(off, len, buf)? {
                    Ok(bytes) => f(i, bytes),
                    Err(buf) => tokio::task::spawn_blocking(move || f(i, r.read_into(off, len, buf)?))
                        .await
                        .map_err(std::io::Error::other)?,
                }
            }
        }
    });
    Box::pin(futures::stream::iter(jobs).buffered(READ_AHEAD).flat_map(|r| match r {
        Ok(v) => futures::stream::iter(v.into_iter().map(Ok)).left_stream(),
        Err(e) => futures::stream::once(futures::future::ready(Err(e))).right_stream(),
    }))
}

/// `[from, to)` cut into pieces of at most `chunk` bytes.
pub(crate) fn pieces(from: u64, to: u64, chunk: usize) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let n = (to - at).min(chunk as u64);
        out.push((at, usize::try_from(n).unwrap_or(chunk)));
        at += n;
    }
    out
}
