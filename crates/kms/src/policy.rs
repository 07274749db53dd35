//! Key policies: parsed and validated when set, evaluated on every use.
//! Explicit Deny wins, an Allow is needed, everything else is denied
//! (AWS's evaluation logic; the key policy is the root of a key's access,
//! and only root principals exist so far, so no IAM policy is consulted).
//! Supported: Effect, Principal/NotPrincipal (`*`, account id, `arn:...`,
//! `{"AWS": ...}`, `{"Service": ...}`), Action/NotAction with wildcards,
//! Resource/NotResource, and Condition with the String*, Bool and Null
//! operators (and `...IfExists`, `ForAnyValue:`/`ForAllValues:`) over
//! kms:CallerAccount, kms:ViaService, kms:EncryptionContext:<k>,
//! kms:EncryptionContextKeys, aws:PrincipalArn, aws:PrincipalAccount,
//! aws:SourceIp (exact), aws:SecureTransport. Anything else is refused as
//! MalformedPolicyDocument when the policy is set (fail closed).

use serde_json::Value;

use crate::KmsError;

/// What a request to a key is, for policy evaluation.
pub struct Request<'a> {
    pub action: &'a str,
    pub principal_arn: &'a str,
    pub account: &'a str,
    pub via_service: Option<&'a str>,
    pub context: &'a crate::Context,
    pub source_ip: &'a str,
    pub key_arn: &'a str,
    /// The caller's identity policies allow the action (always true for an
    /// account root): a key policy naming the account grants only then.
    pub delegated: bool,
}

fn malformed(m: impl Into<String>) -> KmsError {
    KmsError::MalformedPolicy(m.into())
}

fn list(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `*` and `?` wildcard match, case-sensitive unless `fold`.
pub(crate) fn wildcard(pattern: &str, s: &str, fold: bool) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = if fold {
        (
            pattern.to_lowercase().chars().collect(),
            s.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), s.chars().collect())
    };
    let (mut pi, mut si, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "Bool",
    "Null",
];

const KEYS: &[&str] = &[
    "kms:calleraccount",
    "kms:viaservice",
    "kms:encryptioncontextkeys",
    "aws:principalarn",
    "aws:principalaccount",
    "aws:sourceip",
    "aws:securetransport",
];

fn split_operator(op: &str) -> (Option<&str>, &str, bool) {
    let (set, rest) = match op.split_once(':') {
        Some((q @ ("ForAnyValue" | "ForAllValues"), r)) => (Some(q), r),
        _ => (None, op),
    };
    match rest.strip_suffix("IfExists") {
        Some(base) => (set, base, true),
        None => (set, rest, false),
    }
}

/// Checks a policy document; returns it parsed.
pub fn parse(doc: &str) -> Result<Value, KmsError> {
    if doc.len() > 32 * 1024 {
        return Err(malformed("The policy is larger than 32 KB."));
    }
    let v: Value = serde_json::from_str(doc).map_err(|e| malformed(format!("The policy is not valid JSON: {e}")))?;
    let stmts = match v.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => return Err(malformed("The policy has no Statement.")),
    };
    if stmts.is_empty() {
        return Err(malformed("The policy has no Statement."));
    }
    for s in &stmts {
        match s.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            _ => return Err(malformed("Each statement needs Effect Allow or Deny.")),
        }
        if s.get("Principal").is_none() && s.get("NotPrincipal").is_none() {
            return Err(malformed("Each statement of a key policy needs a Principal."));
        }
        if s.get("Action").is_none() && s.get("NotAction").is_none() {
            return Err(malformed("Each statement needs an Action."));
        }
        if let Some(c) = s.get("Condition") {
            let Value::Object(ops) = c else {
                return Err(malformed("Condition must be an object."));
            };
            for (op, block) in ops {
                let (_, base, _) = split_operator(op);
                if !OPERATORS.contains(&base) {
                    return Err(malformed(format!("Unsupported condition operator {op}.")));
                }
                let Value::Object(keys) = block else {
                    return Err(malformed(format!("Condition {op} must be an object.")));
                };
                for k in keys.keys() {
                    let lk = k.to_lowercase();
                    if !KEYS.contains(&lk.as_str()) && !lk.starts_with("kms:encryptioncontext:") {
                        return Err(malformed(format!("Unsupported condition key {k}.")));
                    }
                }
            }
        }
    }
    Ok(v)
}

fn principal_matches(p: &Value, r: &Request<'_>) -> bool {
    let matches_one = |s: &str| {
        s == "*"
            || s == r.principal_arn
            || (r.delegated && (s == r.account || s == format!("arn:aws:iam::{}:root", r.account)))
    };
    match p {
        Value::String(s) => s == "*",
        Value::Object(m) => m.iter().any(|(kind, v)| match kind.as_str() {
            "AWS" => list(v).into_iter().any(matches_one),
            "Service" => r.via_service.is_some_and(|svc| list(v).contains(&svc)),
            _ => false,
        }),
        _ => false,
    }
}

fn context_values(key: &str, r: &Request<'_>) -> Option<Vec<String>> {
    let lk = key.to_lowercase();
    match lk.as_str() {
        "kms:calleraccount" | "aws:principalaccount" => Some(vec![r.account.to_owned()]),
        "kms:viaservice" => r.via_service.map(|s| vec![s.to_owned()]),
        "aws:principalarn" => Some(vec![r.principal_arn.to_owned()]),
        "aws:sourceip" => Some(vec![r.source_ip.to_owned()]),
        "kms:encryptioncontextkeys" => Some(r.context.keys().cloned().collect()),
        _ => {
            let k = key.get("kms:EncryptionContext:".len()..)?;
            r.context.get(k).map(|v| vec![v.clone()])
        }
    }
}

fn condition_holds(op: &str, key: &str, wanted: &[&str], r: &Request<'_>) -> bool {
    let (set, base, if_exists) = split_operator(op);
    let actual = context_values(key, r);
    if base == "Null" {
        let is_null = actual.as_ref().is_none_or(Vec::is_empty);
        return wanted.iter().any(|w| (*w == "true") == is_null);
    }
    let Some(actual) = actual.filter(|a| !a.is_empty()) else {
        return if_exists || base.contains("Not");
    };
    let one = |a: &str| -> bool {
        match base {
            "StringEquals" => wanted.contains(&a),
            "StringNotEquals" => !wanted.contains(&a),
            "StringEqualsIgnoreCase" => wanted.iter().any(|w| w.eq_ignore_ascii_case(a)),
            "StringNotEqualsIgnoreCase" => !wanted.iter().any(|w| w.eq_ignore_ascii_case(a)),
            "StringLike" => wanted.iter().any(|w| wildcard(w, a, false)),
            "StringNotLike" => !wanted.iter().any(|w| wildcard(w, a, false)),
            "Bool" => wanted.iter().any(|w| w.eq_ignore_ascii_case(a)),
            _ => false,
        }
    };
    match set {
        Some("ForAllValues") => actual.iter().all(|a| one(a)),
        _ => actual.iter().any(|a| one(a)),
    }
}

fn statement_applies(s: &Value, r: &Request<'_>) -> bool {
    let principal_ok = match (s.get("Principal"), s.get("NotPrincipal")) {
        (Some(p), _) => principal_matches(p, r),
        (None, Some(np)) => !principal_matches(np, r),
        _ => false,
    };
    let action_ok = match (s.get("Action"), s.get("NotAction")) {
        (Some(a), _) => list(a).iter().any(|p| wildcard(p, r.action, true)),
        (None, Some(na)) => !list(na).iter().any(|p| wildcard(p, r.action, true)),
        _ => false,
    };
    let resource_ok = match (s.get("Resource"), s.get("NotResource")) {
        (Some(res), _) => list(res).iter().any(|p| wildcard(p, r.key_arn, false)),
        (None, Some(nr)) => !list(nr).iter().any(|p| wildcard(p, r.key_arn, false)),
        (None, None) => true,
    };
    if !(principal_ok && action_ok && resource_ok) {
        return false;
    }
    let Some(Value::Object(ops)) = s.get("Condition") else {
        return true;
    };
    ops.iter().all(|(op, block)| match block {
        Value::Object(keys) => keys.iter().all(|(k, v)| {
            let wanted: Vec<String> = match v {
                Value::Bool(b) => vec![b.to_string()],
                other => list(other).into_iter().map(str::to_owned).collect(),
            };
            let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
            condition_holds(op, k, &refs, r)
        }),
        _ => false,
    })
}

/// True when the (parsed) policy allows the request.
pub fn allows(policy: &Value, r: &Request<'_>) -> bool {
    let stmts: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => return false,
    };
    let mut allowed = false;
    for s in stmts {
        if !statement_applies(s, r) {
            continue;
        }
        match s.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return false,
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    allowed
}

/// The default policy of a customer managed key: the account's root may
/// do everything (and so delegate to IAM later).
pub fn default_policy(account: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*"
        }]
    })
    .to_string()
}

/// The policy of the AWS managed key `aws/s3`: usable through S3 by the
/// account's principals, describable directly.
pub fn aws_managed_policy(account: &str, region: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": "auto-s3-2",
        "Statement": [
            {
                "Sid": "Allow access through S3 for all principals in the account that are authorized to use S3",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": account, "kms:ViaService": format!("s3.{region}.amazonaws.com")}}
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
                "Resource": "*"
            }
        ]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(action: &'a str, account: &'a str, via: Option<&'a str>, ctx: &'a crate::Context) -> Request<'a> {
        Request {
            action,
            principal_arn: "arn:aws:iam::111111111111:root",
            account,
            via_service: via,
            context: ctx,
            source_ip: "127.0.0.1",
            delegated: true,
            key_arn: "arn:aws:kms:us-east-1:111111111111:key/k",
        }
    }

    #[test]
    fn a_key_policy_naming_the_account_delegates_to_identity_policies() {
        let ctx = crate::Context::new();
        let p = parse(&default_policy("111111111111")).unwrap_or_default();
        let mut r = req("kms:Decrypt", "111111111111", None, &ctx);
        r.principal_arn = "arn:aws:iam::111111111111:user/alice";
        r.delegated = false;
        assert!(!allows(&p, &r), "a user without identity permission is denied");
        r.delegated = true;
        assert!(allows(&p, &r), "a user whose identity policy allows is granted");
        let named = serde_json::json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"AWS":"arn:aws:iam::111111111111:user/alice"},"Action":"kms:*","Resource":"*"}]})
        .to_string();
        let p = parse(&named).unwrap_or_default();
        r.delegated = false;
        assert!(allows(&p, &r), "a key policy naming the user grants by itself");
    }

    #[test]
    fn default_policy_allows_own_account_only() -> Result<(), KmsError> {
        let p = parse(&default_policy("111111111111"))?;
        let ctx = crate::Context::new();
        assert!(allows(&p, &req("kms:Decrypt", "111111111111", None, &ctx)));
        let mut other = req("kms:Decrypt", "222222222222", None, &ctx);
        other.principal_arn = "arn:aws:iam::222222222222:root";
        assert!(!allows(&p, &other));
        Ok(())
    }

    #[test]
    fn deny_wins_and_conditions_apply() -> Result<(), KmsError> {
        let doc = r#"{"Statement":[
            {"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"kms:*","Resource":"*"},
            {"Effect":"Deny","Principal":"*","Action":["kms:Decrypt"],"Resource":"*",
             "Condition":{"StringNotEquals":{"kms:EncryptionContext:team":"blue"}}}]}"#;
        let p = parse(doc)?;
        let mut ctx = crate::Context::new();
        assert!(!allows(&p, &req("kms:Decrypt", "111111111111", None, &ctx)));
        ctx.insert("team".into(), "blue".into());
        assert!(allows(&p, &req("kms:Decrypt", "111111111111", None, &ctx)));
        assert!(allows(
            &p,
            &req("kms:Encrypt", "111111111111", None, &crate::Context::new())
        ));
        Ok(())
    }

    #[test]
    fn aws_managed_key_only_through_s3() -> Result<(), KmsError> {
        let p = parse(&aws_managed_policy("111111111111", "us-east-1"))?;
        let ctx = crate::Context::new();
        assert!(allows(
            &p,
            &req(
                "kms:GenerateDataKey",
                "111111111111",
                Some("s3.us-east-1.amazonaws.com"),
                &ctx
            )
        ));
        assert!(!allows(&p, &req("kms:GenerateDataKey", "111111111111", None, &ctx)));
        assert!(allows(&p, &req("kms:DescribeKey", "111111111111", None, &ctx)));
        Ok(())
    }

    #[test]
    fn refuses_unknown_operators_and_keys() {
        assert!(parse(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01"}}}]}"#).is_err());
        assert!(parse(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Condition":{"StringEquals":{"aws:Referer":"x"}}}]}"#).is_err());
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"Statement":[]}"#).is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("kms:*", "kms:Decrypt", true));
        assert!(wildcard("kms:ReEncrypt*", "kms:ReEncryptFrom", true));
        assert!(wildcard(
            "kms:generatedatakey*",
            "kms:GenerateDataKeyWithoutPlaintext",
            true
        ));
        assert!(!wildcard("kms:Encrypt", "kms:Decrypt", true));
        assert!(wildcard("a?c", "abc", false));
    }
}
