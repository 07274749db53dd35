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
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::records::BucketRecord;

/// Most entries a map keeps (absent names count: a flood of requests for
/// buckets that do not exist must not grow memory). Past it, the map is
/// emptied.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub(crate) struct Cache {
    generation: AtomicU64,
    buckets: Mutex<HashMap<String, Option<Arc<BucketRecord>>>>,
    system: Mutex<HashMap<String, Option<Arc<[u8]>>>>,
}

fn lock<K, V>(m: &Mutex<HashMap<K, V>>) -> MutexGuard<'_, HashMap<K, V>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn put<K: Eq + Hash, V>(c: &Cache, m: &Mutex<HashMap<K, V>>, since: u64, k: K, v: V) {
    let mut m = lock(m);
    // read under the map's lock: `forget` bumps it holding both locks
    if c.generation.load(Ordering::Acquire) != since {
        return;
    }
    if m.len() >= MAX_ENTRIES {
        m.clear();
    }
    m.insert(k, v);
}

impl Cache {
    /// Taken before reading the database for a miss.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn bucket(&self, name: &str) -> Option<Option<Arc<BucketRecord>>> {
        lock(&self.buckets).get(name).cloned()
    }

    pub(crate) fn put_bucket(&self, since: u64, name: &str, rec: Option<Arc<BucketRecord>>) {
        put(self, &self.buckets, since, name.to_owned(), rec);
    }

    pub(crate) fn system(&self, name: &str) -> Option<Option<Arc<[u8]>>> {
        lock(&self.system).get(name).cloned()
    }

    pub(crate) fn put_system(&self, since: u64, name: &str, v: Option<Arc<[u8]>>) {
        put(self, &self.system, since, name.to_owned(), v);
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
            b.remove(n);
        }
        for n in system {
            s.remove(n);
        }
    }
}
