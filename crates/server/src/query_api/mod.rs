//! The AWS Query APIs on the S3 listeners: IAM (`Action=CreateUser...`,
//! SigV4 service `iam`) and STS (service `sts`), form-encoded POSTs
//! answered in XML, verified by our SigV4 verifier. IAM actions are
//! authorized like any other: the account root may do everything in its
//! account, users need identity policies allowing `iam:<Action>`.

mod iam;
mod iam_groups_roles;
mod sts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderValue, Response, StatusCode};
use strongroom_iam::{ConnInfo, IamError, Identities, Principal, SignedRequest};

/// Largest Query API body (policy documents are at most a few KiB).
const MAX_BODY: usize = 128 * 1024;

/// The signing service of a Query API request, if it is one.
pub(crate) fn service_of(parts: &http::request::Parts) -> Option<&'static str> {
    if parts.method != http::Method::POST || parts.uri.path() != "/" {
        return None;
    }
    let form = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return None;
    }
    let auth = parts.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    match scope.split('/').nth(3)? {
        "iam" => Some("iam"),
        "sts" => Some("sts"),
        _ => None,
    }
}

/// XML text escaping.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// ISO 8601 of Unix seconds, as IAM prints dates.
pub(crate) fn iso(secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

fn xml_response(status: u16, body: String) -> Response<s3s::Body> {
    let mut r = Response::new(s3s::Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    r
}

/// `<{Action}Response>` with its result and the request id.
pub(crate) fn ok(ns: &str, action: &str, result: &str, rid: &str) -> Response<s3s::Body> {
    let result = format!("<{action}Result>{result}</{action}Result>");
    xml_response(
        200,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{ns}\">{result}<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
}

pub(crate) fn error(ns: &str, e: &IamError, rid: &str) -> Response<s3s::Body> {
    let kind = if e.status >= 500 { "Receiver" } else { "Sender" };
    xml_response(
        e.status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{ns}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>",
            e.code,
            esc(&e.message)
        ),
    )
}

/// A list result, sorted by name without regard to case, paginated with
/// `MaxItems` and `Marker` (the last name of the previous page).
pub(crate) fn members(p: &Params, tag: &str, items: impl IntoIterator<Item = (String, String)>) -> String {
    let mut v: Vec<(String, String)> = items.into_iter().map(|(k, x)| (k.to_lowercase(), x)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(m) = p.get("Marker") {
        v.retain(|(k, _)| k.as_str() > m);
    }
    let max = p
        .get("MaxItems")
        .and_then(|m| m.parse::<usize>().ok())
        .filter(|m| *m > 0)
        .unwrap_or(100);
    let truncated = v.len() > max;
    v.truncate(max);
    let marker = match (truncated, v.last()) {
        (true, Some((k, _))) => format!("<Marker>{}</Marker>", esc(k)),
        _ => String::new(),
    };
    let inner: String = v.iter().map(|(_, x)| format!("<member>{x}</member>")).collect();
    format!("<{tag}>{inner}</{tag}><IsTruncated>{truncated}</IsTruncated>{marker}")
}

/// Form parameters.
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// One reading of the form body (`application/x-www-form-urlencoded`,
    /// decoded by `form_urlencoded`): a name given twice is refused, not
    /// resolved by whichever copy comes last.
    fn parse(body: &[u8]) -> Result<Params, IamError> {
        let mut out = HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if out.insert(k.clone().into_owned(), v.into_owned()).is_some() {
                return Err(IamError::validation(format!(
                    "The parameter {k} is given more than once."
                )));
            }
        }
        Ok(Params(out))
    }
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
    pub(crate) fn need(&self, k: &str) -> Result<&str, IamError> {
        self.get(k).filter(|v| !v.is_empty()).ok_or_else(|| {
            IamError::validation(format!(
                "1 validation error detected: Value null at '{k}' failed to satisfy constraint: Member must not be null"
            ))
        })
    }
    /// `Name.member.N` values in order.
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}.member.");
        let mut v: Vec<(u32, String)> = self
            .0
            .iter()
            .filter_map(|(k, val)| Some((k.strip_prefix(&prefix)?.parse().ok()?, val.clone())))
            .collect();
        v.sort();
        v.into_iter().map(|(_, x)| x).collect()
    }
    /// Replaces a name parameter by the stored spelling (IAM names are
    /// case-insensitive).
    fn canonicalize(&mut self, key: &str, stored: impl Fn(&str) -> Option<String>) {
        if let Some(v) = self.0.get(key).cloned()
            && let Some(s) = stored(&v)
        {
            self.0.insert(key.to_owned(), s);
        }
    }
    pub(crate) fn num(&self, k: &str) -> Result<Option<u64>, IamError> {
        self.get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| IamError::validation(format!("{k} must be a number")))
            })
            .transpose()
    }
}

/// What a Query API handler gets.
pub(crate) struct Call<'a> {
    pub ids: &'a Identities,
    pub who: Principal,
    pub params: Params,
    pub conn: &'a ConnInfo,
    pub headers: &'a http::HeaderMap,
    /// Set by every authorization check ([`allowed`], AssumeRole's trust
    /// decision): an action that answers without one is refused.
    pub checked: AtomicBool,
}

/// STS actions AWS answers without a permission check.
const NEEDS_NO_PERMISSION: &[&str] = &["sts:GetCallerIdentity", "sts:GetSessionToken"];

/// Serves one Query API request; returns the response and the operation.
pub(crate) async fn handle(
    service: &'static str,
    ids: &Identities,
    parts: http::request::Parts,
    body: crate::timed::TimedBody,
    info: &ConnInfo,
    rid: &str,
) -> (Response<s3s::Body>, String) {
    let ns = if service == "iam" { iam::NS } else { sts::NS };
    let bytes = match crate::timed::collect(body, MAX_BODY).await {
        Ok(b) => b,
        Err(crate::timed::CollectError::TimedOut) => {
            let e = IamError::new(400, "RequestTimeout", crate::timed::TIMEOUT_MESSAGE);
            return (error(ns, &e, rid), format!("{service}:Unknown"));
        }
        Err(_) => {
            let e = IamError::new(413, "RequestEntityTooLarge", "The request body is too large.");
            return (error(ns, &e, rid), format!("{service}:Unknown"));
        }
    };
    let mut params = match Params::parse(&bytes) {
        Ok(p) => p,
        Err(e) => return (error(ns, &e, rid), format!("{service}:Unknown")),
    };
    let action = params.get("Action").unwrap_or("Unknown").to_owned();
    let op = format!("{service}:{action}");
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: "/",
        query: Vec::new(),
        headers: &parts.headers,
        body: &bytes,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let who = match ids.verify_sigv4(&signed, service, now) {
        Ok((p, _)) => p,
        Err(e) => {
            let (code, msg) = e.code_and_message();
            let code = match code {
                "UnrecognizedClientException" => "InvalidClientTokenId",
                "InvalidSignatureException" => "SignatureDoesNotMatch",
                "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
                _ => "IncompleteSignature",
            };
            let e = IamError::new(403, code, msg);
            return (error(ns, &e, rid), op);
        }
    };
    if service == "iam" {
        let acct = who.account_id().to_owned();
        let find = |names: Vec<String>, v: &str| names.into_iter().find(|n| n.eq_ignore_ascii_case(v));
        let users = ids.iam_view(&acct, |a| a.users.keys().cloned().collect::<Vec<_>>());
        let groups = ids.iam_view(&acct, |a| a.groups.keys().cloned().collect::<Vec<_>>());
        let roles = ids.iam_view(&acct, |a| a.roles.keys().cloned().collect::<Vec<_>>());
        params.canonicalize("UserName", |v| find(users.clone(), v));
        params.canonicalize("GroupName", |v| find(groups.clone(), v));
        params.canonicalize("RoleName", |v| find(roles.clone(), v));
    }
    let call = Call {
        ids,
        who,
        params,
        conn: info,
        headers: &parts.headers,
        checked: AtomicBool::new(false),
    };
    let out = if service == "iam" {
        iam::dispatch(&call, &action).await
    } else {
        sts::dispatch(&call, &action).await
    };
    // fail closed by construction: an answer no authorization check
    // preceded is a defect, refused rather than served
    let out = match out {
        Ok(_) if !call.checked.load(Ordering::Acquire) && !NEEDS_NO_PERMISSION.contains(&op.as_str()) => {
            tracing::error!(operation = %op, "answered without an authorization check: refused");
            Err(IamError::new(
                403,
                "AccessDenied",
                format!("User: {} is not authorized to perform: {op}", call.who.identity_arn()),
            ))
        }
        o => o,
    };
    match out {
        Ok(result) => (ok(ns, &action, &result, rid), op),
        Err(e) => (error(ns, &e, rid), op),
    }
}

/// IAM's own condition keys this server sets, with the actions they apply
/// to: (key, where).
pub(crate) const IAM_CONDITION_KEYS: &[(&str, &str)] = &[(
    "iam:PolicyARN",
    "Attach/Detach{User,Group,Role}Policy: the managed policy's ARN",
)];

/// The identity-policy decision for an IAM/STS action on a resource of
/// the caller's account.
pub(crate) fn allowed(call: &Call<'_>, action: &str, resource: &str) -> Result<(), IamError> {
    allowed_with(call, action, resource, &[])
}

/// [`allowed`] with the action's condition keys of [`IAM_CONDITION_KEYS`].
pub(crate) fn allowed_with(
    call: &Call<'_>,
    action: &str,
    resource: &str,
    keys: &[(&str, &str)],
) -> Result<(), IamError> {
    call.checked.store(true, Ordering::Release);
    let denied = || {
        IamError::new(
            403,
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: {action} on resource: {resource}",
                call.who.identity_arn()
            ),
        )
    };
    let identity = strongroom_iam::authz::identity_policies(call.ids, &call.who).map_err(|e| {
        tracing::error!(error = %e, "identity policies unusable: denied");
        denied()
    })?;
    let mut ctx = strongroom_iam::context::global_context(&call.who, Some(call.conn), call.headers, now());
    for (k, v) in keys {
        // a key missing from the table is a defect: refused, not guessed
        if !IAM_CONDITION_KEYS.iter().any(|(t, _)| t == k) {
            tracing::error!(key = k, "condition key not in IAM_CONDITION_KEYS: denied");
            return Err(denied());
        }
        ctx.set(k, *v);
    }
    let d = strongroom_iam::authz::decide(
        &call.who,
        &identity,
        action,
        resource,
        &strongroom_iam::authz::ResourceSide::default(),
        &ctx,
    );
    if d.allowed() { Ok(()) } else { Err(denied()) }
}

/// The resource ARN of the IAM user, group or role an action names
/// (`kind` = "user" | "group" | "role"): the stored entity's own ARN, its
/// path included, so a policy on `user/protected/*` reaches
/// `/protected/mallory` whatever the request says; for an entity that does
/// not exist (yet), the path a creation asks for, or `/`.
pub(crate) fn entity_arn(c: &Call<'_>, kind: &str, name: &str, new_path: Option<&str>) -> String {
    let acct = c.who.account_id();
    let path = c
        .ids
        .iam_view(acct, |a| a.path_of(kind, name).map(str::to_owned))
        .unwrap_or_else(|| new_path.unwrap_or("/").to_owned());
    format!("arn:aws:iam::{acct}:{kind}{path}{name}")
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
