//! The authorization decision: one function combining the caller's
//! identity policies, the resource's policy and Block Public Access with
//! AWS's evaluation logic.
//!
//! - An explicit Deny in any applicable policy wins.
//! - Within the resource owner's account, an Allow from the identity
//!   policies or from the resource policy (naming the caller) suffices; the
//!   account's root is allowed by its identity.
//! - Across accounts, both sides must allow: the caller's identity
//!   policies (a root's identity allows everything) and the resource
//!   policy (naming the caller or its account).
//! - Anonymous callers are allowed only by a resource policy granting `*`.
//! - RestrictPublicBuckets: a public resource policy grants nothing to
//!   callers outside the owner's account.
//! - The resource owner's root may always read, change and delete the
//!   bucket policy (so a policy cannot lock its owner out).

use std::sync::Arc;

use crate::policy::{Context, Outcome, Policy, PrincipalMatch, Subject};
use crate::{CallerKind, Identities, Principal};

/// The resource side of a request.
#[derive(Clone, Debug, Default)]
pub struct ResourceSide<'a> {
    /// Account owning the resource (None: the caller's own, e.g.
    /// ListAllMyBuckets or CreateBucket).
    pub owner: Option<&'a str>,
    /// The resource policy (bucket policy), if any.
    pub policy: Option<&'a Policy>,
    /// Block Public Access's RestrictPublicBuckets (bucket or account).
    pub restrict_public: bool,
    /// The policy was set with ConfirmRemoveSelfBucketAccess: the owner's
    /// root gave up its standing right to manage it.
    pub self_access_removed: bool,
}

/// The decision, with the reason for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied by an explicit Deny statement.
    ExplicitDeny,
    /// No statement allows it.
    ImplicitDeny,
}

impl Decision {
    pub fn allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// Actions the resource owner's root may always take.
const OWNER_ROOT_ALWAYS: &[&str] = &["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"];

/// The identity side of a caller: the policies attached to its identity
/// and, for a session created with session policies (AssumeRole `Policy`,
/// `PolicyArns`), those too: the session may do only what both allow.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub policies: Vec<Arc<Policy>>,
    pub session: Option<Vec<Arc<Policy>>>,
}

impl From<Vec<Arc<Policy>>> for Identity {
    fn from(policies: Vec<Arc<Policy>>) -> Identity {
        Identity {
            policies,
            session: None,
        }
    }
}

/// The caller's identity side. An error (the caller denies) when any of
/// its policies cannot be used, or the directory lock is poisoned.
pub fn identity_policies(ids: &Identities, who: &Principal) -> Result<Identity, String> {
    let dir = ids
        .dir
        .read()
        .map_err(|_| "the IAM directory lock is poisoned".to_owned())?;
    let policies = match who.kind() {
        CallerKind::User { name, .. } => dir.user_policies(who.account_id(), name)?,
        CallerKind::Role { role, .. } => dir.role_policies(who.account_id(), role)?,
        CallerKind::Root | CallerKind::Anonymous => Vec::new(),
    };
    let session = if who.is_temporary() {
        dir.session_policies(who.access_key())?
    } else {
        None
    };
    Ok(Identity { policies, session })
}

/// How the Principal element of a policy sees a caller.
pub fn subject_of(who: &Principal) -> SubjectOwned {
    SubjectOwned {
        account: (!who.is_anonymous()).then(|| who.account_id().to_owned()),
        arn: (!who.is_anonymous()).then(|| who.identity_arn()),
        role_arn: matches!(who.kind(), CallerKind::Role { .. }).then(|| who.arn()),
        canonical_id: (!who.is_anonymous()).then(|| who.canonical_id().to_owned()),
        is_root: who.is_root(),
        entity_id: match who.kind() {
            CallerKind::User { id, .. } => Some(id.clone()),
            CallerKind::Role { role_id, .. } => Some(role_id.clone()),
            CallerKind::Root | CallerKind::Anonymous => None,
        },
    }
}

/// An owned [`Subject`].
#[derive(Clone, Debug)]
pub struct SubjectOwned {
    pub account: Option<String>,
    pub arn: Option<String>,
    pub role_arn: Option<String>,
    pub canonical_id: Option<String>,
    pub is_root: bool,
    pub entity_id: Option<String>,
}

impl SubjectOwned {
    pub fn as_subject(&self) -> Subject<'_> {
        Subject {
            account: self.account.as_deref(),
            arn: self.arn.as_deref(),
            role_arn: self.role_arn.as_deref(),
            canonical_id: self.canonical_id.as_deref(),
            is_root: self.is_root,
            service: None,
            entity_id: self.entity_id.as_deref(),
        }
    }
}

/// Decides one action on one resource.
pub fn decide(
    who: &Principal,
    identity: &Identity,
    action: &str,
    resource: &str,
    side: &ResourceSide<'_>,
    ctx: &Context,
) -> Decision {
    let subject = subject_of(who);
    let subject = subject.as_subject();
    let owner = side.owner.unwrap_or(who.account_id());
    let same_account = !who.is_anonymous() && owner == who.account_id();
    let owner_root_exempt =
        same_account && who.is_root() && !side.self_access_removed && OWNER_ROOT_ALWAYS.contains(&action);

    // identity side
    let mut id_allow = who.is_root();
    for p in &identity.policies {
        match p.evaluate(&subject, action, resource, ctx) {
            Outcome::Deny => return Decision::ExplicitDeny,
            Outcome::Allow(_) => id_allow = true,
            Outcome::NotApplicable => {}
        }
    }
    // session policies bound everything the session does
    if let Some(session) = &identity.session {
        let mut session_allow = false;
        for p in session {
            match p.evaluate(&subject, action, resource, ctx) {
                Outcome::Deny => return Decision::ExplicitDeny,
                Outcome::Allow(_) => session_allow = true,
                Outcome::NotApplicable => {}
            }
        }
        if !session_allow {
            return Decision::ImplicitDeny;
        }
    }
    // resource side
    let mut res_allow = None;
    if let Some(policy) = side.policy {
        match policy.evaluate(&subject, action, resource, ctx) {
            Outcome::Deny if !owner_root_exempt => return Decision::ExplicitDeny,
            Outcome::Allow(m) => {
                let public_blocked = side.restrict_public && !same_account && policy.is_public();
                if !public_blocked {
                    res_allow = Some(m);
                }
            }
            _ => {}
        }
    }
    let allowed = if who.is_anonymous() {
        res_allow == Some(PrincipalMatch::Direct)
    } else if same_account {
        id_allow || res_allow == Some(PrincipalMatch::Direct)
    } else {
        id_allow && res_allow.is_some()
    };
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

impl Identities {
    /// The principal for an unsigned request.
    pub fn anonymous(&self) -> Principal {
        Principal::anonymous()
    }
}

/// True when the caller's identity policies alone allow `action` on
/// `resource` (roots: always).
pub fn identity_allows(ids: &Identities, who: &Principal, ctx: &Context, action: &str, resource: &str) -> bool {
    identity_decision(ids, who, ctx, action, resource).allowed()
}

/// What the caller's identity policies (and session policies) alone say
/// of `action` on `resource`: Allow, an explicit Deny (which no resource
/// policy overrides), or nothing (roots: Allow; unusable policies: Deny).
pub fn identity_decision(ids: &Identities, who: &Principal, ctx: &Context, action: &str, resource: &str) -> Decision {
    let Ok(identity) = identity_policies(ids, who) else {
        return Decision::ExplicitDeny;
    };
    let rs = ResourceSide {
        owner: Some(who.account_id()),
        ..ResourceSide::default()
    };
    decide(who, &identity, action, resource, &rs, ctx)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::policy::Kind;

    fn who(account: &str, kind: CallerKind) -> Principal {
        Principal {
            account_id: account.into(),
            display_name: String::new(),
            canonical_id: String::new(),
            access_key: String::new(),
            kind,
            mfa_at: None,
            temporary: false,
            _proof: crate::Proof,
        }
    }

    fn user(account: &str) -> Principal {
        who(
            account,
            CallerKind::User {
                name: "u".into(),
                id: "AIDAX".into(),
                path: "/".into(),
            },
        )
    }

    fn doc(kind: Kind, effect: &str, principal: Option<&str>) -> Arc<Policy> {
        let p = principal.map(|p| format!(r#""Principal":{p},"#)).unwrap_or_default();
        Arc::new(
            Policy::parse(
                &format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}",{p}"Action":"s3:GetObject","Resource":"*"}}]}}"#
                ),
                kind,
            )
            .unwrap(),
        )
    }

    const R: &str = "arn:aws:s3:::b/k";

    fn run(w: &Principal, identity: &[Arc<Policy>], bucket: Option<&Policy>, owner: &str, restrict: bool) -> Decision {
        let side = ResourceSide {
            owner: Some(owner),
            policy: bucket,
            restrict_public: restrict,
            self_access_removed: false,
        };
        decide(
            w,
            &Identity::from(identity.to_vec()),
            "s3:GetObject",
            R,
            &side,
            &Context::new(),
        )
    }

    #[test]
    fn aws_evaluation_logic_table() {
        let id_allow = [doc(Kind::Identity, "Allow", None)];
        let id_deny = [doc(Kind::Identity, "Deny", None)];
        let to_user = doc(
            Kind::Resource,
            "Allow",
            Some(r#"{"AWS":"arn:aws:iam::222222222222:user/u"}"#),
        );
        let to_acct = doc(Kind::Resource, "Allow", Some(r#"{"AWS":"222222222222"}"#));
        let to_all = doc(Kind::Resource, "Allow", Some(r#""*""#));
        let deny_all = doc(Kind::Resource, "Deny", Some(r#""*""#));
        let root_a = who("111111111111", CallerKind::Root);
        let user_a = user("111111111111");
        let user_b = user("222222222222");
        let root_b = who("222222222222", CallerKind::Root);
        let anon = Principal::anonymous();
        let a = "111111111111";
        use Decision::*;
        let cases: Vec<(&str, Decision, Decision)> = vec![
            ("owner root, nothing", run(&root_a, &[], None, a, false), Allow),
            (
                "owner root, bucket deny",
                run(&root_a, &[], Some(&deny_all), a, false),
                ExplicitDeny,
            ),
            (
                "same-account user, nothing",
                run(&user_a, &[], None, a, false),
                ImplicitDeny,
            ),
            (
                "same-account user, identity allow",
                run(&user_a, &id_allow, None, a, false),
                Allow,
            ),
            (
                "same-account user, identity deny + bucket allow",
                run(&user_a, &id_deny, Some(&to_all), a, false),
                ExplicitDeny,
            ),
            (
                "same-account user, bucket to *",
                run(&user_a, &[], Some(&to_all), a, false),
                Allow,
            ),
            (
                "cross user, bucket names user only",
                run(&user_b, &[], Some(&to_user), a, false),
                ImplicitDeny,
            ),
            (
                "cross user, identity only",
                run(&user_b, &id_allow, None, a, false),
                ImplicitDeny,
            ),
            (
                "cross user, both",
                run(&user_b, &id_allow, Some(&to_user), a, false),
                Allow,
            ),
            (
                "cross user, bucket to account + identity",
                run(&user_b, &id_allow, Some(&to_acct), a, false),
                Allow,
            ),
            (
                "cross user, bucket to account only",
                run(&user_b, &[], Some(&to_acct), a, false),
                ImplicitDeny,
            ),
            (
                "cross root, bucket to account",
                run(&root_b, &[], Some(&to_acct), a, false),
                Allow,
            ),
            ("cross root, nothing", run(&root_b, &[], None, a, false), ImplicitDeny),
            ("anonymous, nothing", run(&anon, &[], None, a, false), ImplicitDeny),
            (
                "anonymous, bucket to *",
                run(&anon, &[], Some(&to_all), a, false),
                Allow,
            ),
            (
                "anonymous, bucket to *, restricted",
                run(&anon, &[], Some(&to_all), a, true),
                ImplicitDeny,
            ),
            (
                "cross root, bucket to *, restricted",
                run(&root_b, &[], Some(&to_all), a, true),
                ImplicitDeny,
            ),
            (
                "same-account user, bucket to *, restricted",
                run(&user_a, &[], Some(&to_all), a, true),
                Allow,
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn the_owner_root_keeps_bucket_policy_control() {
        let deny = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}]}"#,
            Kind::Resource,
        )
        .unwrap();
        let root = who("111111111111", CallerKind::Root);
        let side = ResourceSide {
            owner: Some("111111111111"),
            policy: Some(&deny),
            restrict_public: false,
            self_access_removed: false,
        };
        let ctx = Context::new();
        for action in OWNER_ROOT_ALWAYS {
            assert_eq!(
                decide(&root, &Identity::default(), action, "arn:aws:s3:::b", &side, &ctx),
                Decision::Allow
            );
        }
        assert_eq!(
            decide(&root, &Identity::default(), "s3:GetObject", R, &side, &ctx),
            Decision::ExplicitDeny
        );
        let other = who("222222222222", CallerKind::Root);
        assert_eq!(
            decide(
                &other,
                &Identity::default(),
                "s3:PutBucketPolicy",
                "arn:aws:s3:::b",
                &side,
                &ctx
            ),
            Decision::ExplicitDeny
        );
        // ConfirmRemoveSelfBucketAccess gives the exemption up
        let confirmed = ResourceSide {
            self_access_removed: true,
            ..side
        };
        assert_eq!(
            decide(
                &root,
                &Identity::default(),
                "s3:PutBucketPolicy",
                "arn:aws:s3:::b",
                &confirmed,
                &ctx
            ),
            Decision::ExplicitDeny
        );
    }
}
