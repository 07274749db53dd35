//! Policy documents are untrusted input (PutBucketPolicy, PutUserPolicy,
//! CreateRole...): parsing must never panic or hang, and whatever parses
//! must evaluate without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_iam::policy::{Context, Kind, Policy, Subject};

fuzz_target!(|data: &[u8]| {
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
    let _ = p.evaluate(&who, "s3:GetObject", "arn:aws:s3:::b/k", &ctx);
});
