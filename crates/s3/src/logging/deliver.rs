//! Delivery: closed spool segments and settled provisional records of
//! writes (see `spool`) become log objects in their target buckets, each
//! batch in one metadata commit with what marks it delivered, so each
//! record is delivered exactly once, whatever crashes in between. The
//! writes are the log-delivery service's own, never through the front
//! door, so they are never logged (no loop).

use s3s::dto::*;
use strongroom_store::{BucketRecord, StoreError};

use super::spool::{PENDING, Spooled};
use super::{DELIVERY_PRINCIPAL, DONE, DateSource, LogConfig, MAX_PER_OBJECT, delivery_allowed};
use crate::Strongroom;

/// Removes the provisional records final records supersede (`refs`, see
/// [`super::pending_ref`]): each entry from its row, the row when it is
/// left empty.
fn supersede(txn: &mut strongroom_store::Txn<'_>, refs: &[String]) -> Result<(), StoreError> {
    let mut by_row: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for r in refs {
        let (row, entry) = super::spool::split_ref(r);
        by_row.entry(row).or_default().extend(entry);
    }
    for (row, gone) in by_row {
        let value = txn.system(row)?;
        let entries = value.as_deref().and_then(strongroom_store::rider::unpack);
        let kept: Vec<(&str, &[u8])> = entries
            .as_ref()
            .map(|e| e.iter().filter(|(n, _)| !gone.contains(n)).collect())
            .unwrap_or_default();
        if kept.is_empty() {
            txn.delete_system(row)?;
        } else {
            txn.put_system(row, &strongroom_store::rider::pack(&kept))?;
        }
    }
    Ok(())
}

/// Records of one source bucket and configuration.
type Group = ((String, LogConfig), Vec<Spooled>);

/// A log object ready to commit: its blob is written.
struct Prepared {
    target: BucketRecord,
    key: String,
    rec: strongroom_store::ObjectRecord,
    pending: strongroom_store::PendingSegment,
}

fn utc(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The key of a log object of records of `s` (the group's first), made at
/// `now_ms`, ending in `unique`.
fn object_key(s: &Spooled, region: &str, now_ms: i64, unique: &str) -> String {
    let stamp = |t: time::OffsetDateTime| {
        format!(
            "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    let delivered = utc(now_ms);
    match s.cfg.partitioned {
        None => format!("{}{}-{unique}", s.cfg.prefix, stamp(delivered)),
        Some(src) => {
            let d = match src {
                DateSource::EventTime => utc(s.ms),
                DateSource::DeliveryTime => delivered,
            };
            format!(
                "{}{}/{region}/{}/{:04}/{:02}/{:02}/{}-{unique}",
                s.cfg.prefix,
                s.src_account,
                s.src,
                d.year(),
                u8::from(d.month()),
                d.day(),
                stamp(delivered)
            )
        }
    }
}

impl Strongroom {
    /// Delivers every spooled record: closes the current segment and turns
    /// each closed segment into log objects (one per source bucket and
    /// configuration, at most 10,000 records each), committed together with
    /// a marker that the segment is delivered and the removal of the
    /// provisional records its records supersede; then removes the segment.
    /// Then the settled provisional records nothing superseded.
    /// Records whose target is gone, or no longer lets the log-delivery
    /// service write, are dropped (as AWS stops delivering). Returns the
    /// records delivered.
    pub async fn deliver_logs(&self) -> Result<usize, StoreError> {
        let Some(journal) = &self.access_log else { return Ok(0) };
        let _one_at_a_time = journal.delivery_lock().await;
        journal.delivering();
        // rows below this are settled: the final records that supersede
        // them are in the segments closed next
        let settled = journal.settled_below();
        let segments = journal.rotate().await.map_err(StoreError::Io)?;
        let mut delivered = 0;
        let mut all = true;
        for seg in segments {
            match self.deliver_segment(&seg).await? {
                Some(n) => delivered += n,
                None => all = false,
            }
        }
        // a row whose superseding record is in a segment not delivered yet
        // waits for it
        // a bounded batch at a time (memory stays flat however many)
        if all {
            while let Some((n, more)) = self.deliver_rows(journal.run(), settled).await? {
                delivered += n;
                if !more {
                    break;
                }
            }
        }
        Ok(delivered)
    }

    /// Resolves when enough was logged to deliver before the interval
    /// ends; never without access logs.
    pub async fn log_backlog(&self) {
        match &self.access_log {
            Some(j) => j.backlog().await,
            None => std::future::pending().await,
        }
    }

    /// Delivers one closed segment; None when its commit failed (retried
    /// at the next delivery).
    async fn deliver_segment(&self, seg: &std::path::Path) -> Result<Option<usize>, StoreError> {
        let name = seg.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let marker = format!("{DONE}{name}");
        if self.store.system(&marker)?.is_none() {
            let text = std::fs::read_to_string(seg).map_err(StoreError::Io)?;
            // a torn or damaged line (a crash mid-append) is skipped: its
            // request was not acknowledged, or its record is in a row
            let records: Vec<Spooled> = text.lines().filter_map(Spooled::decode).collect();
            let refs: Vec<String> = records.iter().filter_map(|s| s.pending.clone()).collect();
            let (m, m2) = (marker.clone(), marker.clone());
            let done = self
                .deliver_records(
                    records,
                    &name,
                    // a delivery cut short (shutdown) may have committed it
                    move |txn| Ok(txn.system(&m2)?.is_none()),
                    move |txn| {
                        txn.put_system(&m, b"delivered")?;
                        supersede(txn, &refs)
                    },
                )
                .await?;
            if done.is_none() {
                return Ok(None);
            }
            std::fs::remove_file(seg).map_err(StoreError::Io)?;
            self.store.commit(move |t| t.delete_system(&marker)).await?;
            return Ok(done);
        }
        // delivered before a crash: only the clean-up is left
        std::fs::remove_file(seg).map_err(StoreError::Io)?;
        self.store.commit(move |t| t.delete_system(&marker)).await?;
        Ok(Some(0))
    }

    /// Delivers settled provisional records — this run's rows whose
    /// entries are all below `settled`, and every row of an earlier run —
    /// about [`MAX_PER_OBJECT`] at a time (whole rows). Each row is removed
    /// in the commit that delivers it. The records delivered and whether
    /// more rows may be due, or None when that commit failed.
    async fn deliver_rows(&self, run: &str, settled: u64) -> Result<Option<(usize, bool)>, StoreError> {
        let mut rows = Vec::new();
        let mut records = Vec::new();
        let mut after: Option<String> = None;
        let mut more = false;
        'scan: loop {
            let page = self.store.system_page(PENDING, after.as_deref(), 256)?;
            let last = page.len() < 256;
            for (name, value) in page {
                after = Some(name.clone());
                // a row is named by its greatest entry
                match super::spool::row_of(&name) {
                    Some((r, seq)) if r == run && seq >= settled => continue,
                    _ => {}
                }
                match strongroom_store::rider::unpack(&value) {
                    Some(entries) => records.extend(
                        entries
                            .iter()
                            .filter_map(|(_, v)| std::str::from_utf8(v).ok().and_then(Spooled::decode)),
                    ),
                    // a row of one record, from before rows held several
                    None => records.extend(std::str::from_utf8(&value).ok().and_then(Spooled::decode)),
                }
                rows.push(name);
                if records.len() >= MAX_PER_OBJECT {
                    more = true;
                    break 'scan;
                }
            }
            if last {
                break;
            }
        }
        if rows.is_empty() {
            return Ok(Some((0, false)));
        }
        let unique = rows.first().cloned().unwrap_or_default();
        let check = rows.clone();
        let delivered = self
            .deliver_records(
                records,
                &unique,
                // a delivery cut short (shutdown) may have committed them
                move |txn| txn.system_has_all(&check),
                move |txn| txn.delete_system_rows(&rows),
            )
            .await?;
        Ok(delivered.map(|n| (n, more)))
    }

    /// Turns `records` into log objects committed together with `also`,
    /// if `fresh` still holds in that commit (checked before it writes);
    /// the records delivered, or None when the commit failed or found them
    /// delivered.
    async fn deliver_records(
        &self,
        records: Vec<Spooled>,
        unique: &str,
        fresh: impl FnOnce(&strongroom_store::Txn<'_>) -> Result<bool, StoreError> + Send + 'static,
        also: impl FnOnce(&mut strongroom_store::Txn<'_>) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<Option<usize>, StoreError> {
        let mut groups: Vec<Group> = Vec::new();
        for s in records {
            match groups.iter_mut().find(|((src, cfg), _)| *src == s.src && *cfg == s.cfg) {
                Some((_, v)) => v.push(s),
                None => groups.push(((s.src.clone(), s.cfg.clone()), vec![s])),
            }
        }
        let now = crate::now_ms();
        let mut prepared = Vec::new();
        let mut count = 0;
        for (_, records) in &groups {
            for (i, chunk) in records.chunks(MAX_PER_OBJECT).enumerate() {
                match self.prepare(chunk, now, &format!("{unique}{i}")).await {
                    Ok(Some(p)) => {
                        count += chunk.len();
                        prepared.push(p);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        for p in prepared {
                            self.store.discard(p.pending);
                        }
                        return Err(e);
                    }
                }
            }
        }
        let pendings: Vec<strongroom_store::PendingSegment> = prepared
            .iter()
            .map(|p| strongroom_store::PendingSegment {
                segment: p.pending.segment.clone(),
                inline_data: p.pending.inline_data.clone(),
            })
            .collect();
        let res = self
            .store
            .commit(move |txn| -> Result<(), crate::error::Fail> {
                if !fresh(txn)? {
                    return Err(crate::error::Fail(s3s::s3_error!(InternalError, "already delivered")));
                }
                for (mut p, pending) in prepared.into_iter().zip(pendings) {
                    let brec = crate::error::decided_in(txn, &p.target.name, &p.target.id)?;
                    if pending.inline_data.is_some() {
                        txn.add_segment(&pending)?;
                    }
                    crate::versioning::place(txn, &brec, &p.key, &mut p.rec)?;
                }
                also(txn)?;
                Ok(())
            })
            .await;
        match res {
            Ok(()) => Ok(Some(count)),
            Err(e) => {
                tracing::warn!(unique = %unique, error = %e.0.message().unwrap_or_default(), "access-log delivery failed: retried later");
                Ok(None)
            }
        }
    }

    /// The log object of `chunk` (records of one source and configuration),
    /// its blob written: None when its target cannot take it.
    async fn prepare(&self, chunk: &[Spooled], now: i64, unique: &str) -> Result<Option<Prepared>, StoreError> {
        let Some(first) = chunk.first() else { return Ok(None) };
        let target = self
            .store
            .bucket(&first.cfg.target)?
            .filter(|t| delivery_allowed(&self.store, t, &first.src, &first.src_account, &first.cfg.prefix));
        let Some(target) = target else {
            tracing::warn!(
                source = %first.src,
                target = %first.cfg.target,
                records = chunk.len(),
                "access-log target gone or not writable by the log-delivery service: records dropped"
            );
            return Ok(None);
        };
        let key = object_key(first, &self.settings.region, now, &unique_suffix(unique));
        self.write_blob(target, key, body(chunk))
            .await
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.0.message().unwrap_or("log object not written").to_owned()))
    }

    /// Writes a log object's blob (SSE-S3, owned by the target's owner).
    async fn write_blob(
        &self,
        target: BucketRecord,
        key: String,
        body: Vec<bytes::Bytes>,
    ) -> Result<Prepared, crate::error::Fail> {
        use crate::checksum::{Algo, hex};
        use crate::ingest::{BodyClaims, ChecksumRequest, ingest, stored};
        let caller = strongroom_kms::Caller {
            account_id: target.owner.clone(),
            arn: DELIVERY_PRINCIPAL.to_owned(),
            access_key: String::new(),
            source_ip: String::new(),
            via_service: Some(DELIVERY_PRINCIPAL.to_owned()),
            identity: None,
        };
        // log objects are SSE-S3, as AWS delivers them (server access logs
        // cannot be delivered with KMS)
        let sse = crate::sse::SseRequest {
            algorithm: Some(ServerSideEncryption::from_static(ServerSideEncryption::AES256)),
            ..crate::sse::SseRequest::default()
        };
        let keys = self
            .crypt
            .keys_for_write(&target, &key, &sse, true, &caller)
            .await
            .map_err(crate::error::Fail)?;
        let len: usize = body.iter().map(bytes::Bytes::len).sum();
        let headers = http::HeaderMap::new();
        let body = futures::stream::iter(body.into_iter().map(Ok::<_, std::io::Error>));
        let got = ingest(
            &self.store,
            Some(StreamingBlob::wrap(body)),
            BodyClaims {
                content_length: i64::try_from(len).ok(),
                content_md5: None,
                checksum: ChecksumRequest::default(),
                headers: &headers,
                trailers: None,
                max_size: crate::MAX_PUT_SIZE,
                default_algo: Some(Algo::Crc64Nvme),
            },
            &keys.keys,
        )
        .await
        .map_err(crate::error::Fail)?;
        let rec = strongroom_store::ObjectRecord {
            size: got.size,
            etag: hex(&keys.etag(&got.md5)),
            last_modified_ms: crate::now_ms(),
            owner: target.owner.clone(),
            version_id: None,
            headers: strongroom_store::ObjectHeaders {
                content_type: Some("text/plain".into()),
                ..strongroom_store::ObjectHeaders::default()
            },
            tags: Vec::new(),
            checksum: stored(&got.checksum, ChecksumType::FULL_OBJECT),
            segments: vec![got.pending.segment.clone()],
            parts: Vec::new(),
            upload_id: None,
            sse: Some(keys.record),
            delete_marker: false,
            retention: None,
            legal_hold: false,
        };
        Ok(Prepared {
            target,
            key,
            rec,
            pending: got.pending,
        })
    }
}

/// The text of a log object: the records' lines, in pieces of about
/// [`BODY_PIECE`] bytes, as a request body arrives. One buffer of the whole
/// object (megabytes) would be grown by copying, and sealed as one piece
/// into another buffer as large: fresh memory the kernel zeroes at every
/// delivery.
fn body(chunk: &[Spooled]) -> Vec<bytes::Bytes> {
    let mut pieces = Vec::new();
    let mut piece = Vec::with_capacity(BODY_PIECE);
    for s in chunk {
        if !piece.is_empty() && piece.len() + s.line.len() >= BODY_PIECE {
            pieces.push(bytes::Bytes::from(std::mem::replace(
                &mut piece,
                Vec::with_capacity(BODY_PIECE),
            )));
        }
        piece.extend_from_slice(s.line.as_bytes());
        piece.push(b'\n');
    }
    if !piece.is_empty() {
        pieces.push(bytes::Bytes::from(piece));
    }
    pieces
}

/// The size of a log object's body pieces.
const BODY_PIECE: usize = 64 * 1024;

/// A 16-character unique suffix for a log object's key, from the segment
/// name and chunk index.
fn unique_suffix(seed: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
    hex_simd::encode_to_string(&d.as_ref()[..8], hex_simd::AsciiCase::Upper)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::logging::spool::tests::spooled;

    #[test]
    fn keys_simple_and_partitioned() {
        let now = 1_549_497_600_000; // 2019-02-07 00:00:00
        let u = "0123456789ABCDEF";
        assert_eq!(
            object_key(&spooled(None), "us-east-1", now, u),
            "access/2019-02-07-00-00-00-0123456789ABCDEF"
        );
        assert_eq!(
            object_key(&spooled(Some(DateSource::EventTime)), "us-east-1", now, u),
            "access/111122223333/us-east-1/src/2019/02/06/2019-02-07-00-00-00-0123456789ABCDEF"
        );
        assert_eq!(
            object_key(&spooled(Some(DateSource::DeliveryTime)), "us-east-1", now, u),
            "access/111122223333/us-east-1/src/2019/02/07/2019-02-07-00-00-00-0123456789ABCDEF"
        );
        assert_eq!(unique_suffix("seg-00000000000000000001.log0").len(), 16);
    }

    #[test]
    fn a_log_objects_body_is_its_lines_in_pieces() {
        let records: Vec<Spooled> = (0..5000)
            .map(|i| {
                let mut s = spooled(None);
                s.line = format!("record {i} {}", "x".repeat(i % 97));
                s
            })
            .collect();
        let pieces = body(&records);
        assert!(pieces.len() > 1, "{} pieces", pieces.len());
        assert!(
            pieces.iter().all(|p| p.len() <= BODY_PIECE),
            "a piece above {BODY_PIECE}"
        );
        let text: Vec<u8> = pieces.concat();
        let want: String = records.iter().map(|s| format!("{}\n", s.line)).collect();
        assert_eq!(text, want.into_bytes());
        assert!(body(&[]).is_empty());
    }
}
