//! STS actions: GetCallerIdentity, GetSessionToken (optionally
//! MFA-authenticated), AssumeRole (trust policy and the caller's identity
//! policies decide, as AWS).

use strongroom_iam::directory::SessionOf;
use strongroom_iam::{CallerKind, IamError, NewCredentials, SessionLimits};

use super::{Call, esc, iso, now};

pub(crate) const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

fn credentials_xml(k: &NewCredentials) -> String {
    format!(
        "<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>",
        k.access_key,
        esc(&k.secret),
        esc(k.token.as_deref().map_or("", |t| t.as_str())),
        iso(k.expires.unwrap_or_default())
    )
}

fn mfa_denied() -> IamError {
    IamError::new(
        403,
        "AccessDenied",
        "MultiFactorAuthentication failed with invalid MFA one time pass code.",
    )
}

/// Checks `SerialNumber` + `TokenCode` against the caller's device; the
/// Unix time of the check when both are given.
async fn mfa(c: &Call<'_>) -> Result<Option<i64>, IamError> {
    let (Some(serial), Some(code)) = (c.params.get("SerialNumber"), c.params.get("TokenCode")) else {
        return Ok(None);
    };
    let acct = c.who.account_id();
    let t = u64::try_from(now()).unwrap_or_default();
    match c.who.kind() {
        CallerKind::Root => {
            let header = format!("{serial} {code}");
            c.ids
                .check_mfa(acct, Some(&header), t, strongroom_iam::MfaCaller::Owner)
                .await
                .map_err(|_| mfa_denied())?;
        }
        CallerKind::User { name, .. } => {
            let assigned = c.ids.iam_view(acct, |a| a.users.get(name).and_then(|u| u.mfa.clone()));
            if assigned.as_deref() != Some(serial) {
                return Err(mfa_denied());
            }
            c.ids
                .check_device_mfa(serial, code, t)
                .await
                .map_err(|_| mfa_denied())?;
        }
        _ => return Err(mfa_denied()),
    }
    Ok(Some(now()))
}

fn duration(c: &Call<'_>, default: u64, max: u64) -> Result<u64, IamError> {
    let d = c.params.num("DurationSeconds")?.unwrap_or(default);
    if !(900..=max).contains(&d) {
        return Err(IamError::validation(format!(
            "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and {max}"
        )));
    }
    Ok(d)
}

/// The largest session policy (plain text plus managed-policy ARNs) AWS
/// packs into a session token.
const MAX_SESSION_POLICY: usize = 2048;

/// AssumeRole's session policies: an inline `Policy` (an identity policy)
/// and up to ten `PolicyArns.member.N.arn`.
fn session_limits(c: &Call<'_>) -> Result<SessionLimits, IamError> {
    let policy = match c.params.get("Policy") {
        Some(text) => {
            if text.len() > MAX_SESSION_POLICY {
                return Err(IamError::new(
                    400,
                    "PackedPolicyTooLarge",
                    "Packed size of the session policy exceeds the limit.",
                ));
            }
            Some(
                strongroom_iam::directory::Doc::new(text, strongroom_iam::policy::Kind::Identity)
                    .map_err(|e| IamError::new(400, "MalformedPolicyDocument", e.0))?,
            )
        }
        None => None,
    };
    // every PolicyArns parameter must be a member 1..=N of the list: one
    // the list would skip is refused, not ignored (it could only narrow)
    let given = c.params.names().filter(|k| k.starts_with("PolicyArns.")).count();
    let mut policy_arns = Vec::new();
    while let Some(arn) = c
        .params
        .get(&format!("PolicyArns.member.{}.arn", policy_arns.len() + 1))
    {
        policy_arns.push(arn.to_owned());
    }
    if given != policy_arns.len() {
        return Err(IamError::validation(
            "PolicyArns members must be PolicyArns.member.N.arn, numbered from 1",
        ));
    }
    if policy_arns.len() > 10 {
        return Err(IamError::validation(
            "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10",
        ));
    }
    Ok(SessionLimits { policy, policy_arns })
}

/// (account, path, name) of `arn:aws:iam::<account>:role<path><name>`.
fn parse_role_arn(arn: &str) -> Result<(String, String, String), IamError> {
    let bad = || IamError::validation(format!("{arn} is not a role ARN"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", "aws", "iam", "", acct, resource] = parts.as_slice() else {
        return Err(bad());
    };
    let full = resource.strip_prefix("role/").ok_or_else(bad)?;
    let (path, name) = match full.rsplit_once('/') {
        Some((p, n)) => (format!("/{p}/"), n),
        None => ("/".to_owned(), full),
    };
    if name.is_empty() || acct.len() != 12 || !acct.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(((*acct).to_owned(), path, name.to_owned()))
}

pub(crate) async fn dispatch(c: &Call<'_>, action: &str) -> Result<String, IamError> {
    let acct = c.who.account_id().to_owned();
    match action {
        "GetCallerIdentity" => Ok(format!(
            "<Arn>{}</Arn><UserId>{}</UserId><Account>{acct}</Account>",
            esc(&c.who.identity_arn()),
            esc(&c.who.userid())
        )),
        "GetSessionToken" => {
            if c.who.is_temporary() {
                return Err(IamError::new(
                    403,
                    "AccessDenied",
                    "Cannot call GetSessionToken with session credentials",
                ));
            }
            let (of, default, max) = match c.who.kind() {
                CallerKind::Root => (SessionOf::User(None), 3600, 3600),
                CallerKind::User { name, .. } => (SessionOf::User(Some(name.clone())), 43_200, 129_600),
                _ => return Err(IamError::new(403, "AccessDenied", "Not allowed for this caller")),
            };
            let secs = duration(c, default, max)?;
            let mfa_at = mfa(c).await?;
            let k = c
                .ids
                .new_session(&acct, of, secs, mfa_at, SessionLimits::default())
                .await?;
            Ok(credentials_xml(&k))
        }
        "AssumeRole" => {
            let role_arn = c.params.need("RoleArn")?.to_owned();
            let session = c.params.need("RoleSessionName")?.to_owned();
            if session.len() < 2
                || session.len() > 64
                || !session
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
            {
                return Err(IamError::validation("RoleSessionName must be 2 to 64 of [\\w+=,.@-]"));
            }
            let (role_acct, role_path, role_name) = parse_role_arn(&role_arn)?;
            let role = c.ids.iam_view(&role_acct, |a| a.roles.get(&role_name).cloned());
            let denied = || {
                IamError::new(
                    403,
                    "AccessDenied",
                    format!(
                        "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                        c.who.identity_arn()
                    ),
                )
            };
            // the decision is taken on the stored role's own ARN: a RoleArn
            // whose path is not the role's names another role (AWS)
            let Some(role) = role.filter(|r| r.path == role_path) else {
                return Err(denied());
            };
            if c.who.is_anonymous() {
                return Err(denied());
            }
            if c.who.is_root() {
                c.checked.store(true, std::sync::atomic::Ordering::Release);
                return Err(IamError::new(
                    403,
                    "AccessDenied",
                    "Roles may not be assumed by root accounts.",
                ));
            }
            let mfa_at = mfa(c).await?.or(c.who.mfa_at());
            let mut ctx = strongroom_iam::context::global_context(&c.who, Some(c.conn), c.headers, now());
            ctx.set(
                "aws:MultiFactorAuthPresent",
                if mfa_at.is_some() { "true" } else { "false" },
            );
            if let Some(at) = mfa_at {
                ctx.set("aws:MultiFactorAuthAge", (now() - at).max(0).to_string());
            }
            let identity = strongroom_iam::authz::identity_policies(c.ids, &c.who).map_err(|_| denied())?;
            let side = strongroom_iam::authz::ResourceSide {
                owner: Some(&role_acct),
                policy: role.trust.parsed.as_deref(),
                restrict_public: false,
                self_access_removed: false,
            };
            c.checked.store(true, std::sync::atomic::Ordering::Release);
            let d = strongroom_iam::authz::decide(&c.who, &identity, "sts:AssumeRole", &role_arn, &side, &ctx);
            // the trust policy must name the caller (or its account) itself
            let trusted = role.trust.parsed.as_deref().is_some_and(|t| {
                let s = strongroom_iam::authz::subject_of(&c.who);
                matches!(
                    t.evaluate(&s.as_subject(), "sts:AssumeRole", &role_arn, &ctx),
                    strongroom_iam::policy::Outcome::Allow(_)
                )
            });
            if !d.allowed() || !trusted {
                return Err(denied());
            }
            // a role session assuming a role (role chaining) gets at most
            // one hour, whatever the role allows (AWS)
            let chained = matches!(c.who.kind(), CallerKind::Role { .. });
            if chained && c.params.num("DurationSeconds")?.is_some_and(|d| d > 3600) {
                return Err(IamError::validation(
                    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
                ));
            }
            let secs = duration(c, 3600, role.max_session)?;
            let limits = session_limits(c)?;
            let k = c
                .ids
                .new_session(
                    &role_acct,
                    SessionOf::Role {
                        role: role.name.clone(),
                        session: session.clone(),
                    },
                    secs,
                    mfa_at,
                    limits,
                )
                .await?;
            Ok(format!(
                "{}<AssumedRoleUser><AssumedRoleId>{}:{}</AssumedRoleId><Arn>arn:aws:sts::{role_acct}:assumed-role/{}/{}</Arn></AssumedRoleUser>",
                credentials_xml(&k),
                role.id,
                esc(&session),
                esc(&role.name),
                esc(&session)
            ))
        }
        _ => Err(IamError::new(
            400,
            "InvalidAction",
            format!("Could not find operation {action} for version 2011-06-15"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_role_arn;

    #[test]
    fn role_arns_carry_their_path() {
        let p = |a: &str| parse_role_arn(a).ok();
        let t = |a: &str, p: &str, n: &str| Some((a.to_owned(), p.to_owned(), n.to_owned()));
        assert_eq!(
            p("arn:aws:iam::111111111111:role/admin"),
            t("111111111111", "/", "admin")
        );
        assert_eq!(
            p("arn:aws:iam::111111111111:role/dev/admin"),
            t("111111111111", "/dev/", "admin")
        );
        assert_eq!(
            p("arn:aws:iam::111111111111:role/x/y/admin"),
            t("111111111111", "/x/y/", "admin")
        );
        for bad in [
            "arn:aws:iam::111111111111:user/admin",
            "arn:aws:iam::111111111111:roleX/admin",
            "arn:aws:iam::111111111111:role/",
            "arn:aws:iam::1111:role/admin",
            "arn:aws:sts::111111111111:role/admin",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
