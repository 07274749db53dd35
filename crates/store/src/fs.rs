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
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
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

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.0, buf, offset)
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
