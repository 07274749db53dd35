//! The access-relevant configuration of a bucket as stored: its policy
//! (text in a system record, named by a generation in the bucket record),
//! the ConfirmRemoveSelfBucketAccess flag, and Block Public Access (the
//! bucket's and its account's). Every reader here fails closed: a record
//! that cannot be read or decoded is an error, never "no setting".

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use strongroom_iam::policy::{Kind, Policy};
use strongroom_store::{BucketRecord, Store};

/// Bucket config naming the generation of the bucket's policy, whose text
/// is the system record [`policy_record`]. A value starting with `{` is a
/// policy text stored by an older build.
pub const POLICY_CONFIG: &str = "policy";
/// Bucket config present when the policy was set with
/// ConfirmRemoveSelfBucketAccess.
pub const POLICY_LOCKOUT_CONFIG: &str = "policy-self-access-removed";
/// Bucket config binding the IAM user and role ARNs the policy names to the
/// entities' unique ids when it was written (JSON object ARN -> id).
pub const POLICY_PRINCIPALS_CONFIG: &str = "policy-principals";
/// Bucket config holding the bucket's server access logging configuration
/// (read by the front door for every request's record).
pub const LOGGING_CONFIG: &str = "logging";
/// Bucket config holding the bucket's Block Public Access settings.
pub const PAB_CONFIG: &str = "public-access-block";

/// Why a stored access configuration could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// System record holding a bucket's policy text.
pub fn policy_record(bucket: &str) -> String {
    format!("bucket-policy/{bucket}")
}

/// System record of an account's Block Public Access settings.
pub fn account_pab_record(account: &str) -> String {
    format!("pab/{account}")
}

/// The text of a bucket's policy: None when it has none; an error when
/// the bucket names a policy whose text is missing or not UTF-8.
pub fn bucket_policy_text(store: &Store, b: &BucketRecord) -> Result<Option<String>, Unreadable> {
    let Some(v) = b.configs.get(POLICY_CONFIG) else {
        return Ok(None);
    };
    if v.starts_with('{') {
        return Ok(Some(v.clone()));
    }
    let raw = store
        .system(&policy_record(&b.name))
        .map_err(|e| Unreadable(format!("policy of bucket {}: {e}", b.name)))?
        .ok_or_else(|| Unreadable(format!("policy of bucket {} is missing", b.name)))?;
    String::from_utf8(raw)
        .map(Some)
        .map_err(|_| Unreadable(format!("policy of bucket {} is not UTF-8", b.name)))
}

/// The unique ids the bucket's policy principals were bound to (none
/// recorded: an empty map, so a user or role ARN matches nothing); an
/// error when the record does not decode.
pub fn policy_bindings(b: &BucketRecord) -> Result<BTreeMap<String, String>, Unreadable> {
    match b.configs.get(POLICY_PRINCIPALS_CONFIG) {
        None => Ok(BTreeMap::new()),
        Some(v) => {
            serde_json::from_str(v).map_err(|e| Unreadable(format!("policy principals of bucket {}: {e}", b.name)))
        }
    }
}

/// Block Public Access settings (bucket or account).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four settings on: what new buckets get (AWS since April 2023),
    /// and what an unreadable record counts as.
    pub const ALL: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    /// Either setting on wins.
    pub fn or(self, o: PublicAccessBlock) -> PublicAccessBlock {
        PublicAccessBlock {
            block_public_acls: self.block_public_acls || o.block_public_acls,
            ignore_public_acls: self.ignore_public_acls || o.ignore_public_acls,
            block_public_policy: self.block_public_policy || o.block_public_policy,
            restrict_public_buckets: self.restrict_public_buckets || o.restrict_public_buckets,
        }
    }
}

/// The bucket's own Block Public Access (none set: all off). A record that
/// does not decode counts as all on, and is logged.
pub fn bucket_pab(b: &BucketRecord) -> PublicAccessBlock {
    match b.configs.get(PAB_CONFIG) {
        None => PublicAccessBlock::default(),
        Some(v) => serde_json::from_str(v).unwrap_or_else(|e| {
            tracing::error!(bucket = %b.name, error = %e, "unreadable Block Public Access record: counted as all on");
            PublicAccessBlock::ALL
        }),
    }
}

/// The account's Block Public Access; unreadable counts as all on.
pub fn account_pab(store: &Store, account: &str) -> PublicAccessBlock {
    match store.system_shared(&account_pab_record(account)) {
        Ok(None) => PublicAccessBlock::default(),
        Ok(Some(v)) => serde_json::from_slice(&v).unwrap_or_else(|e| {
            tracing::error!(account, error = %e, "unreadable account Block Public Access record: counted as all on");
            PublicAccessBlock::ALL
        }),
        Err(e) => {
            tracing::error!(account, error = %e, "account Block Public Access record not readable: counted as all on");
            PublicAccessBlock::ALL
        }
    }
}

/// The effective Block Public Access of a bucket (bucket OR account).
pub fn effective_pab(store: &Store, b: &BucketRecord) -> PublicAccessBlock {
    bucket_pab(b).or(account_pab(store, &b.owner))
}

/// Parsed bucket policies by bucket and generation (every PutBucketPolicy
/// makes a new generation, so an entry is never stale).
#[derive(Default)]
pub(crate) struct PolicyCache {
    map: Mutex<HashMap<String, (String, Arc<Policy>)>>,
}

impl PolicyCache {
    /// The bucket's parsed policy; an error when it names one that cannot
    /// be read or parsed (the caller denies).
    pub(crate) fn get(&self, store: &Store, b: &BucketRecord) -> Result<Option<Arc<Policy>>, Unreadable> {
        let Some(generation) = b.configs.get(POLICY_CONFIG) else {
            return Ok(None);
        };
        if let Ok(m) = self.map.lock()
            && let Some((g, p)) = m.get(&b.name)
            && g == generation
        {
            return Ok(Some(p.clone()));
        }
        let Some(text) = bucket_policy_text(store, b)? else {
            return Ok(None);
        };
        let mut p = Policy::parse(&text, Kind::Resource)
            .map_err(|e| Unreadable(format!("policy of bucket {} does not parse: {e:?}", b.name)))?;
        p.bind(policy_bindings(b)?);
        let p = Arc::new(p);
        if let Ok(mut m) = self.map.lock() {
            if m.len() > 10_000 {
                m.clear();
            }
            m.insert(b.name.clone(), (generation.clone(), p.clone()));
        }
        Ok(Some(p))
    }
}
