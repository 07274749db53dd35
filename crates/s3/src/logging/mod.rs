//! Server access logging: a bucket's logging configuration
//! (Put/GetBucketLogging with AWS's validation), the durable spool of
//! records, and their delivery to the target bucket as log objects.
//!
//! A record is committed to the spool (system records `access-log/<seq>`,
//! sharing the store's group commit) before its request is answered, so no
//! acknowledged request loses its record. Delivery runs in the background:
//! it writes one log object of many records and removes those records in
//! the same commit, so each record is delivered exactly once, whatever
//! crashes in between. Delivery writes are made by the log-delivery service
//! itself, never through the front door, so they are never logged: a bucket
//! that logs into itself, or two buckets that log into each other, only
//! ever carry records of client requests (no loop, by construction).

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
/// Prefix of the spooled records.
const SPOOL: &str = "access-log/";
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
    if le.target_grants.as_ref().is_some_and(|g| !g.is_empty()) {
        // BucketOwnerEnforced: log objects belong to the target's owner
        return Err(custom(
            "AccessControlListNotSupported",
            http::StatusCode::BAD_REQUEST,
            "The target bucket does not allow ACLs: TargetGrants are not supported with Object Ownership BucketOwnerEnforced",
        ));
    }
    let target = crate::error::store(s3.store.bucket(&le.target_bucket))?
        .ok_or_else(|| invalid_target("The target bucket for logging does not exist"))?;
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

/// Spooled records of one source bucket and configuration (record names
/// with the records).
type Group = ((String, LogConfig), Vec<(String, Spooled)>);

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

/// Commits one record of a request to `src` (owned by `src_account`) to the
/// durable spool; returns once it is durable.
pub async fn spool(
    store: &Store,
    cfg: LogConfig,
    src: &str,
    src_account: &str,
    line: String,
) -> Result<(), StoreError> {
    let s = Spooled {
        src: src.to_owned(),
        src_account: src_account.to_owned(),
        cfg,
        ms: crate::now_ms(),
        line,
    };
    let bytes = serde_json::to_vec(&s).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let name = format!("{SPOOL}{:020}", next_seq());
    store.commit(move |t| t.put_system(&name, &bytes)).await
}

fn utc(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The key of a log object of records of `s` (the group's first), made at
/// `now_ms`, unique by `seq`.
fn object_key(s: &Spooled, region: &str, now_ms: i64, seq: &str) -> String {
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
    let unique = &seq[seq.len().saturating_sub(16)..];
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
    /// Delivers spooled records: every group (source bucket and
    /// configuration) whose oldest record is older than `min_age_ms`, or
    /// all of them with `min_age_ms` 0 (a flush). Returns the records
    /// delivered. A group whose target is gone, or no longer lets the
    /// log-delivery service write, is dropped (as AWS stops delivering).
    pub async fn deliver_logs(&self, min_age_ms: i64) -> Result<usize, StoreError> {
        let now = crate::now_ms();
        let mut groups: Vec<Group> = Vec::new();
        for (name, v) in self.store.system_scan(SPOOL)? {
            let s: Spooled = match serde_json::from_slice(&v) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(record = %name, error = %e, "unreadable spooled access-log record: dropped");
                    let n = name.clone();
                    self.store.commit(move |t| t.delete_system(&n)).await?;
                    continue;
                }
            };
            let g = (s.src.clone(), s.cfg.clone());
            match groups.iter_mut().find(|(k, _)| *k == g) {
                Some((_, v)) => v.push((name, s)),
                None => groups.push((g, vec![(name, s)])),
            }
        }
        let mut delivered = 0;
        for (_, records) in groups {
            let due = records.first().is_some_and(|(_, s)| now - s.ms >= min_age_ms);
            if !due {
                continue;
            }
            for chunk in records.chunks(MAX_PER_OBJECT) {
                delivered += self.deliver_chunk(chunk, now).await?;
            }
        }
        Ok(delivered)
    }

    async fn deliver_chunk(&self, chunk: &[(String, Spooled)], now: i64) -> Result<usize, StoreError> {
        let Some((first_name, first)) = chunk.first() else {
            return Ok(0);
        };
        let names: Vec<String> = chunk.iter().map(|(n, _)| n.clone()).collect();
        let target = self.store.bucket(&first.cfg.target)?;
        let usable = target
            .as_ref()
            .filter(|t| delivery_allowed(&self.store, t, &first.src, &first.src_account, &first.cfg.prefix));
        let Some(target) = usable else {
            tracing::warn!(
                source = %first.src,
                target = %first.cfg.target,
                records = names.len(),
                "access-log target gone or not writable by the log-delivery service: records dropped"
            );
            self.store
                .commit(move |t| -> Result<(), StoreError> {
                    for n in &names {
                        t.delete_system(n)?;
                    }
                    Ok(())
                })
                .await?;
            return Ok(0);
        };
        let mut body = String::new();
        for (_, s) in chunk {
            body.push_str(&s.line);
            body.push('\n');
        }
        let key = object_key(first, &self.settings.region, now, first_name);
        match self
            .write_log_object(target.clone(), &key, body.into_bytes(), names)
            .await
        {
            Ok(()) => Ok(chunk.len()),
            Err(e) => {
                tracing::warn!(target = %first.cfg.target, key = %key, error = %e.0.message().unwrap_or_default(), "access-log delivery failed: retried later");
                Ok(0)
            }
        }
    }

    /// Writes one log object into `target` (SSE-S3, owned by the target's
    /// owner) and removes the records it carries, in one commit.
    async fn write_log_object(
        &self,
        target: BucketRecord,
        key: &str,
        body: Vec<u8>,
        spooled: Vec<String>,
    ) -> Result<(), crate::error::Fail> {
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
        // log objects are SSE-S3, as AWS delivers them (KMS cannot be used
        // for server access logs)
        let sse = crate::sse::SseRequest {
            algorithm: Some(ServerSideEncryption::from_static(ServerSideEncryption::AES256)),
            ..crate::sse::SseRequest::default()
        };
        let keys = self
            .crypt
            .keys_for_write(&target, key, &sse, true, &caller)
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
        let pending = got.pending;
        let inline = strongroom_store::PendingSegment {
            segment: pending.segment.clone(),
            inline_data: pending.inline_data.clone(),
        };
        let (name, id, k) = (target.name.clone(), target.id.clone(), key.to_owned());
        let mut rec = rec;
        let res = self
            .store
            .commit(move |txn| -> Result<Option<String>, crate::error::Fail> {
                let brec = crate::error::decided_in(txn, &name, &id)?;
                if inline.inline_data.is_some() {
                    txn.add_segment(&inline)?;
                }
                for n in &spooled {
                    txn.delete_system(n)?;
                }
                crate::versioning::place(txn, &brec, &k, &mut rec)
            })
            .await;
        if res.is_err() {
            self.store.discard(pending);
        }
        res.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
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
        let seq = "access-log/00001549411238000001";
        assert_eq!(
            object_key(&spooled(None), "us-east-1", now, seq),
            "access/2019-02-07-00-00-00-1549411238000001"
        );
        assert_eq!(
            object_key(&spooled(Some(DateSource::EventTime)), "us-east-1", now, seq),
            "access/111122223333/us-east-1/src/2019/02/06/2019-02-07-00-00-00-1549411238000001"
        );
        assert_eq!(
            object_key(&spooled(Some(DateSource::DeliveryTime)), "us-east-1", now, seq),
            "access/111122223333/us-east-1/src/2019/02/07/2019-02-07-00-00-00-1549411238000001"
        );
    }

    #[test]
    fn sequences_increase() {
        let a = next_seq();
        let b = next_seq();
        assert!(b > a);
    }
}
