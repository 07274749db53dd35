//! The IAM policy language: documents parsed and validated once (when they
//! are set), then evaluated against a request on every call.
//!
//! One grammar serves identity policies (users, groups, roles, managed
//! policies), resource policies (bucket policies) and role trust policies;
//! [`Kind`] says which elements each must or must not carry. Evaluation of a
//! single document is [`Policy::evaluate`]; combining identity and resource
//! policies into a decision is [`crate::authz`].

mod condition;
mod eval;
mod glob;

pub use condition::Context;
pub use eval::{Outcome, PrincipalMatch, Subject};
pub use glob::wildcard;

/// Parses a date as condition operators do (ISO 8601 or epoch seconds).
pub fn parse_date_secs(s: &str) -> Option<f64> {
    condition::parse_date(s)
}

use serde_json::Value;

/// Largest policy document accepted (bucket policies: 20 KiB in AWS).
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// Where a document is used: decides which elements are required.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Attached to an identity: no Principal, Resource required.
    Identity,
    /// Attached to a resource (bucket policy): Principal and Resource required.
    Resource,
    /// A role's trust policy: Principal required, no Resource.
    Trust,
}

/// Why a document was refused, with a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn bad<T>(m: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(m.into()))
}

/// Allow or Deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// The Principal element.
#[derive(Clone, Debug, Default)]
pub struct Principals {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous included.
    pub any: bool,
    /// AWS account ids, account/user/role/session ARNs.
    pub aws: Vec<String>,
    /// Service principals (`s3.amazonaws.com`...).
    pub service: Vec<String>,
    /// Canonical user ids.
    pub canonical: Vec<String>,
    /// Federated principals (never match here; kept for round trips).
    pub federated: Vec<String>,
    /// For a stored document whose IAM user and role principals were bound
    /// to the entities they named when it was written: ARN -> unique id.
    /// A bound document's user/role ARN matches only that entity (not a
    /// successor under the same name); one missing from the map matches
    /// nothing. None: an unbound document (matched by ARN).
    pub bound: Option<std::sync::Arc<std::collections::BTreeMap<String, String>>>,
}

/// True for the ARN of an IAM user or role (`arn:aws:iam::ACCT:user/...`,
/// `...:role/...`), the principals that bind to a unique id.
pub fn is_entity_arn(a: &str) -> bool {
    let mut p = a.splitn(6, ':');
    let (Some("arn"), Some(_), Some("iam"), Some(""), Some(_), Some(res)) =
        (p.next(), p.next(), p.next(), p.next(), p.next(), p.next())
    else {
        return false;
    };
    res.starts_with("user/") || res.starts_with("role/")
}

/// True for an IAM unique id as a policy may name it (`AIDA...` for a
/// user, `AROA...` for a role).
pub fn is_unique_id(a: &str) -> bool {
    (a.starts_with("AIDA") || a.starts_with("AROA"))
        && (16..=128).contains(&a.len())
        && a.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// One condition: `Operator: {key: [values]}`.
#[derive(Clone, Debug)]
pub struct Condition {
    pub op: condition::Operator,
    pub set: condition::SetQualifier,
    pub if_exists: bool,
    /// Context key as written (compared case-insensitively).
    pub key: String,
    /// The key in lower case (context lookups).
    pub lkey: String,
    pub values: Vec<String>,
}

/// One statement.
#[derive(Clone, Debug)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// `(principals, negated)`; None when absent (identity policies).
    pub principal: Option<(Principals, bool)>,
    /// `(patterns, negated)`.
    pub action: (Vec<String>, bool),
    /// `(patterns, negated)`; None when absent (trust policies).
    pub resource: Option<(Vec<String>, bool)>,
    pub conditions: Vec<Condition>,
}

/// A parsed, validated policy document.
#[derive(Clone, Debug)]
pub struct Policy {
    /// `2012-10-17` enables policy variables; `2008-10-17` (or none) not.
    pub variables: bool,
    pub statements: Vec<Statement>,
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, Malformed> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                _ => bad(format!("{what} must be a string or a list of strings")),
            })
            .collect(),
        Value::Array(_) => bad(format!("{what} must not be empty")),
        _ => bad(format!("{what} must be a string or a list of strings")),
    }
}

/// Condition values: strings, numbers and booleans are written as strings.
fn condition_values(v: &Value) -> Result<Vec<String>, Malformed> {
    let one = |x: &Value| match x {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => bad("Condition values must be strings, numbers or booleans"),
    };
    match v {
        Value::Array(a) if a.is_empty() => bad("Condition value list must not be empty"),
        Value::Array(a) => a.iter().map(one).collect(),
        x => Ok(vec![one(x)?]),
    }
}

fn parse_principal(v: &Value) -> Result<Principals, Malformed> {
    let mut p = Principals::default();
    match v {
        Value::String(s) if s == "*" => p.any = true,
        Value::String(_) => return bad("Invalid principal in policy"),
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let list = strings(v, "Principal")?;
                match k.as_str() {
                    "AWS" => {
                        for a in list {
                            if a == "*" {
                                p.any = true;
                            } else if valid_aws_principal(&a) {
                                p.aws.push(a);
                            } else {
                                return bad("Invalid principal in policy");
                            }
                        }
                    }
                    "Service" => p.service.extend(list),
                    "CanonicalUser" => {
                        if list
                            .iter()
                            .any(|c| c.len() != 64 || !c.bytes().all(|b| b.is_ascii_hexdigit()))
                        {
                            return bad("Invalid principal in policy");
                        }
                        p.canonical.extend(list);
                    }
                    "Federated" => p.federated.extend(list),
                    _ => return bad("Invalid principal in policy"),
                }
            }
        }
        _ => return bad("Invalid principal in policy"),
    }
    Ok(p)
}

/// An account id, an IAM user's or role's unique id, or an IAM/STS ARN
/// without wildcards.
fn valid_aws_principal(a: &str) -> bool {
    if (a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())) || is_unique_id(a) {
        return true;
    }
    let parts: Vec<&str> = a.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && (parts[2] == "iam" || parts[2] == "sts")
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && !parts[5].is_empty()
        && !a.contains('*')
        && !a.contains('?')
}

/// `service:Action` with wildcards, or `*`.
fn valid_action(a: &str) -> bool {
    if a == "*" {
        return true;
    }
    match a.split_once(':') {
        Some((svc, act)) => {
            !svc.is_empty()
                && svc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !act.is_empty()
                && act.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
        }
        None => false,
    }
}

fn valid_resource(r: &str) -> bool {
    r == "*" || (r.starts_with("arn:") && r.split(':').count() >= 6)
}

fn key_in(obj: &serde_json::Map<String, Value>, names: &[&str]) -> Result<(), Malformed> {
    for k in obj.keys() {
        if !names.contains(&k.as_str()) {
            return bad(format!("Unknown field {k}"));
        }
    }
    Ok(())
}

fn parse_statement(v: &Value, kind: Kind) -> Result<Statement, Malformed> {
    let Value::Object(m) = v else {
        return bad("Statement must be an object or a list of objects");
    };
    key_in(
        m,
        &[
            "Sid",
            "Effect",
            "Principal",
            "NotPrincipal",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Condition",
        ],
    )?;
    let sid = match m.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return bad("Sid must be a string"),
    };
    let effect = match m.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(e) => return bad(format!("Invalid effect: {e}")),
        None => return bad("Missing required field Effect"),
    };
    let principal = match (m.get("Principal"), m.get("NotPrincipal")) {
        (Some(_), Some(_)) => return bad("Statement cannot have both Principal and NotPrincipal"),
        (Some(p), None) => Some((parse_principal(p)?, false)),
        (None, Some(p)) => {
            if effect == Effect::Allow {
                return bad("NotPrincipal is allowed only with Effect Deny");
            }
            Some((parse_principal(p)?, true))
        }
        (None, None) => None,
    };
    match (kind, &principal) {
        (Kind::Identity, Some(_)) => return bad("Policy document should not specify a principal."),
        (Kind::Resource | Kind::Trust, None) => return bad("Missing required field Principal"),
        _ => {}
    }
    let action = match (m.get("Action"), m.get("NotAction")) {
        (Some(_), Some(_)) => return bad("Statement cannot have both Action and NotAction"),
        (Some(a), None) => (strings(a, "Action")?, false),
        (None, Some(a)) => (strings(a, "NotAction")?, true),
        (None, None) => return bad("Missing required field Action"),
    };
    if let Some(a) = action.0.iter().find(|a| !valid_action(a)) {
        return bad(format!("Policy has invalid action: {a}"));
    }
    let resource = match (m.get("Resource"), m.get("NotResource")) {
        (Some(_), Some(_)) => return bad("Statement cannot have both Resource and NotResource"),
        (Some(r), None) => Some((strings(r, "Resource")?, false)),
        (None, Some(r)) => Some((strings(r, "NotResource")?, true)),
        (None, None) => None,
    };
    match (kind, &resource) {
        (Kind::Identity | Kind::Resource, None) => return bad("Missing required field Resource"),
        (Kind::Trust, Some(_)) => return bad("Has prohibited field Resource"),
        _ => {}
    }
    if let Some((rs, _)) = &resource
        && let Some(r) = rs.iter().find(|r| !valid_resource(r))
    {
        return bad(format!("Policy has invalid resource: {r}"));
    }
    let mut conditions = Vec::new();
    if let Some(c) = m.get("Condition") {
        let Value::Object(ops) = c else {
            return bad("Condition must be an object");
        };
        for (op_name, keys) in ops {
            let (op, set, if_exists) = condition::parse_operator(op_name)?;
            let Value::Object(keys) = keys else {
                return bad(format!("Condition {op_name} must map keys to values"));
            };
            for (key, vals) in keys {
                let values = condition_values(vals)?;
                condition::validate_values(op, &values)?;
                if key.is_empty() {
                    return bad("Condition key must not be empty");
                }
                conditions.push(Condition {
                    op,
                    set,
                    if_exists,
                    lkey: key.to_ascii_lowercase(),
                    key: key.clone(),
                    values,
                });
            }
        }
    }
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

impl Policy {
    /// Parses and validates a document for `kind`.
    pub fn parse(text: &str, kind: Kind) -> Result<Policy, Malformed> {
        Policy::parse_sized(text, kind, MAX_POLICY_BYTES)
    }

    /// Parses and validates a document of at most `max` bytes (key
    /// policies may be 32 KiB).
    pub fn parse_sized(text: &str, kind: Kind, max: usize) -> Result<Policy, Malformed> {
        if text.len() > max {
            return bad(format!("Policies must be at most {} KiB", max / 1024));
        }
        let v: Value = serde_json::from_str(text).map_err(|_| Malformed("Policies must be valid JSON".into()))?;
        let Value::Object(m) = &v else {
            return bad("Policies must be a JSON object");
        };
        key_in(m, &["Version", "Id", "Statement"])?;
        let variables = match m.get("Version") {
            None => false,
            Some(Value::String(s)) if s == "2012-10-17" => true,
            Some(Value::String(s)) if s == "2008-10-17" => false,
            Some(_) => return bad("The policy must contain a valid version string"),
        };
        if matches!(m.get("Id"), Some(x) if !x.is_string()) {
            return bad("Id must be a string");
        }
        let statements = match m.get("Statement") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|s| parse_statement(s, kind))
                .collect::<Result<Vec<_>, _>>()?,
            Some(s @ Value::Object(_)) => vec![parse_statement(s, kind)?],
            _ => return bad("Missing required field Statement"),
        };
        let mut sids = std::collections::HashSet::new();
        for s in &statements {
            if let Some(id) = &s.sid
                && !sids.insert(id.as_str())
            {
                return bad(format!("Statement IDs (SID) in a single policy must be unique: {id}"));
            }
        }
        Ok(Policy { variables, statements })
    }

    /// The IAM user and role ARNs the document names as principals (to
    /// bind them to the entities' unique ids when it is stored).
    pub fn entity_principals(&self) -> std::collections::BTreeSet<String> {
        self.statements
            .iter()
            .filter_map(|s| s.principal.as_ref())
            .flat_map(|(p, _)| p.aws.iter())
            .filter(|a| is_entity_arn(a))
            .cloned()
            .collect()
    }

    /// Binds the document's user and role principals to unique ids (see
    /// [`Principals::bound`]).
    pub fn bind(&mut self, ids: std::collections::BTreeMap<String, String>) {
        let ids = std::sync::Arc::new(ids);
        for s in &mut self.statements {
            if let Some((p, _)) = &mut s.principal {
                p.bound = Some(ids.clone());
            }
        }
    }

    /// True when a condition tests a key starting with `prefix`
    /// (case-insensitive).
    pub fn tests_key(&self, prefix: &str) -> bool {
        let prefix = prefix.to_ascii_lowercase();
        self.statements.iter().any(|s| {
            s.conditions
                .iter()
                .any(|c| c.key.to_ascii_lowercase().starts_with(&prefix))
        })
    }

    /// True when an Allow statement grants to everyone without a condition
    /// that pins the caller to known values (AWS's meaning of "public").
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && match &s.principal {
                    Some((p, false)) => p.any || p.aws.iter().any(|a| a == "*"),
                    Some((_, true)) => true,
                    None => false,
                }
                && !s.conditions.iter().any(condition::pins_caller)
        })
    }
}

#[cfg(test)]
mod tests;
