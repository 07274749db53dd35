//! Lifecycle rules applied for real, in the background: current versions
//! expire (removed in an unversioned bucket, a delete marker in a
//! versioned one), noncurrent versions and expired object delete markers
//! are removed, incomplete multipart uploads are aborted.
//!
//! Never against a lock: a version under an active retention or a legal
//! hold is never removed (it stays, and is counted as kept); a bucket with
//! MFA Delete enabled is never touched (AWS does not support lifecycle
//! there). Each action is decided again inside the commit that takes it,
//! with the configuration of that moment, so a rule removed or changed
//! meanwhile removes nothing.

use strongroom_store::{BucketRecord, ObjectRecord, StoreError, Visit};

use super::{after_days, expiry, load, selects};
use crate::Strongroom;
use crate::error::Fail;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Current versions expired.
    pub expired: usize,
    /// Noncurrent versions and expired object delete markers removed.
    pub removed: usize,
    /// Incomplete multipart uploads aborted.
    pub aborted: usize,
    /// Versions a rule selected that a lock kept.
    pub kept_locked: usize,
}

/// Most actions of one bucket per pass (the rest wait for the next): what
/// a pass holds in memory stays bounded.
const MAX_ACTIONS: usize = 10_000;
/// Actions per commit.
const PER_COMMIT: usize = 100;

enum Action {
    Expire(String),
    RemoveVersion(String, String),
    Abort(String, String),
}

fn enabled(cfg: &s3s::dto::BucketLifecycleConfiguration) -> impl Iterator<Item = &s3s::dto::LifecycleRule> {
    cfg.rules.iter().filter(|r| r.status.as_str() == "Enabled")
}

/// The versions of one key, newest first, that the configuration removes.
fn versions_due(
    cfg: &s3s::dto::BucketLifecycleConfiguration,
    key: &str,
    versions: &[(u64, ObjectRecord)],
    now: i64,
    day_ms: i64,
    out: &mut Vec<Action>,
) {
    let vid = |r: &ObjectRecord| r.version_id.clone().unwrap_or_else(|| "null".into());
    // an expired object delete marker: the key's only version
    if let [(_, only)] = versions
        && only.delete_marker
        && enabled(cfg).any(|r| {
            r.expiration.as_ref().and_then(|e| e.expired_object_delete_marker) == Some(true)
                && selects(r, key, None, &[])
        })
    {
        out.push(Action::RemoveVersion(key.to_owned(), vid(only)));
        return;
    }
    // noncurrent since its successor was made; rank 0 the newest of them
    for (i, pair) in versions.windows(2).enumerate() {
        let (successor, v) = (&pair[0].1, &pair[1].1);
        let due = enabled(cfg).any(|r| {
            let Some(n) = &r.noncurrent_version_expiration else {
                return false;
            };
            let keep = usize::try_from(n.newer_noncurrent_versions.unwrap_or(0)).unwrap_or(0);
            n.noncurrent_days
                .is_some_and(|d| after_days(successor.last_modified_ms, d, day_ms) <= now)
                && i >= keep
                && selects(r, key, Some(v.size), &v.tags)
        });
        if due {
            out.push(Action::RemoveVersion(key.to_owned(), vid(v)));
        }
    }
}

impl Strongroom {
    /// Applies every bucket's lifecycle rules once, with days `day_ms`
    /// long (86,400,000 but for tests). Errors of one bucket are logged
    /// and the others still served.
    pub async fn apply_lifecycle(&self, day_ms: i64) -> Result<Applied, StoreError> {
        let mut done = Applied::default();
        for b in self.store.buckets()? {
            if b.configs.contains_key(super::CONFIG)
                && !crate::versioning::mfa_delete(&b)
                && let Err(e) = self.apply_bucket(&b, day_ms, &mut done).await
            {
                tracing::error!(bucket = %b.name, error = %e.0, "lifecycle pass failed");
            }
        }
        Ok(done)
    }

    async fn apply_bucket(&self, b: &BucketRecord, day_ms: i64, done: &mut Applied) -> Result<(), Fail> {
        let Some(cfg) = load(b) else { return Ok(()) };
        let now = crate::now_ms();
        let mut actions = Vec::new();
        if enabled(&cfg).any(|r| {
            r.expiration
                .as_ref()
                .is_some_and(|e| e.days.is_some() || e.date.is_some())
        }) {
            self.store.scan_objects(&b.name, "", None, |key, rec| {
                if expiry(&cfg, key, &rec, day_ms).is_some_and(|(at, _)| at <= now) {
                    actions.push(Action::Expire(key.to_owned()));
                }
                if actions.len() >= MAX_ACTIONS {
                    Visit::Stop
                } else {
                    Visit::Continue
                }
            })?;
        }
        if enabled(&cfg).any(|r| {
            r.noncurrent_version_expiration.is_some()
                || r.expiration
                    .as_ref()
                    .is_some_and(|e| e.expired_object_delete_marker == Some(true))
        }) {
            let mut key = String::new();
            let mut versions: Vec<(u64, ObjectRecord)> = Vec::new();
            self.store.scan_versions(&b.name, "", None, |k, seq, rec| {
                if k != key {
                    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
                    versions_due(&cfg, &key, &versions, now, day_ms, &mut actions);
                    versions.clear();
                    k.clone_into(&mut key);
                }
                versions.push((seq, rec));
                if actions.len() >= MAX_ACTIONS {
                    Visit::Stop
                } else {
                    Visit::Continue
                }
            })?;
            versions.sort_by_key(|v| std::cmp::Reverse(v.0));
            versions_due(&cfg, &key, &versions, now, day_ms, &mut actions);
        }
        if enabled(&cfg).any(|r| r.abort_incomplete_multipart_upload.is_some()) {
            self.store.scan_uploads(&b.name, |u| {
                let due = enabled(&cfg).any(|r| {
                    r.abort_incomplete_multipart_upload
                        .as_ref()
                        .and_then(|a| a.days_after_initiation)
                        .is_some_and(|d| after_days(u.initiated_ms, d, day_ms) <= now)
                        && selects(r, &u.key, None, &[])
                });
                if due {
                    actions.push(Action::Abort(u.key, u.upload_id));
                }
                actions.len() < MAX_ACTIONS
            })?;
        }
        let text = b.configs.get(super::CONFIG).cloned();
        while !actions.is_empty() {
            let rest = actions.split_off(actions.len().min(PER_COMMIT));
            let batch = std::mem::replace(&mut actions, rest);
            let (name, id, text) = (b.name.clone(), b.id.clone(), text.clone());
            let got = self
                .store
                .commit(move |txn| -> Result<Applied, Fail> {
                    let mut got = Applied::default();
                    // the same bucket, still with this configuration and
                    // without MFA Delete: else nothing this pass
                    let Some(brec) = txn.bucket(&name)? else { return Ok(got) };
                    if brec.id != id
                        || brec.configs.get(super::CONFIG) != text.as_ref()
                        || crate::versioning::mfa_delete(&brec)
                    {
                        return Ok(got);
                    }
                    let Some(cfg) = load(&brec) else { return Ok(got) };
                    // the versions of the key the last RemoveVersion read,
                    // kept up to date with this commit's own removals: a
                    // key's versions are read once a commit, not once an
                    // action (a batch is mostly one key's versions: reading
                    // them all again per action was quadratic in them)
                    let mut key_versions: Option<(String, Vec<(u64, ObjectRecord)>)> = None;
                    for a in &batch {
                        match a {
                            Action::Expire(k) => {
                                let Some(rec) = txn.object(&name, k)? else { continue };
                                if expiry(&cfg, k, &rec, day_ms).is_none_or(|(at, _)| at > now) {
                                    continue;
                                }
                                // only a versioned bucket keeps the data
                                // (under a delete marker)
                                if crate::versioning::state(&brec) == crate::versioning::State::Never
                                    && crate::retention::check_delete(&rec, false).is_err()
                                {
                                    got.kept_locked += 1;
                                    continue;
                                }
                                crate::versioning::delete_current(txn, &brec, k, &brec.owner)?;
                                // a delete marker may have been added
                                key_versions = None;
                                got.expired += 1;
                            }
                            Action::RemoveVersion(k, v) => {
                                // still due now (a newer version deleted
                                // meanwhile may have made it current)
                                let vs = match &mut key_versions {
                                    Some((ck, vs)) if ck == k => vs,
                                    slot => {
                                        let mut vs = txn.versions(&name, k)?;
                                        vs.sort_by_key(|v| std::cmp::Reverse(v.0));
                                        &mut slot.insert((k.clone(), vs)).1
                                    }
                                };
                                let mut due = Vec::new();
                                versions_due(&cfg, k, vs, now, day_ms, &mut due);
                                let still = due.iter().any(|d| matches!(d, Action::RemoveVersion(_, dv) if dv == v));
                                let Some(rec) = vs
                                    .iter()
                                    .find(|(_, r)| r.version_id.as_deref().unwrap_or("null") == v)
                                    .map(|(_, r)| r)
                                else {
                                    continue;
                                };
                                if !still {
                                    continue;
                                }
                                if crate::retention::check_delete(rec, false).is_err() {
                                    got.kept_locked += 1;
                                    continue;
                                }
                                crate::versioning::delete_version(txn, &brec, k, v, false)?;
                                vs.retain(|(_, r)| r.version_id.as_deref().unwrap_or("null") != v);
                                got.removed += 1;
                            }
                            Action::Abort(k, u) => {
                                if let Some(up) = txn.upload(&name, k, u)? {
                                    txn.delete_upload(&up, &[])?;
                                    got.aborted += 1;
                                }
                            }
                        }
                    }
                    Ok(got)
                })
                .await?;
            done.expired += got.expired;
            done.removed += got.removed;
            done.aborted += got.aborted;
            done.kept_locked += got.kept_locked;
        }
        Ok(())
    }
}
