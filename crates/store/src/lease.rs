//! Read leases on blob files. A reader leases the blobs of the record it
//! read before opening them; a commit that releases a leased blob leaves
//! the file for the last lease to remove. So a long read of an object with
//! thousands of parts, racing an overwrite, still streams the old object
//! whole, without holding a descriptor per part.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::blob::blob_path;
use crate::fs::BlobFs;
use crate::records::{BlobId, Segment};

#[derive(Default)]
struct Table {
    readers: HashMap<BlobId, usize>,
    deferred: HashSet<BlobId>,
}

/// The lease table of one store.
#[derive(Clone)]
pub(crate) struct Leases {
    table: Arc<Mutex<Table>>,
    fs: Arc<dyn BlobFs>,
    blob_dir: PathBuf,
}

impl Leases {
    pub(crate) fn new(fs: Arc<dyn BlobFs>, blob_dir: PathBuf) -> Leases {
        Leases {
            table: Arc::new(Mutex::new(Table::default())),
            fs,
            blob_dir,
        }
    }

    /// Leases the file segments of a record.
    pub(crate) fn take(&self, segments: &[Segment]) -> Lease {
        let ids: Vec<BlobId> = segments.iter().filter(|s| !s.inline).map(|s| s.id).collect();
        if let Ok(mut t) = self.table.lock() {
            for id in &ids {
                *t.readers.entry(*id).or_default() += 1;
            }
        }
        Lease {
            leases: self.clone(),
            ids,
        }
    }

    /// Removes a released blob now, or when its last lease ends. The check
    /// and the unlink happen under the lock, so a lease taken concurrently
    /// either sees the file or defers its removal.
    pub(crate) fn remove(&self, id: BlobId) {
        let Ok(mut t) = self.table.lock() else { return };
        if t.readers.contains_key(&id) {
            t.deferred.insert(id);
        } else {
            let _ = self.fs.remove_file(&blob_path(&self.blob_dir, &id));
        }
    }
}

/// Held while a read streams; dropping it ends the lease.
pub struct Lease {
    leases: Leases,
    ids: Vec<BlobId>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Ok(mut t) = self.leases.table.lock() else { return };
        for id in &self.ids {
            let last = match t.readers.get_mut(id) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => true,
            };
            if last {
                t.readers.remove(id);
                if t.deferred.remove(id) {
                    let _ = self.leases.fs.remove_file(&blob_path(&self.leases.blob_dir, id));
                }
            }
        }
    }
}
