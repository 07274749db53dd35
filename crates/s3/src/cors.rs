//! Cross-origin resource sharing: a bucket's CORS rules
//! (Put/Get/DeleteBucketCors with AWS's validation) and how a browser's
//! request matches them. The front door asks [`preflight`] for `OPTIONS`
//! requests and [`actual`] for requests that carry `Origin`; the first
//! matching rule answers, in the order the rules were written.
//!
//! CORS relaxes only what a *browser* lets a page read: it never grants an
//! S3 permission, so matching is not an authorization decision and a rule
//! that cannot be read grants nothing.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use strongroom_store::BucketRecord;

use crate::Strongroom;
use crate::error::custom;

/// Bucket config holding the rules (JSON list of [`Rule`]).
pub const CONFIG: &str = "cors";

/// Most rules in one configuration (AWS).
const MAX_RULES: usize = 100;
/// Largest configuration document (AWS: 64 KB).
const MAX_DOCUMENT: u64 = 64 * 1024;
const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "HEAD"];

/// What `Vary` says on every response of a bucket with CORS rules, match
/// or miss, so that caches keep one answer per origin.
pub const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// One CORS rule as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i32>,
}

/// `pattern` with at most one `*` (any run of characters) against `s`.
fn wild(pattern: &str, s: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
    match pattern.split_once('*') {
        None => eq(pattern, s),
        Some((pre, post)) => {
            s.len() >= pre.len() + post.len()
                && s.get(..pre.len()).is_some_and(|p| eq(p, pre))
                && s.get(s.len() - post.len()..).is_some_and(|p| eq(p, post))
        }
    }
}

impl Rule {
    /// The AllowedOrigin that matches `origin` (origins compare exactly,
    /// as browsers send them).
    fn origin(&self, origin: &str) -> Option<&str> {
        self.origins.iter().map(String::as_str).find(|o| wild(o, origin, false))
    }

    fn method(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }

    /// Every requested header is allowed (names compare without case).
    fn all_headers(&self, requested: &[&str]) -> bool {
        requested.iter().all(|h| self.headers.iter().any(|a| wild(a, h, true)))
    }

    /// The headers of a matching answer: `*` for a rule allowing every
    /// origin, else the request's origin with credentials allowed (AWS).
    pub fn headers_for(&self, origin: &str, requested_headers: Option<&str>) -> Vec<(&'static str, String)> {
        let any = self.origin(origin) == Some("*");
        let mut out = vec![(
            "access-control-allow-origin",
            if any { "*".to_owned() } else { origin.to_owned() },
        )];
        if !any {
            out.push(("access-control-allow-credentials", "true".to_owned()));
        }
        out.push(("access-control-allow-methods", self.methods.join(", ")));
        if let Some(h) = requested_headers.filter(|h| !h.trim().is_empty()) {
            out.push(("access-control-allow-headers", h.to_owned()));
        }
        if !self.expose.is_empty() {
            out.push(("access-control-expose-headers", self.expose.join(", ")));
        }
        if let Some(age) = self.max_age {
            out.push(("access-control-max-age", age.to_string()));
        }
        out
    }
}

/// The names of an `Access-Control-Request-Headers` value.
pub fn header_names(v: &str) -> Vec<&str> {
    v.split(',').map(str::trim).filter(|h| !h.is_empty()).collect()
}

/// The rule that answers a preflight: origin, method and every requested
/// header allowed.
pub fn preflight<'a>(rules: &'a [Rule], origin: &str, method: &str, requested: &[&str]) -> Option<&'a Rule> {
    rules
        .iter()
        .find(|r| r.origin(origin).is_some() && r.method(method) && r.all_headers(requested))
}

/// The rule that answers an actual request from `origin` with `method`.
pub fn actual<'a>(rules: &'a [Rule], origin: &str, method: &str) -> Option<&'a Rule> {
    rules.iter().find(|r| r.origin(origin).is_some() && r.method(method))
}

/// A bucket's rules: None without a configuration. A stored configuration
/// that does not decode grants nothing (and is logged).
pub fn rules(b: &BucketRecord) -> Option<Vec<Rule>> {
    let v = b.configs.get(CONFIG)?;
    match serde_json::from_str(v) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(bucket = %b.name, error = %e, "unreadable CORS configuration: no rule applies");
            Some(Vec::new())
        }
    }
}

fn invalid(m: String) -> s3s::S3Error {
    custom("InvalidRequest", http::StatusCode::BAD_REQUEST, m)
}

fn one_wildcard(what: &str, v: &str) -> S3Result<()> {
    if v.matches('*').count() > 1 {
        return Err(invalid(format!("{what} \"{v}\" can not have more than one wildcard.")));
    }
    Ok(())
}

/// A configuration as AWS validates it.
fn validate(c: CORSConfiguration) -> S3Result<Vec<Rule>> {
    if c.cors_rules.is_empty() || c.cors_rules.len() > MAX_RULES {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    let mut out = Vec::with_capacity(c.cors_rules.len());
    for r in c.cors_rules {
        if r.allowed_methods.is_empty() || r.allowed_origins.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let methods: Vec<String> = r.allowed_methods.iter().map(|m| m.as_str().to_owned()).collect();
        if let Some(m) = methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(invalid(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
            )));
        }
        for o in &r.allowed_origins {
            one_wildcard("AllowedOrigin", o)?;
        }
        let headers = r.allowed_headers.unwrap_or_default();
        for h in &headers {
            one_wildcard("AllowedHeader", h)?;
        }
        if r.id.as_ref().is_some_and(|id| id.len() > 255) {
            return Err(invalid("The ID of a CORS rule is longer than 255 characters.".into()));
        }
        out.push(Rule {
            id: r.id,
            origins: r.allowed_origins,
            methods,
            headers,
            expose: r.expose_headers.unwrap_or_default(),
            max_age: r.max_age_seconds,
        });
    }
    Ok(out)
}

pub(crate) async fn put_bucket_cors(
    s3: &Strongroom,
    req: S3Request<PutBucketCorsInput>,
) -> S3Result<S3Response<PutBucketCorsOutput>> {
    let b = crate::decided_bucket(&req)?;
    let len = req
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    if len > MAX_DOCUMENT {
        return Err(s3_error!(MaxMessageLengthExceeded, "Your request was too big."));
    }
    let rules = validate(req.input.cors_configuration)?;
    let json = serde_json::to_string(&rules).map_err(|e| s3_error!(InternalError, "{e}"))?;
    crate::bucket::set_config(s3, &b, CONFIG, Some(json)).await?;
    Ok(S3Response::new(PutBucketCorsOutput {}))
}

pub(crate) async fn get_bucket_cors(
    _s3: &Strongroom,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let b = crate::decided_bucket(&req)?;
    let rules = rules(&b).ok_or_else(|| {
        custom(
            "NoSuchCORSConfiguration",
            http::StatusCode::NOT_FOUND,
            "The CORS configuration does not exist",
        )
    })?;
    let cors_rules = rules
        .into_iter()
        .map(|r| CORSRule {
            allowed_headers: (!r.headers.is_empty()).then_some(r.headers),
            allowed_methods: r.methods,
            allowed_origins: r.origins,
            expose_headers: (!r.expose.is_empty()).then_some(r.expose),
            id: r.id,
            max_age_seconds: r.max_age,
        })
        .collect();
    Ok(S3Response::new(GetBucketCorsOutput {
        cors_rules: Some(cors_rules),
    }))
}

pub(crate) async fn delete_bucket_cors(
    s3: &Strongroom,
    req: S3Request<DeleteBucketCorsInput>,
) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    let b = crate::decided_bucket(&req)?;
    crate::bucket::set_config(s3, &b, CONFIG, None).await?;
    let mut resp = S3Response::new(DeleteBucketCorsOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> Rule {
        Rule {
            id: None,
            origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            methods: methods.iter().map(|s| (*s).to_owned()).collect(),
            headers: headers.iter().map(|s| (*s).to_owned()).collect(),
            expose: Vec::new(),
            max_age: None,
        }
    }

    #[test]
    fn origins_match_with_one_wildcard_anywhere() {
        let rules = [
            rule(&["*suffix"], &["GET"], &[]),
            rule(&["start*end"], &["GET"], &[]),
            rule(&["prefix*"], &["GET"], &[]),
            rule(&["https://*.example.com"], &["PUT"], &[]),
        ];
        let hit = |o: &str, m: &str| actual(&rules, o, m).is_some();
        assert!(hit("foo.suffix", "GET") && hit("suffix", "GET"));
        assert!(!hit("foo.suffix.get", "GET") && !hit("foo.bar", "GET"));
        assert!(hit("startend", "GET") && hit("start12end", "GET") && !hit("0start12end", "GET"));
        assert!(hit("prefix", "GET") && hit("prefix.suffix", "GET") && !hit("bla.prefix", "GET"));
        assert!(hit("https://app.example.com", "PUT") && !hit("https://app.example.com", "GET"));
        assert!(!hit("http://app.example.com", "PUT"), "scheme is part of the origin");
        assert!(!hit("https://EXAMPLE.com", "PUT"), "origins compare exactly");
    }

    #[test]
    fn preflights_need_every_requested_header_in_any_case() {
        let rules = [
            rule(&["https://a.test"], &["PUT"], &["x-amz-*", "Content-Type"]),
            rule(&["*"], &["GET"], &[]),
        ];
        let p = |o: &str, m: &str, h: &str| preflight(&rules, o, m, &header_names(h)).is_some();
        assert!(p("https://a.test", "PUT", "X-Amz-Date, content-type"));
        assert!(!p("https://a.test", "PUT", "x-amz-date, authorization"));
        assert!(p("https://b.test", "GET", ""));
        assert!(!p("https://b.test", "GET", "x-custom"), "the * rule allows no header");
        // rules are tried in order: the first match answers
        let r = preflight(&rules, "https://a.test", "GET", &[]);
        assert_eq!(r.map(|r| r.origins[0].as_str()), Some("*"));
    }

    #[test]
    fn answers_are_star_only_for_a_star_origin() {
        let star = rule(&["*"], &["GET"], &[]);
        let h = star.headers_for("https://x.test", None);
        assert!(h.contains(&("access-control-allow-origin", "*".to_owned())));
        assert!(!h.iter().any(|(n, _)| *n == "access-control-allow-credentials"));
        let mut named = rule(&["https://x.test"], &["GET", "PUT"], &["*"]);
        named.expose = vec!["ETag".into(), "x-amz-meta-a".into()];
        named.max_age = Some(600);
        let h = named.headers_for("https://x.test", Some("x-amz-date"));
        for want in [
            ("access-control-allow-origin", "https://x.test"),
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-methods", "GET, PUT"),
            ("access-control-allow-headers", "x-amz-date"),
            ("access-control-expose-headers", "ETag, x-amz-meta-a"),
            ("access-control-max-age", "600"),
        ] {
            assert!(h.contains(&(want.0, want.1.to_owned())), "{want:?} in {h:?}");
        }
    }
}
