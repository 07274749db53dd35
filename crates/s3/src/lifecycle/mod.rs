//! Lifecycle configuration: Put/Get/DeleteBucketLifecycle(Configuration)
//! with AWS's validation, which rules apply to an object (filters by
//! prefix, tags and size), and the `x-amz-expiration` header on PUT, GET
//! and HEAD. The rules are applied for real in the background (see
//! `apply`). Transitions are validated, stored and answered, but
//! Strongroom has one storage tier: nothing moves.

use std::collections::HashSet;

use s3s::dto::*;
use s3s::xml::{Deserialize, Serialize};
use s3s::{S3Error, S3Request, S3Response, S3Result, s3_error};
use strongroom_store::{BucketRecord, ObjectRecord};

use crate::Strongroom;
use crate::error::custom;

pub mod apply;

/// Bucket config holding the configuration (the XML document as
/// validated, with generated rule ids).
pub const CONFIG: &str = "lifecycle";

/// Most rules in one configuration (AWS).
const MAX_RULES: usize = 1000;
/// Longest rule id (AWS).
const MAX_ID: usize = 255;
const DAY_MS: i64 = 86_400_000;
const STORAGE_CLASSES: &[&str] = &[
    "GLACIER",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
];

fn malformed() -> S3Error {
    custom(
        "MalformedXML",
        http::StatusCode::BAD_REQUEST,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

fn invalid_argument(m: &str) -> S3Error {
    custom("InvalidArgument", http::StatusCode::BAD_REQUEST, m)
}

fn invalid_request(m: &str) -> S3Error {
    custom("InvalidRequest", http::StatusCode::BAD_REQUEST, m)
}

fn midnight(d: &Timestamp) -> bool {
    let t = time::OffsetDateTime::from(d.clone());
    t.offset().is_utc() && t.time() == time::Time::MIDNIGHT
}

fn has_tags(f: Option<&LifecycleRuleFilter>) -> bool {
    f.is_some_and(|f| {
        f.tag.is_some()
            || f.and
                .as_ref()
                .is_some_and(|a| a.tags.as_ref().is_some_and(|t| !t.is_empty()))
    })
}

/// Checks a configuration as AWS does, giving each rule without an id one.
fn validate(mut cfg: BucketLifecycleConfiguration) -> S3Result<BucketLifecycleConfiguration> {
    if cfg.rules.is_empty() || cfg.rules.len() > MAX_RULES {
        return Err(malformed());
    }
    let mut ids = HashSet::new();
    for r in &mut cfg.rules {
        if !matches!(r.status.as_str(), "Enabled" | "Disabled") {
            return Err(malformed());
        }
        // a rule sent without an id gets one (AWS makes one up too)
        if r.id.is_none() {
            let id = strongroom_store::BlobId::random().map_err(|e| crate::error::internal(&e))?;
            r.id = Some(id.hex());
        }
        let id = r.id.clone().unwrap_or_default();
        if id.len() > MAX_ID {
            return Err(invalid_argument("ID length should not exceed allowed limit of 255"));
        }
        if !ids.insert(id) {
            return Err(invalid_argument(
                "Rule ID must be unique. Found same ID for more than one rule",
            ));
        }
        if r.prefix.is_some() && r.filter.is_some() {
            return Err(malformed());
        }
        if let Some(f) = &r.filter {
            let set = [
                f.prefix.is_some(),
                f.tag.is_some(),
                f.and.is_some(),
                f.object_size_greater_than.is_some(),
                f.object_size_less_than.is_some(),
            ];
            if set.iter().filter(|s| **s).count() > 1 {
                return Err(malformed());
            }
            let sizes = f
                .and
                .as_ref()
                .map_or((f.object_size_greater_than, f.object_size_less_than), |a| {
                    (a.object_size_greater_than, a.object_size_less_than)
                });
            if let (Some(gt), Some(lt)) = sizes
                && gt >= lt
            {
                return Err(invalid_argument(
                    "ObjectSizeGreaterThan must be less than ObjectSizeLessThan",
                ));
            }
            if sizes.0.is_some_and(|n| n < 0) || sizes.1.is_some_and(|n| n <= 0) {
                return Err(invalid_argument("Object size filters must be positive"));
            }
            if let Some(tags) = f.and.as_ref().and_then(|a| a.tags.as_ref()) {
                let mut keys = HashSet::new();
                if tags.iter().any(|t| !keys.insert(t.key.clone())) {
                    return Err(invalid_argument("Duplicate Tag Keys are not allowed."));
                }
            }
        }
        let tagged = has_tags(r.filter.as_ref());
        let acts = r.expiration.is_some()
            || r.noncurrent_version_expiration.is_some()
            || r.abort_incomplete_multipart_upload.is_some()
            || r.transitions.as_ref().is_some_and(|t| !t.is_empty())
            || r.noncurrent_version_transitions.as_ref().is_some_and(|t| !t.is_empty());
        if !acts {
            return Err(invalid_request("At least one action needs to be specified in a rule"));
        }
        if let Some(e) = &r.expiration {
            let n = usize::from(e.days.is_some())
                + usize::from(e.date.is_some())
                + usize::from(e.expired_object_delete_marker.is_some());
            if n != 1 {
                return Err(malformed());
            }
            if e.days.is_some_and(|d| d <= 0) {
                return Err(invalid_argument(
                    "'Days' for Expiration action must be a positive integer",
                ));
            }
            if e.date.as_ref().is_some_and(|d| !midnight(d)) {
                return Err(invalid_argument("'Date' must be at midnight GMT"));
            }
            if e.expired_object_delete_marker.is_some() && tagged {
                return Err(invalid_request(
                    "ExpiredObjectDeleteMarker cannot be specified with object tag filters",
                ));
            }
        }
        if let Some(n) = &r.noncurrent_version_expiration {
            if n.noncurrent_days.is_none_or(|d| d <= 0) {
                return Err(invalid_argument(
                    "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer",
                ));
            }
            if n.newer_noncurrent_versions.is_some_and(|v| !(1..=100).contains(&v)) {
                return Err(invalid_argument("NewerNoncurrentVersions must be between 1 and 100"));
            }
        }
        if let Some(a) = &r.abort_incomplete_multipart_upload {
            if a.days_after_initiation.is_none_or(|d| d <= 0) {
                return Err(invalid_argument(
                    "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
                ));
            }
            if tagged {
                return Err(invalid_request(
                    "AbortIncompleteMultipartUpload cannot be specified with Tags.",
                ));
            }
        }
        for t in r.transitions.iter().flatten() {
            if usize::from(t.days.is_some()) + usize::from(t.date.is_some()) != 1 {
                return Err(malformed());
            }
            if t.days.is_some_and(|d| d < 0) {
                return Err(invalid_argument("'Days' in the Transition action must be nonnegative"));
            }
            if t.date.as_ref().is_some_and(|d| !midnight(d)) {
                return Err(invalid_argument("'Date' must be at midnight GMT"));
            }
            if !t
                .storage_class
                .as_ref()
                .is_some_and(|c| STORAGE_CLASSES.contains(&c.as_str()))
            {
                return Err(malformed());
            }
        }
        for t in r.noncurrent_version_transitions.iter().flatten() {
            if t.noncurrent_days.is_some_and(|d| d < 0) {
                return Err(invalid_argument(
                    "'NoncurrentDays' in the NoncurrentVersionTransition action must be nonnegative",
                ));
            }
            if !t
                .storage_class
                .as_ref()
                .is_some_and(|c| STORAGE_CLASSES.contains(&c.as_str()))
            {
                return Err(malformed());
            }
        }
    }
    Ok(cfg)
}

fn encode(cfg: &BucketLifecycleConfiguration) -> S3Result<String> {
    let mut out = Vec::new();
    let mut ser = s3s::xml::Serializer::new(&mut out);
    cfg.serialize(&mut ser).map_err(|_| s3_error!(InternalError))?;
    String::from_utf8(out).map_err(|_| s3_error!(InternalError))
}

/// The bucket's configuration; None when it has none, or the stored one
/// does not decode (logged: no rule then applies, nothing is deleted).
pub fn load(b: &BucketRecord) -> Option<BucketLifecycleConfiguration> {
    let text = b.configs.get(CONFIG)?;
    let mut d = s3s::xml::Deserializer::new(text.as_bytes());
    match BucketLifecycleConfiguration::deserialize(&mut d) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(bucket = %b.name, error = ?e, "unreadable lifecycle configuration: no rule applies");
            None
        }
    }
}

/// Whether `r`'s filter selects an object (or upload: `size` None, tags
/// ignored) named `key`.
pub(crate) fn selects(r: &LifecycleRule, key: &str, size: Option<u64>, tags: &[(String, String)]) -> bool {
    let has = |t: &Tag| {
        tags.iter()
            .any(|(k, v)| Some(k) == t.key.as_ref() && Some(v) == t.value.as_ref())
    };
    let size_ok = |gt: Option<i64>, lt: Option<i64>| {
        let Some(s) = size.and_then(|s| i64::try_from(s).ok()) else {
            return true;
        };
        gt.is_none_or(|g| s > g) && lt.is_none_or(|l| s < l)
    };
    if r.prefix.as_ref().is_some_and(|p| !key.starts_with(p.as_str())) {
        return false;
    }
    let Some(f) = &r.filter else { return true };
    if f.prefix.as_ref().is_some_and(|p| !key.starts_with(p.as_str())) {
        return false;
    }
    if f.tag.as_ref().is_some_and(|t| size.is_some() && !has(t)) {
        return false;
    }
    if !size_ok(f.object_size_greater_than, f.object_size_less_than) {
        return false;
    }
    if let Some(a) = &f.and {
        if a.prefix.as_ref().is_some_and(|p| !key.starts_with(p.as_str())) {
            return false;
        }
        if size.is_some() && !a.tags.iter().flatten().all(has) {
            return false;
        }
        if !size_ok(a.object_size_greater_than, a.object_size_less_than) {
            return false;
        }
    }
    true
}

/// When `days` days after `from_ms` have passed, for a day of `day_ms`:
/// with real days, AWS's rounding up to the next midnight UTC; with the
/// testing day length, exactly.
pub(crate) fn after_days(from_ms: i64, days: i32, day_ms: i64) -> i64 {
    let t = from_ms.saturating_add(i64::from(days).saturating_mul(day_ms));
    if day_ms == DAY_MS {
        t.saturating_add(DAY_MS - 1) / DAY_MS * DAY_MS
    } else {
        t
    }
}

fn date_ms(d: &Timestamp) -> i64 {
    let t = time::OffsetDateTime::from(d.clone());
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// When the current version `rec` of `key` expires, and by which rule: the
/// earliest of the enabled rules with an Expiration (Days or Date) that
/// select it. Days count from its last modification.
pub(crate) fn expiry(
    cfg: &BucketLifecycleConfiguration,
    key: &str,
    rec: &ObjectRecord,
    day_ms: i64,
) -> Option<(i64, String)> {
    cfg.rules
        .iter()
        .filter(|r| r.status.as_str() == "Enabled" && selects(r, key, Some(rec.size), &rec.tags))
        .filter_map(|r| {
            let e = r.expiration.as_ref()?;
            let at = match (e.days, &e.date) {
                (Some(d), _) => after_days(rec.last_modified_ms, d, day_ms),
                (None, Some(d)) => date_ms(d),
                _ => return None,
            };
            Some((at, r.id.clone().unwrap_or_default()))
        })
        .min_by_key(|(at, _)| *at)
}

/// The `x-amz-expiration` header for the current version `rec` of `key`
/// in bucket `b`: `expiry-date="Fri, 23 Dec 2012 00:00:00 GMT",
/// rule-id="..."` (in real days, whatever the testing day length).
pub(crate) fn expiration_header(b: &BucketRecord, key: &str, rec: &ObjectRecord) -> Option<String> {
    if rec.delete_marker {
        return None;
    }
    let cfg = load(b)?;
    let (at, id) = expiry(&cfg, key, rec, DAY_MS)?;
    let t = time::OffsetDateTime::from_unix_timestamp(at / 1000).ok()?;
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let date = t.format(&f).ok()?;
    Some(format!("expiry-date=\"{date}\", rule-id=\"{}\"", id.replace('"', "")))
}

pub(crate) async fn put(
    s3: &Strongroom,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
    let b = crate::decided_bucket(&req)?;
    // AWS: lifecycle configuration is not supported on a bucket with MFA
    // Delete enabled (its rules would delete versions without MFA)
    if crate::versioning::mfa_delete(&b) {
        return Err(custom(
            "InvalidBucketState",
            http::StatusCode::CONFLICT,
            "Lifecycle configuration is not supported on a bucket with MFA Delete enabled",
        ));
    }
    let cfg = validate(req.input.lifecycle_configuration.ok_or_else(malformed)?)?;
    crate::bucket::set_config(s3, &b, CONFIG, Some(encode(&cfg)?)).await?;
    Ok(S3Response::new(PutBucketLifecycleConfigurationOutput::default()))
}

pub(crate) async fn get(
    _s3: &Strongroom,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    let b = crate::decided_bucket(&req)?;
    let cfg = load(&b).ok_or_else(|| {
        custom(
            "NoSuchLifecycleConfiguration",
            http::StatusCode::NOT_FOUND,
            "The lifecycle configuration does not exist",
        )
    })?;
    Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
        rules: Some(cfg.rules),
        ..Default::default()
    }))
}

pub(crate) async fn delete(
    s3: &Strongroom,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
    let b = crate::decided_bucket(&req)?;
    crate::bucket::set_config(s3, &b, CONFIG, None).await?;
    let mut resp = S3Response::new(DeleteBucketLifecycleOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn real_days_round_up_to_midnight_and_testing_days_do_not() {
        // 2019-02-06T00:00:38Z + 1 day -> 2019-02-08T00:00:00Z (AWS's rounding)
        let t = 1_549_411_238_000;
        assert_eq!(after_days(t, 1, DAY_MS), 1_549_584_000_000);
        // exactly midnight stays
        assert_eq!(after_days(1_549_411_200_000, 1, DAY_MS), 1_549_497_600_000);
        assert_eq!(after_days(t, 3, 10_000), t + 30_000);
    }

    #[test]
    fn filters_select_by_prefix_tags_and_size() {
        let rule = |f: LifecycleRuleFilter| LifecycleRule {
            abort_incomplete_multipart_upload: None,
            expiration: None,
            filter: Some(f),
            id: None,
            noncurrent_version_expiration: None,
            noncurrent_version_transitions: None,
            prefix: None,
            status: ExpirationStatus::from_static("Enabled"),
            transitions: None,
        };
        let tag = |k: &str, v: &str| Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        };
        let tags = vec![("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())];
        let by_prefix = rule(LifecycleRuleFilter {
            prefix: Some("logs/".into()),
            ..Default::default()
        });
        assert!(selects(&by_prefix, "logs/x", Some(1), &[]));
        assert!(!selects(&by_prefix, "log/x", Some(1), &[]));
        let by_tag = rule(LifecycleRuleFilter {
            tag: Some(tag("a", "1")),
            ..Default::default()
        });
        assert!(selects(&by_tag, "k", Some(1), &tags));
        assert!(!selects(&by_tag, "k", Some(1), &[]));
        let and = rule(LifecycleRuleFilter {
            and: Some(LifecycleRuleAndOperator {
                prefix: Some("p/".into()),
                tags: Some(vec![tag("a", "1"), tag("b", "2")]),
                object_size_greater_than: Some(10),
                object_size_less_than: Some(100),
            }),
            ..Default::default()
        });
        assert!(selects(&and, "p/k", Some(50), &tags));
        assert!(!selects(&and, "p/k", Some(10), &tags));
        assert!(!selects(&and, "p/k", Some(100), &tags));
        assert!(!selects(&and, "p/k", Some(50), &tags[..1]));
        assert!(!selects(&and, "q/k", Some(50), &tags));
    }
}
