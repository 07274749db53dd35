//! End-to-end tests with the AWS SDK for Rust against the real binary, over
//! HTTP and HTTPS (trusting the generated certificate): the SDK's defaults
//! (CRC32 checksums, aws-chunked trailers) and the error codes it parses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, Tag, Tagging,
};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

const AK: &str = "AKIASDKTESTROOT00001";
const SK: &str = "SdkTestRootSecretKey00000000000000000001";

struct Server {
    child: Child,
    http: u16,
    https: u16,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port to listen on, below the kernel's ephemeral range (one bound to 0
/// could be taken by an outgoing connection before the server binds it),
/// never handed out twice by this process (tests run on parallel threads).
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 10_000 + (std::process::id() % 2_000) * 10;
    for _ in 0..2_000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(base + n % 2_000).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {base}..{}", base + 2_000);
}

fn start() -> Server {
    for _ in 0..3 {
        match try_start() {
            Ok(s) => return s,
            // a port taken by another listener between the check and the
            // bind: the harness's fact, not the server's; new ports
            Err(said) if said.contains("Address already in use") => continue,
            Err(said) => panic!("server exited at start-up:\n{said}"),
        }
    }
    panic!("server did not start in three tries (its ports taken each time)");
}

/// One server, or what it said when it exited at start-up.
fn try_start() -> Result<Server, String> {
    let dir = tempfile::tempdir().unwrap();
    let (http, https) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["serve", "--admin", "off", "--website", "off", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--http",
            &format!("127.0.0.1:{http}"),
            "--https",
            &format!("127.0.0.1:{https}"),
        ])
        .env("STRONGROOM_ROOT_ACCESS_KEY", AK)
        .env("STRONGROOM_ROOT_SECRET_KEY", SK)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", https)).is_err() {
        if child.try_wait().unwrap().is_some() {
            return Err(std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default());
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Server {
        child,
        http,
        https,
        dir,
    })
}

fn client(endpoint: String, http_client: Option<aws_sdk_s3::config::SharedHttpClient>) -> Client {
    let mut b = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
        .endpoint_url(endpoint)
        .force_path_style(true);
    if let Some(h) = http_client {
        b = b.http_client(h);
    }
    Client::from_conf(b.build())
}

fn http_client(s: &Server) -> Client {
    let h = aws_smithy_http_client::Builder::new().build_http();
    client(format!("http://127.0.0.1:{}", s.http), Some(h))
}

fn https_client(s: &Server) -> Client {
    let pem = std::fs::read(s.dir.path().join("data/tls/cert.pem")).unwrap();
    let ctx = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_native_roots(false).with_pem_certificate(pem))
        .build()
        .unwrap();
    let h = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(ctx)
        .build_https();
    client(format!("https://localhost:{}", s.https), Some(h))
}

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or_default().to_owned()
}

async fn object_roundtrip(c: &Client, bucket: &str) {
    c.create_bucket().bucket(bucket).send().await.unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let put = c
        .put_object()
        .bucket(bucket)
        .key("dir/obj")
        .content_type("application/x-test")
        .metadata("k", "v")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    assert!(put.e_tag().is_some());
    let got = c
        .get_object()
        .bucket(bucket)
        .key("dir/obj")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(got.metadata().and_then(|m| m.get("k")).map(String::as_str), Some("v"));
    assert!(
        got.checksum_crc32().is_some(),
        "the SDK's default CRC32 is stored and returned"
    );
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), body.as_slice());

    let part = c
        .get_object()
        .bucket(bucket)
        .key("dir/obj")
        .range("bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.content_range(), Some("bytes 10-19/300000"));
    assert_eq!(part.body.collect().await.unwrap().into_bytes().as_ref(), &body[10..20]);

    let head = c.head_object().bucket(bucket).key("dir/obj").send().await.unwrap();
    assert_eq!(head.content_length(), Some(300_000));

    c.copy_object()
        .bucket(bucket)
        .key("copy")
        .copy_source(format!("{bucket}/dir/obj"))
        .send()
        .await
        .unwrap();
    c.put_object_tagging()
        .bucket(bucket)
        .key("copy")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("a").value("1").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let tags = c.get_object_tagging().bucket(bucket).key("copy").send().await.unwrap();
    assert_eq!(tags.tag_set().len(), 1);

    let list = c.list_objects_v2().bucket(bucket).delimiter("/").send().await.unwrap();
    assert_eq!(list.common_prefixes().len(), 1);
    assert_eq!(list.contents().len(), 1);

    // errors come back as the codes the SDK models
    let e = c.get_object().bucket(bucket).key("missing").send().await.unwrap_err();
    assert!(e.as_service_error().is_some_and(|e| e.is_no_such_key()), "{e:?}");
    let e = c.head_bucket().bucket("missing-bucket-sdk").send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(404));
    let e = c.delete_bucket().bucket(bucket).send().await.unwrap_err();
    assert_eq!(code(&e), "BucketNotEmpty");
    let e = c
        .put_object()
        .bucket(bucket)
        .key("dir/obj")
        .if_none_match("*")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PreconditionFailed");

    let del = c
        .delete_objects()
        .bucket(bucket)
        .delete(
            Delete::builder()
                .objects(ObjectIdentifier::builder().key("dir/obj").build().unwrap())
                .objects(ObjectIdentifier::builder().key("copy").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(del.deleted().len(), 2);
}

async fn multipart(c: &Client, bucket: &str) {
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key("mp")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let a = vec![b'a'; 5 * 1024 * 1024];
    let b = b"tail".to_vec();
    let mut parts = Vec::new();
    for (n, data) in [(1, a.clone()), (2, b.clone())] {
        let r = c
            .upload_part()
            .bucket(bucket)
            .key("mp")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(data))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    let listed = c
        .list_parts()
        .bucket(bucket)
        .key("mp")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 2);
    let done = c
        .complete_multipart_upload()
        .bucket(bucket)
        .key("mp")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap();
    assert!(done.e_tag().unwrap().ends_with("-2\""));
    let got = c.get_object().bucket(bucket).key("mp").send().await.unwrap();
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.len(), a.len() + b.len());
    assert!(bytes.ends_with(b"tail"));
    c.delete_object().bucket(bucket).key("mp").send().await.unwrap();
    let aborted = c
        .create_multipart_upload()
        .bucket(bucket)
        .key("gone")
        .send()
        .await
        .unwrap();
    c.abort_multipart_upload()
        .bucket(bucket)
        .key("gone")
        .upload_id(aborted.upload_id().unwrap())
        .send()
        .await
        .unwrap();
    c.delete_bucket().bucket(bucket).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_over_http_and_https() {
    let s = start();
    for (c, bucket) in [(http_client(&s), "sdk-http"), (https_client(&s), "sdk-https")] {
        object_roundtrip(&c, bucket).await;
        multipart(&c, bucket).await;
    }
    let buckets = http_client(&s).list_buckets().send().await.unwrap();
    assert!(buckets.buckets().is_empty());
}

/// The operations not exercised above, once each, with the SDK's own
/// parsing of every answer.
async fn remaining_operations(c: &Client, bucket: &str) {
    c.create_bucket().bucket(bucket).send().await.unwrap();
    c.head_bucket().bucket(bucket).send().await.unwrap();
    let loc = c.get_bucket_location().bucket(bucket).send().await.unwrap();
    assert!(loc.location_constraint().is_none_or(|l| l.as_str().is_empty()));
    assert!(
        c.list_buckets()
            .send()
            .await
            .unwrap()
            .buckets()
            .iter()
            .any(|b| b.name() == Some(bucket))
    );
    c.put_bucket_tagging()
        .bucket(bucket)
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("team").value("core").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        c.get_bucket_tagging()
            .bucket(bucket)
            .send()
            .await
            .unwrap()
            .tag_set()
            .len(),
        1
    );
    c.delete_bucket_tagging().bucket(bucket).send().await.unwrap();
    let e = c.get_bucket_tagging().bucket(bucket).send().await.unwrap_err();
    assert_eq!(code(&e), "NoSuchTagSet");

    let src = vec![7u8; 6 * 1024 * 1024];
    c.put_object()
        .bucket(bucket)
        .key("src")
        .body(ByteStream::from(src.clone()))
        .send()
        .await
        .unwrap();
    let attrs = c
        .get_object_attributes()
        .bucket(bucket)
        .key("src")
        .object_attributes(aws_sdk_s3::types::ObjectAttributes::ObjectSize)
        .object_attributes(aws_sdk_s3::types::ObjectAttributes::Etag)
        .send()
        .await
        .unwrap();
    assert_eq!(attrs.object_size(), Some(6 * 1024 * 1024));
    c.put_object_tagging()
        .bucket(bucket)
        .key("src")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("k").value("v").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    c.delete_object_tagging()
        .bucket(bucket)
        .key("src")
        .send()
        .await
        .unwrap();
    assert!(
        c.get_object_tagging()
            .bucket(bucket)
            .key("src")
            .send()
            .await
            .unwrap()
            .tag_set()
            .is_empty()
    );

    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key("dst")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let uploads = c.list_multipart_uploads().bucket(bucket).send().await.unwrap();
    assert_eq!(uploads.uploads().len(), 1);
    let mut parts = Vec::new();
    for (n, range) in [(1, "bytes=0-5242879"), (2, "bytes=5242880-6291455")] {
        let r = c
            .upload_part_copy()
            .bucket(bucket)
            .key("dst")
            .upload_id(id)
            .part_number(n)
            .copy_source(format!("{bucket}/src"))
            .copy_source_range(range)
            .send()
            .await
            .unwrap();
        let etag = r.copy_part_result().and_then(|p| p.e_tag()).unwrap().to_owned();
        parts.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    c.complete_multipart_upload()
        .bucket(bucket)
        .key("dst")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap();
    let got = c.get_object().bucket(bucket).key("dst").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), src.as_slice());

    let v1 = c.list_objects().bucket(bucket).max_keys(1).send().await.unwrap();
    assert_eq!(v1.contents().len(), 1);
    assert_eq!(v1.is_truncated(), Some(true));
    let versions = c.list_object_versions().bucket(bucket).send().await.unwrap();
    assert!(versions.versions().iter().all(|v| v.version_id() == Some("null")));
    for k in ["src", "dst"] {
        c.delete_object().bucket(bucket).key(k).send().await.unwrap();
    }
    c.delete_bucket().bucket(bucket).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_remaining_operations() {
    let s = start();
    remaining_operations(&http_client(&s), "sdk-more").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_presigned_get() {
    let s = start();
    let c = http_client(&s);
    c.create_bucket().bucket("sdk-presign").send().await.unwrap();
    c.put_object()
        .bucket("sdk-presign")
        .key("k")
        .body(ByteStream::from_static(b"hi"))
        .send()
        .await
        .unwrap();
    let cfg = aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(60)).unwrap();
    let req = c
        .get_object()
        .bucket("sdk-presign")
        .key("k")
        .presigned(cfg)
        .await
        .unwrap();
    let out = Command::new("curl").args(["-sf", req.uri()]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hi");
    let too_long = aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(604_801));
    assert!(too_long.is_err(), "the SDK itself refuses more than 7 days");
}
