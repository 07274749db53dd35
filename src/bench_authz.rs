//! `strongroom bench authz`: what authorization costs per request. One
//! server, one 1 KiB object in two buckets: the baseline is the owner's root
//! reading from a bucket without a policy (no statement evaluated); the
//! measured paths are the root and an IAM user (10 identity statements)
//! reading from a bucket with a 20-statement policy full of conditions.
//! Requests alternate so both see the same machine state.

use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::bench_http::{HttpClient, send_as, start};

const ROOT: (&str, &str) = ("AKIABENCH00000000001", "BenchSecretKey00000000000000000000000001");
const USER: (&str, &str) = ("AKIABENCHUSER0000001", "BenchUserSecretKey0000000000000000000001");

fn bucket_policy() -> String {
    let mut st = vec![
        serde_json::json!({"Sid":"DenyNoTlsDeletes","Effect":"Deny","Principal":"*","Action":"s3:DeleteObject",
            "Resource":"arn:aws:s3:::guarded/*","Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}),
        serde_json::json!({"Sid":"DenyUnencryptedPuts","Effect":"Deny","Principal":"*","Action":"s3:PutObject",
            "Resource":"arn:aws:s3:::guarded/*","Condition":{"Null":{"s3:x-amz-server-side-encryption":"true"}}}),
        serde_json::json!({"Sid":"ReadersFromLoopback","Effect":"Allow",
            "Principal":{"AWS":"arn:aws:iam::999999999999:user/reader"},"Action":["s3:GetObject","s3:ListBucket"],
            "Resource":["arn:aws:s3:::guarded","arn:aws:s3:::guarded/*"],
            "Condition":{"IpAddress":{"aws:SourceIp":["127.0.0.0/8","::1/128"]},"StringLike":{"aws:UserAgent":"*"}}}),
        serde_json::json!({"Sid":"DenyOldSignatures","Effect":"Deny","Principal":"*","Action":"s3:*",
            "Resource":"arn:aws:s3:::guarded/*","Condition":{"StringNotEquals":{"s3:signatureversion":"AWS4-HMAC-SHA256"}}}),
    ];
    for i in 0..16 {
        st.push(serde_json::json!({"Sid":format!("Partner{i}"),"Effect":"Allow",
            "Principal":{"AWS":format!("arn:aws:iam::1000000000{i:02}:root")},"Action":["s3:GetObject","s3:PutObject"],
            "Resource":format!("arn:aws:s3:::guarded/partners/{i}/*"),
            "Condition":{"StringEquals":{"s3:x-amz-acl":"bucket-owner-full-control"},"DateLessThan":{"aws:CurrentTime":"2100-01-01T00:00:00Z"}}}));
    }
    serde_json::json!({"Version":"2012-10-17","Statement":st}).to_string()
}

fn identity_policy() -> String {
    let mut st = vec![serde_json::json!({"Effect":"Allow","Action":"s3:GetObject",
        "Resource":"arn:aws:s3:::guarded/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}})];
    for i in 0..9 {
        st.push(
            serde_json::json!({"Effect":"Allow","Action":["s3:GetObjectTagging","s3:ListBucket"],
            "Resource":format!("arn:aws:s3:::team-{i}/${{aws:username}}/*")}),
        );
    }
    serde_json::json!({"Version":"2012-10-17","Statement":st}).to_string()
}

pub async fn run(iterations: usize) -> anyhow::Result<()> {
    let srv = start(false).await?;
    let c: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let body = Bytes::from(vec![7u8; 1024]);
    for b in ["plain", "guarded"] {
        let (s1, _) = send_as(&c, srv.addr, ROOT, "PUT", &format!("/{b}"), Bytes::new()).await?;
        let (s2, _) = send_as(&c, srv.addr, ROOT, "PUT", &format!("/{b}/k"), body.clone()).await?;
        if s1 != 200 || s2 != 200 {
            bail!("bench setup answered {s1} / {s2}");
        }
    }
    let ids = &srv.ids;
    let fail = |e: strongroom_iam::IamError| anyhow::anyhow!("{} {}", e.code, e.message);
    ids.create_user("999999999999", "reader", None).await.map_err(fail)?;
    ids.import_access_key("999999999999", "reader", USER.0, USER.1)
        .await
        .map_err(fail)?;
    ids.set_inline_policy("999999999999", "user", "reader", "read", Some(&identity_policy()))
        .await
        .map_err(fail)?;
    // the bucket policy goes through S3 itself (validation included)
    let (st, _) = send_as(
        &c,
        srv.addr,
        ROOT,
        "PUT",
        "/guarded?policy",
        Bytes::from(bucket_policy()),
    )
    .await?;
    if st != 204 {
        bail!("PutBucketPolicy answered {st}");
    }
    let paths: [(&str, (&str, &str), &str); 3] = [
        ("root, no policy (baseline)", ROOT, "/plain/k"),
        ("root, 20-statement policy", ROOT, "/guarded/k"),
        ("user, identity + bucket policy", USER, "/guarded/k"),
    ];
    let mut t = [Duration::ZERO; 3];
    let n = iterations.max(200);
    for i in 0..=n {
        for (m, (_, creds, path)) in paths.iter().enumerate() {
            let t0 = Instant::now();
            let (st, got) = send_as(&c, srv.addr, *creds, "GET", path, Bytes::new()).await?;
            let dt = t0.elapsed();
            if st != 200 || got != 1024 {
                bail!("GET {path} answered {st} with {got} bytes");
            }
            if i > 0 {
                t[m] += dt;
            }
        }
    }
    println!("strongroom bench authz — 1 KiB GETs over loopback HTTP, {n} each, interleaved, same server");
    println!("{:>34} {:>12} {:>8}", "path", "mean µs", "ratio");
    for (m, (name, _, _)) in paths.iter().enumerate() {
        let mean = t[m].as_secs_f64() * 1e6 / n as f64;
        println!(
            "{:>34} {:>12.1} {:>8.3}",
            name,
            mean,
            t[m].as_secs_f64() / t[0].as_secs_f64().max(1e-9)
        );
    }
    println!("ratio = mean time / the baseline's");
    let _ = srv.stop.send(true);
    Ok(())
}
