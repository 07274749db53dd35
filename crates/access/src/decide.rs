//! The decision for one S3 request: the bucket (and copy source) records
//! read once, the caller's identity policies, the bucket policy and Block
//! Public Access, every action the operation needs, AWS's evaluation logic.
//! Every missing or unreadable fact is a denial or an error, never an
//! allow; what is decided is handed to the operation in an [`Authorized`].

use std::sync::Arc;

use s3s::{S3Error, S3Result, s3_error};
use strongroom_iam::authz::{Decision, Identity, ResourceSide, decide, identity_policies};
use strongroom_iam::policy::{Context, Policy};
use strongroom_iam::{Identities, Principal};
use strongroom_store::{BucketRecord, Store};

use crate::ask::Ask;
use crate::config::{POLICY_LOCKOUT_CONFIG, PolicyCache, effective_pab};
use crate::context::Env;
use crate::envelope::AuthFacts;
use crate::table::{On, Op, actions};

/// A bucket's owner, policy and public-access restriction, as decided on.
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
/// for decisions it takes per key (DeleteObjects) or on the caller's
/// behalf (KMS key use).
#[derive(Clone)]
pub struct Grant {
    inner: Arc<GrantInner>,
}

struct GrantInner {
    who: Principal,
    identity: Identity,
    bucket: String,
    side: Option<Side>,
    ctx: Context,
}

impl Grant {
    /// What the caller's identity policies alone say of `action` on
    /// `resource`, with the condition keys of the service S3 calls on the
    /// caller's behalf (KMS's) added to the request's.
    pub fn identity_decision(&self, action: &str, resource: &str, service_keys: &Context) -> Decision {
        let g = &self.inner;
        let rs = ResourceSide {
            owner: Some(g.who.account_id()),
            ..ResourceSide::default()
        };
        let mut ctx = g.ctx.clone();
        ctx.merge(service_keys);
        decide(&g.who, &g.identity, action, resource, &rs, &ctx)
    }

    /// True when the caller may list the request's bucket with `prefix`
    /// (s3:ListBucket): what decides whether a read of a missing key
    /// answers 404 or 403, as AWS.
    pub fn may_list(&self, prefix: &str) -> bool {
        let g = &self.inner;
        let Some(side) = g.side.as_ref() else { return false };
        let mut ctx = g.ctx.clone();
        ctx.set("s3:prefix", prefix);
        let resource = format!("arn:aws:s3:::{}", g.bucket);
        decide(
            &g.who,
            &g.identity,
            "s3:ListBucket",
            &resource,
            &side.resource_side(),
            &ctx,
        )
        .allowed()
    }

    /// True when the caller may take `action` on `key` of the request's bucket.
    pub fn allows(&self, action: &str, key: &str) -> bool {
        let g = &self.inner;
        let resource = format!("arn:aws:s3:::{}/{key}", g.bucket);
        let Some(side) = g.side.as_ref() else { return false };
        decide(&g.who, &g.identity, action, &resource, &side.resource_side(), &g.ctx).allowed()
    }
}

/// The proof that a request was decided, with what it was decided on:
/// the caller, the grant, the bucket record the handler must use, and how
/// the request authenticated. Only the access layer creates one; handlers
/// that find none deny.
#[derive(Clone)]
pub struct Authorized {
    inner: Arc<AuthorizedInner>,
}

struct AuthorizedInner {
    grant: Grant,
    bucket: Option<BucketRecord>,
    source: Option<BucketRecord>,
    facts: Arc<AuthFacts>,
}

impl Authorized {
    pub fn principal(&self) -> &Principal {
        &self.inner.grant.inner.who
    }
    pub fn grant(&self) -> &Grant {
        &self.inner.grant
    }
    /// The bucket record the decision read (None for ListBuckets and
    /// CreateBucket). Commits compare its `id` with the record they see,
    /// so a bucket deleted and re-created in between fails the request.
    pub fn bucket(&self) -> Option<&BucketRecord> {
        self.inner.bucket.as_ref()
    }
    /// The copy source's bucket record the decision read (CopyObject,
    /// UploadPartCopy), for the operation to read the source from.
    pub fn source_bucket(&self) -> Option<&BucketRecord> {
        self.inner.source.as_ref()
    }
    /// How the request authenticated.
    pub fn facts(&self) -> &AuthFacts {
        &self.inner.facts
    }
}

pub(crate) struct Authorizer {
    pub identities: Identities,
    pub store: Store,
    pub policies: PolicyCache,
}

fn denied() -> S3Error {
    s3_error!(AccessDenied, "Access Denied")
}

fn no_such_bucket() -> S3Error {
    s3_error!(NoSuchBucket, "The specified bucket does not exist")
}

fn internal(what: &str, e: impl std::fmt::Display) -> S3Error {
    tracing::error!(error = %e, "{what}");
    s3_error!(InternalError, "We encountered an internal error. Please try again.")
}

impl Authorizer {
    fn bucket(&self, name: &str) -> S3Result<Option<BucketRecord>> {
        self.store
            .bucket(name)
            .map_err(|e| internal("bucket record not readable", e))
    }

    /// The resource side of a bucket; an unusable policy denies.
    fn side(&self, b: &BucketRecord) -> Result<Side, String> {
        let policy = self.policies.get(&self.store, b).map_err(|e| e.0)?;
        Ok(Side {
            owner: b.owner.clone(),
            policy,
            restrict_public: effective_pab(&self.store, b).restrict_public_buckets,
            self_access_removed: b.configs.contains_key(POLICY_LOCKOUT_CONFIG),
        })
    }

    /// Decides `ask` for `env.who`.
    pub(crate) fn decide(&self, ask: &Ask, env: &Env<'_>) -> S3Result<Authorized> {
        let who = env.who;
        let rec = match &ask.bucket {
            Some(b) => self.bucket(b)?,
            None => None,
        };
        if ask.bucket.is_some() && rec.is_none() && ask.op != Op::CreateBucket {
            // a bucket that does not exist answers for itself, before
            // anything else runs
            return Err(no_such_bucket());
        }
        let identity = match identity_policies(&self.identities, who) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(principal = %who.identity_arn(), error = %e, "identity policies unusable: denied");
                return Err(denied());
            }
        };
        let side = match rec.as_ref().map(|b| self.side(b)).transpose() {
            Ok(s) => s,
            Err(e) => return self.unusable_policy(ask, rec.as_ref(), &e, env),
        };
        let mut ctx = crate::context::s3_context(env, ask);
        let tests_tags = |p: &Policy| p.tests_key("s3:ExistingObjectTag/");
        let wants_tags = identity
            .policies
            .iter()
            .chain(identity.session.iter().flatten())
            .any(|p| tests_tags(p))
            || side.as_ref().and_then(|s| s.policy.as_deref()).is_some_and(tests_tags);
        if wants_tags && let (Some(b), Some(k)) = (&rec, &ask.key) {
            self.existing_tags(b, k, ask.version_id.as_deref(), &mut ctx)?;
        }
        let grant = Grant {
            inner: Arc::new(GrantInner {
                who: who.clone(),
                identity,
                bucket: ask.bucket.clone().unwrap_or_default(),
                side: side.clone(),
                ctx,
            }),
        };
        let Some(needs) = actions(ask.op, &ask.needs) else {
            // not served: only the bucket owner's root learns so
            let owner_root = who.is_root() && rec.as_ref().is_none_or(|b| b.owner == who.account_id());
            return Err(if owner_root {
                s3_error!(NotImplemented, "{} is not implemented", ask.op.name())
            } else {
                denied()
            });
        };
        let mut source_rec: Option<BucketRecord> = None;
        for (action, on) in needs {
            let g = &grant.inner;
            let (resource, decision) = match on {
                On::All => (
                    "*".to_owned(),
                    decide(who, &g.identity, action, "*", &ResourceSide::default(), &g.ctx),
                ),
                On::Bucket | On::Object => {
                    let b = ask.bucket.as_deref().unwrap_or_default();
                    let resource = match (on, &ask.key) {
                        (On::Object, Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
                        _ => format!("arn:aws:s3:::{b}"),
                    };
                    // creating a bucket is the caller's own act (the
                    // operation answers BucketAlreadyExists for taken names)
                    let rs = match &side {
                        Some(s) if ask.op != Op::CreateBucket => s.resource_side(),
                        _ => ResourceSide::default(),
                    };
                    let d = decide(who, &g.identity, action, &resource, &rs, &g.ctx);
                    (resource, d)
                }
                On::Source => {
                    let src = ask.source.as_ref().ok_or_else(denied)?;
                    // read once, however many source actions the operation needs
                    let srec = match source_rec.take() {
                        Some(r) => r,
                        None => self.bucket(&src.bucket)?.ok_or_else(no_such_bucket)?,
                    };
                    let sside = match self.side(&srec) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::error!(bucket = %srec.name, error = %e, "copy source policy unusable: denied");
                            return Err(denied());
                        }
                    };
                    let resource = format!("arn:aws:s3:::{}/{}", src.bucket, src.key);
                    let d = decide(who, &g.identity, action, &resource, &sside.resource_side(), &g.ctx);
                    source_rec = Some(srec);
                    (resource, d)
                }
            };
            if decision != Decision::Allow {
                if self.reveals_absence(ask, &grant, action, rec.as_ref())? {
                    // AWS: a reader who may list the bucket learns that the
                    // key does not exist (404) instead of 403
                    return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
                }
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
        if let Some(b) = &rec {
            if ask.public_acl && effective_pab(&self.store, b).block_public_acls {
                return Err(denied());
            }
            if ask.expected_owner.as_ref().is_some_and(|o| *o != b.owner) {
                return Err(denied());
            }
        }
        if let Some(want) = &ask.source_expected_owner
            && source_rec.as_ref().map(|s| &s.owner) != Some(want)
        {
            return Err(denied());
        }
        Ok(Authorized {
            inner: Arc::new(AuthorizedInner {
                grant,
                bucket: rec,
                source: source_rec,
                facts: env.facts.clone(),
            }),
        })
    }

    /// A bucket whose stored policy cannot be used: everything is denied
    /// but the owner root's standing right to replace or delete it, so
    /// that the owner can repair the bucket.
    fn unusable_policy(&self, ask: &Ask, rec: Option<&BucketRecord>, e: &str, env: &Env<'_>) -> S3Result<Authorized> {
        tracing::error!(bucket = ?ask.bucket, error = %e, "bucket policy unusable: denied");
        let who = env.who;
        let repair = matches!(ask.op, Op::PutBucketPolicy | Op::DeleteBucketPolicy);
        let (Some(rec), true, true) = (rec, who.is_root(), repair) else {
            return Err(denied());
        };
        if rec.owner != who.account_id() {
            return Err(denied());
        }
        let grant = Grant {
            inner: Arc::new(GrantInner {
                who: who.clone(),
                identity: Identity::default(),
                bucket: rec.name.clone(),
                side: None,
                ctx: Context::new(),
            }),
        };
        Ok(Authorized {
            inner: Arc::new(AuthorizedInner {
                grant,
                bucket: Some(rec.clone()),
                source: None,
                facts: env.facts.clone(),
            }),
        })
    }

    /// True when a denied read of a key that does not exist should answer
    /// 404: the caller may list the bucket with that key as prefix.
    fn reveals_absence(&self, ask: &Ask, grant: &Grant, action: &str, rec: Option<&BucketRecord>) -> S3Result<bool> {
        let (Some(b), Some(k)) = (rec, &ask.key) else {
            return Ok(false);
        };
        if !matches!(ask.op, Op::GetObject | Op::HeadObject) || !action.starts_with("s3:GetObject") {
            return Ok(false);
        }
        let exists = self
            .store
            .object(&b.name, k)
            .map_err(|e| internal("object record not readable", e))?
            .is_some();
        if exists {
            return Ok(false);
        }
        let g = &grant.inner;
        let Some(side) = g.side.as_ref() else { return Ok(false) };
        let mut ctx = g.ctx.clone();
        ctx.set("s3:prefix", k.clone());
        let resource = format!("arn:aws:s3:::{}", b.name);
        Ok(decide(
            &g.who,
            &g.identity,
            "s3:ListBucket",
            &resource,
            &side.resource_side(),
            &ctx,
        )
        .allowed())
    }

    /// `s3:ExistingObjectTag/<k>`: the tags of the version the request
    /// names (s3s's parsed versionId), or of the current object.
    fn existing_tags(&self, b: &BucketRecord, key: &str, version: Option<&str>, ctx: &mut Context) -> S3Result<()> {
        let failed = |e: strongroom_store::StoreError| internal("object record not readable", e);
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
