//! Evaluating one document against one request.

use super::condition::{Context, holds};
use super::glob::wildcard;
use super::{Effect, Policy, Principals, Statement};

/// Who is asking, as a policy's Principal element sees it.
#[derive(Clone, Debug)]
pub struct Subject<'a> {
    /// None for anonymous callers.
    pub account: Option<&'a str>,
    /// The caller's ARN (`arn:aws:iam::ACCT:root`, `...:user/NAME`,
    /// `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`).
    pub arn: Option<&'a str>,
    /// For role sessions: the role's ARN (a policy naming the role matches).
    pub role_arn: Option<&'a str>,
    pub canonical_id: Option<&'a str>,
    pub is_root: bool,
    /// The AWS service acting (KMS via S3): matches `{"Service": ...}`.
    pub service: Option<&'a str>,
    /// The unique id of the IAM user, or of the role of a role session.
    pub entity_id: Option<&'a str>,
}

/// How a Principal element matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalMatch {
    No,
    /// Named the caller itself, or everyone.
    Direct,
    /// Named the caller's account: a grant to the account, which the
    /// account must delegate by its own identity policies.
    Account,
}

/// The result of one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No statement applies.
    NotApplicable,
    /// An Allow applies; `Account` when only through an account principal.
    Allow(PrincipalMatch),
    /// An explicit Deny applies.
    Deny,
}

fn principal_match(p: &Principals, who: &Subject<'_>) -> PrincipalMatch {
    if p.any {
        return PrincipalMatch::Direct;
    }
    let Some(account) = who.account else {
        return PrincipalMatch::No;
    };
    let root_arn = format!("arn:aws:iam::{account}:root");
    let mut best = PrincipalMatch::No;
    for a in &p.aws {
        if who.arn == Some(a.as_str()) || who.role_arn == Some(a.as_str()) {
            // a bound document names the entity it was written for, not
            // whoever holds that ARN now
            let same = match (&p.bound, super::is_entity_arn(a)) {
                (Some(ids), true) => ids.get(a).is_some_and(|id| who.entity_id == Some(id.as_str())),
                _ => true,
            };
            if same {
                return PrincipalMatch::Direct;
            }
            continue;
        }
        if super::is_unique_id(a) && who.entity_id == Some(a.as_str()) {
            return PrincipalMatch::Direct;
        }
        if a == account || *a == root_arn {
            best = if who.is_root {
                PrincipalMatch::Direct
            } else {
                PrincipalMatch::Account
            };
        }
    }
    if best == PrincipalMatch::No && who.service.is_some_and(|s| p.service.iter().any(|x| x == s)) {
        return PrincipalMatch::Direct;
    }
    if best == PrincipalMatch::No && p.canonical.iter().any(|c| Some(c.as_str()) == who.canonical_id) {
        best = PrincipalMatch::Account;
        if who.is_root {
            best = PrincipalMatch::Direct;
        }
    }
    best
}

/// Substitutes `${...}` policy variables; None when one is unknown.
pub(super) fn substitute(s: &str, ctx: &Context) -> Option<String> {
    if !s.contains("${") {
        return Some(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return Some(out);
        };
        let inner = after[..end].trim();
        match inner {
            "*" => out.push('*'),
            "?" => out.push('?'),
            "$" => out.push('$'),
            _ => {
                let (key, default) = match inner.split_once(',') {
                    Some((k, d)) => (k.trim(), Some(d.trim().trim_matches('\'').to_owned())),
                    None => (inner, None),
                };
                match ctx
                    .get(key)
                    .and_then(|v| (v.len() == 1).then(|| v[0].clone()))
                    .or(default)
                {
                    Some(v) => out.push_str(&v),
                    None => return None,
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

impl Statement {
    /// Does this statement apply to the request? Returns how the principal
    /// matched (Direct for statements without a Principal).
    fn applies(&self, vars: bool, who: &Subject<'_>, action: &str, resource: &str, ctx: &Context) -> PrincipalMatch {
        let resolve = |v: &str| if vars { substitute(v, ctx) } else { Some(v.to_owned()) };
        let pm = match &self.principal {
            None => PrincipalMatch::Direct,
            Some((p, false)) => principal_match(p, who),
            // NotPrincipal: applies to everyone not named
            Some((p, true)) => match principal_match(p, who) {
                PrincipalMatch::No => PrincipalMatch::Direct,
                _ => PrincipalMatch::No,
            },
        };
        if pm == PrincipalMatch::No {
            return pm;
        }
        let (acts, not_action) = &self.action;
        let hit = acts.iter().any(|a| wildcard(a, action, true));
        if hit == *not_action {
            return PrincipalMatch::No;
        }
        if let Some((rs, not_resource)) = &self.resource {
            let hit = rs
                .iter()
                .any(|r| resolve(r).is_some_and(|r| wildcard(&r, resource, false)));
            if hit == *not_resource {
                return PrincipalMatch::No;
            }
        }
        if !self.conditions.iter().all(|c| holds(c, ctx, &resolve)) {
            return PrincipalMatch::No;
        }
        pm
    }
}

impl Policy {
    /// Evaluates the document for `who` doing `action` on `resource`.
    pub fn evaluate(&self, who: &Subject<'_>, action: &str, resource: &str, ctx: &Context) -> Outcome {
        let mut out = Outcome::NotApplicable;
        for s in &self.statements {
            let pm = s.applies(self.variables, who, action, resource, ctx);
            if pm == PrincipalMatch::No {
                continue;
            }
            match s.effect {
                Effect::Deny => return Outcome::Deny,
                Effect::Allow => {
                    out = match out {
                        Outcome::Allow(PrincipalMatch::Direct) => out,
                        _ => Outcome::Allow(pm),
                    }
                }
            }
        }
        out
    }
}
