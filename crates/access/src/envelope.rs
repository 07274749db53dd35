//! The envelope of an S3 request: what the front door reads of the raw
//! request before s3s does, decoded exactly once, and the refusals that
//! must come before any work is done for the caller.
//!
//! s3s verifies the signature and parses the operation; the decision is
//! taken later on s3s's typed input. What remains for us is *which*
//! authentication mechanism a request uses and what it signed: facts that
//! s3s verifies but does not hand on. They are read here with the decoder
//! s3s itself uses for query strings (`form_urlencoded`, through
//! `serde_urlencoded`), so that `X-Amz-%53ignedHeaders` is
//! `X-Amz-SignedHeaders` for both readers. Anything that could be read two
//! ways is refused instead of interpreted: more than one mechanism, a
//! duplicated parameter or header, an auth parameter written encoded, an
//! Authorization header in another spelling, signed-header names s3s
//! would not find, a credential scope for another region or service.
//!
//! This module must never decide access: it only says what was presented
//! and refuses what is ambiguous or malformed.

use http::{HeaderMap, Method, StatusCode, Uri};

/// Longest lifetime of a pre-signed URL (7 days), as AWS.
pub const MAX_PRESIGN_SECS: i64 = 604_800;
/// Largest clock difference accepted for SigV2 header auth (AWS: 15 minutes).
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// Parameters of SigV4 query authentication.
const V4_QUERY: [&str; 6] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
];
/// Parameters of SigV2 query authentication.
const V2_QUERY: [&str; 3] = ["AWSAccessKeyId", "Signature", "Expires"];

/// Query parameters SigV2 signs (the canonicalized resource), as s3s and
/// AWS list them.
pub(crate) const V2_SIGNED: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Query parameters SigV2 leaves unsigned that do not change which
/// operation runs (listing bounds, the SDKs' operation hint). Any other
/// parameter in a SigV2 request is refused: it would select an operation
/// the signer never signed for (`?retention`, `?legal-hold`, ...).
const V2_UNSIGNED_OK: &[&str] = &[
    "AWSAccessKeyId",
    "Signature",
    "Expires",
    "x-id",
    "prefix",
    "delimiter",
    "marker",
    "max-keys",
    "encoding-type",
    "key-marker",
    "version-id-marker",
    "upload-id-marker",
    "max-uploads",
    "max-parts",
    "part-number-marker",
    "list-type",
    "continuation-token",
    "fetch-owner",
    "start-after",
];

/// A request refused before any work: HTTP status, AWS error code, message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        message: message.into(),
    }
}

fn bad_request(code: &'static str, message: impl Into<String>) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, code, message)
}

const ONE_MECHANISM: &str = "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified";

/// A query string decoded once, in order.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes `a=b&c` as s3s does (`application/x-www-form-urlencoded`:
    /// `%XX` and `+`).
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Query { pairs }
    }

    /// The value of `name` when it appears exactly once.
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut it = self.pairs.iter().filter(|(k, _)| k == name);
        let first = it.next()?;
        it.next().is_none().then_some(first.1.as_str())
    }

    /// True when `name` appears at all.
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// Decoded names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    /// The decoded pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    fn first_duplicate(&self) -> Option<&str> {
        let mut names: Vec<&str> = self.names().collect();
        names.sort_unstable();
        names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
    }
}

/// How a request is authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Anonymous,
    /// `Authorization: AWS4-HMAC-SHA256 ...`
    HeaderV4,
    /// `X-Amz-Algorithm=AWS4-HMAC-SHA256&...` (pre-signed URL)
    QueryV4,
    /// `Authorization: AWS key:signature`
    HeaderV2,
    /// `AWSAccessKeyId=...&Signature=...&Expires=...`
    QueryV2,
    /// A browser form upload (POST multipart/form-data); its signature is
    /// in the body, verified by s3s.
    PostForm,
}

impl Mechanism {
    /// `s3:signatureversion`.
    pub fn signature_version(self) -> Option<&'static str> {
        match self {
            Mechanism::HeaderV4 | Mechanism::QueryV4 => Some("AWS4-HMAC-SHA256"),
            Mechanism::HeaderV2 | Mechanism::QueryV2 => Some("AWS"),
            Mechanism::PostForm | Mechanism::Anonymous => None,
        }
    }

    /// `s3:authType`.
    pub fn auth_type(self) -> Option<&'static str> {
        match self {
            Mechanism::HeaderV4 | Mechanism::HeaderV2 => Some("REST-HEADER"),
            Mechanism::QueryV4 | Mechanism::QueryV2 => Some("REST-QUERY-STRING"),
            Mechanism::PostForm => Some("POST"),
            Mechanism::Anonymous => None,
        }
    }

    /// True for both SigV2 forms.
    pub fn is_sigv2(self) -> bool {
        matches!(self, Mechanism::HeaderV2 | Mechanism::QueryV2)
    }
}

/// What a request presents to authenticate itself, as read once by
/// [`examine`]. The signature itself is s3s's to verify; the access layer
/// requires the access key s3s verified to be the one named here.
#[derive(Clone)]
pub struct AuthFacts {
    pub mechanism: Mechanism,
    /// The access key the request names (None: anonymous, or a form
    /// upload whose key is in the body).
    pub access_key: Option<String>,
    /// SigV4: the signed header names (lower case, as signed).
    pub signed_headers: Vec<String>,
    /// Unix seconds of the signing time (SigV4 `X-Amz-Date`, SigV2 `Date`).
    pub signed_at: Option<i64>,
    /// The session token (`x-amz-security-token` header or
    /// `X-Amz-Security-Token` parameter).
    token: Option<String>,
    /// The decoded query string.
    pub query: Query,
}

impl AuthFacts {
    /// The session token presented with the request, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

impl std::fmt::Debug for AuthFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthFacts")
            .field("mechanism", &self.mechanism)
            .field("access_key", &self.access_key)
            .field("signed_headers", &self.signed_headers)
            .field("signed_at", &self.signed_at)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// What the envelope enforces.
#[derive(Clone, Debug)]
pub struct Rules {
    /// The region signatures must be scoped to.
    pub region: String,
    /// Accept SigV2 (header and query).
    pub allow_sigv2: bool,
}

/// Headers s3s reads as one value whose duplicates would be read one way
/// by the signature (joined with commas) and another by the operation.
fn single_valued(name: &str) -> bool {
    // list-valued headers, which SDKs send one value a line
    const LISTS: [&str; 2] = ["x-amz-object-attributes", "x-amz-optional-object-attributes"];
    (name.starts_with("x-amz-") && !LISTS.contains(&name))
        || matches!(
            name,
            "authorization"
                | "content-type"
                | "content-md5"
                | "content-encoding"
                | "content-length"
                | "range"
                | "if-match"
                | "if-none-match"
                | "if-modified-since"
                | "if-unmodified-since"
                | "date"
        )
}

/// Reads and checks how a request authenticates; see the module docs.
pub fn examine(method: &Method, uri: &Uri, headers: &HeaderMap, rules: &Rules, now: i64) -> Result<AuthFacts, Refusal> {
    let raw_query = uri.query();
    let query = Query::parse(raw_query);
    if let Some(name) = query.first_duplicate() {
        return Err(bad_request(
            "InvalidArgument",
            format!("The query parameter '{name}' may appear only once"),
        ));
    }
    for name in headers.keys() {
        let n = name.as_str();
        if single_valued(n) && headers.get_all(name).iter().nth(1).is_some() {
            return Err(bad_request(
                "InvalidArgument",
                format!("The header '{n}' may appear only once"),
            ));
        }
    }
    let authorization = match headers.get(http::header::AUTHORIZATION) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| bad_request("InvalidArgument", "Unsupported Authorization Type"))?,
        ),
    };
    let query_v4 = V4_QUERY.iter().any(|p| query.has(p));
    let query_v2 = query.has("AWSAccessKeyId") || query.has("Signature");
    let form = *method == Method::POST && is_form(headers);
    let presented = [authorization.is_some(), query_v4, query_v2, form];
    if presented.iter().filter(|p| **p).count() > 1 {
        return Err(bad_request("InvalidArgument", ONE_MECHANISM));
    }
    encoded_auth_names(raw_query)?;
    let token_header = headers.get("x-amz-security-token").and_then(|v| v.to_str().ok());
    let mut facts = AuthFacts {
        mechanism: Mechanism::Anonymous,
        access_key: None,
        signed_headers: Vec::new(),
        signed_at: None,
        token: token_header.map(str::to_owned),
        query,
    };
    if let Some(auth) = authorization {
        if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") {
            header_v4(rest, headers, rules, &mut facts)?;
        } else if let Some(rest) = auth.strip_prefix("AWS ") {
            header_v2(rest, headers, rules, now, &mut facts)?;
        } else {
            return Err(bad_request("InvalidArgument", "Unsupported Authorization Type"));
        }
    } else if query_v4 {
        query_v4_facts(headers, rules, &mut facts)?;
    } else if query_v2 {
        query_v2_facts(rules, now, &mut facts)?;
    } else if form {
        facts.mechanism = Mechanism::PostForm;
    }
    Ok(facts)
}

/// True for a POST whose body is a form (the test s3s makes, by media type).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .is_some_and(|m| m == "multipart/form-data")
}

/// An authentication parameter whose name arrives percent-encoded
/// (`X-Amz-%53ignature`) is refused: no client writes one, and it exists
/// only to be read differently by two readers.
fn encoded_auth_names(raw: Option<&str>) -> Result<(), Refusal> {
    let Some(raw) = raw else { return Ok(()) };
    for segment in raw.split('&') {
        let raw_name = segment.split('=').next().unwrap_or_default();
        if !raw_name.contains(['%', '+']) {
            continue;
        }
        let name: String = form_urlencoded::parse(raw_name.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default();
        let auth = V4_QUERY.contains(&name.as_str())
            || V2_QUERY.contains(&name.as_str())
            || name.eq_ignore_ascii_case("X-Amz-Security-Token");
        if auth {
            return Err(bad_request(
                "AuthorizationQueryParametersError",
                format!("The authentication parameter '{name}' must not be percent-encoded"),
            ));
        }
    }
    Ok(())
}

/// `AKID/20130524/us-east-1/s3/aws4_request`, parsed as s3s parses it.
struct Credential<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

fn parse_credential(s: &str) -> Option<Credential<'_>> {
    let mut it = s.split('/');
    let (access_key, date, region, service, terminator) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || terminator != "aws4_request" || service.is_empty() {
        return None;
    }
    let valid_date = date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit());
    valid_date.then_some(Credential {
        access_key,
        date,
        region,
        service,
    })
}

/// The credential scope must name this server's region and S3.
fn check_scope(c: &Credential<'_>, rules: &Rules, query: bool) -> Result<(), Refusal> {
    let (code, lead) = if query {
        (
            "AuthorizationQueryParametersError",
            "Error parsing the X-Amz-Credential parameter;",
        )
    } else {
        ("AuthorizationHeaderMalformed", "The authorization header is malformed;")
    };
    if c.region != rules.region {
        return Err(bad_request(
            code,
            format!(
                "{lead} the region '{}' is wrong; expecting '{}'",
                c.region, rules.region
            ),
        ));
    }
    if c.service != "s3" {
        return Err(bad_request(
            code,
            format!(
                "{lead} incorrect service '{}'. This endpoint belongs to 's3'.",
                c.service
            ),
        ));
    }
    Ok(())
}

/// The signed-header list: names as signed, which s3s looks up verbatim
/// among the (lower-case) request headers. A name it could not find
/// (upper case, empty) would be "signed" for one reader only.
fn signed_list(list: &str) -> Result<Vec<String>, &'static str> {
    let names: Vec<String> = list.split(';').map(str::to_owned).collect();
    for n in &names {
        let ok = !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err("SignedHeaders must be lower-case header names separated by ';'");
        }
    }
    if !names.iter().any(|n| n == "host") {
        return Err("'Host' must be a signed header");
    }
    Ok(names)
}

/// Every `x-amz-*` header must be signed (AWS), or an upload URL's holder
/// could add a copy source, tags, metadata or a customer key of their own.
fn require_signed(headers: &HeaderMap, signed: &[String]) -> Result<(), Refusal> {
    for name in headers.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-") && !signed.iter().any(|s| s == n) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "There were headers present in the request which were not signed",
            ));
        }
    }
    Ok(())
}

fn parse_amz_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// `Credential=..., SignedHeaders=..., Signature=...` after the algorithm,
/// in s3s's grammar (order fixed, optional spaces after the commas).
fn header_v4(rest: &str, headers: &HeaderMap, rules: &Rules, facts: &mut AuthFacts) -> Result<(), Refusal> {
    let malformed = |m: &str| {
        bad_request(
            "AuthorizationHeaderMalformed",
            format!("The authorization header is malformed; {m}"),
        )
    };
    let rest = rest.trim_start();
    let (cred, rest) = rest
        .strip_prefix("Credential=")
        .and_then(|r| r.split_once(','))
        .ok_or_else(|| malformed("the Credential is missing"))?;
    let (signed, rest) = rest
        .trim_start()
        .strip_prefix("SignedHeaders=")
        .and_then(|r| r.split_once(','))
        .ok_or_else(|| malformed("SignedHeaders is missing"))?;
    let signature = rest
        .trim_start()
        .strip_prefix("Signature=")
        .ok_or_else(|| malformed("the Signature is missing"))?
        .trim_end();
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("the Signature is not 64 hexadecimal digits"));
    }
    let c = parse_credential(cred).ok_or_else(|| malformed("the Credential is malformed"))?;
    check_scope(&c, rules, false)?;
    let signed = signed_list(signed).map_err(malformed)?;
    require_signed(headers, &signed)?;
    let date = headers.get("x-amz-date").and_then(|v| v.to_str().ok());
    let signed_at = date.and_then(parse_amz_date);
    if date.is_some_and(|d| !d.starts_with(c.date)) {
        return Err(malformed("the Credential date does not match X-Amz-Date"));
    }
    facts.mechanism = Mechanism::HeaderV4;
    facts.access_key = Some(c.access_key.to_owned());
    facts.signed_headers = signed;
    facts.signed_at = signed_at;
    Ok(())
}

fn query_v4_facts(headers: &HeaderMap, rules: &Rules, facts: &mut AuthFacts) -> Result<(), Refusal> {
    let q = &facts.query;
    let missing = || {
        bad_request(
            "AuthorizationQueryParametersError",
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        )
    };
    let get = |n: &str| q.get(n).ok_or_else(missing);
    let (algorithm, cred, date, expires, signed) = (
        get("X-Amz-Algorithm")?,
        get("X-Amz-Credential")?,
        get("X-Amz-Date")?,
        get("X-Amz-Expires")?,
        get("X-Amz-SignedHeaders")?,
    );
    get("X-Amz-Signature")?;
    let query_error = |m: &str| bad_request("AuthorizationQueryParametersError", m.to_owned());
    if algorithm != "AWS4-HMAC-SHA256" {
        return Err(query_error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""));
    }
    if expires.starts_with('-') {
        return Err(refuse(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired"));
    }
    let secs: i64 = expires
        .parse::<u32>()
        .map_err(|_| query_error("X-Amz-Expires should be a number"))?
        .into();
    if secs > MAX_PRESIGN_SECS {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    let c = parse_credential(cred)
        .ok_or_else(|| query_error("Error parsing the X-Amz-Credential parameter; the Credential is malformed"))?;
    check_scope(&c, rules, true)?;
    let signed_at = parse_amz_date(date).ok_or_else(|| query_error("X-Amz-Date must be in the ISO8601 Long Format"))?;
    if !date.starts_with(c.date) {
        return Err(query_error(
            "Error parsing the X-Amz-Credential parameter; the date does not match X-Amz-Date",
        ));
    }
    let signed = signed_list(signed).map_err(query_error)?;
    require_signed(headers, &signed)?;
    if let (Some(h), Some(p)) = (facts.token.as_deref(), q.get("X-Amz-Security-Token"))
        && h != p
    {
        return Err(bad_request(
            "InvalidToken",
            "The provided token is malformed or otherwise invalid.",
        ));
    }
    let token = q.get("X-Amz-Security-Token").map(str::to_owned);
    facts.mechanism = Mechanism::QueryV4;
    facts.access_key = Some(c.access_key.to_owned());
    facts.signed_headers = signed;
    facts.signed_at = Some(signed_at);
    if token.is_some() {
        facts.token = token;
    }
    Ok(())
}

fn sigv2_refused() -> Refusal {
    refuse(
        StatusCode::FORBIDDEN,
        "AccessDenied",
        "Signature Version 2 is refused by this server",
    )
}

/// SigV2 signs only the sub-resources it lists: any other parameter that
/// selects an operation was not signed and is refused.
fn v2_parameters(q: &Query) -> Result<(), Refusal> {
    for name in q.names() {
        if !V2_SIGNED.contains(&name) && !V2_UNSIGNED_OK.contains(&name) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                format!(
                    "The parameter '{name}' is not covered by a Signature Version 2 signature; sign the request with Signature Version 4"
                ),
            ));
        }
    }
    Ok(())
}

fn parse_http_date(s: &str) -> Option<i64> {
    let gmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let offset = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    let s = s.trim();
    time::PrimitiveDateTime::parse(s, gmt)
        .or_else(|_| time::PrimitiveDateTime::parse(s, offset))
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

fn header_v2(rest: &str, headers: &HeaderMap, rules: &Rules, now: i64, facts: &mut AuthFacts) -> Result<(), Refusal> {
    if !rules.allow_sigv2 {
        return Err(sigv2_refused());
    }
    let (key, signature) = rest.split_once(':').ok_or_else(|| {
        bad_request(
            "InvalidArgument",
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
        )
    })?;
    if key.is_empty() || signature.is_empty() {
        return Err(bad_request(
            "InvalidArgument",
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
        ));
    }
    v2_parameters(&facts.query)?;
    let no_date = || {
        refuse(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    };
    let date = headers
        .get("x-amz-date")
        .or_else(|| headers.get(http::header::DATE))
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .filter(|t| *t >= 0)
        .ok_or_else(no_date)?;
    if (now - date).abs() > MAX_SKEW_SECS {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        ));
    }
    facts.mechanism = Mechanism::HeaderV2;
    facts.access_key = Some(key.to_owned());
    facts.signed_at = Some(date);
    Ok(())
}

fn query_v2_facts(rules: &Rules, now: i64, facts: &mut AuthFacts) -> Result<(), Refusal> {
    if !rules.allow_sigv2 {
        return Err(sigv2_refused());
    }
    let q = &facts.query;
    let (Some(key), Some(_), Some(expires)) = (q.get("AWSAccessKeyId"), q.get("Signature"), q.get("Expires")) else {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        ));
    };
    let expires: i64 = expires.parse().map_err(|_| {
        refuse(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Invalid date (should be seconds since epoch)",
        )
    })?;
    if expires - now > MAX_PRESIGN_SECS {
        return Err(bad_request(
            "AuthorizationQueryParametersError",
            "Expires must be less than a week (in seconds) that is 604800 from now",
        ));
    }
    v2_parameters(q)?;
    facts.mechanism = Mechanism::QueryV2;
    facts.access_key = Some(key.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests;
