//! One server access log record, in AWS's field order and quoting (space
//! separated, `-` for an empty field, the time in brackets, request-URI,
//! referer and user agent in double quotes). The request-URI is logged
//! without its secrets: signatures, credentials, security tokens and SSE-C
//! keys in the query are removed, as AWS does. Every record matches the
//! regular expression AWS publishes for Athena.

use std::borrow::Cow;
use std::cell::RefCell;

use time::OffsetDateTime;

/// Query parameters never logged (compared without case): the secrets a
/// pre-signed URL or an SSE-C query carries.
const SECRET_PARAMS: &[&str] = &[
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "signature",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
];

/// What a record says of one request. Borrowed where it can be: a record
/// made for the spool is built from the request's own facts without
/// copying them; one read back ([`Record::parse`]) owns its fields.
#[derive(Clone, Debug, Default)]
pub struct Record<'a> {
    /// Canonical id of the source bucket's owner.
    pub owner: Cow<'a, str>,
    pub bucket: Cow<'a, str>,
    pub time: Option<OffsetDateTime>,
    pub remote_ip: Cow<'a, str>,
    /// The requester's ARN; None for anonymous requests.
    pub requester: Option<Cow<'a, str>>,
    pub request_id: Cow<'a, str>,
    /// `REST.GET.OBJECT`, `WEBSITE.GET.OBJECT`, ...
    pub operation: Cow<'a, str>,
    pub key: Option<Cow<'a, str>>,
    /// Method, request target (as sent) and HTTP version.
    pub method: Cow<'a, str>,
    pub target: Cow<'a, str>,
    pub http_version: Cow<'a, str>,
    pub status: u16,
    pub error_code: Option<Cow<'a, str>>,
    pub bytes_sent: Option<u64>,
    pub object_size: Option<u64>,
    pub total_ms: u64,
    pub turnaround_ms: u64,
    pub referer: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub version_id: Option<Cow<'a, str>>,
    pub host_id: Cow<'a, str>,
    /// `SigV2` / `SigV4`.
    pub signature_version: Option<Cow<'a, str>>,
    pub cipher_suite: Option<Cow<'a, str>>,
    /// `AuthHeader` / `QueryString`.
    pub auth_type: Option<Cow<'a, str>>,
    pub host: Option<Cow<'a, str>>,
    /// `TLSv1.2` / `TLSv1.3`.
    pub tls_version: Option<Cow<'a, str>>,
}

fn dash(v: Option<&str>) -> &str {
    v.filter(|s| !s.is_empty()).unwrap_or("-")
}

/// Appends `v` as part of one field: double quotes, control characters
/// and (unless `spaces`) spaces percent-encoded — the values are URIs,
/// identifiers or header values; nothing else is changed — so a field
/// stays one token, a quoted field has no quote inside (AWS's regex allows
/// none) and a record stays one line.
fn push_escaped_with(out: &mut String, v: &str, spaces: bool) {
    let mut rest = v;
    while let Some(i) = rest.find(|c: char| (c == ' ' && !spaces) || c == '"' || c.is_ascii_control()) {
        out.push_str(&rest[..i]);
        let b = rest.as_bytes()[i];
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

fn push_escaped(out: &mut String, v: &str) {
    push_escaped_with(out, v, false);
}

/// Appends a field and the space after it.
fn push_token(out: &mut String, v: Option<&str>) {
    push_escaped(out, dash(v));
    out.push(' ');
}

/// Appends a double-quoted field (spaces kept) and the space after it.
fn push_quoted(out: &mut String, v: Option<&str>) {
    out.push('"');
    push_escaped_with(out, dash(v), true);
    out.push_str("\" ");
}

fn push_num(out: &mut String, v: Option<u64>) {
    match v {
        Some(n) => {
            out.push_str(itoa::Buffer::new().format(n));
            out.push(' ');
        }
        None => out.push_str("- "),
    }
}

/// Whether a query parameter (`name[=value]`, as sent) is a secret: its
/// name, percent-decoded, is one of [`SECRET_PARAMS`] without case.
fn secret_param(p: &str) -> bool {
    let name = p.split_once('=').map_or(p, |(n, _)| n);
    let is_secret = |n: &str| {
        SECRET_PARAMS
            .iter()
            .any(|s| s.len() == n.len() && n.eq_ignore_ascii_case(s))
    };
    if name.contains('%') {
        is_secret(&percent_encoding::percent_decode_str(name).decode_utf8_lossy())
    } else {
        is_secret(name)
    }
}

/// Appends the request target without its secret query parameters, each
/// piece through `push`.
fn redact_into(out: &mut String, target: &str, push: impl Fn(&mut String, &str)) {
    let Some((path, query)) = target.split_once('?') else {
        return push(out, target);
    };
    push(out, path);
    let mut sep = '?';
    for p in query.split('&').filter(|p| !secret_param(p)) {
        out.push(sep);
        push(out, p);
        sep = '&';
    }
}

/// AWS's time format: `[06/Feb/2019:00:00:38 +0000]` (without the
/// brackets), made once a second per thread.
fn push_time(out: &mut String, t: OffsetDateTime) {
    thread_local! {
        static LAST: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let t = t.to_offset(time::UtcOffset::UTC);
    let secs = t.unix_timestamp();
    LAST.with_borrow_mut(|(at, text)| {
        if *at != secs {
            let f = time::macros::format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000");
            *text = t.format(&f).unwrap_or_default();
            *at = secs;
        }
        out.push_str(text);
    });
}

impl Record<'_> {
    /// The record as one line (without its newline).
    pub fn line(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(512);
        push_token(&mut out, Some(&self.owner));
        push_token(&mut out, Some(&self.bucket));
        out.push('[');
        push_time(&mut out, self.time.unwrap_or(OffsetDateTime::UNIX_EPOCH));
        out.push_str("] ");
        push_token(&mut out, Some(&self.remote_ip));
        push_token(&mut out, self.requester.as_deref());
        push_token(&mut out, Some(&self.request_id));
        push_token(&mut out, Some(&self.operation));
        match self.key.as_deref().filter(|k| !k.is_empty()) {
            Some(k) => {
                let _ = write!(out, "{} ", percent_encoding::utf8_percent_encode(k, KEY));
            }
            None => out.push_str("- "),
        }
        out.push('"');
        push_escaped(&mut out, &self.method);
        out.push(' ');
        redact_into(&mut out, &self.target, push_escaped);
        out.push(' ');
        push_escaped(&mut out, &self.http_version);
        out.push_str("\" ");
        push_num(&mut out, Some(u64::from(self.status)));
        push_token(&mut out, self.error_code.as_deref());
        push_num(&mut out, self.bytes_sent);
        push_num(&mut out, self.object_size);
        push_num(&mut out, Some(self.total_ms));
        push_num(&mut out, Some(self.turnaround_ms));
        // one token in AWS's regex: no space inside
        out.push('"');
        push_escaped(&mut out, dash(self.referer.as_deref()));
        out.push_str("\" ");
        push_quoted(&mut out, self.user_agent.as_deref());
        push_token(&mut out, self.version_id.as_deref());
        push_token(&mut out, Some(&self.host_id));
        push_token(&mut out, self.signature_version.as_deref());
        push_token(&mut out, self.cipher_suite.as_deref());
        push_token(&mut out, self.auth_type.as_deref());
        push_token(&mut out, self.host.as_deref());
        push_token(&mut out, self.tls_version.as_deref());
        // access point ARN and ACL required
        out.push_str("- -");
        out
    }
}

/// The record's fields as written: bracketed and quoted fields are one
/// field each, the rest split at spaces.
fn fields(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line.trim_end_matches(['\r', '\n']);
    while !rest.is_empty() {
        rest = rest.trim_start_matches(' ');
        let (close, skip) = match rest.as_bytes().first() {
            Some(b'[') => (']', 1),
            Some(b'"') => ('"', 1),
            Some(_) => (' ', 0),
            None => break,
        };
        let body = &rest[skip..];
        let end = body.find(close).unwrap_or(body.len());
        out.push(&body[..end]);
        rest = body.get(end + skip.max(1)..).unwrap_or_default();
    }
    out
}

fn opt(v: &str) -> Option<Cow<'static, str>> {
    (v != "-").then(|| Cow::Owned(v.to_owned()))
}

fn own(v: &str) -> Cow<'static, str> {
    Cow::Owned(v.to_owned())
}

impl Record<'static> {
    /// A record read back from its line (as delivered; the key decoded).
    /// None when the line is not a record.
    pub fn parse(line: &str) -> Option<Record<'static>> {
        let f = fields(line);
        if f.len() < 24 {
            return None;
        }
        let tf = time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
        );
        let num = |v: &str| if v == "-" { Some(None) } else { v.parse().ok().map(Some) };
        let mut request = f[8].splitn(3, ' ');
        Some(Record {
            owner: own(f[0]),
            bucket: own(f[1]),
            time: Some(OffsetDateTime::parse(f[2], &tf).ok()?),
            remote_ip: own(f[3]),
            requester: opt(f[4]),
            request_id: own(f[5]),
            operation: own(f[6]),
            key: opt(f[7]).map(|k| {
                Cow::Owned(
                    percent_encoding::percent_decode_str(&k)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            }),
            method: own(request.next().unwrap_or_default()),
            target: own(request.next().unwrap_or_default()),
            http_version: own(request.next().unwrap_or_default()),
            status: f[9].parse().ok()?,
            error_code: opt(f[10]),
            bytes_sent: num(f[11])?,
            object_size: num(f[12])?,
            total_ms: f[13].parse().unwrap_or(0),
            turnaround_ms: f[14].parse().unwrap_or(0),
            referer: opt(f[15]),
            user_agent: opt(f[16]),
            version_id: opt(f[17]),
            host_id: own(f[18]),
            signature_version: opt(f[19]),
            cipher_suite: opt(f[20]),
            auth_type: opt(f[21]),
            host: opt(f[22]),
            tls_version: opt(f[23]),
        })
    }
}

/// Object keys in records: percent-encoded (AWS), `/` kept.
const KEY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// The operation name AWS logs for an S3 operation (`REST.<METHOD>.<RESOURCE>`).
pub fn operation(op: &str, method: &str) -> String {
    let resource = match op {
        "GetObject" | "HeadObject" | "PutObject" | "DeleteObject" | "PostObject" => "OBJECT",
        "CopyObject" => return "REST.COPY.OBJECT".into(),
        "UploadPartCopy" => return "REST.COPY.PART".into(),
        "UploadPart" => "PART",
        "CreateMultipartUpload" | "ListMultipartUploads" => "UPLOADS",
        "CompleteMultipartUpload" | "AbortMultipartUpload" | "ListParts" => "UPLOAD",
        "DeleteObjects" => "MULTI_OBJECT_DELETE",
        "ListObjects" | "ListObjectsV2" | "HeadBucket" | "CreateBucket" | "DeleteBucket" => "BUCKET",
        "ListObjectVersions" => "BUCKETVERSIONS",
        "GetObjectTagging" | "PutObjectTagging" | "DeleteObjectTagging" => "OBJECT_TAGGING",
        "GetBucketTagging" | "PutBucketTagging" | "DeleteBucketTagging" => "TAGGING",
        "GetObjectAcl" | "PutObjectAcl" | "GetBucketAcl" | "PutBucketAcl" => "ACL",
        "GetBucketPolicy" | "PutBucketPolicy" | "DeleteBucketPolicy" => "BUCKETPOLICY",
        "GetBucketPolicyStatus" => "BUCKETPOLICYSTATUS",
        "GetBucketLogging" | "PutBucketLogging" => "LOGGING_STATUS",
        "GetBucketCors" | "PutBucketCors" | "DeleteBucketCors" => "CORS",
        "GetBucketWebsite" | "PutBucketWebsite" | "DeleteBucketWebsite" => "WEBSITE",
        "GetBucketVersioning" | "PutBucketVersioning" => "VERSIONING",
        "GetBucketLocation" => "LOCATION",
        "GetBucketEncryption" | "PutBucketEncryption" | "DeleteBucketEncryption" => "ENCRYPTION",
        "GetPublicAccessBlock" | "PutPublicAccessBlock" | "DeletePublicAccessBlock" => "PUBLIC_ACCESS_BLOCK",
        "GetObjectLockConfiguration" | "PutObjectLockConfiguration" => "OBJECT_LOCK_CONFIGURATION",
        "GetObjectRetention" | "PutObjectRetention" => "RETENTION",
        "GetObjectLegalHold" | "PutObjectLegalHold" => "LEGAL_HOLD",
        "GetObjectAttributes" => "OBJECT_ATTRIBUTES",
        "GetBucketOwnershipControls" | "PutBucketOwnershipControls" | "DeleteBucketOwnershipControls" => {
            "OWNERSHIP_CONTROLS"
        }
        "GetBucketRequestPayment" | "PutBucketRequestPayment" => "REQUEST_PAYMENT",
        _ => "UNKNOWN",
    };
    format!("REST.{method}.{resource}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sample() -> Record<'static> {
        Record {
            owner: "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be".into(),
            bucket: "logs-src".into(),
            time: OffsetDateTime::from_unix_timestamp(1_549_411_238).ok(),
            remote_ip: "192.0.2.3".into(),
            requester: Some("arn:aws:iam::111122223333:user/alice".into()),
            request_id: "3E57427F3EXAMPLE".into(),
            operation: "REST.GET.OBJECT".into(),
            key: Some("a b/c+d.txt".into()),
            method: "GET".into(),
            target: "/logs-src/a%20b/c%2Bd.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20190206&X-Amz-Signature=abcdef&versionId=3".into(),
            http_version: "HTTP/1.1".into(),
            status: 200,
            error_code: None,
            bytes_sent: Some(113),
            object_size: Some(113),
            total_ms: 7,
            turnaround_ms: 3,
            referer: None,
            user_agent: Some("aws-cli/2.9 \"quoted\"".into()),
            version_id: Some("3".into()),
            host_id: "s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6Uk=".into(),
            signature_version: Some("SigV4".into()),
            cipher_suite: None,
            auth_type: Some("QueryString".into()),
            host: Some("127.0.0.1:9000".into()),
            tls_version: None,
        }
    }

    #[test]
    fn fields_in_aws_order_and_quoting() {
        let l = sample().line();
        assert!(l.starts_with(
            "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be logs-src [06/Feb/2019:00:00:38 +0000] 192.0.2.3 arn:aws:iam::111122223333:user/alice 3E57427F3EXAMPLE REST.GET.OBJECT a%20b/c%2Bd.txt \"GET /logs-src/a%20b/c%2Bd.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&versionId=3 HTTP/1.1\" 200 - 113 113 7 3 \"-\" \"aws-cli/2.9 %22quoted%22\" 3 "
        ), "{l}");
        assert!(l.ends_with(" SigV4 - QueryString 127.0.0.1:9000 - - -"), "{l}");
        assert!(
            !l.contains("abcdef") && !l.contains("Credential"),
            "secrets stay out: {l}"
        );
    }

    #[test]
    fn a_record_reads_back_field_by_field() {
        let r = Record::parse(&sample().line()).expect("parses");
        assert_eq!(r.owner, sample().owner);
        assert_eq!(r.bucket, "logs-src");
        assert_eq!(r.time, sample().time);
        assert_eq!(r.requester.as_deref(), Some("arn:aws:iam::111122223333:user/alice"));
        assert_eq!(r.operation, "REST.GET.OBJECT");
        assert_eq!(r.key.as_deref(), Some("a b/c+d.txt"));
        assert_eq!(r.method, "GET");
        assert_eq!(
            r.target,
            "/logs-src/a%20b/c%2Bd.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&versionId=3"
        );
        assert_eq!(r.http_version, "HTTP/1.1");
        assert_eq!((r.status, r.error_code.as_deref()), (200, None));
        assert_eq!((r.bytes_sent, r.object_size), (Some(113), Some(113)));
        assert_eq!(r.user_agent.as_deref(), Some("aws-cli/2.9 %22quoted%22"));
        assert_eq!(r.version_id.as_deref(), Some("3"));
        assert_eq!(r.auth_type.as_deref(), Some("QueryString"));
        assert_eq!(r.host.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(r.tls_version, None);
        let mut denied = sample();
        denied.status = 403;
        denied.error_code = Some("AccessDenied".into());
        denied.bytes_sent = None;
        denied.requester = None;
        let r = Record::parse(&denied.line()).expect("parses");
        assert_eq!(
            (r.status, r.error_code.as_deref(), r.bytes_sent),
            (403, Some("AccessDenied"), None)
        );
        assert_eq!(r.requester, None);
        assert!(Record::parse("not a record").is_none());
        assert!(Record::parse("").is_none());
    }

    #[test]
    fn each_record_has_its_own_second() {
        // the time text is remembered per thread for one second: a record
        // of another second must not reuse it
        let mut r = sample();
        for (t, text) in [
            (1_549_411_238, "[06/Feb/2019:00:00:38 +0000]"),
            (1_549_411_239, "[06/Feb/2019:00:00:39 +0000]"),
            (1_549_411_238, "[06/Feb/2019:00:00:38 +0000]"),
        ] {
            r.time = OffsetDateTime::from_unix_timestamp(t).ok();
            assert!(r.line().contains(text), "{}", r.line());
        }
    }

    #[test]
    fn a_record_stays_one_line_with_one_token_per_field() {
        let mut r = sample();
        r.user_agent = Some("evil\r\nagent\t\"x\"".into());
        r.referer = Some("http://a b/".into());
        r.requester = Some("arn with space".into());
        let l = r.line();
        assert!(!l.contains(['\n', '\r', '\t']), "{l}");
        assert!(l.contains(" \"evil%0D%0Aagent%09%22x%22\" "), "{l}");
        assert!(l.contains(" \"http://a%20b/\" "), "{l}");
        assert!(l.contains(" arn%20with%20space "), "{l}");
        assert_eq!(
            Record::parse(&l).unwrap().user_agent.as_deref(),
            Some("evil%0D%0Aagent%09%22x%22")
        );
    }

    /// The request target without its secret query parameters.
    fn redact(target: &str) -> String {
        let mut out = String::with_capacity(target.len());
        redact_into(&mut out, target, |o, v| o.push_str(v));
        out
    }

    #[test]
    fn secrets_are_removed_from_the_request_uri() {
        assert_eq!(redact("/b/k"), "/b/k");
        assert_eq!(
            redact("/b/k?Signature=x&Expires=1&AWSAccessKeyId=AKIA"),
            "/b/k?Expires=1&AWSAccessKeyId=AKIA"
        );
        assert_eq!(
            redact("/b/k?x-amz-server-side-encryption-customer-key=c2VjcmV0&X-Amz-Security-Token=tok"),
            "/b/k"
        );
        assert_eq!(redact("/b/k?X-Amz-%53ignature=x&a=1"), "/b/k?a=1");
    }

    #[test]
    fn operations_as_aws_names_them() {
        assert_eq!(operation("GetObject", "GET"), "REST.GET.OBJECT");
        assert_eq!(operation("UploadPart", "PUT"), "REST.PUT.PART");
        assert_eq!(operation("CreateMultipartUpload", "POST"), "REST.POST.UPLOADS");
        assert_eq!(operation("CompleteMultipartUpload", "POST"), "REST.POST.UPLOAD");
        assert_eq!(operation("DeleteObjects", "POST"), "REST.POST.MULTI_OBJECT_DELETE");
        assert_eq!(operation("ListObjectsV2", "GET"), "REST.GET.BUCKET");
        assert_eq!(operation("CopyObject", "PUT"), "REST.COPY.OBJECT");
    }
}
