//! Static website hosting: a bucket's website configuration
//! (Put/Get/DeleteBucketWebsite with AWS's validation) and how the website
//! endpoint routes a request with it — index documents, redirecting every
//! request, routing rules before and after the read, the error document.
//! The endpoint itself (listener, anonymous reads, HTML pages) is the
//! server's; every read it makes goes through the S3 request path.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};
use strongroom_store::BucketRecord;

use crate::Strongroom;
use crate::error::custom;

/// Bucket config holding the [`Site`] (JSON).
pub const CONFIG: &str = "website";

/// Most routing rules (AWS).
const MAX_RULES: usize = 50;

/// A bucket's website configuration as stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Site {
    /// IndexDocument Suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// ErrorDocument Key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// RedirectAllRequestsTo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_all: Option<Target>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Routing>,
}

/// RedirectAllRequestsTo: a host and, optionally, a protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// One routing rule: its condition and its redirect.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

/// Where a redirect goes and with which status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirection {
    pub status: u16,
    pub location: String,
}

/// The key a website request names: `/` and any key ending in `/` get the
/// index document's suffix.
pub fn key_for(path_key: &str, site: &Site) -> String {
    match &site.index {
        Some(suffix) if path_key.is_empty() || path_key.ends_with('/') => format!("{path_key}{suffix}"),
        _ => path_key.to_owned(),
    }
}

impl Site {
    /// RedirectAllRequestsTo for a request of `path_key`.
    pub fn redirect_all(&self, path_key: &str, scheme: &str) -> Option<Redirection> {
        let t = self.redirect_all.as_ref()?;
        let proto = t.protocol.as_deref().unwrap_or(scheme);
        Some(Redirection {
            status: 301,
            location: format!("{proto}://{}/{path_key}", t.host),
        })
    }

    /// The first routing rule whose condition holds for `key` before it is
    /// read (`status` None) or after the read answered `status`.
    pub fn rule(&self, key: &str, status: Option<u16>) -> Option<&Routing> {
        self.rules.iter().find(|r| {
            r.key_prefix.as_deref().is_none_or(|p| key.starts_with(p))
                && match (r.error_code, status) {
                    (None, None) => true,
                    (Some(want), Some(got)) => want == got,
                    _ => false,
                }
        })
    }
}

impl Routing {
    /// The redirect for `key` of a request that came to `host` over
    /// `scheme`: the rule's protocol and host, else the request's; the key
    /// with the matched prefix replaced, or replaced whole; 301 by default.
    pub fn redirect(&self, key: &str, host: &str, scheme: &str) -> Redirection {
        let new_key = match (&self.replace_key, &self.replace_prefix) {
            (Some(k), _) => k.clone(),
            (None, Some(p)) => {
                let rest = key
                    .strip_prefix(self.key_prefix.as_deref().unwrap_or(""))
                    .unwrap_or(key);
                format!("{p}{rest}")
            }
            (None, None) => key.to_owned(),
        };
        Redirection {
            status: self.code.unwrap_or(301),
            location: format!(
                "{}://{}/{new_key}",
                self.protocol.as_deref().unwrap_or(scheme),
                self.host.as_deref().unwrap_or(host)
            ),
        }
    }
}

/// A bucket's website configuration: None without one; an error for a
/// stored configuration that does not decode (the endpoint refuses).
pub fn site(b: &BucketRecord) -> Result<Option<Site>, String> {
    b.configs
        .get(CONFIG)
        .map(|v| serde_json::from_str(v).map_err(|e| format!("website configuration of {}: {e}", b.name)))
        .transpose()
}

fn invalid(m: impl Into<String>) -> s3s::S3Error {
    custom("InvalidArgument", http::StatusCode::BAD_REQUEST, m.into())
}

fn protocol(p: Option<&Protocol>) -> S3Result<Option<String>> {
    match p.map(Protocol::as_str) {
        None => Ok(None),
        Some(p @ ("http" | "https")) => Ok(Some(p.to_owned())),
        Some(_) => Err(invalid(
            "Invalid protocol, protocol can be http or https. If not defined the protocol will be selected automatically.",
        )),
    }
}

fn routing(r: RoutingRule) -> S3Result<Routing> {
    let c = r.condition.unwrap_or_default();
    let error_code = match c.http_error_code_returned_equals {
        None => None,
        Some(v) => match v.parse::<u16>() {
            Ok(n @ 400..=599) => Some(n),
            _ => {
                return Err(invalid(format!(
                    "The provided HTTP error code ({v}) is not valid. Valid codes are 4XX or 5XX."
                )));
            }
        },
    };
    let d = r.redirect;
    let code = match d.http_redirect_code {
        None => None,
        Some(v) => match v.parse::<u16>() {
            Ok(n @ 301..=399) => Some(n),
            _ => {
                return Err(invalid(format!(
                    "The provided HTTP redirect code ({v}) is not valid. Valid codes are 3XX except 300."
                )));
            }
        },
    };
    if d.replace_key_with.is_some() && d.replace_key_prefix_with.is_some() {
        return Err(invalid(
            "You can only define ReplaceKeyPrefix or ReplaceKey but not both.",
        ));
    }
    let out = Routing {
        key_prefix: c.key_prefix_equals,
        error_code,
        protocol: protocol(d.protocol.as_ref())?,
        host: d.host_name.filter(|h| !h.is_empty()),
        replace_prefix: d.replace_key_prefix_with,
        replace_key: d.replace_key_with,
        code,
    };
    if out.protocol.is_none()
        && out.host.is_none()
        && out.replace_prefix.is_none()
        && out.replace_key.is_none()
        && out.code.is_none()
    {
        return Err(invalid(
            "Condition/Redirect: a Redirect must specify at least one of HostName, HttpRedirectCode, Protocol, ReplaceKeyPrefixWith or ReplaceKeyWith.",
        ));
    }
    Ok(out)
}

/// A configuration as AWS validates it.
fn validate(c: WebsiteConfiguration) -> S3Result<Site> {
    if let Some(t) = c.redirect_all_requests_to {
        if c.index_document.is_some() || c.error_document.is_some() || c.routing_rules.is_some() {
            return Err(invalid(
                "RedirectAllRequestsTo cannot be provided in conjunction with other Routing Rules.",
            ));
        }
        if t.host_name.is_empty() {
            return Err(invalid("The HostName of RedirectAllRequestsTo must not be empty."));
        }
        return Ok(Site {
            redirect_all: Some(Target {
                host: t.host_name,
                protocol: protocol(t.protocol.as_ref())?,
            }),
            ..Site::default()
        });
    }
    let Some(index) = c.index_document else {
        return Err(invalid(
            "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty",
        ));
    };
    if index.suffix.is_empty() || index.suffix.contains('/') {
        return Err(invalid("The IndexDocument Suffix is not well formed"));
    }
    let rules = c.routing_rules.unwrap_or_default();
    if rules.len() > MAX_RULES {
        return Err(invalid(format!(
            "A website configuration holds at most {MAX_RULES} routing rules."
        )));
    }
    Ok(Site {
        index: Some(index.suffix),
        error: c.error_document.map(|e| e.key).filter(|k| !k.is_empty()),
        redirect_all: None,
        rules: rules.into_iter().map(routing).collect::<S3Result<_>>()?,
    })
}

pub(crate) async fn put_bucket_website(
    s3: &Strongroom,
    req: S3Request<PutBucketWebsiteInput>,
) -> S3Result<S3Response<PutBucketWebsiteOutput>> {
    let b = crate::decided_bucket(&req)?;
    let site = validate(req.input.website_configuration)?;
    let json = serde_json::to_string(&site).map_err(|e| s3s::s3_error!(InternalError, "{e}"))?;
    crate::bucket::set_config(s3, &b, CONFIG, Some(json)).await?;
    Ok(S3Response::new(PutBucketWebsiteOutput {}))
}

pub(crate) fn no_configuration() -> s3s::S3Error {
    custom(
        "NoSuchWebsiteConfiguration",
        http::StatusCode::NOT_FOUND,
        "The specified bucket does not have a website configuration",
    )
}

pub(crate) async fn get_bucket_website(
    _s3: &Strongroom,
    req: S3Request<GetBucketWebsiteInput>,
) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
    let b = crate::decided_bucket(&req)?;
    let s = site(&b)
        .map_err(|e| crate::error::internal(&e))?
        .ok_or_else(no_configuration)?;
    let rules: Vec<RoutingRule> = s
        .rules
        .into_iter()
        .map(|r| RoutingRule {
            condition: (r.key_prefix.is_some() || r.error_code.is_some()).then(|| Condition {
                http_error_code_returned_equals: r.error_code.map(|c| c.to_string()),
                key_prefix_equals: r.key_prefix,
            }),
            redirect: Redirect {
                host_name: r.host,
                http_redirect_code: r.code.map(|c| c.to_string()),
                protocol: r.protocol.map(Protocol::from),
                replace_key_prefix_with: r.replace_prefix,
                replace_key_with: r.replace_key,
            },
        })
        .collect();
    Ok(S3Response::new(GetBucketWebsiteOutput {
        error_document: s.error.map(|key| ErrorDocument { key }),
        index_document: s.index.map(|suffix| IndexDocument { suffix }),
        redirect_all_requests_to: s.redirect_all.map(|t| RedirectAllRequestsTo {
            host_name: t.host,
            protocol: t.protocol.map(Protocol::from),
        }),
        routing_rules: (!rules.is_empty()).then_some(rules),
    }))
}

pub(crate) async fn delete_bucket_website(
    s3: &Strongroom,
    req: S3Request<DeleteBucketWebsiteInput>,
) -> S3Result<S3Response<DeleteBucketWebsiteOutput>> {
    let b = crate::decided_bucket(&req)?;
    crate::bucket::set_config(s3, &b, CONFIG, None).await?;
    let mut resp = S3Response::new(DeleteBucketWebsiteOutput {});
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            index: Some("index.html".into()),
            error: Some("error.html".into()),
            redirect_all: None,
            rules: vec![
                Routing {
                    key_prefix: Some("docs/".into()),
                    replace_prefix: Some("documents/".into()),
                    ..Routing::default()
                },
                Routing {
                    error_code: Some(404),
                    host: Some("fallback.example".into()),
                    replace_key: Some("404.html".into()),
                    code: Some(302),
                    ..Routing::default()
                },
                Routing {
                    key_prefix: Some("old/".into()),
                    protocol: Some("https".into()),
                    ..Routing::default()
                },
            ],
        }
    }

    #[test]
    fn index_documents_complete_directory_keys() {
        let s = site();
        assert_eq!(key_for("", &s), "index.html");
        assert_eq!(key_for("a/b/", &s), "a/b/index.html");
        assert_eq!(key_for("a/b", &s), "a/b");
    }

    #[test]
    fn routing_rules_redirect_before_and_after_the_read() {
        let s = site();
        let r = s
            .rule("docs/guide.html", None)
            .map(|r| r.redirect("docs/guide.html", "site.test", "http"));
        assert_eq!(
            r,
            Some(Redirection {
                status: 301,
                location: "http://site.test/documents/guide.html".into()
            })
        );
        assert_eq!(s.rule("other.html", None), None);
        let r = s
            .rule("missing.html", Some(404))
            .map(|r| r.redirect("missing.html", "site.test", "http"));
        assert_eq!(
            r,
            Some(Redirection {
                status: 302,
                location: "http://fallback.example/404.html".into()
            })
        );
        assert_eq!(s.rule("missing.html", Some(403)), None);
        let r = s
            .rule("old/x", None)
            .map(|r| r.redirect("old/x", "site.test:9080", "http"));
        assert_eq!(r.map(|r| r.location), Some("https://site.test:9080/old/x".into()));
    }

    #[test]
    fn redirect_all_keeps_the_path() {
        let s = Site {
            redirect_all: Some(Target {
                host: "www.example.com".into(),
                protocol: Some("https".into()),
            }),
            ..Site::default()
        };
        assert_eq!(
            s.redirect_all("a/b.html", "http").map(|r| (r.status, r.location)),
            Some((301, "https://www.example.com/a/b.html".into()))
        );
    }
}
