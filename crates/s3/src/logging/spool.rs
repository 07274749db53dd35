//! What goes into the spool: one line per record, with where it goes
//! (source bucket, its owner, the logging configuration), and how durable
//! it must be before its request is answered.
//!
//! A write's record can reach the disk in two ways. Either the request
//! waits for a sync of the spool ([`Durability::Wait`]), or — the fast way
//! — a *provisional* record rides in the write's own metadata commit as a
//! row named [`PENDING`]`<run>/<sequence>` (see `strongroom_store::rider`),
//! made assuming the write succeeds as usual (200, or 204 for a DELETE, no
//! body, no version id). The entries of one group commit share one row
//! (named by the greatest entry name: one insertion per batch). When the
//! answer says otherwise, a final record that names the entry goes to the
//! spool ([`Durability::Rode`]), durable before the answer, and its
//! delivery removes the entry; otherwise the entry *is* the record. Once
//! every request of a row is answered the row is settled, and delivery
//! turns settled rows into log objects, removing them in the same commit
//! (rows of an earlier run are all settled: a crash answered them). Either way the record of an acknowledged write is durable before
//! the write is acknowledged, and delivered exactly once.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{LogConfig, journal};

/// Rows of provisional records of writes, named by request id.
pub const PENDING: &str = "access-log-pending/";

/// One spooled record, with where it goes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Spooled {
    pub src: String,
    pub src_account: String,
    pub cfg: LogConfig,
    /// Milliseconds since the epoch of the request.
    pub ms: i64,
    pub line: String,
    /// The provisional record's row this record supersedes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// Where a spooled record goes: the JSON head of a spool line.
#[derive(Serialize, Deserialize)]
struct Head<'a> {
    src: std::borrow::Cow<'a, str>,
    src_account: std::borrow::Cow<'a, str>,
    cfg: std::borrow::Cow<'a, LogConfig>,
    ms: i64,
    /// CRC-32C of the record: a line torn or damaged by a crash is skipped.
    crc: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<std::borrow::Cow<'a, str>>,
}

fn crc(line: &str) -> u32 {
    // CRC-32C is 32 bits wide: the cast loses nothing
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, line.as_bytes()) as u32
}

/// The marker of the spool-line format: `v2 TAB head-json TAB record`. The
/// record is kept as it will be delivered (no escaping: JSON text has no
/// raw tab, and a record has no newline), so spooling and delivering it
/// cost no more than a copy. Lines without the marker are the first
/// format: one JSON object (`Spooled`).
const SPOOL_V2: &str = "v2\t";

/// One spool line (or provisional row value) from borrowed parts: the
/// record `line` of a request to `src` (owned by `src_account`) made at
/// `ms`, superseding the provisional record `pending` if any.
fn encode(
    cfg: &LogConfig,
    src: &str,
    src_account: &str,
    ms: i64,
    line: &str,
    pending: Option<&str>,
) -> Result<Vec<u8>, serde_json::Error> {
    // The head is `Head` as serde_json writes it: the fields in order, the
    // first three (where the record goes) the same for every record of a
    // bucket, so their text is made once per thread and reused.
    /// The configuration, source and its account, and their head text.
    type Where = Option<(LogConfig, String, String, Vec<u8>)>;
    thread_local! {
        static WHERE: std::cell::RefCell<Where> = const { std::cell::RefCell::new(None) };
    }
    let mut out = Vec::with_capacity(SPOOL_V2.len() + 200 + line.len());
    out.extend_from_slice(SPOOL_V2.as_bytes());
    WHERE.with_borrow_mut(|w| -> Result<(), serde_json::Error> {
        let same = w
            .as_ref()
            .is_some_and(|(c, s, a, _)| c == cfg && s == src && a == src_account);
        if !same {
            let mut text = b"{\"src\":".to_vec();
            serde_json::to_writer(&mut text, src)?;
            text.extend_from_slice(b",\"src_account\":");
            serde_json::to_writer(&mut text, src_account)?;
            text.extend_from_slice(b",\"cfg\":");
            serde_json::to_writer(&mut text, cfg)?;
            *w = Some((cfg.clone(), src.to_owned(), src_account.to_owned(), text));
        }
        if let Some((.., text)) = w.as_ref() {
            out.extend_from_slice(text);
        }
        Ok(())
    })?;
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b",\"ms\":");
    out.extend_from_slice(n.format(ms).as_bytes());
    out.extend_from_slice(b",\"crc\":");
    out.extend_from_slice(n.format(crc(line)).as_bytes());
    if let Some(p) = pending {
        out.extend_from_slice(b",\"pending\":");
        serde_json::to_writer(&mut out, p)?;
    }
    out.extend_from_slice(b"}\t");
    out.extend_from_slice(line.as_bytes());
    Ok(out)
}

impl Spooled {
    #[cfg(test)]
    pub(super) fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        encode(
            &self.cfg,
            &self.src,
            &self.src_account,
            self.ms,
            &self.line,
            self.pending.as_deref(),
        )
    }

    /// A spool line (or provisional row) read back; None for a torn,
    /// damaged or foreign line.
    pub(super) fn decode(l: &str) -> Option<Spooled> {
        let Some(rest) = l.strip_prefix(SPOOL_V2) else {
            return serde_json::from_str(l).ok();
        };
        let (head, line) = rest.split_once('\t')?;
        let h: Head<'_> = serde_json::from_str(head).ok()?;
        (crc(line) == h.crc).then(|| Spooled {
            src: h.src.into_owned(),
            src_account: h.src_account.into_owned(),
            cfg: h.cfg.into_owned(),
            ms: h.ms,
            line: line.to_owned(),
            pending: h.pending.map(std::borrow::Cow::into_owned),
        })
    }
}

/// The next spool sequence: microseconds since the epoch, strictly
/// increasing within the process (and after a restart, as time goes on).
pub(super) fn next_seq() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(u64::MAX);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// How durable a record must be before its request is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A read or a refusal: written now, synced within
    /// [`journal::READ_SYNC`].
    Batched,
    /// A request that may have changed something: durable before the
    /// answer.
    Wait,
    /// A write whose provisional record rode in its own commit (this
    /// [`pending_ref`]), answered otherwise than assumed: the final record
    /// supersedes it, and is durable before the answer (else a power cut
    /// would leave the provisional record, with the wrong status or
    /// version id).
    Rode(String),
}

/// How a final record names the provisional record it supersedes: the
/// row that holds it and its entry there.
pub fn pending_ref(row: &str, entry: &str) -> String {
    format!("{row}#{entry}")
}

/// A [`pending_ref`] read back: the row and the entry (None for a record
/// spooled before rows held several entries: the row is the entry).
pub(super) fn split_ref(r: &str) -> (&str, Option<&str>) {
    match r.split_once('#') {
        Some((row, entry)) => (row, Some(entry)),
        None => (r, None),
    }
}

/// The provisional record of a write to `src` (owned by `src_account`) by
/// one request: its sequence (unsettled until the request settles it, see
/// [`journal::Journal::settle`]) and the entry (name, value) to carry in
/// the write's commit; the entries of one group commit share a row,
/// named by the greatest entry name.
pub fn provisional_row(
    journal: &journal::Journal,
    cfg: &LogConfig,
    src: &str,
    src_account: &str,
    line: &str,
) -> Option<(u64, (String, Vec<u8>))> {
    let value = encode(cfg, src, src_account, crate::now_ms(), line, None).ok()?;
    // names in increasing order: each commit's row lands at the end of the
    // table (one page touched), not at a random place in it
    let seq = journal.begin_provisional();
    Some((seq, (row_name(journal.run(), seq), value)))
}

fn row_name(run: &str, seq: u64) -> String {
    let mut n = itoa::Buffer::new();
    let digits = n.format(seq);
    let mut name = String::with_capacity(PENDING.len() + run.len() + 21);
    name.push_str(PENDING);
    name.push_str(run);
    name.push('/');
    // zero-padded to 20 digits (u64::MAX has 20): names sort by sequence
    name.extend(std::iter::repeat_n('0', 20usize.saturating_sub(digits.len())));
    name.push_str(digits);
    name
}

/// The run and sequence of a provisional record's row.
pub(super) fn row_of(name: &str) -> Option<(&str, u64)> {
    let (run, seq) = name.strip_prefix(PENDING)?.split_once('/')?;
    Some((run, seq.parse().ok()?))
}

/// Appends one record of a request to `src` (owned by `src_account`) to the
/// spool, returning once it is as durable as `durability` asks.
pub async fn spool(
    journal: &journal::Journal,
    cfg: LogConfig,
    src: &str,
    src_account: &str,
    line: String,
    durability: Durability,
) -> std::io::Result<()> {
    let wait = matches!(durability, Durability::Wait | Durability::Rode(_));
    let pending = match durability {
        Durability::Rode(row) => Some(row),
        _ => None,
    };
    let value = encode(&cfg, src, src_account, crate::now_ms(), &line, pending.as_deref());
    let end = journal.append(&value.map_err(std::io::Error::other)?, wait)?;
    if wait {
        journal.durable(end).await?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    pub(crate) fn spooled(partitioned: Option<super::super::DateSource>) -> Spooled {
        Spooled {
            src: "src".into(),
            src_account: "111122223333".into(),
            cfg: LogConfig {
                target: "logs".into(),
                prefix: "access/".into(),
                partitioned,
            },
            ms: 1_549_411_238_000,
            line: String::new(),
            pending: None,
        }
    }

    #[test]
    fn spool_lines_round_trip_and_torn_or_damaged_ones_are_skipped() {
        let mut s = spooled(Some(super::super::DateSource::EventTime));
        s.line = "owner src [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - ID REST.GET.OBJECT k \"GET /src/k HTTP/1.1\" 200 - 3 3 1 1 \"-\" \"ua 1\" - H SigV4 - AuthHeader h - - -".into();
        s.pending = Some(format!("{PENDING}ID"));
        let enc = s.encode().unwrap();
        let text = String::from_utf8(enc.clone()).unwrap();
        let back = Spooled::decode(&text).unwrap();
        assert_eq!(
            (back.src, back.src_account, back.ms, back.cfg, back.pending),
            (
                s.src.clone(),
                s.src_account.clone(),
                s.ms,
                s.cfg.clone(),
                s.pending.clone()
            )
        );
        assert_eq!(back.line, s.line);
        // every truncation (a write torn by a crash) is refused
        for n in 0..text.len() {
            assert!(Spooled::decode(&text[..n]).is_none(), "accepted a line torn at {n}");
        }
        // a damaged byte in the record (lost page contents) is refused
        let mut bad = enc.clone();
        let last = bad.len() - 5;
        bad[last] = 0;
        assert!(Spooled::decode(std::str::from_utf8(&bad).unwrap()).is_none());
        // the first format (one JSON object a line) is still read
        s.pending = None;
        let old = serde_json::to_string(&s).unwrap().replace(",\"pending\":null", "");
        assert_eq!(Spooled::decode(&old).unwrap().line, s.line);
    }

    #[test]
    fn heads_are_written_as_serde_json_writes_them() {
        let mut cases = Vec::new();
        for partitioned in [None, Some(super::super::DateSource::DeliveryTime)] {
            for (src, account) in [("src", "111122223333"), ("odd\"\\\u{1}é", "222233334444")] {
                for pending in [None, Some("access-log-pending/r/00000000000000000007#x\"y")] {
                    for ms in [0, -1, 1_549_411_238_000, i64::MAX] {
                        let mut cfg = spooled(partitioned).cfg;
                        cfg.prefix = format!("{src}/");
                        cases.push((cfg, src, account, ms, pending));
                    }
                }
            }
        }
        // twice: the second pass reuses each thread's cached head, and
        // alternating sources replace it
        for _ in 0..2 {
            for (cfg, src, account, ms, pending) in &cases {
                let line = format!("a record of {src} at {ms}");
                let head = Head {
                    src: (*src).into(),
                    src_account: (*account).into(),
                    cfg: std::borrow::Cow::Borrowed(cfg),
                    ms: *ms,
                    crc: crc(&line),
                    pending: pending.map(Into::into),
                };
                let mut want = SPOOL_V2.as_bytes().to_vec();
                serde_json::to_writer(&mut want, &head).unwrap();
                want.push(b'\t');
                want.extend_from_slice(line.as_bytes());
                let got = encode(cfg, src, account, *ms, &line, *pending).unwrap();
                assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
            }
        }
    }

    #[test]
    fn row_names_sort_by_sequence() {
        assert_eq!(row_name("r1", 0), format!("{PENDING}r1/{:020}", 0));
        assert_eq!(row_name("r1", 42), format!("{PENDING}r1/{:020}", 42));
        assert_eq!(row_name("r1", u64::MAX), format!("{PENDING}r1/{}", u64::MAX));
        assert!(row_name("r", 9) < row_name("r", 10));
        assert_eq!(row_of(&row_name("r", 7)), Some(("r", 7)));
    }

    #[test]
    fn sequences_increase() {
        let a = next_seq();
        let b = next_seq();
        assert!(b > a);
    }
}
