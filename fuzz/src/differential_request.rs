//! Differential: the request the decision reads against the request s3s
//! executes. Random methods, paths, query strings and headers go through
//! the front door's envelope (`examine`, as the server does) and then
//! through a real s3s service with Strongroom's authorization hook over a
//! real store. For every request that reaches a decision, the decision's
//! facts must be s3s's: the same operation, bucket and key as s3s's own
//! path reading, and, where the decision reads a version id or a listing
//! prefix, the value the envelope's (form_urlencoded) reading of the query
//! gives, and conversely: a `versionId` or `prefix` s3s acts on is never
//! missing from the decision. A disagreement is the bypass class of
//! `?version%49d=` and `pre%66ix=`.
//!
//! Input: first byte picks the method; then UTF-8 lines: the request
//! target, then `name: value` headers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use s3s::S3;
use strongroom_access::envelope::{Rules, examine};
use strongroom_access::{AuthFacts, S3Authorization, S3sReading, ask::Ask};

/// Strongroom's handlers are not needed: the decision is what is compared.
struct Nothing;
impl S3 for Nothing {}

/// Operations that act on `versionId` when the query carries one.
const VERSIONED: &[&str] = &[
    "GetObject",
    "HeadObject",
    "DeleteObject",
    "GetObjectTagging",
    "PutObjectTagging",
    "DeleteObjectTagging",
    "GetObjectAcl",
    "PutObjectAcl",
    "GetObjectRetention",
    "PutObjectRetention",
    "GetObjectLegalHold",
    "PutObjectLegalHold",
    "GetObjectAttributes",
];
/// Listings that act on `prefix`.
const PREFIXED: &[&str] = &[
    "ListObjects",
    "ListObjectsV2",
    "ListObjectVersions",
    "ListMultipartUploads",
];

type Seen = Arc<Mutex<Vec<(Ask, AuthFacts, S3sReading)>>>;

struct World {
    rt: tokio::runtime::Runtime,
    service: s3s::service::S3Service,
    seen: Seen,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir().join(format!("strongroom-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = strongroom_store::Store::open(&dir).expect("store");
        let master = strongroom_crypt::MasterKeys::parse(&"ab".repeat(32)).expect("keyring");
        let seen: Seen = Arc::default();
        let service = rt.block_on(async {
            let ids = strongroom_iam::Identities::load(store.clone(), Arc::new(master))
                .await
                .expect("identities");
            // one bucket ("bkt") with a policy, so anonymous requests reach the decision
            let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"]}]}"#;
            let mut configs = BTreeMap::new();
            configs.insert(strongroom_access::POLICY_CONFIG.to_owned(), policy.to_owned());
            let rec = strongroom_store::BucketRecord {
                name: "bkt".into(),
                id: "fuzz".into(),
                owner: "000000000001".into(),
                created_ms: 0,
                location: None,
                tags: None,
                configs,
            };
            store
                .commit(move |t| t.put_bucket(&rec))
                .await
                .expect("bucket");
            let sink = seen.clone();
            let observer: strongroom_access::Observer = Arc::new(move |ask: &Ask, facts: &AuthFacts, s: &S3sReading| {
                if let Ok(mut v) = sink.lock() {
                    v.push((ask.clone(), facts.clone(), s.clone()));
                }
            });
            let access = S3Authorization::observe(ids.clone(), store.clone(), "us-east-1".into(), observer);
            let mut b = s3s::service::S3ServiceBuilder::new(Nothing);
            b.set_auth(strongroom_access::SecretLookup(ids));
            b.set_access(access);
            b.build()
        });
        World { rt, service, seen }
    })
}

fn check(ask: &Ask, facts: &AuthFacts, s3s: &S3sReading) {
    let op = ask.op.name();
    assert_eq!(op, s3s.op, "operation: decided {op}, s3s runs {}", s3s.op);
    assert_eq!(ask.bucket, s3s.bucket, "{op}: bucket");
    assert_eq!(ask.key, s3s.key, "{op}: key");
    let query_version = facts.query.get("versionId");
    if let Some(v) = &ask.version_id {
        assert_eq!(Some(v.as_str()), query_version, "{op}: version decided on vs. query");
    }
    if VERSIONED.contains(&op) && query_version.is_some() {
        assert_eq!(
            ask.version_id.as_deref(),
            query_version,
            "{op}: a versionId the decision missed"
        );
    }
    let decided_prefix = ask
        .keys
        .iter()
        .find(|(k, _)| *k == "s3:prefix")
        .map(|(_, v)| v.as_str());
    if decided_prefix.is_some() || PREFIXED.contains(&op) {
        let q = facts.query.get("prefix").filter(|p| !p.is_empty());
        assert_eq!(
            decided_prefix.filter(|p| !p.is_empty()),
            q,
            "{op}: prefix decided on vs. query"
        );
    }
}

/// One case.
pub fn run(data: &[u8]) {
    let Some((&m, rest)) = data.split_first() else { return };
    let method = match m % 5 {
        0 => http::Method::GET,
        1 => http::Method::PUT,
        2 => http::Method::POST,
        3 => http::Method::DELETE,
        _ => http::Method::HEAD,
    };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let mut lines = text.split('\n');
    let Some(target) = lines.next() else { return };
    let Ok(uri) = target.parse::<http::Uri>() else { return };
    if uri.scheme().is_some() || !uri.path().starts_with('/') {
        return;
    }
    let mut req = http::Request::builder().method(method).uri(uri);
    let mut has_host = false;
    for line in lines.take(32) {
        let Some((k, v)) = line.split_once(':') else { continue };
        has_host |= k.trim().eq_ignore_ascii_case("host");
        req = req.header(k.trim(), v.trim());
    }
    if !has_host {
        req = req.header("host", "127.0.0.1:9000");
    }
    let Ok(mut req) = req.body(s3s::Body::empty()) else {
        return;
    };
    let rules = Rules {
        region: "us-east-1".into(),
        allow_sigv2: true,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // the front door refuses what the envelope cannot read one way
    let Ok(facts) = examine(req.method(), req.uri(), req.headers(), &rules, now) else {
        return;
    };
    req.extensions_mut().insert(Arc::new(facts));
    let w = world();
    if let Ok(mut v) = w.seen.lock() {
        v.clear();
    }
    let _ = w.rt.block_on(w.service.call(req));
    let seen = w.seen.lock().map(|v| v.clone()).unwrap_or_default();
    for (ask, facts, s3s) in &seen {
        check(ask, facts, s3s);
    }
}
