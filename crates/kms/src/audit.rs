//! The durable KMS audit log: one JSON object a line (CloudTrail-like
//! field names) in `<data>/audit/kms.jsonl`. A writer thread appends what
//! is pending and fsyncs once per batch; a key operation answers only
//! after its record is on disk. Key material and plaintext never reach it:
//! records carry key ids, encryption contexts (not secret by definition),
//! caller facts and outcomes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde_json::Value;
use tokio::sync::oneshot;

type Pending = (Value, oneshot::Sender<()>);

/// Handle to the audit writer.
#[derive(Clone)]
pub struct Audit {
    tx: mpsc::Sender<Pending>,
    path: PathBuf,
}

/// The log file under a data directory.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("kms.jsonl")
}

impl Audit {
    /// Opens (creating) the log and starts its writer thread.
    pub fn open(data_dir: &Path) -> std::io::Result<Audit> {
        let path = log_path(data_dir);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        strongroom_store::restrict_mode(&path)?;
        let (tx, rx) = mpsc::channel::<Pending>();
        std::thread::Builder::new().name("kms-audit".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                    if batch.len() >= 1024 {
                        break;
                    }
                }
                let mut buf = Vec::new();
                for (v, _) in &batch {
                    let _ = serde_json::to_writer(&mut buf, v);
                    buf.push(b'\n');
                }
                let res = file.write_all(&buf).and_then(|()| file.sync_data());
                if let Err(e) = res {
                    // the operations still wait on a record that could
                    // not be made durable: they fail rather than go
                    // unaudited
                    tracing::error!(error = %e, "KMS audit log write failed");
                    continue;
                }
                for (_, done) in batch {
                    let _ = done.send(());
                }
            }
        })?;
        Ok(Audit { tx, path })
    }

    /// Appends a record and waits until it is durable. False when the log
    /// could not be written.
    pub async fn record(&self, v: Value) -> bool {
        let (done, wait) = oneshot::channel();
        if self.tx.send((v, done)).is_err() {
            return false;
        }
        wait.await.is_ok()
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
