//! Server access logging: a bucket's logging configuration
//! (Put/GetBucketLogging with AWS's validation), the durable spool of
//! records, and their delivery to the target bucket as log objects.
//!
//! A record is appended to the spool ([`journal`]: segment files) before
//! its request is answered, so no acknowledged request loses its record to
//! a crash. The record of a request that may have changed something is
//! durable before its answer too — carried in the write's own metadata
//! commit as a provisional record, or group-committed in the spool ([`spool`]
//! says which) — and a read's within [`journal::READ_SYNC`]. Delivery
//! (`deliver`) runs in the background and delivers each record exactly
//! once; its writes are the log-delivery service's own, never through the
//! front door, so they are never logged: a bucket that logs into itself,
//! or two buckets that log into each other, only ever carry records of
//! client requests (no loop, by construction).

mod deliver;
pub mod journal;
pub mod record;
pub mod spool;

pub use spool::{Durability, PENDING, pending_ref, provisional_row, spool};

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use strongroom_access::config::LOGGING_CONFIG;
use strongroom_iam::policy::{Context, Kind, Outcome, Policy, PrincipalMatch, Subject};
use strongroom_store::{BucketRecord, Store};

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
/// logging is off or the value does not decode (logged). The last value
/// decoded is remembered per thread: every request to a logged bucket asks.
pub fn config(value: Option<&str>) -> Option<LogConfig> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, LogConfig)>> = const { std::cell::RefCell::new(None) };
    }
    let v = value?;
    if let Some(c) = LAST.with_borrow(|l| l.as_ref().filter(|(text, _)| text == v).map(|(_, c)| c.clone())) {
        return Some(c);
    }
    match serde_json::from_str::<LogConfig>(v) {
        Ok(c) => {
            LAST.set(Some((v.to_owned(), c.clone())));
            Some(c)
        }
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
