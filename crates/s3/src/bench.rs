//! The data path with and without encryption, measured in-process on the
//! same build (`strongroom bench encryption`): a write is chunks into a
//! blob plus its fsync, a read is the whole object streamed back. The
//! plaintext baseline uses the same writer and reader minus the sealing.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use strongroom_crypt::Key;
use strongroom_store::{Store, StoreError};

use crate::get::open_range;
use crate::sse::SealedWriter;

/// Bytes handed to the writer at a time (what a request body yields).
const CHUNK: usize = 256 * 1024;

/// Times of one object: (write incl. fsync, read).
pub async fn write_read(store: &Store, data: &Bytes, encrypted: bool) -> Result<(Duration, Duration), StoreError> {
    let keys = if encrypted {
        vec![Key::random().map_err(|e| StoreError::Corrupt(e.to_string()))?]
    } else {
        Vec::new()
    };
    let t = Instant::now();
    let pending = if encrypted {
        let mut w = SealedWriter::new(store.blob_writer(), &keys)?;
        for c in data.chunks(CHUNK) {
            w.write(data.slice_ref(c)).await?;
        }
        w.finish().await?
    } else {
        let mut w = store.blob_writer();
        for c in data.chunks(CHUNK) {
            w.write(data.slice_ref(c)).await?;
        }
        w.finish().await?
    };
    let write = t.elapsed();
    let seg = pending.segment.clone();
    store.commit(move |txn| txn.add_segment(&pending)).await?;
    let t = Instant::now();
    let mut s = open_range(
        store,
        std::slice::from_ref(&seg),
        0,
        seg.len,
        encrypted.then_some(keys.as_slice()),
    )?;
    let mut n = 0usize;
    while let Some(c) = s.next().await {
        n += c?.len();
    }
    let read = t.elapsed();
    if n != data.len() {
        return Err(StoreError::Corrupt(format!("read {n} of {} bytes", data.len())));
    }
    drop(s);
    store.commit(move |txn| txn.release(&seg)).await?;
    Ok((write, read))
}
