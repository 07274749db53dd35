//! The spool of access-log records: append-only segment files under
//! `DATA/access-log/`, one JSON record a line. One writer thread group-
//! commits them: every record waiting is appended in one write and made
//! durable by one `fdatasync` before any of their requests is answered —
//! a few hundred microseconds shared by every request in the batch, where
//! a metadata commit would cost several times that. Segments are closed
//! when delivery asks (and at 8 MiB), and delivered whole, each in one
//! metadata commit, so delivery never holds more than a segment in memory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A segment is closed once it holds this much.
const SEGMENT_MAX: u64 = 8 * 1024 * 1024;

enum Msg {
    Append(Vec<u8>, tokio::sync::oneshot::Sender<std::io::Result<()>>),
    /// Close the current segment; answer every closed segment, oldest first.
    Rotate(tokio::sync::oneshot::Sender<std::io::Result<Vec<PathBuf>>>),
}

/// The spool's writer.
pub struct Journal {
    tx: tokio::sync::mpsc::UnboundedSender<Msg>,
    dir: PathBuf,
}

fn segment_name(seq: u64) -> String {
    format!("seg-{seq:020}.log")
}

/// Closed segments in `dir`, oldest first (all but `current`).
fn closed(dir: &Path, current: Option<&Path>) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seg-") && n.ends_with(".log"))
        })
        .filter(|p| Some(p.as_path()) != current)
        .collect();
    out.sort();
    Ok(out)
}

struct Writer {
    dir: PathBuf,
    current: Option<(PathBuf, File, u64)>,
}

impl Writer {
    fn open_new(&mut self) -> std::io::Result<()> {
        let seq = super::next_seq();
        let path = self.dir.join(segment_name(seq));
        let f = OpenOptions::new().create_new(true).append(true).open(&path)?;
        // the new name must survive a crash before its first record does
        File::open(&self.dir)?.sync_all()?;
        self.current = Some((path, f, 0));
        Ok(())
    }

    fn append(&mut self, batch: &[u8]) -> std::io::Result<()> {
        if self.current.as_ref().is_none_or(|(_, _, n)| *n >= SEGMENT_MAX) {
            self.current = None;
            self.open_new()?;
        }
        let Some((_, f, n)) = self.current.as_mut() else {
            return Err(std::io::Error::other("no access-log segment"));
        };
        f.write_all(batch)?;
        f.sync_data()?;
        *n += batch.len() as u64;
        Ok(())
    }
}

/// The writer task: takes every message waiting, appends the records in
/// one write and one `fdatasync` (on the blocking pool, off the async
/// workers), answers them, then any rotation.
async fn run(mut w: Writer, mut rx: tokio::sync::mpsc::UnboundedReceiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut msgs = vec![first];
        while let Ok(m) = rx.try_recv() {
            msgs.push(m);
        }
        let mut batch = Vec::new();
        let mut waiters = Vec::new();
        let mut rotations = Vec::new();
        for m in msgs {
            match m {
                Msg::Append(b, tx) => {
                    batch.extend_from_slice(&b);
                    waiters.push(tx);
                }
                Msg::Rotate(tx) => rotations.push(tx),
            }
        }
        let rotate = !rotations.is_empty();
        let done = tokio::task::spawn_blocking(move || {
            let appended = if batch.is_empty() { Ok(()) } else { w.append(&batch) };
            let closed = if rotate {
                w.current = None;
                Some(closed(&w.dir, None))
            } else {
                None
            };
            (w, appended, closed)
        })
        .await;
        let Ok((writer, appended, closed_segments)) = done else {
            tracing::error!("the access-log journal writer failed");
            return;
        };
        w = writer;
        let copy = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
        for tx in waiters {
            let _ = tx.send(appended.as_ref().map(|_| ()).map_err(copy));
        }
        if let Some(c) = closed_segments {
            for tx in rotations {
                let _ = tx.send(c.as_ref().map(Clone::clone).map_err(copy));
            }
        }
    }
}

impl Journal {
    /// Opens the spool in `dir` (created 0700); segments left by an earlier
    /// run are closed, to be delivered. Runs its writer on the current
    /// tokio runtime.
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let w = Writer {
            dir: dir.to_owned(),
            current: None,
        };
        tokio::spawn(run(w, rx));
        Ok(Journal {
            tx,
            dir: dir.to_owned(),
        })
    }

    /// Appends one record (a line) and returns once it is durable.
    pub async fn append(&self, mut line: Vec<u8>) -> std::io::Result<()> {
        line.push(b'\n');
        let (w, r) = tokio::sync::oneshot::channel();
        self.tx
            .send(Msg::Append(line, w))
            .map_err(|_| std::io::Error::other("the access-log journal stopped"))?;
        r.await
            .map_err(|_| std::io::Error::other("the access-log journal stopped"))?
    }

    /// Closes the current segment; every closed segment, oldest first.
    pub async fn rotate(&self) -> std::io::Result<Vec<PathBuf>> {
        let (w, r) = tokio::sync::oneshot::channel();
        self.tx
            .send(Msg::Rotate(w))
            .map_err(|_| std::io::Error::other("the access-log journal stopped"))?;
        r.await
            .map_err(|_| std::io::Error::other("the access-log journal stopped"))?
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
