//! Each refusal the envelope makes, and the readings it must share with s3s.

use super::*;

const NOW: i64 = 1_764_633_600; // 2025-12-02T00:00:00Z
const DATE: &str = "20251202T000000Z";
const SIG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn rules() -> Rules {
    Rules {
        region: "us-east-1".into(),
        allow_sigv2: true,
    }
}

fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> (Method, Uri, HeaderMap) {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            h.append(k, v);
        }
    }
    (
        method.parse().unwrap_or(Method::GET),
        uri.parse().unwrap_or_default(),
        h,
    )
}

fn run(method: &str, uri: &str, headers: &[(&str, &str)]) -> Result<AuthFacts, Refusal> {
    let (m, u, h) = req(method, uri, headers);
    examine(&m, &u, &h, &rules(), NOW)
}

fn code(r: Result<AuthFacts, Refusal>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(r) => r.code,
    }
}

fn v4_header(scope: &str, signed: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/{scope}/aws4_request, SignedHeaders={signed}, Signature={SIG}")
}

fn presign(extra: &str) -> String {
    format!(
        "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20251202%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={DATE}&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature={SIG}{extra}"
    )
}

#[test]
fn header_v4_is_read_with_its_signed_headers() {
    let auth = v4_header("20251202/us-east-1/s3", "host;x-amz-content-sha256;x-amz-date");
    let f = run(
        "GET",
        "/b/k",
        &[
            ("authorization", &auth),
            ("x-amz-date", DATE),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ],
    );
    let f = f.ok();
    assert_eq!(f.as_ref().map(|f| f.mechanism), Some(Mechanism::HeaderV4));
    assert_eq!(
        f.as_ref().and_then(|f| f.access_key.clone()).as_deref(),
        Some("AKIAEXAMPLE")
    );
    assert_eq!(f.as_ref().and_then(|f| f.signed_at), Some(NOW));
}

#[test]
fn unsigned_amz_headers_are_refused_for_header_and_query_auth() {
    let auth = v4_header("20251202/us-east-1/s3", "host;x-amz-date");
    let r = run(
        "PUT",
        "/b/k",
        &[
            ("authorization", &auth),
            ("x-amz-date", DATE),
            ("x-amz-copy-source", "v/s"),
        ],
    );
    assert_eq!(code(r), "AccessDenied");
    let r = run("PUT", &presign(""), &[("x-amz-copy-source", "v/s")]);
    assert_eq!(code(r), "AccessDenied");
    // the renamed parameter decodes to the real one: still checked
    let renamed = presign("").replace("X-Amz-SignedHeaders", "X-Amz-%53ignedHeaders");
    assert_eq!(
        code(run("PUT", &renamed, &[("x-amz-tagging", "a=b")])),
        "AuthorizationQueryParametersError"
    );
}

#[test]
fn encoded_auth_parameter_names_are_refused() {
    for (from, to) in [
        ("X-Amz-Expires", "X-Amz-%45xpires"),
        ("X-Amz-Signature", "X-Amz-%53ignature"),
        ("X-Amz-Credential", "X-Amz-Credentia%6c"),
    ] {
        let uri = presign("").replace(from, to);
        assert_eq!(code(run("GET", &uri, &[])), "AuthorizationQueryParametersError", "{to}");
    }
    assert_eq!(
        code(run("GET", "/b/k?AWSAccessKey%49d=AKIA&Signature=x&Expires=1", &[])),
        "AuthorizationQueryParametersError"
    );
    // other names may be encoded: they are read decoded, like s3s reads them
    let f = run("GET", "/b?pre%66ix=a%2Fb", &[]).ok();
    assert_eq!(
        f.map(|f| f.query.get("prefix").map(str::to_owned)),
        Some(Some("a/b".into()))
    );
}

#[test]
fn one_mechanism_only() {
    let auth = v4_header("20251202/us-east-1/s3", "host;x-amz-date");
    assert_eq!(
        code(run(
            "GET",
            &presign(""),
            &[("authorization", &auth), ("x-amz-date", DATE)]
        )),
        "InvalidArgument"
    );
    assert_eq!(
        code(run("GET", &presign(""), &[("authorization", "AWS AKIA:sig")])),
        "InvalidArgument"
    );
    assert_eq!(
        code(run(
            "POST",
            "/b",
            &[
                ("authorization", &auth),
                ("content-type", "multipart/form-data; boundary=x")
            ]
        )),
        "InvalidArgument"
    );
    assert_eq!(
        code(run(
            "GET",
            &format!("{}&AWSAccessKeyId=A&Signature=s&Expires=9", presign("")),
            &[]
        )),
        "InvalidArgument"
    );
}

#[test]
fn authorization_spellings_other_than_aws_are_refused() {
    let lower = v4_header("20251202/us-east-1/s3", "host").replace("AWS4-HMAC-SHA256", "aws4-hmac-sha256");
    assert_eq!(
        code(run("GET", "/b/k", &[("authorization", &lower)])),
        "InvalidArgument"
    );
    assert_eq!(
        code(run("GET", "/b/k", &[("authorization", "Bearer x")])),
        "InvalidArgument"
    );
    let upper = v4_header("20251202/us-east-1/s3", "host;X-Amz-Date");
    assert_eq!(
        code(run("GET", "/b/k", &[("authorization", &upper), ("x-amz-date", DATE)])),
        "AuthorizationHeaderMalformed"
    );
    let no_host = v4_header("20251202/us-east-1/s3", "x-amz-date");
    assert_eq!(
        code(run("GET", "/b/k", &[("authorization", &no_host), ("x-amz-date", DATE)])),
        "AuthorizationHeaderMalformed"
    );
}

#[test]
fn credential_scope_names_this_region_and_s3() {
    for scope in [
        "20251202/eu-west-1/s3",
        "20251202/us-east-1/sts",
        "20251202/us-east-1/iam",
    ] {
        let auth = v4_header(scope, "host;x-amz-date");
        assert_eq!(
            code(run("GET", "/b/k", &[("authorization", &auth), ("x-amz-date", DATE)])),
            "AuthorizationHeaderMalformed",
            "{scope}"
        );
    }
    let uri = presign("").replace("us-east-1%2Fs3", "eu-west-1%2Fs3");
    assert_eq!(code(run("GET", &uri, &[])), "AuthorizationQueryParametersError");
    let uri = presign("").replace("us-east-1%2Fs3", "us-east-1%2Fsts");
    assert_eq!(code(run("GET", &uri, &[])), "AuthorizationQueryParametersError");
}

#[test]
fn presigned_lifetimes() {
    assert_eq!(code(run("GET", &presign(""), &[])), "ok");
    let week = presign("").replace("X-Amz-Expires=300", "X-Amz-Expires=604800");
    assert_eq!(code(run("GET", &week, &[])), "ok");
    let over = presign("").replace("X-Amz-Expires=300", "X-Amz-Expires=604801");
    assert_eq!(code(run("GET", &over, &[])), "AuthorizationQueryParametersError");
    let negative = presign("").replace("X-Amz-Expires=300", "X-Amz-Expires=-5");
    assert_eq!(code(run("GET", &negative, &[])), "AccessDenied");
    let missing = presign("").replace("&X-Amz-SignedHeaders=host", "");
    assert_eq!(code(run("GET", &missing, &[])), "AuthorizationQueryParametersError");
    let algorithm = presign("").replace("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA512");
    assert_eq!(code(run("GET", &algorithm, &[])), "AuthorizationQueryParametersError");
}

#[test]
fn duplicates_are_refused() {
    assert_eq!(code(run("GET", "/b/k?versionId=a&versionId=b", &[])), "InvalidArgument");
    assert_eq!(
        code(run("GET", "/b/k?versionId=a&version%49d=b", &[])),
        "InvalidArgument"
    );
    assert_eq!(
        code(run(
            "PUT",
            "/b/k",
            &[("x-amz-copy-source", "a/b"), ("x-amz-copy-source", "c/d")]
        )),
        "InvalidArgument"
    );
}

fn http_date(secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&fmt).unwrap_or_default()
}

#[test]
fn sigv2_rules() {
    let date = http_date(NOW);
    let ok = run(
        "GET",
        "/b/k?acl",
        &[("authorization", "AWS AKIA:c2ln"), ("date", &date)],
    );
    assert_eq!(ok.ok().map(|f| f.mechanism), Some(Mechanism::HeaderV2));
    // a sub-resource SigV2 does not sign selects an unsigned operation
    for q in ["retention", "legal-hold", "encryption", "policyStatus", "attributes"] {
        let uri = format!("/b/k?AWSAccessKeyId=AKIA&Signature=c2ln&Expires={}&{q}", NOW + 60);
        assert_eq!(code(run("GET", &uri, &[])), "AccessDenied", "{q}");
    }
    let week = format!(
        "/b/k?AWSAccessKeyId=AKIA&Signature=c2ln&Expires={}",
        NOW + MAX_PRESIGN_SECS + 60
    );
    assert_eq!(code(run("GET", &week, &[])), "AuthorizationQueryParametersError");
    let skewed = http_date(NOW - 3600);
    assert_eq!(
        code(run(
            "GET",
            "/b/k",
            &[("authorization", "AWS AKIA:c2ln"), ("date", &skewed)]
        )),
        "RequestTimeTooSkewed"
    );
    assert_eq!(
        code(run("GET", "/b/k", &[("authorization", "AWS AKIA:c2ln")])),
        "AccessDenied"
    );
    let off = Rules {
        region: "us-east-1".into(),
        allow_sigv2: false,
    };
    let (m, u, h) = req(
        "GET",
        &format!("/b/k?AWSAccessKeyId=AKIA&Signature=c2ln&Expires={}", NOW + 60),
        &[],
    );
    assert_eq!(
        examine(&m, &u, &h, &off, NOW).err().map(|r| r.code),
        Some("AccessDenied")
    );
}

#[test]
fn tokens_are_not_shown_by_debug() {
    let f = run("GET", "/b/k", &[("x-amz-security-token", "SECRETTOKEN")]).ok();
    let shown = format!("{f:?}");
    assert!(!shown.contains("SECRETTOKEN"), "{shown}");
    assert_eq!(f.as_ref().and_then(|f| f.token()), Some("SECRETTOKEN"));
}

#[test]
fn query_decoding_matches_form_urlencoding() {
    let q = Query::parse(Some("a=%2F+b&c&d=x%3Dy&e%5Bf%5D="));
    assert_eq!(q.get("a"), Some("/ b"));
    assert_eq!(q.get("c"), Some(""));
    assert_eq!(q.get("d"), Some("x=y"));
    assert_eq!(q.get("e[f]"), Some(""));
}
