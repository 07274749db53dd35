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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Makes the row (name, value) when a commit can carry it; None: nothing
/// to carry (yet).
pub type MakeRow = Box<dyn Fn() -> Option<(String, Vec<u8>)> + Send + Sync>;

/// A row offered to a request's first writing commit.
pub struct Rider {
    make: MakeRow,
    rode: AtomicBool,
}

tokio::task_local! {
    static RIDER: Arc<Rider>;
}

impl Rider {
    pub fn new(make: MakeRow) -> Arc<Rider> {
        Arc::new(Rider {
            make,
            rode: AtomicBool::new(false),
        })
    }

    /// Whether a durable commit carried the row.
    pub fn rode(&self) -> bool {
        self.rode.load(Ordering::Acquire)
    }

    pub(crate) fn carried(&self) {
        self.rode.store(true, Ordering::Release);
    }

    /// The row, unless a commit carried it already.
    pub(crate) fn row(&self) -> Option<(String, Vec<u8>)> {
        if self.rode() { None } else { (self.make)() }
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
