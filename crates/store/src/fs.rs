//! The filesystem under blob files, as an interface: production uses
//! [`RealFs`] (std::fs); the power-loss test (`tests/power_loss.rs`) a
//! filesystem that forgets what was not synced — file data not made
//! durable by `sync_data`, directory entries not made durable by syncing
//! their directory. Everything the store does to blob files goes through
//! here, so the test exercises the real write path.

use std::io;
use std::path::{Path, PathBuf};

/// An open blob file.
pub trait BlobFile: Send + Sync {
    /// Appends `data` (files are written once, front to back).
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes the file's data durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Asks the system to start writing `[offset, offset + len)` to the
    /// disk now, without waiting: a hint, so the final `sync_data` of a
    /// large file has only its tail left to write. Promises nothing.
    fn start_writeback(&self, _offset: u64, _len: u64) {}
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Reads exactly `len` bytes at `offset` into a new buffer.
    fn read_vec_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.read_vec_into(offset, len, Vec::new())
    }
    /// Reads exactly `len` bytes at `offset` into `data` when they are all
    /// in memory already (the page cache), without waiting for the disk:
    /// `Ok(Err(data))` gives the buffer back when they are not (or when
    /// the filesystem cannot tell; the default), and the caller reads on
    /// the blocking pool instead.
    fn read_cached_into(&self, _offset: u64, _len: usize, data: Vec<u8>) -> io::Result<Result<Vec<u8>, Vec<u8>>> {
        Ok(Err(data))
    }
    /// Reads exactly `len` bytes at `offset` into `data` (emptied first;
    /// its capacity is used, so the caller chooses where it is allocated).
    fn read_vec_into(&self, offset: u64, len: usize, mut data: Vec<u8>) -> io::Result<Vec<u8>> {
        data.clear();
        data.resize(len, 0);
        self.read_exact_at(&mut data, offset)?;
        Ok(data)
    }
}

/// The operations the store performs on blob files and their directories.
pub trait BlobFs: Send + Sync + 'static {
    /// Creates a file that must not exist yet.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn BlobFile>>;
    /// Opens an existing file for reading.
    fn open(&self, path: &Path) -> io::Result<Box<dyn BlobFile>>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created and removed files) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The entries of a directory: (path, is a directory).
    fn list(&self, dir: &Path) -> io::Result<Vec<(PathBuf, bool)>>;
    /// A file's length.
    fn len(&self, path: &Path) -> io::Result<u64>;
}

/// The operating system's filesystem.
pub struct RealFs;

struct RealFile(std::fs::File);

impl BlobFile for RealFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        io::Write::write_all(&mut self.0, data)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    /// `posix_fadvise(DONTNEED)`: Linux starts writeback of the range's
    /// dirty pages (not waiting for it) and drops the pages already clean
    /// — written once, a blob's pages are not read back soon. Without it
    /// the kernel holds a large upload in the page cache (below its dirty
    /// thresholds) and writes all of it at the final sync: receiving and
    /// writing would take turns instead of overlapping.
    fn start_writeback(&self, offset: u64, len: u64) {
        if let Some(len) = std::num::NonZeroU64::new(len) {
            // a hint: a refusal leaves the final sync to do the writing
            let _ = rustix::fs::fadvise(&self.0, offset, Some(len), rustix::fs::Advice::DontNeed);
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.0, buf, offset)
    }

    /// `preadv2(RWF_NOWAIT)`: Linux answers from the page cache or says
    /// EAGAIN (or reads short) rather than wait for the disk.
    fn read_cached_into(&self, offset: u64, len: usize, mut data: Vec<u8>) -> io::Result<Result<Vec<u8>, Vec<u8>>> {
        // preadv2 takes initialized memory: a zero-fill, cheaper than the
        // trip through the blocking pool it saves
        data.clear();
        data.resize(len, 0);
        match rustix::io::preadv2(
            &self.0,
            &mut [io::IoSliceMut::new(&mut data)],
            offset,
            rustix::io::ReadWriteFlags::NOWAIT,
        ) {
            Ok(n) if n == len => Ok(Ok(data)),
            // short (a part is not cached), not cached, or not supported
            Ok(_) | Err(_) => Ok(Err(data)),
        }
    }

    /// `pread` straight into the buffer's spare capacity: no zero-fill
    /// first (a memset of every byte read).
    fn read_vec_into(&self, offset: u64, len: usize, mut data: Vec<u8>) -> io::Result<Vec<u8>> {
        data.clear();
        data.reserve(len);
        while data.len() < len {
            let at = offset + data.len() as u64;
            if rustix::io::pread(&self.0, rustix::buffer::spare_capacity(&mut data), at)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        // the capacity may exceed `len`: what was read past it is not asked for
        data.truncate(len);
        Ok(data)
    }
}

impl BlobFs for RealFs {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn BlobFile>> {
        Ok(Box::new(RealFile(std::fs::File::create_new(path)?)))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn BlobFile>> {
        Ok(Box::new(RealFile(std::fs::File::open(path)?)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<(PathBuf, bool)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            out.push((e.path(), e.file_type()?.is_dir()));
        }
        Ok(out)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn reads_at_an_offset_without_zero_filling_and_refuses_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut f = RealFs.create_new(&path).unwrap();
        f.write_all(&data).unwrap();
        f.sync_data().unwrap();
        let r = RealFs.open(&path).unwrap();
        for (off, len) in [(0, 0), (0, 1), (7, 4096), (1000, 200_000), (299_999, 1), (0, 300_000)] {
            let got = r.read_vec_at(off as u64, len).unwrap();
            assert_eq!(got, data[off..off + len], "at {off} for {len}");
        }
        // a piece the file does not hold whole: an error, not a short read
        let e = r.read_vec_at(299_990, 20).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
