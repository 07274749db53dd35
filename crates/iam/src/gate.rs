//! The access hook's authorization: who the caller is, which actions the
//! operation needs on which resources, and the decision for each, with the
//! bucket's policy and Block Public Access settings. The outcome is kept in
//! a [`Gate`] the operation can ask again per key (DeleteObjects).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};
use serde::{Deserialize, Serialize};
use strongroom_store::{BucketRecord, Store};

use crate::access::{percent_decode, query_param};
use crate::authz::{Decision, ResourceSide, decide, identity_policies};
use crate::policy::{Context, Kind, Policy};
use crate::s3_actions::{On, OpFacts, actions};
use crate::{ConnInfo, Identities, KeyError, Principal};

/// Bucket config naming the generation of the bucket's policy, whose text
/// is the system record [`policy_record`] (kept out of the bucket record,
/// which every request decodes). A value starting with `{` is a policy
/// text stored by an older build.
pub const POLICY_CONFIG: &str = "policy";

/// System record holding a bucket's policy text.
pub fn policy_record(bucket: &str) -> String {
    format!("bucket-policy/{bucket}")
}

/// The text of a bucket's policy, if it has one.
pub fn bucket_policy_text(store: &Store, b: &BucketRecord) -> Option<String> {
    let v = b.configs.get(POLICY_CONFIG)?;
    if v.starts_with('{') {
        return Some(v.clone());
    }
    store
        .system(&policy_record(&b.name))
        .ok()
        .flatten()
        .and_then(|t| String::from_utf8(t).ok())
}
/// Bucket config present when the policy was set with
/// ConfirmRemoveSelfBucketAccess.
pub const POLICY_LOCKOUT_CONFIG: &str = "policy-self-access-removed";
/// Bucket config holding the bucket's Block Public Access settings.
pub const PAB_CONFIG: &str = "public-access-block";

/// Block Public Access settings (bucket or account).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
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

/// System record of an account's Block Public Access settings.
pub fn account_pab_record(account: &str) -> String {
    format!("pab/{account}")
}

/// The effective Block Public Access of a bucket (bucket OR account).
pub fn effective_pab(store: &Store, b: &BucketRecord) -> PublicAccessBlock {
    let bucket = b
        .configs
        .get(PAB_CONFIG)
        .and_then(|v| serde_json::from_str::<PublicAccessBlock>(v).ok())
        .unwrap_or_default();
    let account = store
        .system(&account_pab_record(&b.owner))
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_slice::<PublicAccessBlock>(&v).ok())
        .unwrap_or_default();
    bucket.or(account)
}

/// Parsed bucket policies by bucket and generation (every PutBucketPolicy
/// makes a new generation, so an entry is never stale).
#[derive(Default)]
pub(crate) struct PolicyCache {
    map: Mutex<HashMap<String, (String, Arc<Policy>)>>,
}

impl PolicyCache {
    fn get(&self, store: &Store, b: &BucketRecord) -> Option<Arc<Policy>> {
        let generation = b.configs.get(POLICY_CONFIG)?;
        if let Ok(m) = self.map.lock()
            && let Some((g, p)) = m.get(&b.name)
            && g == generation
        {
            return Some(p.clone());
        }
        let text = bucket_policy_text(store, b)?;
        let p = Arc::new(Policy::parse(&text, Kind::Resource).ok()?);
        if let Ok(mut m) = self.map.lock() {
            if m.len() > 10_000 {
                m.clear();
            }
            m.insert(b.name.clone(), (generation.clone(), p.clone()));
        }
        Some(p)
    }
}

/// A bucket's owner, policy and public-access restriction.
#[derive(Clone)]
struct Side {
    owner: String,
    policy: Option<Arc<Policy>>,
    restrict_public: bool,
    self_access_removed: bool,
}

impl Side {
    fn resource_side(&self) -> ResourceSide<'_> {
        ResourceSide {
            owner: Some(&self.owner),
            policy: self.policy.as_deref(),
            restrict_public: self.restrict_public,
            self_access_removed: self.self_access_removed,
        }
    }
}

/// The caller's authorization for one request, reusable by the operation
/// for per-key decisions.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<GateInner>,
}

struct GateInner {
    who: Principal,
    identity: Vec<Arc<Policy>>,
    bucket: String,
    side: Option<Side>,
    ctx: Context,
}

impl Gate {
    /// True when the caller's identity policies alone allow `action` on
    /// `resource` (for services S3 calls on the caller's behalf, e.g. KMS).
    pub fn identity_allows(&self, action: &str, resource: &str) -> bool {
        let g = &self.inner;
        let rs = ResourceSide {
            owner: Some(g.who.account_id()),
            ..ResourceSide::default()
        };
        decide(&g.who, &g.identity, action, resource, &rs, &g.ctx).allowed()
    }

    /// True when the caller may take `action` on `key` of the request's bucket.
    pub fn allows(&self, action: &str, key: &str) -> bool {
        let g = &self.inner;
        let resource = format!("arn:aws:s3:::{}/{key}", g.bucket);
        let side = g.side.as_ref();
        let rs = side.map(Side::resource_side).unwrap_or_default();
        decide(&g.who, &g.identity, action, &resource, &rs, &g.ctx).allowed()
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `bucket/key[?versionId=v]` of an `x-amz-copy-source` header.
fn copy_source(h: &HeaderMap) -> Option<(String, String, bool)> {
    let raw = header(h, "x-amz-copy-source")?;
    let (path, q) = raw.split_once('?').unwrap_or((raw, ""));
    let path = percent_decode(path.trim_start_matches('/'));
    let (b, k) = path.split_once('/')?;
    Some((b.to_owned(), k.to_owned(), q.contains("versionId=")))
}

/// What the hook knows of a request.
pub(crate) struct Ask<'a> {
    pub op: &'a str,
    pub path: &'a S3Path,
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub conn: Option<&'a ConnInfo>,
}

pub(crate) struct Authorizer<'a> {
    pub identities: &'a Identities,
    pub store: &'a Store,
    pub cache: &'a PolicyCache,
}

impl Authorizer<'_> {
    /// The caller: anonymous without credentials, else the key's principal.
    pub fn caller(&self, credentials: Option<&s3s::auth::Credentials>, ask: &Ask<'_>) -> S3Result<Principal> {
        let Some(creds) = credentials else {
            return Ok(Principal::anonymous());
        };
        let token = header(ask.headers, "x-amz-security-token")
            .map(str::to_owned)
            .or_else(|| query_param(ask.query, "X-Amz-Security-Token").map(percent_decode));
        match self.identities.principal(&creds.access_key, token.as_deref()) {
            Ok(p) => Ok(p),
            Err(KeyError::BadToken) => Err(s3_error!(
                InvalidToken,
                "The provided token is malformed or otherwise invalid."
            )),
            Err(KeyError::Unknown) => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }

    fn side(&self, b: &BucketRecord) -> Side {
        let policy = self.cache.get(self.store, b);
        Side {
            owner: b.owner.clone(),
            policy,
            restrict_public: effective_pab(self.store, b).restrict_public_buckets,
            self_access_removed: b.configs.contains_key(POLICY_LOCKOUT_CONFIG),
        }
    }

    fn bucket(&self, name: &str) -> S3Result<Option<BucketRecord>> {
        self.store
            .bucket(name)
            .map_err(|e| s3_error!(InternalError, "metadata read failed: {e}"))
    }

    /// Decides the request; returns the gate for the operation.
    pub fn authorize(&self, who: &Principal, ask: &Ask<'_>) -> S3Result<Gate> {
        let (bucket, key) = match ask.path {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.as_ref()), None),
            S3Path::Object { bucket, key } => (Some(bucket.as_ref()), Some(key.as_ref())),
        };
        let rec = match bucket {
            Some(b) => self.bucket(b)?,
            None => None,
        };
        let now = crate::now_secs();
        let mut ctx = crate::s3_context::s3_context(who, ask.conn, ask.headers, ask.query, now);
        let side = rec.as_ref().map(|b| self.side(b));
        let identity = identity_policies(self.identities, who);
        let tests_tags = |p: &Policy| p.tests_key("s3:ExistingObjectTag/");
        let wants_tags = identity.iter().any(|p| tests_tags(p))
            || side.as_ref().and_then(|s| s.policy.as_deref()).is_some_and(tests_tags);
        if wants_tags && let (Some(b), Some(k)) = (&rec, key) {
            let version = query_param(ask.query, "versionId").map(percent_decode);
            self.existing_tags(b, k, version.as_deref(), &mut ctx)?;
        }
        let gate = Gate {
            inner: Arc::new(GateInner {
                who: who.clone(),
                identity,
                bucket: bucket.unwrap_or_default().to_owned(),
                side: side.clone(),
                ctx,
            }),
        };
        // a bucket that does not exist answers for itself (NoSuchBucket),
        // except to CreateBucket, which needs its permission
        if bucket.is_some() && rec.is_none() && ask.op != "CreateBucket" {
            return Ok(gate);
        }
        let h = ask.headers;
        let src = copy_source(h);
        let facts = OpFacts {
            version_id: query_param(ask.query, "versionId").is_some(),
            source_version: src.as_ref().is_some_and(|s| s.2),
            tagging: h.contains_key("x-amz-tagging"),
            acl: h.contains_key("x-amz-acl") || h.keys().any(|n| n.as_str().starts_with("x-amz-grant-")),
            retention: h.contains_key("x-amz-object-lock-mode")
                || h.contains_key("x-amz-object-lock-retain-until-date"),
            legal_hold: h.contains_key("x-amz-object-lock-legal-hold"),
            bypass_governance: header(h, "x-amz-bypass-governance-retention")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            object_lock_enabled: header(h, "x-amz-bucket-object-lock-enabled")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            ownership: h.contains_key("x-amz-object-ownership"),
        };
        let denied = || s3_error!(AccessDenied, "Access Denied");
        let Some(needs) = actions(ask.op, &facts) else {
            // not in the table: only the bucket owner's root, who gets the
            // operation's own answer
            let owner_root = who.is_root() && rec.as_ref().is_none_or(|b| b.owner == who.account_id());
            return if owner_root { Ok(gate) } else { Err(denied()) };
        };
        for (action, on) in needs {
            let (resource, decision) = match on {
                On::All => {
                    let d = decide(
                        who,
                        &gate.inner.identity,
                        action,
                        "*",
                        &ResourceSide::default(),
                        &gate.inner.ctx,
                    );
                    ("*".to_owned(), d)
                }
                On::Bucket | On::Object => {
                    let b = bucket.unwrap_or_default();
                    let resource = match (on, key) {
                        (On::Object, Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
                        _ => format!("arn:aws:s3:::{b}"),
                    };
                    // creating a bucket is the caller's own act (the
                    // operation answers BucketAlreadyExists for taken names)
                    let rs = match &side {
                        Some(s) if ask.op != "CreateBucket" => s.resource_side(),
                        _ => ResourceSide::default(),
                    };
                    let d = decide(who, &gate.inner.identity, action, &resource, &rs, &gate.inner.ctx);
                    (resource, d)
                }
                On::Source => {
                    let Some((sb, sk, _)) = &src else { continue };
                    // a missing source bucket answers for itself
                    let Some(srec) = self.bucket(sb)? else { continue };
                    let sside = self.side(&srec);
                    let resource = format!("arn:aws:s3:::{sb}/{sk}");
                    let rs = sside.resource_side();
                    let d = decide(who, &gate.inner.identity, action, &resource, &rs, &gate.inner.ctx);
                    (resource, d)
                }
            };
            if decision != Decision::Allow && self.reveals_absence(who, ask, &gate, action, bucket, key)? {
                // AWS: a reader who may list the bucket learns that the key
                // does not exist (404) instead of 403
                return Ok(gate);
            }
            if decision != Decision::Allow {
                tracing::info!(
                    target: "access",
                    principal = %who.identity_arn(),
                    action,
                    resource = %resource,
                    decision = ?decision,
                    "request denied"
                );
                return Err(denied());
            }
        }
        self.block_public_acls(ask, rec.as_ref())?;
        Ok(gate)
    }

    /// True when a denied read of a key that does not exist should answer
    /// 404: the caller may list the bucket with that key as prefix.
    fn reveals_absence(
        &self,
        who: &Principal,
        ask: &Ask<'_>,
        gate: &Gate,
        action: &str,
        bucket: Option<&str>,
        key: Option<&str>,
    ) -> S3Result<bool> {
        let (Some(b), Some(k)) = (bucket, key) else {
            return Ok(false);
        };
        if !matches!(ask.op, "GetObject" | "HeadObject") || !action.starts_with("s3:GetObject") {
            return Ok(false);
        }
        let exists = self
            .store
            .object(b, k)
            .map_err(|e| s3_error!(InternalError, "metadata read failed: {e}"))?
            .is_some();
        if exists {
            return Ok(false);
        }
        let g = &gate.inner;
        let mut ctx = g.ctx.clone();
        ctx.set("s3:prefix", k);
        let side = g.side.as_ref();
        let rs = side.map(Side::resource_side).unwrap_or_default();
        Ok(decide(
            who,
            &g.identity,
            "s3:ListBucket",
            &format!("arn:aws:s3:::{b}"),
            &rs,
            &ctx,
        )
        .allowed())
    }

    /// BlockPublicAcls: a request that would set a public ACL is refused.
    fn block_public_acls(&self, ask: &Ask<'_>, rec: Option<&BucketRecord>) -> S3Result<()> {
        let Some(b) = rec else { return Ok(()) };
        let h = ask.headers;
        let canned_public = header(h, "x-amz-acl")
            .is_some_and(|a| matches!(a, "public-read" | "public-read-write" | "authenticated-read"));
        let grant_public = h.iter().any(|(n, v)| {
            n.as_str().starts_with("x-amz-grant-")
                && v.to_str().is_ok_and(|v| v.contains("acs.amazonaws.com/groups/global/"))
        });
        if (canned_public || grant_public) && effective_pab(self.store, b).block_public_acls {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        Ok(())
    }

    /// s3:ExistingObjectTag/<k>: the tags of the object the request names,
    /// the version given by `versionId` or the current one.
    fn existing_tags(&self, b: &BucketRecord, key: &str, version: Option<&str>, ctx: &mut Context) -> S3Result<()> {
        let failed = |e: strongroom_store::StoreError| s3_error!(InternalError, "metadata read failed: {e}");
        let rec = match version {
            None => self.store.object(&b.name, key).map_err(failed)?,
            Some(vid) => {
                // the key's versions, newest first, until the one named
                let mut found = None;
                self.store
                    .scan_versions(&b.name, key, None, |k, _, r| {
                        if k != key {
                            return strongroom_store::Visit::Stop;
                        }
                        if r.version_id.as_deref() == Some(vid) {
                            found = Some(r);
                            return strongroom_store::Visit::Stop;
                        }
                        strongroom_store::Visit::Continue
                    })
                    .map_err(failed)?;
                found
            }
        };
        if let Some(r) = rec {
            for (k, v) in &r.tags {
                ctx.set(&format!("s3:ExistingObjectTag/{k}"), v.clone());
            }
        }
        Ok(())
    }
}
