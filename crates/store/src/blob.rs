//! Blob files: `blobs/<first byte hex>/<id hex>`, written once under a fresh
//! random id and never modified, so a crash can only leave an unreferenced
//! file (removed by the start-up sweep), never a torn object.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::fs::{BlobFile, BlobFs};
use crate::records::{BlobId, Segment};
use crate::{INLINE_MAX, StoreError};

pub(crate) fn prepare_dirs(fs: &dyn BlobFs, blob_dir: &Path) -> Result<(), StoreError> {
    for i in 0..=255u8 {
        fs.create_dir_all(&blob_dir.join(format!("{i:02x}")))?;
    }
    fs.sync_dir(blob_dir)?;
    Ok(())
}

pub(crate) fn blob_path(blob_dir: &Path, id: &BlobId) -> PathBuf {
    let hex = id.hex();
    blob_dir.join(&hex[..2]).join(hex)
}

pub(crate) fn sweep(fs: &dyn BlobFs, blob_dir: &Path, live: &HashSet<BlobId>) -> Result<usize, StoreError> {
    let mut removed = 0;
    for (sub, is_dir) in fs.list(blob_dir)? {
        if !is_dir {
            continue;
        }
        for (f, _) in fs.list(&sub)? {
            let keep = f
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| hex_simd::decode_to_vec(n).ok())
                .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok())
                .is_some_and(|b| live.contains(&BlobId(b)));
            if !keep {
                fs.remove_file(&f)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// A segment written and made durable, waiting for the commit that makes
/// it visible ([`crate::Txn::add_segment`]).
#[derive(Debug)]
pub struct PendingSegment {
    pub segment: Segment,
    pub inline_data: Option<Bytes>,
}

/// Writes one blob: kept in memory while it is at most [`INLINE_MAX`] bytes,
/// spilled to a file beyond that. File I/O runs on the blocking pool, one
/// write in flight at a time, so the caller hashes the next chunk while the
/// previous one is being written.
pub struct BlobWriter {
    fs: Arc<dyn BlobFs>,
    blob_dir: PathBuf,
    buf: BytesMut,
    id: Option<BlobId>,
    file: Option<Box<dyn BlobFile>>,
    inflight: Option<tokio::task::JoinHandle<std::io::Result<Box<dyn BlobFile>>>>,
    len: u64,
    /// Bytes issued to the file so far.
    issued: u64,
}

/// Bytes gathered before a write is issued.
const WRITE_CHUNK: usize = 256 * 1024;

/// Every this many bytes written, the disk is asked to start writing the
/// window before the last one (see [`crate::fs::BlobFile::start_writeback`]):
/// a large blob goes to the disk while the rest of it arrives, and its
/// final sync waits for about one window, not for the whole blob.
const WRITEBACK_WINDOW: u64 = 8 * 1024 * 1024;

fn join_err(e: tokio::task::JoinError) -> StoreError {
    StoreError::Io(std::io::Error::other(e))
}

impl BlobWriter {
    pub(crate) fn new(fs: Arc<dyn BlobFs>, blob_dir: PathBuf) -> BlobWriter {
        BlobWriter {
            fs,
            blob_dir,
            buf: BytesMut::new(),
            id: None,
            file: None,
            inflight: None,
            len: 0,
            issued: 0,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends bytes.
    pub async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        self.len += data.len() as u64;
        self.buf.extend_from_slice(&data);
        if self.id.is_none() && self.buf.len() <= INLINE_MAX {
            return Ok(());
        }
        if self.buf.len() >= WRITE_CHUNK || self.id.is_none() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Waits for the write in flight and takes the file back.
    async fn settle(&mut self) -> Result<(), StoreError> {
        if let Some(h) = self.inflight.take() {
            self.file = Some(h.await.map_err(join_err)??);
        }
        Ok(())
    }

    /// Issues a write of the buffered bytes without waiting for it.
    async fn flush(&mut self) -> Result<(), StoreError> {
        self.settle().await?;
        let chunk = self.buf.split().freeze();
        let mut f = match self.file.take() {
            Some(f) => f,
            None => {
                let id = BlobId::random()?;
                let path = blob_path(&self.blob_dir, &id);
                let fs = self.fs.clone();
                let f = tokio::task::spawn_blocking(move || fs.create_new(&path))
                    .await
                    .map_err(join_err)??;
                self.id = Some(id);
                f
            }
        };
        // each window end k·W this write crosses: window k-2 is asked to go
        // to the disk (k-1, just filled, may still be in flight)
        let (from, to) = (self.issued, self.issued + chunk.len() as u64);
        self.issued = to;
        let crossed = (from / WRITEBACK_WINDOW + 1).max(2)..(to / WRITEBACK_WINDOW + 1);
        self.inflight = Some(tokio::task::spawn_blocking(move || {
            f.write_all(&chunk)?;
            for k in crossed {
                f.start_writeback((k - 2) * WRITEBACK_WINDOW, WRITEBACK_WINDOW);
            }
            Ok(f)
        }));
        Ok(())
    }

    /// Makes the blob durable (file data and directory entry) and returns it.
    pub async fn finish(mut self) -> Result<PendingSegment, StoreError> {
        let Some(id) = self.id else {
            let id = BlobId::random()?;
            return Ok(PendingSegment {
                segment: Segment {
                    id,
                    len: self.len,
                    inline: true,
                    salt: None,
                    layers: 0,
                },
                inline_data: Some(std::mem::take(&mut self.buf).freeze()),
            });
        };
        if !self.buf.is_empty() {
            self.flush().await?;
        }
        self.settle().await?;
        let Some(f) = self.file.take() else {
            return Err(StoreError::Corrupt("blob writer lost its file".into()));
        };
        let dir = blob_path(&self.blob_dir, &id)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let fs = self.fs.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            f.sync_data()?;
            fs.sync_dir(&dir)
        })
        .await
        .map_err(join_err)??;
        // finished: the file now belongs to the caller's commit
        self.id = None;
        Ok(PendingSegment {
            segment: Segment {
                id,
                len: self.len,
                inline: false,
                salt: None,
                layers: 0,
            },
            inline_data: None,
        })
    }

    /// Abandons the blob, removing its file if one was created.
    pub fn discard(self) {
        drop(self);
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // an unfinished writer (request failed or client went away) leaves
        // no file; a write still in flight lands in the unlinked inode
        if let Some(id) = self.id.take() {
            let _ = self.fs.remove_file(&blob_path(&self.blob_dir, &id));
        }
    }
}

/// An open segment for reading.
pub enum SegmentReader {
    Inline(Bytes),
    File(Box<dyn BlobFile>),
}

impl SegmentReader {
    /// Reads exactly `len` bytes at `offset` (positional: several reads of
    /// one reader may run at once). Blocking for files: call it on the
    /// blocking pool.
    pub fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        match self {
            SegmentReader::Inline(b) => {
                let start = usize::try_from(offset).map_err(std::io::Error::other)?;
                b.get(start..start + len)
                    .map(|s| b.slice_ref(s))
                    .ok_or_else(|| std::io::Error::other("inline segment shorter than recorded"))
            }
            SegmentReader::File(f) => Ok(Bytes::from(f.read_vec_at(offset, len)?)),
        }
    }

    /// As [`read_at`](Self::read_at), into `buf`'s memory (an inline
    /// segment ignores it). The caller allocates: a reader
    /// on the blocking pool given a buffer from the task that will free
    /// it keeps the memory with the threads that allocate all the time
    /// (an allocator's per-thread caches otherwise hold freed read
    /// buffers on idle blocking threads).
    pub fn read_into(&self, offset: u64, len: usize, buf: Vec<u8>) -> std::io::Result<Bytes> {
        match self {
            SegmentReader::Inline(_) => self.read_at(offset, len),
            SegmentReader::File(f) => Ok(Bytes::from(f.read_vec_into(offset, len, buf)?)),
        }
    }

    /// As [`read_into`](Self::read_into) when the bytes are in memory
    /// already (inline, or in the page cache: no wait for the disk, so it
    /// may run on the async runtime); `Ok(Err(buf))` when the disk would
    /// be needed: read on the blocking pool then.
    pub fn read_cached(&self, offset: u64, len: usize, buf: Vec<u8>) -> std::io::Result<Result<Bytes, Vec<u8>>> {
        match self {
            SegmentReader::Inline(_) => self.read_at(offset, len).map(Ok),
            SegmentReader::File(f) => Ok(f.read_cached_into(offset, len, buf)?.map(Bytes::from)),
        }
    }

    /// True when reads need no I/O.
    pub fn is_inline(&self) -> bool {
        matches!(self, SegmentReader::Inline(_))
    }

    /// Reads `len` bytes starting at `offset`, in chunks of `chunk` bytes, on
    /// the blocking pool: a stream that never holds more than one chunk.
    pub fn into_stream(
        self,
        offset: u64,
        len: u64,
        chunk: usize,
    ) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
        let state = (self, offset, len);
        futures::stream::try_unfold(state, move |(reader, offset, remaining)| async move {
            if remaining == 0 {
                return Ok(None);
            }
            let n = remaining.min(chunk as u64);
            match reader {
                SegmentReader::Inline(b) => {
                    let start = usize::try_from(offset).map_err(std::io::Error::other)?;
                    let end = start + usize::try_from(n).map_err(std::io::Error::other)?;
                    let slice = b
                        .get(start..end)
                        .map(Bytes::copy_from_slice)
                        .ok_or_else(|| std::io::Error::other("inline segment shorter than recorded"))?;
                    Ok(Some((slice, (SegmentReader::Inline(b), offset + n, remaining - n))))
                }
                SegmentReader::File(f) => {
                    let (f, data) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                        let data = f.read_vec_at(offset, usize::try_from(n).map_err(std::io::Error::other)?)?;
                        Ok((f, data))
                    })
                    .await
                    .map_err(std::io::Error::other)??;
                    Ok(Some((
                        Bytes::from(data),
                        (SegmentReader::File(f), offset + n, remaining - n),
                    )))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::io;
    use std::sync::Mutex;

    use super::*;
    use crate::fs::RealFs;

    /// Writebacks asked for: (offset, len, bytes written by then).
    type Kicks = Arc<Mutex<Vec<(u64, u64, u64)>>>;

    struct Watched {
        inner: Box<dyn BlobFile>,
        written: u64,
        kicks: Kicks,
    }

    impl BlobFile for Watched {
        fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
            self.written += data.len() as u64;
            self.inner.write_all(data)
        }
        fn sync_data(&self) -> io::Result<()> {
            self.inner.sync_data()
        }
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            self.inner.read_exact_at(buf, offset)
        }
        fn start_writeback(&self, offset: u64, len: u64) {
            self.kicks.lock().unwrap().push((offset, len, self.written));
            self.inner.start_writeback(offset, len);
        }
    }

    struct WatchedFs(Kicks);

    impl BlobFs for WatchedFs {
        fn create_new(&self, path: &Path) -> io::Result<Box<dyn BlobFile>> {
            Ok(Box::new(Watched {
                inner: RealFs.create_new(path)?,
                written: 0,
                kicks: self.0.clone(),
            }))
        }
        fn open(&self, path: &Path) -> io::Result<Box<dyn BlobFile>> {
            RealFs.open(path)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            RealFs.remove_file(path)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            RealFs.sync_dir(dir)
        }
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            RealFs.create_dir_all(dir)
        }
        fn list(&self, dir: &Path) -> io::Result<Vec<(PathBuf, bool)>> {
            RealFs.list(dir)
        }
        fn len(&self, path: &Path) -> io::Result<u64> {
            RealFs.len(path)
        }
    }

    /// A blob writer over a real directory whose writeback requests are
    /// recorded.
    fn watched_writer() -> (tempfile::TempDir, Kicks, BlobWriter) {
        let dir = tempfile::tempdir().unwrap();
        let kicks = Kicks::default();
        let fs: Arc<dyn BlobFs> = Arc::new(WatchedFs(kicks.clone()));
        prepare_dirs(fs.as_ref(), dir.path()).unwrap();
        let w = BlobWriter::new(fs, dir.path().to_path_buf());
        (dir, kicks, w)
    }

    #[tokio::test]
    async fn a_large_blob_goes_to_the_disk_window_by_window_behind_the_writes() {
        let (_dir, kicks, mut w) = watched_writer();
        // 41 MiB in uneven chunks
        let total = 41 * 1024 * 1024 + 12_345;
        let chunk = Bytes::from(vec![7u8; 100_003]);
        let mut sent = 0;
        while sent < total {
            let n = chunk.len().min(total - sent);
            w.write(chunk.slice(..n)).await.unwrap();
            sent += n;
        }
        let p = w.finish().await.unwrap();
        assert_eq!(p.segment.len, total as u64);
        let kicks = kicks.lock().unwrap().clone();
        // every whole window but the last two: once, in order, each only
        // once the writes were past the window after it
        let windows: Vec<u64> = kicks.iter().map(|k| k.0).collect();
        let want: Vec<u64> = (0..(total as u64 / WRITEBACK_WINDOW).saturating_sub(1))
            .map(|i| i * WRITEBACK_WINDOW)
            .collect();
        assert_eq!(windows, want, "{kicks:?}");
        for (offset, len, written) in kicks {
            assert_eq!(len, WRITEBACK_WINDOW);
            assert!(written >= offset + 2 * WRITEBACK_WINDOW, "{offset} asked at {written}");
        }
    }

    #[tokio::test]
    async fn one_write_crossing_several_windows_asks_for_each() {
        let (_dir, kicks, mut w) = watched_writer();
        w.write(Bytes::from(vec![3u8; 5 * WRITEBACK_WINDOW as usize + 1]))
            .await
            .unwrap();
        w.finish().await.unwrap();
        let windows: Vec<u64> = kicks.lock().unwrap().iter().map(|k| k.0).collect();
        assert_eq!(windows, [0, 1, 2, 3].map(|i| i * WRITEBACK_WINDOW));
    }

    #[tokio::test]
    async fn a_small_blob_asks_for_no_writeback() {
        let (_dir, kicks, mut w) = watched_writer();
        w.write(Bytes::from(vec![1u8; 2 * WRITEBACK_WINDOW as usize - 1]))
            .await
            .unwrap();
        w.finish().await.unwrap();
        assert!(kicks.lock().unwrap().is_empty());
    }
}
