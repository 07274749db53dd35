//! A row that rides with a request's first writing commit.
//!
//! Whoever serves a request can give it a [`Rider`]: a maker of one named
//! entry. The first commit the request's task makes that writes something
//! and succeeds carries the entry in the same transaction — durable with
//! the change, by the same `fsync`. The entries of all the commits of one
//! group commit are carried together as one system row (see [`pack`]),
//! named by the greatest entry name: one insertion per batch, not one per
//! request. The server's access log uses it so that a write's record needs
//! no sync of its own: the entry is a provisional record, superseded when
//! the final record reaches the spool. The store knows nothing of what an
//! entry means.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Makes the entry (name, value) when a commit can carry it; None: nothing
/// to carry (yet).
pub type MakeRow = Box<dyn Fn() -> Option<(String, Vec<u8>)> + Send + Sync>;

/// Where a durable commit carried a request's entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carried {
    /// The system row holding the batch's entries.
    pub row: String,
    /// The entry's own name within it.
    pub name: String,
}

#[derive(Default)]
struct State {
    /// The entry, once made: a request has one entry whichever commit
    /// carries it.
    made: Option<(String, Vec<u8>)>,
    /// A commit in flight holds the entry; others carry nothing meanwhile.
    taken: bool,
}

/// An entry offered to a request's first writing commit.
pub struct Rider {
    make: MakeRow,
    state: Mutex<State>,
    carried: OnceLock<Carried>,
}

tokio::task_local! {
    static RIDER: Arc<Rider>;
}

impl Rider {
    pub fn new(make: MakeRow) -> Arc<Rider> {
        Arc::new(Rider {
            make,
            state: Mutex::new(State::default()),
            carried: OnceLock::new(),
        })
    }

    /// Whether a durable commit carried the entry.
    pub fn rode(&self) -> bool {
        self.carried.get().is_some()
    }

    /// Where a durable commit carried the entry.
    pub fn carried(&self) -> Option<&Carried> {
        self.carried.get()
    }

    pub(crate) fn set_carried(&self, c: Carried) {
        let _ = self.carried.set(c);
    }

    /// The entry for one commit to carry: made on first need (the maker
    /// may have nothing to offer yet), then held by that commit until it
    /// carries it or gives it back ([`Rider::release`]). None when carried
    /// or held already: concurrent commits of one request (DeleteObjects'
    /// keys) never carry it twice. A write none of whose commits carried
    /// the entry is the caller's to make durable another way.
    pub(crate) fn take(&self) -> Option<(String, Vec<u8>)> {
        if self.rode() {
            return None;
        }
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.taken {
            return None;
        }
        if st.made.is_none() {
            st.made = (self.make)();
        }
        let row = st.made.clone()?;
        st.taken = true;
        Some(row)
    }

    /// A commit that took the entry did not carry it (wrote nothing,
    /// failed): a later commit may.
    pub(crate) fn release(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).taken = false;
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

/// Marks a row of packed entries.
const PACKED: &[u8] = b"\0entries1\0";

/// One row's value holding `entries`: the marker, then for each entry its
/// name and value, each preceded by its length (u32, little-endian).
pub fn pack<N: AsRef<str>, V: AsRef<[u8]>>(entries: &[(N, V)]) -> Vec<u8> {
    let size: usize = entries
        .iter()
        .map(|(n, v)| 8 + n.as_ref().len() + v.as_ref().len())
        .sum();
    let mut out = Vec::with_capacity(PACKED.len() + size);
    out.extend_from_slice(PACKED);
    for (n, v) in entries {
        for part in [n.as_ref().as_bytes(), v.as_ref()] {
            // entries are single rows' worth: far below 4 GiB
            out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// The entries of a packed row, borrowed from it; None when `value` is not
/// one (or is damaged).
pub fn unpack(value: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    let mut rest = value.strip_prefix(PACKED)?;
    fn take<'v>(rest: &mut &'v [u8]) -> Option<&'v [u8]> {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        let (part, tail) = (tail.get(..len)?, tail.get(len..)?);
        *rest = tail;
        Some(part)
    }
    let mut out = Vec::new();
    while !rest.is_empty() {
        let name = std::str::from_utf8(take(&mut rest)?).ok()?;
        let v = take(&mut rest)?;
        out.push((name, v));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn packed_rows_round_trip_and_damaged_ones_are_refused() {
        let entries = vec![("a/1".to_owned(), b"one".to_vec()), ("a/2".to_owned(), Vec::new())];
        let v = pack(&entries);
        let owned = |e: Vec<(&str, &[u8])>| -> Vec<(String, Vec<u8>)> {
            e.into_iter().map(|(n, v)| (n.to_owned(), v.to_vec())).collect()
        };
        assert_eq!(owned(unpack(&v).unwrap()), entries);
        assert!(unpack(&pack::<&str, &[u8]>(&[])).unwrap().is_empty());
        // cut anywhere: refused, or (at an entry's end) the entries before;
        // a byte changed: never a panic
        for cut in 0..v.len() {
            if let Some(got) = unpack(&v[..cut]).map(owned) {
                assert!(got.len() < entries.len() && entries.starts_with(&got), "cut at {cut}");
            }
        }
        for i in 0..v.len() {
            let mut w = v.clone();
            w[i] ^= 0x5a;
            let _ = unpack(&w);
        }
        // a value that is not a packed row (a single record)
        assert!(unpack(b"v2\t{}\tline").is_none());
    }
}
