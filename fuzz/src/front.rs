//! A whole Strongroom server, in process, on a loopback port: the front
//! door, s3s, the access layer, the S3 implementation, IAM/STS and the KMS
//! over a scratch store, built by the same `s3_service` as `serve`. Fuzz
//! targets that need the request path as a client meets it (aws-chunked
//! bodies, SigV2, POST policies, the IAM/STS query form) send real HTTP
//! requests to it and judge the answers and the state left behind.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ring::{digest, hmac};
use strongroom_iam::{Identities, NewAccount};
use strongroom_store::Store;

pub const AK: &str = "AKIAFUZZROOT00000001";
pub const SK: &str = "FuzzRootSecretKey0000000000000000000001";
pub const ACCOUNT: &str = "111122223333";
pub const BUCKET: &str = "fuzz-bucket";

pub struct Front {
    rt: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
    pub host: String,
    pub store: Store,
}

pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

pub fn front() -> &'static Front {
    static F: OnceLock<Front> = OnceLock::new();
    F.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("server runtime");
            rt.block_on(async move {
                // on tmpfs where there is one: the properties are about
                // requests, not durability, and fsync there costs nothing
                let base = if std::path::Path::new("/dev/shm").is_dir() {
                    std::path::PathBuf::from("/dev/shm")
                } else {
                    std::env::temp_dir()
                };
                let dir = base.join(format!("strongroom-fuzz-front-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("dir");
                let store = Store::open(&dir).expect("store");
                let master = Arc::new(strongroom_crypt::MasterKeys::parse(&"cd".repeat(32)).expect("keyring"));
                let ids = Identities::load(store.clone(), master.clone())
                    .await
                    .expect("identities");
                ids.ensure(NewAccount {
                    id: ACCOUNT.into(),
                    name: "fuzz".into(),
                    email: "fuzz@localhost".into(),
                    canonical_id: None,
                    access_key: AK.into(),
                    secret_key: SK.into(),
                })
                .await
                .expect("account");
                let audit = strongroom_kms::Audit::open(&dir).expect("audit");
                let settings = strongroom_kms::KmsSettings {
                    region: "us-east-1".into(),
                    rate_limit: 0,
                };
                let kms = strongroom_kms::Kms::open(store.clone(), master.clone(), audit, settings)
                    .await
                    .expect("kms");
                let crypt = strongroom_s3::sse::Encryption::new(master, kms.clone(), Duration::from_secs(300));
                let s3 = strongroom_s3::Strongroom::new(
                    store.clone(),
                    ids.clone(),
                    strongroom_s3::S3Settings {
                        region: "us-east-1".into(),
                    },
                    crypt,
                );
                let service = strongroom_server::s3_service(s3, &ids, &store, "us-east-1", None);
                let front = strongroom_server::FrontDoor::new(
                    service,
                    ids.clone(),
                    None,
                    Arc::new(strongroom_server::Metrics::default()),
                )
                .with_kms(kms, true);
                let l = strongroom_server::bind("127.0.0.1:0".parse().expect("addr"))
                    .await
                    .expect("bind");
                tx.send((l.local_addr().expect("addr"), store)).expect("send");
                let (_stop, stop_rx) = tokio::sync::watch::channel(false);
                let listeners = strongroom_server::Listeners {
                    http: Some(l),
                    https: None,
                    admin: None,
                    website: None,
                    website_https: None,
                    limits: strongroom_server::Limits::default(),
                };
                let _ = strongroom_server::serve(listeners, Arc::new(front), stop_rx).await;
            });
        });
        let (addr, store) = rx.recv().expect("server started");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        // without TCP_NODELAY a body written after its headers waits out
        // the peer's delayed ACK (~40 ms a request)
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let f = Front {
            rt,
            client,
            host: addr.to_string(),
            store,
        };
        let a = f.signed("PUT", &format!("/{BUCKET}"), &[], &[], b"");
        assert_eq!(a.status, 200, "create bucket: {}", String::from_utf8_lossy(&a.body));
        f
    })
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, b).as_ref())
}

pub fn amz_date() -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::now_utc().format(&fmt).expect("date")
}

/// The SigV4 signing key of `SK` for a day, region and service.
pub fn signing_key(date: &str, service: &str) -> hmac::Key {
    let mut k = hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{SK}").as_bytes());
    for part in [date, "us-east-1", service, "aws4_request"] {
        let t = hmac::sign(&k, part.as_bytes());
        k = hmac::Key::new(hmac::HMAC_SHA256, t.as_ref());
    }
    k
}

/// Query values in a URI exactly as SigV4 canonicalises them (RFC 3986
/// unreserved kept, everything else %XX).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Front {
    /// Sends a request as it is; the answer, whole.
    pub fn send(&self, method: &str, target: &str, headers: &[(String, String)], body: Vec<u8>) -> Answer {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{target}", self.host));
        for (k, v) in headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let Ok(req) = b.body(Full::new(Bytes::from(body))) else {
            return Answer {
                status: 0,
                headers: http::HeaderMap::new(),
                body: Vec::new(),
            };
        };
        self.rt.block_on(async {
            let resp = self.client.request(req).await.expect("request");
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.expect("body").to_bytes().to_vec();
            Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            }
        })
    }

    /// The Authorization header and signed headers of a SigV4 request.
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        payload_hash: &str,
        service: &str,
        amz_date: &str,
    ) -> (Vec<(String, String)>, String) {
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host.clone()),
            ("x-amz-content-sha256".into(), payload_hash.into()),
            ("x-amz-date".into(), amz_date.into()),
        ];
        headers.extend(extra.iter().map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned())));
        headers.sort();
        let sig = strongroom_iam::sigv4::signature(
            &strongroom_iam::sigv4::SigningInput {
                method,
                path,
                query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                headers: headers.clone(),
                payload_hash,
                amz_date,
                region: "us-east-1",
                service,
            },
            SK,
        );
        let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        headers.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={AK}/{}/us-east-1/{service}/aws4_request, SignedHeaders={}, Signature={sig}",
                &amz_date[..8],
                names.join(";")
            ),
        ));
        (headers, sig)
    }

    /// A SigV4-signed S3 request with the payload's hash.
    pub fn signed(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let date = amz_date();
        let (headers, _) = self.sign(method, path, query, extra, &sha256_hex(body), "s3", &date);
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
        let target = if q.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", q.join("&"))
        };
        self.send(method, &target, &headers, body.to_vec())
    }

    /// The object's bytes as its owner reads them (None: no such key).
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let a = self.signed("GET", &format!("/{BUCKET}/{key}"), &[], &[], b"");
        match a.status {
            200 => Some(a.body),
            404 => None,
            s => panic!("GET {key}: {s} {}", String::from_utf8_lossy(&a.body)),
        }
    }

    /// Every durable system record (IAM, KMS, ...): what a refused control
    /// request must leave as it was.
    pub fn system_records(&self) -> Vec<(String, Vec<u8>)> {
        self.store.system_scan("").expect("system scan")
    }
}

/// The error code in an AWS XML error body.
pub fn code(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    s.split("<Code>")
        .nth(1)
        .and_then(|r| r.split("</Code>").next())
        .unwrap_or_default()
        .to_owned()
}
