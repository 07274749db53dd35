//! Server access logging: a bucket's logging configuration
//! (Put/GetBucketLogging with AWS's validation), the durable spool of
//! records, and their delivery to the target bucket as log objects.
//!
//! A record is appended to the spool ([`journal`]: segment files) before
//! its request is answered, so no acknowledged request loses its record to
//! a crash; the record of a request that may have changed something is
//! also made durable (group-committed, one `fdatasync` a batch) before its
//! answer, and a read's within [`journal::READ_SYNC`]. Delivery runs in the
//! background: it closes the current segment and turns each closed segment
//! into log objects, written in one metadata commit with a marker that the
//! segment is delivered, so each record is delivered exactly once, whatever
//! crashes in between. Delivery writes are made by the log-delivery service
//! itself, never through the front door, so they are never logged: a bucket
//! that logs into itself, or two buckets that log into each other, only
//! ever carry records of client requests (no loop, by construction).

pub mod journal;
pub mod record;

use std::sync::atomic::{AtomicU64, Ordering};

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use strongroom_access::config::LOGGING_CONFIG;
use strongroom_iam::policy::{Context, Kind, Outcome, Policy, PrincipalMatch, Subject};
use strongroom_store::{BucketRecord, Store, StoreError};

use crate::Strongroom;
use crate::error::custom;

/// The service principal log objects are delivered by.
pub const DELIVERY_PRINCIPAL: &str = "logging.s3.amazonaws.com";
/// Marker records of delivered segments (removed with their segment).
const DONE: &str = "access-log-done/";
/// Records in one log object at most.
const MAX_PER_OBJECT: usize = 10_000;

/// Which date a partitioned key is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DateSource {
    EventTime,
    DeliveryTime,
}

/// A bucket's logging configuration as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    pub target: String,
    pub prefix: String,
    /// Partitioned keys (`prefix/<account>/<region>/<bucket>/YYYY/MM/DD/...`)
    /// and their date; None for simple keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioned: Option<DateSource>,
}

/// The logging configuration stored in a bucket config value; None when
/// logging is off or the value does not decode (logged).
pub fn config(value: Option<&str>) -> Option<LogConfig> {
    let v = value?;
    match serde_json::from_str(v) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "unreadable logging configuration: nothing is logged");
            None
        }
    }
}

fn invalid_target(m: &str) -> s3s::S3Error {
    custom("InvalidTargetBucketForLogging", http::StatusCode::BAD_REQUEST, m)
}

/// True when `target`'s bucket policy lets the log-delivery service put
/// log objects of `src` (owned by `src_account`) under `prefix`, with
/// aws:SourceAccount and aws:SourceArn evaluated for real.
pub fn delivery_allowed(store: &Store, target: &BucketRecord, src: &str, src_account: &str, prefix: &str) -> bool {
    let Ok(Some(text)) = strongroom_access::config::bucket_policy_text(store, target) else {
        return false;
    };
    let Ok(mut policy) = Policy::parse(&text, Kind::Resource) else {
        return false;
    };
    let Ok(ids) = strongroom_access::config::policy_bindings(target) else {
        return false;
    };
    policy.bind(ids);
    let who = Subject {
        account: Some(src_account),
        arn: None,
        role_arn: None,
        canonical_id: None,
        is_root: false,
        service: Some(DELIVERY_PRINCIPAL),
        entity_id: None,
    };
    let mut ctx = Context::new();
    ctx.set("aws:SourceAccount", src_account);
    ctx.set("aws:SourceArn", format!("arn:aws:s3:::{src}"));
    let resource = format!("arn:aws:s3:::{}/{prefix}", target.name);
    policy.evaluate(&who, "s3:PutObject", &resource, &ctx) == Outcome::Allow(PrincipalMatch::Direct)
}

pub(crate) async fn put_bucket_logging(
    s3: &Strongroom,
    req: S3Request<PutBucketLoggingInput>,
) -> S3Result<S3Response<PutBucketLoggingOutput>> {
    let b = crate::decided_bucket(&req)?;
    let Some(le) = req.input.bucket_logging_status.logging_enabled else {
        // an empty status turns logging off
        crate::bucket::set_config(s3, &b, LOGGING_CONFIG, None).await?;
        return Ok(S3Response::new(PutBucketLoggingOutput {}));
    };
    let target = crate::error::store(s3.store.bucket(&le.target_bucket))?
        .ok_or_else(|| invalid_target("The target bucket for logging does not exist"))?;
    // BucketOwnerEnforced: log objects belong to the target's owner, so a
    // grant is accepted only when it says that (FULL_CONTROL to the owner)
    let target_owner = s3.owner_of(&target.owner);
    let owner_only = |g: &TargetGrant| {
        g.permission
            .as_ref()
            .is_some_and(|p| p.as_str() == BucketLogsPermission::FULL_CONTROL)
            && g.grantee
                .as_ref()
                .is_some_and(|e| e.id.is_some() && e.id == target_owner.id)
    };
    if !le.target_grants.as_deref().unwrap_or_default().iter().all(owner_only) {
        return Err(custom(
            "AccessControlListNotSupported",
            http::StatusCode::BAD_REQUEST,
            "The target bucket does not allow ACLs: TargetGrants are not supported with Object Ownership BucketOwnerEnforced",
        ));
    }
    if crate::lock::of(&target).is_some_and(|l| l.days.is_some() || l.years.is_some()) {
        return Err(invalid_target(
            "The target bucket for logging must not have a default Object Lock retention period",
        ));
    }
    if !delivery_allowed(&s3.store, &target, &b.name, &b.owner, &le.target_prefix) {
        return Err(invalid_target(
            "The target bucket's policy must allow the logging service principal (logging.s3.amazonaws.com) s3:PutObject for this source bucket",
        ));
    }
    let partitioned = le.target_object_key_format.and_then(|f| f.partitioned_prefix).map(|p| {
        match p.partition_date_source.as_ref().map(PartitionDateSource::as_str) {
            Some(PartitionDateSource::DELIVERY_TIME) => DateSource::DeliveryTime,
            _ => DateSource::EventTime,
        }
    });
    let cfg = LogConfig {
        target: le.target_bucket,
        prefix: le.target_prefix,
        partitioned,
    };
    let json = serde_json::to_string(&cfg).map_err(|e| s3_error!(InternalError, "{e}"))?;
    crate::bucket::set_config(s3, &b, LOGGING_CONFIG, Some(json)).await?;
    Ok(S3Response::new(PutBucketLoggingOutput {}))
}

pub(crate) async fn get_bucket_logging(
    _s3: &Strongroom,
    req: S3Request<GetBucketLoggingInput>,
) -> S3Result<S3Response<GetBucketLoggingOutput>> {
    let b = crate::decided_bucket(&req)?;
    let logging_enabled = config(b.configs.get(LOGGING_CONFIG).map(String::as_str)).map(|c| LoggingEnabled {
        target_bucket: c.target,
        target_grants: None,
        target_object_key_format: Some(match c.partitioned {
            None => TargetObjectKeyFormat {
                partitioned_prefix: None,
                simple_prefix: Some(SimplePrefix {}),
            },
            Some(d) => TargetObjectKeyFormat {
                partitioned_prefix: Some(PartitionedPrefix {
                    partition_date_source: Some(PartitionDateSource::from_static(match d {
                        DateSource::EventTime => PartitionDateSource::EVENT_TIME,
                        DateSource::DeliveryTime => PartitionDateSource::DELIVERY_TIME,
                    })),
                }),
                simple_prefix: None,
            },
        }),
        target_prefix: c.prefix,
    });
    Ok(S3Response::new(GetBucketLoggingOutput { logging_enabled }))
}

/// One spooled record, with where it goes.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Spooled {
    src: String,
    src_account: String,
    cfg: LogConfig,
    /// Milliseconds since the epoch of the request.
    ms: i64,
    line: String,
}

/// Where a spooled record goes: the JSON head of a spool line.
#[derive(Serialize, Deserialize)]
struct Head<'a> {
    src: std::borrow::Cow<'a, str>,
    src_account: std::borrow::Cow<'a, str>,
    cfg: LogConfig,
    ms: i64,
    /// CRC-32C of the record: a line torn or damaged by a crash is skipped.
    crc: u32,
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

impl Spooled {
    fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let head = Head {
            src: self.src.as_str().into(),
            src_account: self.src_account.as_str().into(),
            cfg: self.cfg.clone(),
            ms: self.ms,
            crc: crc(&self.line),
        };
        let mut out = Vec::with_capacity(SPOOL_V2.len() + 128 + self.line.len());
        out.extend_from_slice(SPOOL_V2.as_bytes());
        serde_json::to_writer(&mut out, &head)?;
        out.push(b'\t');
        out.extend_from_slice(self.line.as_bytes());
        Ok(out)
    }

    /// A spool line read back; None for a torn, damaged or foreign line.
    fn decode(l: &str) -> Option<Spooled> {
        let Some(rest) = l.strip_prefix(SPOOL_V2) else {
            return serde_json::from_str(l).ok();
        };
        let (head, line) = rest.split_once('\t')?;
        let h: Head<'_> = serde_json::from_str(head).ok()?;
        (crc(line) == h.crc).then(|| Spooled {
            src: h.src.into_owned(),
            src_account: h.src_account.into_owned(),
            cfg: h.cfg,
            ms: h.ms,
            line: line.to_owned(),
        })
    }
}

/// The next spool sequence: microseconds since the epoch, strictly
/// increasing within the process (and after a restart, as time goes on).
fn next_seq() -> u64 {
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

/// Appends one record of a request to `src` (owned by `src_account`) to the
/// spool. With `wait` (a request that may have changed something), returns
/// once the record is durable; otherwise once it is written, to be synced
/// with the next batch (see [`journal`]).
pub async fn spool(
    journal: &journal::Journal,
    cfg: LogConfig,
    src: &str,
    src_account: &str,
    line: String,
    wait: bool,
) -> std::io::Result<()> {
    let s = Spooled {
        src: src.to_owned(),
        src_account: src_account.to_owned(),
        cfg,
        ms: crate::now_ms(),
        line,
    };
    let end = journal.append(&s.encode().map_err(std::io::Error::other)?, wait)?;
    if wait {
        journal.durable(end).await?;
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
    /// a marker that the segment is delivered; then removes the segment.
    /// Records whose target is gone, or no longer lets the log-delivery
    /// service write, are dropped (as AWS stops delivering). Returns the
    /// records delivered.
    pub async fn deliver_logs(&self) -> Result<usize, StoreError> {
        let Some(journal) = &self.access_log else { return Ok(0) };
        let segments = journal.rotate().await.map_err(StoreError::Io)?;
        let mut delivered = 0;
        for seg in segments {
            delivered += self.deliver_segment(&seg).await?;
        }
        Ok(delivered)
    }

    async fn deliver_segment(&self, seg: &std::path::Path) -> Result<usize, StoreError> {
        let name = seg.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let marker = format!("{DONE}{name}");
        if self.store.system(&marker)?.is_none() {
            let text = std::fs::read_to_string(seg).map_err(StoreError::Io)?;
            let mut groups: Vec<Group> = Vec::new();
            // a torn last line (a crash mid-append) was never acknowledged
            for s in text.lines().filter_map(Spooled::decode) {
                let g = (s.src.clone(), s.cfg.clone());
                match groups.iter_mut().find(|(k, _)| *k == g) {
                    Some((_, v)) => v.push(s),
                    None => groups.push((g, vec![s])),
                }
            }
            let now = crate::now_ms();
            let mut prepared = Vec::new();
            let mut count = 0;
            for (_, records) in &groups {
                for (i, chunk) in records.chunks(MAX_PER_OBJECT).enumerate() {
                    match self.prepare(chunk, now, &format!("{name}{i}")).await {
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
            let m = marker.clone();
            let res = self
                .store
                .commit(move |txn| -> Result<(), crate::error::Fail> {
                    for (mut p, pending) in prepared.into_iter().zip(pendings) {
                        let brec = crate::error::decided_in(txn, &p.target.name, &p.target.id)?;
                        if pending.inline_data.is_some() {
                            txn.add_segment(&pending)?;
                        }
                        crate::versioning::place(txn, &brec, &p.key, &mut p.rec)?;
                    }
                    txn.put_system(&m, b"delivered")?;
                    Ok(())
                })
                .await;
            if let Err(e) = res {
                tracing::warn!(segment = %name, error = %e.0.message().unwrap_or_default(), "access-log delivery failed: retried later");
                return Ok(0);
            }
            std::fs::remove_file(seg).map_err(StoreError::Io)?;
            self.store.commit(move |t| t.delete_system(&marker)).await?;
            return Ok(count);
        }
        // delivered before a crash: only the clean-up is left
        std::fs::remove_file(seg).map_err(StoreError::Io)?;
        self.store.commit(move |t| t.delete_system(&marker)).await?;
        Ok(0)
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
        let mut body = String::new();
        for s in chunk {
            body.push_str(&s.line);
            body.push('\n');
        }
        let key = object_key(first, &self.settings.region, now, &unique_suffix(unique));
        self.write_blob(target, key, body.into_bytes())
            .await
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.0.message().unwrap_or("log object not written").to_owned()))
    }

    /// Writes a log object's blob (SSE-S3, owned by the target's owner).
    async fn write_blob(
        &self,
        target: BucketRecord,
        key: String,
        body: Vec<u8>,
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
        let len = body.len();
        let headers = http::HeaderMap::new();
        let got = ingest(
            &self.store,
            Some(StreamingBlob::from(s3s::Body::from(bytes::Bytes::from(body)))),
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

    fn spooled(partitioned: Option<DateSource>) -> Spooled {
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
        }
    }

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
    fn spool_lines_round_trip_and_torn_or_damaged_ones_are_skipped() {
        let mut s = spooled(Some(DateSource::EventTime));
        s.line = "owner src [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - ID REST.GET.OBJECT k \"GET /src/k HTTP/1.1\" 200 - 3 3 1 1 \"-\" \"ua 1\" - H SigV4 - AuthHeader h - - -".into();
        let enc = s.encode().unwrap();
        let text = String::from_utf8(enc.clone()).unwrap();
        let back = Spooled::decode(&text).unwrap();
        assert_eq!(
            (back.src, back.src_account, back.ms, back.cfg),
            (s.src.clone(), s.src_account.clone(), s.ms, s.cfg.clone())
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
        let old = serde_json::to_string(&s).unwrap();
        assert_eq!(Spooled::decode(&old).unwrap().line, s.line);
    }

    #[test]
    fn sequences_increase() {
        let a = next_seq();
        let b = next_seq();
        assert!(b > a);
    }
}
