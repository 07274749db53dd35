//! A row that rides with a request's first writing commit.
//!
//! Whoever serves a request can give it a [`Rider`]: a maker of one system
//! row. The first commit the request's task makes that writes something
//! and succeeds carries the row in the same transaction — durable with the
//! change, by the same `fsync`, at the price of one row. The server's
//! access log uses it so that a write's record needs no sync of its own:
//! the row is a provisional record, superseded when the final record
//! reaches the spool. The store knows nothing of what the row means.

use std::future::Future;
use std::sync::{Arc, OnceLock};

/// Makes the row (name, value) when a commit can carry it; None: nothing
/// to carry (yet).
pub type MakeRow = Box<dyn Fn() -> Option<(String, Vec<u8>)> + Send + Sync>;

/// A row offered to a request's first writing commit.
pub struct Rider {
    make: MakeRow,
    /// The row, once made: every commit of the request offers the same
    /// one (commits may run concurrently, e.g. DeleteObjects' keys), so a
    /// request has one row whichever of them carry it.
    made: std::sync::Mutex<Option<(String, Vec<u8>)>>,
    /// The name of the row a durable commit carried.
    carried: OnceLock<String>,
}

tokio::task_local! {
    static RIDER: Arc<Rider>;
}

impl Rider {
    pub fn new(make: MakeRow) -> Arc<Rider> {
        Arc::new(Rider {
            make,
            made: std::sync::Mutex::new(None),
            carried: OnceLock::new(),
        })
    }

    /// Whether a durable commit carried the row.
    pub fn rode(&self) -> bool {
        self.carried.get().is_some()
    }

    /// The name of the row a durable commit carried.
    pub fn carried(&self) -> Option<&str> {
        self.carried.get().map(String::as_str)
    }

    pub(crate) fn set_carried(&self, name: String) {
        let _ = self.carried.set(name);
    }

    /// The row, unless a commit carried it already: made on first need
    /// (the maker may have nothing to offer yet), the same row after.
    pub(crate) fn row(&self) -> Option<(String, Vec<u8>)> {
        if self.rode() {
            return None;
        }
        let mut made = self.made.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if made.is_none() {
            *made = (self.make)();
        }
        made.clone()
    }
}

/// Runs `f` with `rider` offered to its commits (those made in this task).
pub async fn ride<F: Future>(rider: Arc<Rider>, f: F) -> F::Output {
    RIDER.scope(rider, f).await
}

/// The rider of the current task, if any.
pub(crate) fn current() -> Option<Arc<Rider>> {
    RIDER.try_with(Arc::clone).ok()
}
