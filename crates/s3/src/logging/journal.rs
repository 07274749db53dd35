//! The spool of access-log records: append-only segment files under
//! `DATA/access-log/`, one JSON record a line.
//!
//! A request's task appends its record itself, under a mutex, with one
//! `write` into the current segment before its response leaves: from then
//! on the record survives a crash of the server process (it is in the
//! kernel's page cache), with no hand-off to another thread on the request
//! path. Making records durable against power loss is a syncer thread's
//! job, in batches of one `fdatasync` each:
//! - the record of a request that may have changed something (a PUT, POST
//!   or DELETE answered below 400) is *waited for*: its request is answered
//!   only once a sync has covered it — the syncer starts one at once, and
//!   every record written meanwhile rides on it (group commit);
//! - the record of a read (GET, HEAD, OPTIONS) or of a refused request is
//!   synced with the next batch, at the latest [`READ_SYNC`] later. Power
//!   loss can lose at most that window of such records; waiting for their
//!   sync would cost a read more than the read itself.
//!
//! If a write or a sync fails the journal stops taking records (every later
//! append fails, and its request is answered 500): nothing is acknowledged
//! whose record might be lost. Segments are closed when delivery asks (and
//! at 8 MiB), made durable, and delivered whole.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A segment is closed once it holds this much.
const SEGMENT_MAX: u64 = 8 * 1024 * 1024;
/// Provisional records made since the last delivery that call for one
/// before the interval ends (they are rows in the metadata store: the
/// table stays small).
pub const ROWS_PER_DELIVERY: u64 = 10_000;
/// The longest a record that nobody waits for stays unsynced.
pub const READ_SYNC: Duration = Duration::from_millis(100);

fn segment_name(seq: u64) -> String {
    format!("seg-{seq:020}.log")
}

fn stopped() -> std::io::Error {
    std::io::Error::other("the access-log journal stopped after a failed write or sync")
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

struct Segment {
    path: PathBuf,
    file: Arc<File>,
    len: u64,
}

/// What the appenders and the syncer share, under one mutex.
#[derive(Default)]
struct State {
    current: Option<Segment>,
    /// Bytes appended since the journal opened (across segments).
    appended: u64,
    /// Bytes a finished sync covers.
    synced: u64,
    /// Closed segments written since the last sync.
    unsynced: Vec<Arc<File>>,
    /// A segment was created since the last sync: its name must be synced.
    dir_dirty: bool,
    /// When the oldest unsynced record was appended.
    dirty_since: Option<Instant>,
    /// Someone waits for a sync: start one now.
    urgent: bool,
    failed: bool,
    stop: bool,
}

struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    wake: Condvar,
    /// The bytes durable, or None once the journal failed.
    durable: tokio::sync::watch::Sender<Option<u64>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // a panic while holding the lock cannot leave State half-updated in
        // a way that loses records: the worst is a torn line, skipped
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The syncer thread: waits for unsynced records, syncs them (and the
/// directory, for new segments) outside the lock, publishes how far the
/// journal is durable.
fn syncer(shared: Arc<Shared>) {
    let mut st = shared.lock();
    loop {
        let dirty = st.appended > st.synced || !st.unsynced.is_empty();
        if st.stop && !dirty {
            return;
        }
        let due = st.urgent || st.stop || st.dirty_since.is_some_and(|t| t.elapsed() >= READ_SYNC);
        if !dirty || !due || st.failed {
            let wait = match st.dirty_since {
                Some(t) if dirty && !st.failed => READ_SYNC.saturating_sub(t.elapsed()),
                _ => Duration::from_secs(3600),
            };
            st = shared
                .wake
                .wait_timeout(st, wait)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
            if st.failed && st.stop {
                return;
            }
            continue;
        }
        let target = st.appended;
        let mut files = std::mem::take(&mut st.unsynced);
        files.extend(st.current.as_ref().map(|s| s.file.clone()));
        let dir = std::mem::take(&mut st.dir_dirty);
        st.urgent = false;
        st.dirty_since = None;
        drop(st);
        let mut result = files.iter().try_for_each(|f| f.sync_data());
        if result.is_ok() && dir {
            result = File::open(&shared.dir).and_then(|d| d.sync_all());
        }
        st = shared.lock();
        match result {
            Ok(()) => {
                st.synced = target;
                shared.durable.send_replace(Some(target));
            }
            Err(e) => {
                tracing::error!(error = %e, "access-log spool sync failed: the journal stops taking records");
                st.failed = true;
                shared.durable.send_replace(None);
            }
        }
    }
}

/// The spool's writer.
pub struct Journal {
    shared: Arc<Shared>,
    /// This run of the journal, unique and increasing across restarts:
    /// provisional records are named by it.
    run: String,
    /// One delivery at a time.
    delivery: tokio::sync::Mutex<()>,
    /// Provisional records made by requests still being answered, by
    /// sequence: the record of such a request may yet be superseded.
    unsettled: Mutex<std::collections::BTreeSet<u64>>,
    /// Provisional records made since the last delivery began.
    rows_since: std::sync::atomic::AtomicU64,
    /// Wakes the delivery before its interval: a segment filled up, or
    /// [`ROWS_PER_DELIVERY`] rows were made.
    kick: tokio::sync::Notify,
}

impl Journal {
    /// Opens the spool in `dir` (created 0700); segments left by an earlier
    /// run are closed, to be delivered. Starts the syncer thread.
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            durable: tokio::sync::watch::Sender::new(Some(0)),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("access-log-sync".into())
            .spawn(move || syncer(s))?;
        Ok(Journal {
            shared,
            run: format!("{:020}", super::spool::next_seq()),
            delivery: tokio::sync::Mutex::new(()),
            unsettled: Mutex::new(std::collections::BTreeSet::new()),
            rows_since: std::sync::atomic::AtomicU64::new(0),
            kick: tokio::sync::Notify::new(),
        })
    }

    /// Appends one record (a line) with one `write`; returns where it ends,
    /// for [`Journal::durable`]. With `urgent`, a sync starts at once.
    pub fn append(&self, line: &[u8], urgent: bool) -> std::io::Result<u64> {
        let mut st = self.shared.lock();
        if st.failed || st.stop {
            return Err(stopped());
        }
        if st.current.as_ref().is_none_or(|s| s.len >= SEGMENT_MAX) {
            if let Some(old) = st.current.take() {
                st.unsynced.push(old.file);
                // a full segment is worth delivering now
                self.kick.notify_one();
            }
            let path = self.shared.dir.join(segment_name(super::spool::next_seq()));
            let file = OpenOptions::new().create_new(true).append(true).open(&path)?;
            st.current = Some(Segment {
                path,
                file: Arc::new(file),
                len: 0,
            });
            st.dir_dirty = true;
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        let Some(seg) = st.current.as_mut() else {
            return Err(stopped());
        };
        if let Err(e) = (&*seg.file).write_all(&buf) {
            // a torn line may be left: end the segment there, so that no
            // later record is glued to it, and take no more records
            if let Some(old) = st.current.take() {
                st.unsynced.push(old.file);
            }
            st.failed = true;
            self.shared.durable.send_replace(None);
            return Err(e);
        }
        seg.len += buf.len() as u64;
        st.appended += buf.len() as u64;
        let was_clean = st.dirty_since.is_none();
        if was_clean {
            st.dirty_since = Some(Instant::now());
        }
        let end = st.appended;
        if urgent && !st.urgent {
            st.urgent = true;
            self.shared.wake.notify_one();
        } else if was_clean {
            self.shared.wake.notify_one();
        }
        Ok(end)
    }

    /// Returns once every record up to `end` is durable.
    pub async fn durable(&self, end: u64) -> std::io::Result<()> {
        let mut rx = self.shared.durable.subscribe();
        match rx.wait_for(|d| d.is_none_or(|n| n >= end)).await {
            Ok(d) if d.is_some() => Ok(()),
            _ => Err(stopped()),
        }
    }

    /// Closes the current segment and makes every record durable; every
    /// closed segment, oldest first.
    pub async fn rotate(&self) -> std::io::Result<Vec<PathBuf>> {
        let end = {
            let mut st = self.shared.lock();
            if let Some(old) = st.current.take() {
                st.unsynced.push(old.file);
            }
            st.urgent = true;
            self.shared.wake.notify_one();
            st.appended
        };
        self.durable(end).await?;
        // listed under the lock, so that a segment opened meanwhile is
        // recognised as current
        let st = self.shared.lock();
        closed(&self.shared.dir, st.current.as_ref().map(|s| s.path.as_path()))
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// This run's name (see `spool::PENDING`).
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Held by the delivery in progress.
    pub(super) async fn delivery_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.delivery.lock().await
    }

    fn unsettled(&self) -> MutexGuard<'_, std::collections::BTreeSet<u64>> {
        self.unsettled.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A sequence for a new provisional record, unsettled until
    /// [`Journal::settle`].
    pub(super) fn begin_provisional(&self) -> u64 {
        let mut u = self.unsettled();
        let seq = super::spool::next_seq();
        u.insert(seq);
        if self.rows_since.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == ROWS_PER_DELIVERY {
            self.kick.notify_one();
        }
        seq
    }

    /// Resolves when enough was logged to deliver before the interval
    /// ends (a permit is kept if nobody waits yet).
    pub async fn backlog(&self) {
        self.kick.notified().await;
    }

    /// A delivery begins: rows made from now on count towards the next.
    pub(super) fn delivering(&self) {
        self.rows_since.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// The requests that made these provisional records are answered:
    /// their final records, if any, are in the spool.
    pub fn settle(&self, seqs: &[u64]) {
        let mut u = self.unsettled();
        for s in seqs {
            u.remove(s);
        }
    }

    /// Every provisional record with a lower sequence is settled, and any
    /// made later has a higher one.
    pub(super) fn settled_below(&self) -> u64 {
        let u = self.unsettled();
        u.first().copied().unwrap_or_else(super::spool::next_seq)
    }
}

impl Drop for Journal {
    /// Syncs what is left and stops the syncer.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p).unwrap().lines().map(str::to_owned).collect()
    }

    #[tokio::test]
    async fn urgent_records_are_durable_when_awaited_and_rotation_returns_them() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::open(d.path()).unwrap();
        let a = j.append(b"one", false).unwrap();
        let b = j.append(b"two", true).unwrap();
        assert!(b > a);
        j.durable(b).await.unwrap();
        assert_eq!(*j.shared.durable.borrow(), Some(b));
        let segs = j.rotate().await.unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(lines(&segs[0]), ["one", "two"]);
        // a later record goes to a new segment, not listed as closed
        j.append(b"three", false).unwrap();
        assert_eq!(j.rotate().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn records_nobody_waits_for_are_synced_within_the_read_window() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::open(d.path()).unwrap();
        let end = j.append(b"read", false).unwrap();
        let t = Instant::now();
        tokio::time::timeout(READ_SYNC * 20, j.durable(end))
            .await
            .unwrap()
            .unwrap();
        assert!(t.elapsed() >= READ_SYNC / 2, "synced in {:?}", t.elapsed());
    }

    #[tokio::test]
    async fn a_failed_journal_takes_no_more_records() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal::open(d.path()).unwrap();
        j.shared.lock().failed = true;
        assert!(j.append(b"x", true).is_err());
    }
}
