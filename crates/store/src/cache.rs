//! Decoded bucket records and chosen system records, kept between requests.
//! Every request reads its bucket's record (to authorize it, then to serve
//! it) and its owner's Block Public Access record; decoding the bucket
//! record's JSON, whose configurations are JSON strings inside it, cost a
//! 4 KiB GET about 5 % of the server's CPU (perf).
//!
//! A write is never served stale once acknowledged: the commit thread
//! drops every bucket and system record its batch wrote from here after
//! the commit and before any writer of the batch hears back
//! ([`Cache::forget`]). A reader that missed puts what it read only if
//! no batch forgot anything since it began reading ([`Cache::generation`]),
//! so a value read before a commit cannot be put back after that commit
//! forgot it. Requests running while a commit is in flight see the state
//! before or after it, as they would reading the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::records::BucketRecord;

/// Bytes a map holds at most, counting each entry as its name, its
/// encoded record and [`ENTRY_OVERHEAD`]; past it the map is emptied. A
/// bucket record carries every configuration of its bucket (up to 4 MiB
/// each), so a count alone would let one account make the server keep
/// gigabytes; absent names count too (a flood of requests for buckets
/// that do not exist).
const MAX_BYTES: usize = 16 << 20;
/// Records encoded larger than this are read from the database each time.
pub(crate) const MAX_RECORD: usize = 64 << 10;
/// What an entry costs beyond its name and record, roughly.
const ENTRY_OVERHEAD: usize = 256;

/// Names to what the database holds for them (None: nothing) and what
/// the entry costs.
struct Map<V> {
    entries: HashMap<String, (Option<V>, usize)>,
    bytes: usize,
}

impl<V> Default for Map<V> {
    fn default() -> Self {
        Map {
            entries: HashMap::new(),
            bytes: 0,
        }
    }
}

#[derive(Default)]
pub(crate) struct Cache {
    generation: AtomicU64,
    buckets: Mutex<Map<Arc<BucketRecord>>>,
    system: Mutex<Map<Arc<[u8]>>>,
}

fn lock<V>(m: &Mutex<Map<V>>) -> MutexGuard<'_, Map<V>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Puts `v`, `encoded` bytes in the database, unless a batch forgot
/// anything since `since` or the record is too large to keep.
fn put<V>(c: &Cache, m: &Mutex<Map<V>>, since: u64, k: &str, v: Option<V>, encoded: usize) {
    if encoded > MAX_RECORD {
        return;
    }
    let cost = k.len() + encoded + ENTRY_OVERHEAD;
    let mut m = lock(m);
    // read under the map's lock: `forget` bumps it holding both locks
    if c.generation.load(Ordering::Acquire) != since {
        return;
    }
    if m.bytes + cost > MAX_BYTES {
        m.entries.clear();
        m.bytes = 0;
    }
    if let Some((_, old)) = m.entries.insert(k.to_owned(), (v, cost)) {
        m.bytes = m.bytes.saturating_sub(old);
    }
    m.bytes += cost;
}

fn remove<V>(m: &mut Map<V>, k: &str) {
    if let Some((_, cost)) = m.entries.remove(k) {
        m.bytes = m.bytes.saturating_sub(cost);
    }
}

impl Cache {
    /// Taken before reading the database for a miss.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn bucket(&self, name: &str) -> Option<Option<Arc<BucketRecord>>> {
        lock(&self.buckets).entries.get(name).map(|(v, _)| v.clone())
    }

    /// `encoded`: the record's length in the database (0 when absent).
    pub(crate) fn put_bucket(&self, since: u64, name: &str, rec: Option<Arc<BucketRecord>>, encoded: usize) {
        put(self, &self.buckets, since, name, rec, encoded);
    }

    pub(crate) fn system(&self, name: &str) -> Option<Option<Arc<[u8]>>> {
        lock(&self.system).entries.get(name).map(|(v, _)| v.clone())
    }

    pub(crate) fn put_system(&self, since: u64, name: &str, v: Option<Arc<[u8]>>) {
        let encoded = v.as_ref().map_or(0, |v| v.len());
        put(self, &self.system, since, name, v, encoded);
    }

    /// Called by the commit thread after a batch that wrote these records
    /// committed (or failed), before its writers hear back.
    pub(crate) fn forget(&self, buckets: &[String], system: &[String]) {
        if buckets.is_empty() && system.is_empty() {
            return;
        }
        let mut b = lock(&self.buckets);
        let mut s = lock(&self.system);
        self.generation.fetch_add(1, Ordering::AcqRel);
        for n in buckets {
            remove(&mut b, n);
        }
        for n in system {
            remove(&mut s, n);
        }
    }

    /// Bytes the bucket and system maps account for (for tests).
    pub(crate) fn bytes(&self) -> (usize, usize) {
        (lock(&self.buckets).bytes, lock(&self.system).bytes)
    }
}
