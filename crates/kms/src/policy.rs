//! Key policies: parsed and validated when set, evaluated on every use,
//! with the IAM policy language of `strongroom_iam::policy` (every operator
//! family, set qualifiers, variables). Explicit Deny wins, an Allow is
//! needed; a statement naming the caller's *account* grants only when the
//! caller's identity policies allow the action (AWS's "Enable IAM
//! policies"); one naming the caller (or `*`) grants by itself. Context keys:
//! kms:CallerAccount, kms:ViaService, kms:EncryptionContext:<k>,
//! kms:EncryptionContextKeys, aws:PrincipalArn, aws:PrincipalAccount,
//! aws:SourceIp, aws:CurrentTime, aws:EpochTime. Invalid documents are
//! refused as MalformedPolicyDocument when set.

use strongroom_iam::policy::{Context, Kind, Outcome, Policy, PrincipalMatch, Subject};

use crate::KmsError;

/// Largest key policy (AWS: 32 KiB).
const MAX_KEY_POLICY: usize = 32 * 1024;

/// What a request to a key is, for policy evaluation.
pub struct Request<'a> {
    pub action: &'a str,
    pub principal_arn: &'a str,
    pub account: &'a str,
    pub via_service: Option<&'a str>,
    pub context: &'a crate::Context,
    pub source_ip: &'a str,
    pub key_arn: &'a str,
    /// What the caller's identity policies say (Allow for an account root):
    /// a key policy naming the account grants only on Allow, and an
    /// explicit Deny there denies whatever the key policy says.
    pub identity: crate::Decision,
    /// `BypassPolicyLockoutSafetyCheck` of CreateKey / PutKeyPolicy.
    pub bypass_lockout: Option<bool>,
}

/// KMS's own condition keys, as this KMS sets them on every request they
/// apply to (in key policies and in the caller's identity policies alike):
/// (key, what it holds).
pub const CONDITION_KEYS: &[(&str, &str)] = &[
    ("kms:CallerAccount", "the caller's account id"),
    (
        "kms:ViaService",
        "the service calling on the caller's behalf (s3.<region>.amazonaws.com)",
    ),
    (
        "kms:EncryptionContext:<key>",
        "each pair of the request's encryption context",
    ),
    (
        "kms:EncryptionContextKeys",
        "the keys of the request's encryption context",
    ),
    (
        "kms:BypassPolicyLockoutSafetyCheck",
        "CreateKey / PutKeyPolicy's BypassPolicyLockoutSafetyCheck",
    ),
];

/// The [`CONDITION_KEYS`] of a request.
pub fn kms_keys(
    account: &str,
    via_service: Option<&str>,
    context: &crate::Context,
    bypass_lockout: Option<bool>,
) -> Context {
    let mut c = Context::new();
    c.set("kms:CallerAccount", account);
    if let Some(v) = via_service {
        c.set("kms:ViaService", v);
    }
    c.set_many("kms:EncryptionContextKeys", context.keys().cloned().collect());
    for (k, v) in context {
        c.set(&format!("kms:EncryptionContext:{k}"), v.clone());
    }
    if let Some(b) = bypass_lockout {
        c.set("kms:BypassPolicyLockoutSafetyCheck", b.to_string());
    }
    c
}

fn malformed(m: impl Into<String>) -> KmsError {
    KmsError::MalformedPolicy(m.into())
}

/// Checks a policy document; returns it parsed.
pub fn parse(doc: &str) -> Result<Policy, KmsError> {
    if doc.len() > MAX_KEY_POLICY {
        return Err(malformed("The policy is larger than 32 KB."));
    }
    Policy::parse_sized(doc, Kind::Resource, MAX_KEY_POLICY).map_err(|e| malformed(e.0))
}

fn context(r: &Request<'_>) -> Context {
    let mut c = kms_keys(r.account, r.via_service, r.context, r.bypass_lockout);
    c.set("aws:PrincipalAccount", r.account);
    c.set("aws:PrincipalArn", r.principal_arn);
    if !r.source_ip.is_empty() {
        c.set("aws:SourceIp", r.source_ip);
    }
    let now = time::OffsetDateTime::now_utc();
    if let Ok(t) = now.format(&time::format_description::well_known::Rfc3339) {
        c.set("aws:CurrentTime", t);
    }
    c.set("aws:EpochTime", now.unix_timestamp().to_string());
    c
}

/// True when the (parsed) policy allows the request.
pub fn allows(policy: &Policy, r: &Request<'_>) -> bool {
    let who = Subject {
        account: Some(r.account),
        arn: Some(r.principal_arn),
        role_arn: None,
        canonical_id: None,
        is_root: r.principal_arn == format!("arn:aws:iam::{}:root", r.account),
        service: r.via_service,
        entity_id: None,
    };
    if r.identity == crate::Decision::ExplicitDeny {
        // an explicit Deny in any policy wins (AWS)
        return false;
    }
    match policy.evaluate(&who, r.action, r.key_arn, &context(r)) {
        Outcome::Allow(PrincipalMatch::Direct) => true,
        Outcome::Allow(PrincipalMatch::Account) => r.identity == crate::Decision::Allow,
        _ => false,
    }
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
            identity: crate::Decision::Allow,
            bypass_lockout: None,
            key_arn: "arn:aws:kms:us-east-1:111111111111:key/k",
        }
    }

    #[test]
    fn a_key_policy_naming_the_account_delegates_to_identity_policies() {
        let ctx = crate::Context::new();
        let p = parse(&default_policy("111111111111"))
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut r = req("kms:Decrypt", "111111111111", None, &ctx);
        r.principal_arn = "arn:aws:iam::111111111111:user/alice";
        r.identity = crate::Decision::ImplicitDeny;
        assert!(!allows(&p, &r), "a user without identity permission is denied");
        r.identity = crate::Decision::Allow;
        assert!(allows(&p, &r), "a user whose identity policy allows is granted");
        let named = serde_json::json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"AWS":"arn:aws:iam::111111111111:user/alice"},"Action":"kms:*","Resource":"*"}]})
        .to_string();
        let p = parse(&named)
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        r.identity = crate::Decision::ImplicitDeny;
        assert!(allows(&p, &r), "a key policy naming the user grants by itself");
        r.identity = crate::Decision::ExplicitDeny;
        assert!(!allows(&p, &r), "an explicit Deny in the user's identity policies wins");
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
    fn refuses_malformed_documents_and_evaluates_every_operator() -> Result<(), KmsError> {
        assert!(parse(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEqualz":{"a":"b"}}}]}"#).is_err());
        assert!(parse(r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#).is_err());
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"Statement":[]}"#).is_err());
        // date, IP and ARN operators now apply to key policies too
        let p = parse(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{
                "DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"},
                "IpAddress":{"aws:SourceIp":"127.0.0.0/8"},
                "ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:root"}}}]}"#,
        )?;
        let ctx = crate::Context::new();
        assert!(allows(&p, &req("kms:Decrypt", "111111111111", None, &ctx)));
        let mut far = req("kms:Decrypt", "111111111111", None, &ctx);
        far.source_ip = "10.0.0.1";
        assert!(!allows(&p, &far));
        Ok(())
    }

    #[test]
    fn wildcards() {
        use strongroom_iam::policy::wildcard;
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
