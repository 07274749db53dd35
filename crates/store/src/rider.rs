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

/// Marks a row of packed entries, as written before rows were compressed.
const PACKED: &[u8] = b"\0entries1\0";
/// Marks a row of packed entries compressed (LZ4 block): the marker, the
/// entries' length (u32, little-endian), the block.
const PACKED_LZ4: &[u8] = b"\0entries2\0";

/// One row's value holding `entries`, compressed: for each entry its name
/// and value, each preceded by its length (u32, little-endian). The records
/// of one batch share most of their text (bucket, owner, requester, client,
/// signing), so a row is a fraction of its entries' size: fewer pages for
/// the commit that carries it to write and for the delivery that removes it.
pub fn pack<N: AsRef<str>, V: AsRef<[u8]>>(entries: &[(N, V)]) -> Vec<u8> {
    let size: usize = entries
        .iter()
        .map(|(n, v)| 8 + n.as_ref().len() + v.as_ref().len())
        .sum();
    let mut plain = Vec::with_capacity(size);
    for (n, v) in entries {
        for part in [n.as_ref().as_bytes(), v.as_ref()] {
            // entries are single rows' worth: far below 4 GiB
            plain.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_le_bytes());
            plain.extend_from_slice(part);
        }
    }
    let mut out = Vec::with_capacity(PACKED_LZ4.len() + 4 + lz4_flex::block::get_maximum_output_size(size));
    out.extend_from_slice(PACKED_LZ4);
    out.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&lz4_flex::block::compress(&plain));
    out
}

/// The entries of a packed row (see [`unpack`]).
pub struct Entries<'a> {
    plain: std::borrow::Cow<'a, [u8]>,
}

impl Entries<'_> {
    /// Each entry's name and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut rest: &[u8] = &self.plain;
        // checked whole by `unpack`: every entry parses
        std::iter::from_fn(move || next_entry(&mut rest)?.ok())
    }
}

/// The next entry of `rest`: None at its end, Err when damaged.
fn next_entry<'v>(rest: &mut &'v [u8]) -> Option<Result<(&'v str, &'v [u8]), ()>> {
    fn take<'v>(rest: &mut &'v [u8]) -> Result<&'v [u8], ()> {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or(())?;
        let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| ())?;
        let (part, tail) = (tail.get(..len).ok_or(())?, tail.get(len..).ok_or(())?);
        *rest = tail;
        Ok(part)
    }
    if rest.is_empty() {
        return None;
    }
    Some((|| {
        let name = std::str::from_utf8(take(rest)?).map_err(|_| ())?;
        Ok((name, take(rest)?))
    })())
}

/// The entries of a packed row; None when `value` is not one (or is
/// damaged).
pub fn unpack(value: &[u8]) -> Option<Entries<'_>> {
    let plain = if let Some(rest) = value.strip_prefix(PACKED) {
        std::borrow::Cow::Borrowed(rest)
    } else {
        let rest = value.strip_prefix(PACKED_LZ4)?;
        let (len, block) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        // LZ4 expands at most 255-fold: a damaged length is refused before
        // anything is allocated for it
        if len > block.len().saturating_mul(255) {
            return None;
        }
        let plain = lz4_flex::block::decompress(block, len).ok()?;
        if plain.len() != len {
            return None;
        }
        std::borrow::Cow::Owned(plain)
    };
    let mut rest: &[u8] = &plain;
    while let Some(e) = next_entry(&mut rest) {
        e.ok()?;
    }
    Some(Entries { plain })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn owned(e: &Entries<'_>) -> Vec<(String, Vec<u8>)> {
        e.iter().map(|(n, v)| (n.to_owned(), v.to_vec())).collect()
    }

    #[test]
    fn packed_rows_round_trip_and_damaged_ones_are_refused() {
        let entries = vec![("a/1".to_owned(), b"one".to_vec()), ("a/2".to_owned(), Vec::new())];
        let v = pack(&entries);
        assert_eq!(owned(&unpack(&v).unwrap()), entries);
        assert!(owned(&unpack(&pack::<&str, &[u8]>(&[])).unwrap()).is_empty());
        // cut anywhere (a compressed block is whole or refused): refused
        for cut in 0..v.len() {
            assert!(unpack(&v[..cut]).is_none(), "accepted a row cut at {cut}");
        }
        // a byte changed: refused, or entries that parse; never a panic,
        // never an allocation the row cannot justify
        for i in 0..v.len() {
            for bit in [0x01, 0x5a, 0xff] {
                let mut w = v.clone();
                w[i] ^= bit;
                let _ = unpack(&w).map(|e| owned(&e));
            }
        }
        let mut huge = v.clone();
        huge[PACKED_LZ4.len()..PACKED_LZ4.len() + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack(&huge).is_none());
        // a stored length within bounds but not the entries' own: refused
        let real = u32::from_le_bytes(v[PACKED_LZ4.len()..PACKED_LZ4.len() + 4].try_into().unwrap());
        for wrong in [real - 1, real + 1, real * 2] {
            let mut w = v.clone();
            w[PACKED_LZ4.len()..PACKED_LZ4.len() + 4].copy_from_slice(&wrong.to_le_bytes());
            assert!(unpack(&w).is_none(), "accepted length {wrong} for {real}");
        }
        // a value that is not a packed row (a single record)
        assert!(unpack(b"v2\t{}\tline").is_none());
    }

    #[test]
    fn rows_written_before_compression_are_still_read() {
        let mut v = PACKED.to_vec();
        for part in [&b"a/1"[..], b"one", b"a/2", b""] {
            v.extend_from_slice(&u32::try_from(part.len()).unwrap().to_le_bytes());
            v.extend_from_slice(part);
        }
        assert_eq!(
            owned(&unpack(&v).unwrap()),
            vec![("a/1".to_owned(), b"one".to_vec()), ("a/2".to_owned(), Vec::new())]
        );
        // cut inside an entry: refused
        assert!(unpack(&v[..v.len() - 6]).is_none());
    }

    #[test]
    fn a_batch_of_similar_records_packs_small() {
        let entries: Vec<(String, Vec<u8>)> = (0..16)
            .map(|i| {
                let line = format!(
                    "v2\t{{\"src\":\"bucket\",\"ms\":{i}}}\towner bucket [03/Dec/2026:22:40:13 +0000] 127.0.0.1 \
                     arn:aws:iam::111111111111:user/main REQ{i:04} REST.PUT.OBJECT key{i} \"PUT /bucket/key{i} HTTP/1.1\" \
                     200 - - 4096 1 1 \"-\" \"aws-cli/1.45\" - HOST{i:060} SigV4 - AuthHeader host - - -"
                );
                (format!("access-log-pending/run/{i:020}"), line.into_bytes())
            })
            .collect();
        let plain: usize = entries.iter().map(|(n, v)| 8 + n.len() + v.len()).sum();
        let packed = pack(&entries);
        assert!(packed.len() * 3 < plain, "{} of {plain}", packed.len());
        assert_eq!(owned(&unpack(&packed).unwrap()), entries);
    }
}
