//! Policy grammar and single-document evaluation, pinned to AWS's
//! documented behaviour.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn user<'a>() -> Subject<'a> {
    Subject {
        account: Some("111122223333"),
        arn: Some("arn:aws:iam::111122223333:user/alice"),
        role_arn: None,
        canonical_id: None,
        is_root: false,
        service: None,
        entity_id: None,
    }
}

fn anon<'a>() -> Subject<'a> {
    Subject {
        account: None,
        arn: None,
        role_arn: None,
        canonical_id: None,
        is_root: false,
        service: None,
        entity_id: None,
    }
}

fn ctx(pairs: &[(&str, &str)]) -> Context {
    let mut c = Context::new();
    for (k, v) in pairs {
        c.set(k, *v);
    }
    c
}

fn doc(statement: &str) -> Policy {
    Policy::parse(
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#),
        Kind::Resource,
    )
    .unwrap()
}

const OBJ: &str = "arn:aws:s3:::b/k";

#[test]
fn malformed_documents_are_refused_with_a_reason() {
    let cases = [
        ("not json", "valid JSON"),
        (r#"{"Statement":[]}"#, "Statement"),
        (r#"{"Version":"2001-01-01","Statement":{}}"#, "version"),
        (
            r#"{"Statement":{"Effect":"Maybe","Principal":"*","Action":"s3:*","Resource":"*"}}"#,
            "effect",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Resource":"*"}}"#,
            "Action",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}}"#,
            "Resource",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"GetObject","Resource":"*"}}"#,
            "invalid action",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"b/*"}}"#,
            "invalid resource",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"s3:*","Resource":"*"}}"#,
            "principal",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringEqualsX":{"a":"b"}}}}"#,
            "Condition type",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"ten"}}}}"#,
            "Invalid value",
        ),
        (
            r#"{"Statement":{"Effect":"Allow","NotPrincipal":"*","Action":"s3:*","Resource":"*"}}"#,
            "NotPrincipal",
        ),
        (
            r#"{"Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"},{"Sid":"a","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}]}"#,
            "unique",
        ),
    ];
    for (text, needle) in cases {
        let err = Policy::parse(text, Kind::Resource).expect_err(text);
        assert!(
            err.0.to_lowercase().contains(&needle.to_lowercase()),
            "{text}: {err} lacks {needle}"
        );
    }
    let e = Policy::parse(
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}"#,
        Kind::Identity,
    )
    .unwrap_err();
    assert!(e.0.contains("principal"));
}

#[test]
fn wildcards_in_actions_fold_case_and_resources_do_not() {
    let p = doc(r#"{"Effect":"Allow","Principal":"*","Action":"s3:get*","Resource":"arn:aws:s3:::b/k*"}"#);
    let c = Context::new();
    assert_eq!(
        p.evaluate(&anon(), "s3:GetObject", OBJ, &c),
        Outcome::Allow(PrincipalMatch::Direct)
    );
    assert_eq!(p.evaluate(&anon(), "s3:PutObject", OBJ, &c), Outcome::NotApplicable);
    assert_eq!(
        p.evaluate(&anon(), "s3:GetObject", "arn:aws:s3:::b/K", &c),
        Outcome::NotApplicable
    );
}

#[test]
fn not_action_and_not_resource_invert_the_match() {
    let p =
        doc(r#"{"Effect":"Deny","Principal":"*","NotAction":"s3:GetObject","NotResource":"arn:aws:s3:::b/public/*"}"#);
    let c = Context::new();
    assert_eq!(p.evaluate(&user(), "s3:PutObject", OBJ, &c), Outcome::Deny);
    assert_eq!(p.evaluate(&user(), "s3:GetObject", OBJ, &c), Outcome::NotApplicable);
    assert_eq!(
        p.evaluate(&user(), "s3:PutObject", "arn:aws:s3:::b/public/x", &c),
        Outcome::NotApplicable
    );
}

#[test]
fn principals_match_directly_or_through_the_account() {
    let p = doc(r#"{"Effect":"Allow","Principal":{"AWS":["111122223333"]},"Action":"s3:*","Resource":"*"}"#);
    let c = Context::new();
    assert_eq!(
        p.evaluate(&user(), "s3:GetObject", OBJ, &c),
        Outcome::Allow(PrincipalMatch::Account)
    );
    let p = doc(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"s3:*","Resource":"*"}"#,
    );
    assert_eq!(
        p.evaluate(&user(), "s3:GetObject", OBJ, &c),
        Outcome::Allow(PrincipalMatch::Direct)
    );
    assert_eq!(p.evaluate(&anon(), "s3:GetObject", OBJ, &c), Outcome::NotApplicable);
    // NotPrincipal with Deny: everyone except alice
    let p = doc(
        r#"{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"s3:*","Resource":"*"}"#,
    );
    assert_eq!(p.evaluate(&user(), "s3:GetObject", OBJ, &c), Outcome::NotApplicable);
    assert_eq!(p.evaluate(&anon(), "s3:GetObject", OBJ, &c), Outcome::Deny);
}

/// (operator, key, policy values, context value or None, expected)
#[test]
fn condition_operators_follow_aws_semantics() {
    let cases: &[(&str, &str, &str, Option<&str>, bool)] = &[
        ("StringEquals", "s3:prefix", r#""home/""#, Some("home/"), true),
        ("StringEquals", "s3:prefix", r#""home/""#, Some("Home/"), false),
        ("StringEquals", "s3:prefix", r#""home/""#, None, false),
        ("StringEqualsIfExists", "s3:prefix", r#""home/""#, None, true),
        ("StringNotEquals", "s3:prefix", r#""home/""#, None, true),
        ("StringNotEquals", "s3:prefix", r#"["a","b"]"#, Some("a"), false),
        ("StringNotEquals", "s3:prefix", r#"["a","b"]"#, Some("c"), true),
        ("StringEqualsIgnoreCase", "s3:prefix", r#""HOME/""#, Some("home/"), true),
        (
            "StringNotEqualsIgnoreCase",
            "s3:prefix",
            r#""HOME/""#,
            Some("home/"),
            false,
        ),
        (
            "StringLike",
            "aws:UserAgent",
            r#""aws-cli/*""#,
            Some("aws-cli/2.1 Python"),
            true,
        ),
        (
            "StringLike",
            "aws:UserAgent",
            r#""aws-cli/?.1*""#,
            Some("aws-cli/2.1"),
            true,
        ),
        ("StringNotLike", "aws:UserAgent", r#""aws-cli/*""#, Some("boto3"), true),
        ("NumericLessThan", "s3:max-keys", r#""10""#, Some("9"), true),
        ("NumericLessThan", "s3:max-keys", r#"10"#, Some("10"), false),
        ("NumericLessThanEquals", "s3:max-keys", r#""10""#, Some("10"), true),
        ("NumericGreaterThan", "s3:max-keys", r#""10""#, Some("11"), true),
        ("NumericGreaterThanEquals", "s3:max-keys", r#""10""#, Some("9"), false),
        ("NumericEquals", "s3:max-keys", r#""10""#, Some("10"), true),
        ("NumericNotEquals", "s3:max-keys", r#""10""#, Some("10"), false),
        ("NumericEquals", "s3:max-keys", r#""10""#, Some("x"), false),
        (
            "DateLessThan",
            "aws:CurrentTime",
            r#""2030-01-01T00:00:00Z""#,
            Some("2026-11-27T12:00:00Z"),
            true,
        ),
        (
            "DateGreaterThan",
            "aws:CurrentTime",
            r#""2030-01-01T00:00:00Z""#,
            Some("2026-11-27T12:00:00Z"),
            false,
        ),
        (
            "DateEquals",
            "aws:EpochTime",
            r#""1700000000""#,
            Some("1700000000"),
            true,
        ),
        (
            "DateNotEquals",
            "aws:EpochTime",
            r#""1700000000""#,
            Some("1700000001"),
            true,
        ),
        (
            "DateLessThanEquals",
            "aws:CurrentTime",
            r#""2026-11-27""#,
            Some("2026-11-27T00:00:00Z"),
            true,
        ),
        (
            "DateGreaterThanEquals",
            "aws:CurrentTime",
            r#""2026-11-27""#,
            Some("2026-11-26T23:59:59Z"),
            false,
        ),
        ("Bool", "aws:SecureTransport", r#""false""#, Some("false"), true),
        ("Bool", "aws:SecureTransport", r#"false"#, Some("true"), false),
        ("BoolIfExists", "aws:MultiFactorAuthPresent", r#""false""#, None, true),
        ("BinaryEquals", "k", r#""QmluYXJ5""#, Some("QmluYXJ5"), true),
        ("IpAddress", "aws:SourceIp", r#""127.0.0.0/8""#, Some("127.0.0.1"), true),
        ("IpAddress", "aws:SourceIp", r#""10.0.0.0/8""#, Some("127.0.0.1"), false),
        ("IpAddress", "aws:SourceIp", r#""::1/128""#, Some("::1"), true),
        (
            "IpAddress",
            "aws:SourceIp",
            r#""127.0.0.1/32""#,
            Some("::ffff:127.0.0.1"),
            true,
        ),
        (
            "NotIpAddress",
            "aws:SourceIp",
            r#""10.0.0.0/8""#,
            Some("127.0.0.1"),
            true,
        ),
        (
            "ArnEquals",
            "aws:PrincipalArn",
            r#""arn:aws:iam::111122223333:user/alice""#,
            Some("arn:aws:iam::111122223333:user/alice"),
            true,
        ),
        (
            "ArnLike",
            "aws:PrincipalArn",
            r#""arn:aws:iam::*:user/*""#,
            Some("arn:aws:iam::111122223333:user/alice"),
            true,
        ),
        (
            "ArnLike",
            "aws:PrincipalArn",
            r#""arn:aws:iam::*:role/*""#,
            Some("arn:aws:iam::111122223333:user/alice"),
            false,
        ),
        (
            "ArnNotEquals",
            "aws:PrincipalArn",
            r#""arn:aws:iam::111122223333:root""#,
            Some("arn:aws:iam::111122223333:user/alice"),
            true,
        ),
        (
            "ArnNotLike",
            "aws:PrincipalArn",
            r#""arn:aws:iam::*:user/*""#,
            Some("arn:aws:iam::111122223333:user/alice"),
            false,
        ),
        ("Null", "s3:x-amz-server-side-encryption", r#""true""#, None, true),
        (
            "Null",
            "s3:x-amz-server-side-encryption",
            r#""true""#,
            Some("AES256"),
            false,
        ),
        (
            "Null",
            "s3:x-amz-server-side-encryption",
            r#""false""#,
            Some("AES256"),
            true,
        ),
    ];
    for (op, key, vals, have, expect) in cases {
        let p = doc(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{{"{op}":{{"{key}":{vals}}}}}}}"#
        ));
        let c = match have {
            Some(v) => ctx(&[(key, v)]),
            None => Context::new(),
        };
        let got = p.evaluate(&anon(), "s3:GetObject", OBJ, &c) != Outcome::NotApplicable;
        assert_eq!(got, *expect, "{op} {key} {vals} vs {have:?}");
    }
}

#[test]
fn set_qualifiers_over_multi_valued_keys() {
    let keys = |v: &[&str]| {
        let mut c = Context::new();
        c.set_many("s3:RequestObjectTagKeys", v.iter().map(|s| s.to_string()).collect());
        c
    };
    let all = doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["a","b"]}}}"#,
    );
    let any = doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"s3:RequestObjectTagKeys":["a","b"]}}}"#,
    );
    let hit = |p: &Policy, c: &Context| p.evaluate(&anon(), "s3:PutObject", OBJ, c) != Outcome::NotApplicable;
    assert!(hit(&all, &keys(&["a"])));
    assert!(!hit(&all, &keys(&["a", "c"])));
    assert!(hit(&all, &Context::new()), "ForAllValues holds for an absent key");
    assert!(hit(&any, &keys(&["c", "b"])));
    assert!(!hit(&any, &keys(&["c"])));
    assert!(!hit(&any, &Context::new()), "ForAnyValue fails for an absent key");
}

#[test]
fn policy_variables_resolve_from_the_context() {
    let p = doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{"StringLike":{"s3:prefix":["home/${aws:username}/*"]}}}"#,
    );
    let c = ctx(&[("aws:username", "alice"), ("s3:prefix", "home/alice/docs")]);
    assert_ne!(
        p.evaluate(&user(), "s3:ListBucket", "arn:aws:s3:::b", &c),
        Outcome::NotApplicable
    );
    let c = ctx(&[("aws:username", "bob"), ("s3:prefix", "home/alice/docs")]);
    assert_eq!(
        p.evaluate(&user(), "s3:ListBucket", "arn:aws:s3:::b", &c),
        Outcome::NotApplicable
    );
    // an unknown variable matches nothing; a default fills in
    let p = doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}/*"}"#,
    );
    assert_eq!(
        p.evaluate(&anon(), "s3:GetObject", "arn:aws:s3:::b/alice/x", &Context::new()),
        Outcome::NotApplicable
    );
    let p = doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username, 'guest'}/*"}"#,
    );
    assert_ne!(
        p.evaluate(&anon(), "s3:GetObject", "arn:aws:s3:::b/guest/x", &Context::new()),
        Outcome::NotApplicable
    );
    // 2008-10-17 documents take ${...} literally
    let p = Policy::parse(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}"}}"#,
        Kind::Resource,
    )
    .unwrap();
    assert_ne!(
        p.evaluate(
            &anon(),
            "s3:GetObject",
            "arn:aws:s3:::b/${aws:username}",
            &ctx(&[("aws:username", "alice")])
        ),
        Outcome::NotApplicable
    );
}

#[test]
fn explicit_deny_wins_within_a_document() {
    let p = doc(r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"},
           {"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#);
    assert_eq!(
        p.evaluate(&anon(), "s3:GetObject", OBJ, &ctx(&[("aws:SecureTransport", "false")])),
        Outcome::Deny
    );
    assert_eq!(
        p.evaluate(&anon(), "s3:GetObject", OBJ, &ctx(&[("aws:SecureTransport", "true")])),
        Outcome::Allow(PrincipalMatch::Direct)
    );
}

#[test]
fn public_means_granted_to_everyone_without_a_pinning_condition() {
    let public = doc(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#);
    assert!(public.is_public());
    let pinned = doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.1.0.0/16"}}}"#,
    );
    assert!(!pinned.is_public());
    let wide = doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}"#,
    );
    assert!(wide.is_public());
    let deny = doc(r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#);
    assert!(!deny.is_public());
    let account =
        doc(r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"s3:GetObject","Resource":"*"}"#);
    assert!(!account.is_public());
}

#[test]
fn bound_principals_match_the_entity_they_were_written_for() {
    let alice = "arn:aws:iam::111122223333:user/alice";
    let mut p = doc(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{alice}"}},"Action":"s3:GetObject","Resource":"*"}}"#
    ));
    let with_id = |id| Subject {
        entity_id: id,
        ..user()
    };
    let c = ctx(&[]);
    // unbound (as parsed): the ARN decides
    assert_eq!(
        p.evaluate(&with_id(Some("AIDAOLD")), "s3:GetObject", OBJ, &c),
        Outcome::Allow(PrincipalMatch::Direct)
    );
    p.bind([(alice.to_owned(), "AIDAOLD".to_owned())].into_iter().collect());
    assert_eq!(
        p.evaluate(&with_id(Some("AIDAOLD")), "s3:GetObject", OBJ, &c),
        Outcome::Allow(PrincipalMatch::Direct)
    );
    // a new alice is not the alice the policy named
    assert_eq!(
        p.evaluate(&with_id(Some("AIDANEW")), "s3:GetObject", OBJ, &c),
        Outcome::NotApplicable
    );
    // bound without an entry: matches nothing
    p.bind(std::collections::BTreeMap::new());
    assert_eq!(
        p.evaluate(&with_id(Some("AIDAOLD")), "s3:GetObject", OBJ, &c),
        Outcome::NotApplicable
    );
    // a unique id as principal names that entity
    let by_id =
        doc(r#"{"Effect":"Allow","Principal":{"AWS":"AIDAOLD0000000000000"},"Action":"s3:GetObject","Resource":"*"}"#);
    assert_eq!(
        by_id.evaluate(&with_id(Some("AIDAOLD0000000000000")), "s3:GetObject", OBJ, &c),
        Outcome::Allow(PrincipalMatch::Direct)
    );
    assert_eq!(
        by_id.evaluate(&with_id(Some("AIDAOTHER")), "s3:GetObject", OBJ, &c),
        Outcome::NotApplicable
    );
}
