//! Policy documents are untrusted input (PutBucketPolicy, PutUserPolicy,
//! CreateRole...): parsing must never panic or hang, and whatever parses
//! must evaluate without panicking. Property: a policy means the same
//! after a JSON re-encoding (keys reordered, whitespace and escapes
//! normalised, as another tool or a GetBucketPolicy round trip would write
//! it): it parses again and decides every request the same way.

use strongroom_iam::policy::{Context, Kind, Policy, Subject};

/// One case.
pub fn run(data: &[u8]) {
    let Some((&k, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let kind = match k % 3 {
        0 => Kind::Identity,
        1 => Kind::Resource,
        _ => Kind::Trust,
    };
    let Ok(p) = Policy::parse(text, kind) else { return };
    let _ = p.is_public();
    let mut ctx = Context::new();
    ctx.set("aws:SourceIp", "127.0.0.1");
    ctx.set("aws:username", "alice");
    ctx.set("aws:CurrentTime", "2026-11-27T00:00:00Z");
    ctx.set("s3:max-keys", "10");
    ctx.set_many("s3:RequestObjectTagKeys", vec!["a".into(), "b".into()]);
    let who = Subject {
        account: Some("111122223333"),
        arn: Some("arn:aws:iam::111122223333:user/alice"),
        role_arn: None,
        canonical_id: None,
        is_root: false,
        service: None,
        entity_id: Some("AIDAEXAMPLE0000000000"),
    };
    let asks = [
        ("s3:GetObject", "arn:aws:s3:::b/k"),
        ("s3:PutObject", "arn:aws:s3:::b/home/alice/x"),
        ("s3:ListBucket", "arn:aws:s3:::b"),
        ("s3:DeleteObjectVersion", "arn:aws:s3:::other/k"),
        ("kms:Decrypt", "arn:aws:kms:us-east-1:111122223333:key/k"),
    ];
    let first: Vec<_> = asks
        .iter()
        .map(|(a, r)| format!("{:?}", p.evaluate(&who, a, r, &ctx)))
        .collect();
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return; // duplicate keys or other forms serde_json refuses; nothing to compare
    };
    let again = serde_json::to_string(&json).expect("re-encode");
    let q = Policy::parse(&again, kind).unwrap_or_else(|e| panic!("re-encoded policy refused: {e:?}\n{again}"));
    let second: Vec<_> = asks
        .iter()
        .map(|(a, r)| format!("{:?}", q.evaluate(&who, a, r, &ctx)))
        .collect();
    assert_eq!(first, second, "a re-encoding changed the decisions\n{again}");
    assert_eq!(p.is_public(), q.is_public());
}
