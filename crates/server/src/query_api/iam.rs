//! IAM actions.

use strongroom_iam::IamError;
use strongroom_iam::directory::{KeyStatus, User};

use super::{Call, allowed, allowed_with, entity_arn, esc, iso, members};

pub(crate) const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

pub(crate) fn user_xml(acct: &str, u: &User) -> String {
    format!(
        "<Path>{}</Path><UserName>{}</UserName><UserId>{}</UserId><Arn>arn:aws:iam::{acct}:user{}{}</Arn><CreateDate>{}</CreateDate>",
        esc(&u.path),
        esc(&u.name),
        u.id,
        esc(&u.path),
        esc(&u.name),
        iso(u.created)
    )
}

/// The user a request names, or the caller itself (IAM users may omit it).
fn target_user(c: &Call<'_>) -> Result<String, IamError> {
    match c.params.get("UserName") {
        Some(u) if !u.is_empty() => Ok(u.to_owned()),
        _ => match c.who.kind() {
            strongroom_iam::CallerKind::User { name, .. } => Ok(name.clone()),
            // the root's own access keys
            strongroom_iam::CallerKind::Root => Ok(String::new()),
            _ => Err(IamError::validation("UserName is required for this caller")),
        },
    }
}

pub(crate) async fn dispatch(c: &Call<'_>, action: &str) -> Result<String, IamError> {
    let acct = c.who.account_id().to_owned();
    if c.who.is_anonymous() {
        return Err(IamError::new(403, "AccessDenied", "Anonymous callers cannot use IAM"));
    }
    // AWS: credentials from GetSessionToken reach IAM only when the
    // session was MFA-authenticated
    if c.who.is_temporary()
        && !matches!(c.who.kind(), strongroom_iam::CallerKind::Role { .. })
        && c.who.mfa_at().is_none()
    {
        return Err(IamError::new(
            403,
            "AccessDenied",
            "Session credentials from GetSessionToken without MFA cannot call the IAM API",
        ));
    }
    let user_arn = |n: &str| entity_arn(c, "user", n, None);
    // the access keys of `n`: "" is the account root, whose credentials
    // are its alone (AWS): no policy lets anyone else list, create,
    // change or delete them
    let keys_of = |n: &str| {
        if !n.is_empty() {
            return Ok(user_arn(n));
        }
        if !c.who.is_root() {
            return Err(IamError::new(
                403,
                "AccessDenied",
                format!(
                    "User: {} is not authorized to manage the access keys of the account root",
                    c.who.identity_arn()
                ),
            ));
        }
        Ok(format!("arn:aws:iam::{acct}:root"))
    };
    let ids = c.ids;
    let p = &c.params;
    match action {
        "CreateUser" => {
            let name = p.need("UserName")?;
            allowed(c, "iam:CreateUser", &entity_arn(c, "user", name, p.get("Path")))?;
            let u = ids.create_user(&acct, name, p.get("Path")).await?;
            Ok(format!("<User>{}</User>", user_xml(&acct, &u)))
        }
        "GetUser" if c.who.is_root() && p.get("UserName").is_none_or(str::is_empty) => {
            allowed(c, "iam:GetUser", &format!("arn:aws:iam::{acct}:root"))?;
            Ok(format!(
                "<User><UserId>{acct}</UserId><Arn>arn:aws:iam::{acct}:root</Arn><CreateDate>{}</CreateDate></User>",
                iso(0)
            ))
        }
        "GetUser" => {
            let name = target_user(c)?;
            allowed(c, "iam:GetUser", &user_arn(&name))?;
            let u = ids.get_user(&acct, &name)?;
            Ok(format!("<User>{}</User>", user_xml(&acct, &u)))
        }
        "ListUsers" => {
            allowed(c, "iam:ListUsers", &format!("arn:aws:iam::{acct}:user/"))?;
            let prefix = p.get("PathPrefix").unwrap_or("/");
            let users = ids.iam_view(&acct, |a| {
                a.users
                    .values()
                    .filter(|u| u.path.starts_with(prefix))
                    .cloned()
                    .collect::<Vec<_>>()
            });
            Ok(members(
                p,
                "Users",
                users.iter().map(|u| (u.name.clone(), user_xml(&acct, u))),
            ))
        }
        "UpdateUser" => {
            let name = p.need("UserName")?;
            allowed(c, "iam:UpdateUser", &user_arn(name))?;
            ids.update_user(&acct, name, p.get("NewUserName"), p.get("NewPath"))
                .await?;
            Ok(String::new())
        }
        "DeleteUser" => {
            let name = p.need("UserName")?;
            allowed(c, "iam:DeleteUser", &user_arn(name))?;
            ids.delete_user(&acct, name).await?;
            Ok(String::new())
        }
        "CreateAccessKey" => {
            let name = target_user(c)?;
            allowed(c, "iam:CreateAccessKey", &keys_of(&name)?)?;
            let k = ids.create_access_key(&acct, &name).await?;
            Ok(format!(
                "<AccessKey><UserName>{}</UserName><AccessKeyId>{}</AccessKeyId><Status>Active</Status><SecretAccessKey>{}</SecretAccessKey><CreateDate>{}</CreateDate></AccessKey>",
                esc(&name),
                k.access_key,
                esc(&k.secret),
                iso(k.created)
            ))
        }
        "ListAccessKeys" => {
            let name = target_user(c)?;
            allowed(c, "iam:ListAccessKeys", &keys_of(&name)?)?;
            let keys = ids.list_access_keys(&acct, &name)?;
            Ok(members(
                p,
                "AccessKeyMetadata",
                keys.iter().map(|k| {
                    let x = format!(
                        "<UserName>{}</UserName><AccessKeyId>{}</AccessKeyId><Status>{}</Status><CreateDate>{}</CreateDate>",
                        esc(&k.user),
                        k.id,
                        k.status.as_str(),
                        iso(k.created)
                    );
                    (k.id.clone(), x)
                }),
            ))
        }
        "UpdateAccessKey" => {
            let key = p.need("AccessKeyId")?;
            let name = match p.get("UserName") {
                Some(u) => u.to_owned(),
                None => ids.key_owner(&acct, key).map_or_else(|| target_user(c), Ok)?,
            };
            allowed(c, "iam:UpdateAccessKey", &keys_of(&name)?)?;
            let status = match p.need("Status")? {
                "Active" => KeyStatus::Active,
                "Inactive" => KeyStatus::Inactive,
                s => {
                    return Err(IamError::validation(format!(
                        "Status must be Active or Inactive, not {s}"
                    )));
                }
            };
            ids.update_access_key(&acct, &name, key, status).await?;
            Ok(String::new())
        }
        "DeleteAccessKey" => {
            let key = p.need("AccessKeyId")?;
            let name = match p.get("UserName") {
                Some(u) => u.to_owned(),
                None => ids.key_owner(&acct, key).map_or_else(|| target_user(c), Ok)?,
            };
            allowed(c, "iam:DeleteAccessKey", &keys_of(&name)?)?;
            ids.delete_access_key(&acct, &name, key).await?;
            Ok(String::new())
        }
        "PutUserPolicy" | "PutGroupPolicy" | "PutRolePolicy" => {
            let (kind, owner_param) = inline_target(action);
            let owner = p.need(owner_param)?;
            allowed(c, &format!("iam:{action}"), &entity_arn(c, kind, owner, None))?;
            let doc = p.need("PolicyDocument")?;
            ids.set_inline_policy(&acct, kind, owner, p.need("PolicyName")?, Some(doc))
                .await?;
            Ok(String::new())
        }
        "DeleteUserPolicy" | "DeleteGroupPolicy" | "DeleteRolePolicy" => {
            let (kind, owner_param) = inline_target(action);
            let owner = p.need(owner_param)?;
            allowed(c, &format!("iam:{action}"), &entity_arn(c, kind, owner, None))?;
            ids.set_inline_policy(&acct, kind, owner, p.need("PolicyName")?, None)
                .await?;
            Ok(String::new())
        }
        "GetUserPolicy" => {
            let user = p.need("UserName")?;
            let name = p.need("PolicyName")?;
            allowed(c, "iam:GetUserPolicy", &user_arn(user))?;
            let doc = ids
                .iam_view(&acct, |a| {
                    a.users
                        .get(user)
                        .and_then(|u| u.inline.get(name))
                        .map(|d| d.text.clone())
                })
                .ok_or_else(|| {
                    IamError::new(
                        404,
                        "NoSuchEntity",
                        format!("The user policy with name {name} cannot be found."),
                    )
                })?;
            let enc: String =
                percent_encoding::utf8_percent_encode(&doc, percent_encoding::NON_ALPHANUMERIC).to_string();
            Ok(format!(
                "<UserName>{}</UserName><PolicyName>{}</PolicyName><PolicyDocument>{}</PolicyDocument>",
                esc(user),
                esc(name),
                esc(&enc)
            ))
        }
        "ListUserPolicies" => {
            let user = p.need("UserName")?;
            allowed(c, "iam:ListUserPolicies", &user_arn(user))?;
            ids.get_user(&acct, user)?;
            let names = ids.iam_view(&acct, |a| {
                a.users
                    .get(user)
                    .map(|u| u.inline.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            });
            Ok(members(p, "PolicyNames", names.iter().map(|n| (n.clone(), esc(n)))))
        }
        "CreatePolicy" => {
            let name = p.need("PolicyName")?;
            allowed(c, "iam:CreatePolicy", &format!("arn:aws:iam::{acct}:policy/{name}"))?;
            let m = ids
                .create_policy(&acct, name, p.get("Path"), p.need("PolicyDocument")?)
                .await?;
            Ok(format!(
                "<Policy><PolicyName>{}</PolicyName><DefaultVersionId>v1</DefaultVersionId><PolicyId>{}</PolicyId><Path>{}</Path><Arn>{}</Arn><AttachmentCount>0</AttachmentCount><IsAttachable>true</IsAttachable><CreateDate>{}</CreateDate><UpdateDate>{}</UpdateDate></Policy>",
                esc(&m.name),
                m.id,
                esc(&m.path),
                esc(&m.arn),
                iso(m.created),
                iso(m.created)
            ))
        }
        "AttachUserPolicy" | "DetachUserPolicy" | "AttachGroupPolicy" | "DetachGroupPolicy" | "AttachRolePolicy"
        | "DetachRolePolicy" => {
            let (kind, owner_param) = inline_target(action);
            let owner = p.need(owner_param)?;
            let policy_arn = p.need("PolicyArn")?;
            allowed_with(
                c,
                &format!("iam:{action}"),
                &entity_arn(c, kind, owner, None),
                &[("iam:PolicyARN", policy_arn)],
            )?;
            ids.attach_policy(&acct, kind, owner, policy_arn, action.starts_with("Attach"))
                .await?;
            Ok(String::new())
        }
        "CreateVirtualMFADevice" => {
            let name = p.need("VirtualMFADeviceName")?;
            allowed(
                c,
                "iam:CreateVirtualMFADevice",
                &format!("arn:aws:iam::{acct}:mfa/{name}"),
            )?;
            let (dev, seed) = ids.create_virtual_mfa(&acct, name).await?;
            let b32 = base32(&seed);
            Ok(format!(
                "<VirtualMFADevice><SerialNumber>{}</SerialNumber><Base32StringSeed>{}</Base32StringSeed></VirtualMFADevice>",
                esc(&dev.serial),
                base64_simd::STANDARD.encode_to_string(b32.as_bytes())
            ))
        }
        "DeleteVirtualMFADevice" => {
            let serial = p.need("SerialNumber")?;
            allowed(c, "iam:DeleteVirtualMFADevice", serial)?;
            // only this account's devices: a serial names its account
            if !serial.starts_with(&format!("arn:aws:iam::{acct}:mfa/")) {
                return Err(IamError::new(
                    404,
                    "NoSuchEntity",
                    format!("VirtualMFADevice with serial number {serial} not found"),
                ));
            }
            ids.delete_virtual_mfa(&acct, serial).await?;
            Ok(String::new())
        }
        "EnableMFADevice" => {
            let user = p.need("UserName")?;
            allowed(c, "iam:EnableMFADevice", &user_arn(user))?;
            ids.enable_mfa(
                &acct,
                user,
                p.need("SerialNumber")?,
                p.need("AuthenticationCode1")?,
                p.need("AuthenticationCode2")?,
            )
            .await?;
            Ok(String::new())
        }
        "DeactivateMFADevice" => {
            let user = p.need("UserName")?;
            allowed(c, "iam:DeactivateMFADevice", &user_arn(user))?;
            ids.deactivate_mfa(&acct, user, p.need("SerialNumber")?).await?;
            Ok(String::new())
        }
        "ListMFADevices" => {
            let user = target_user(c)?;
            allowed(c, "iam:ListMFADevices", &user_arn(&user))?;
            let devs = ids.iam_view(&acct, |a| {
                a.mfa_devices
                    .values()
                    .filter(|d| d.user.as_deref() == Some(user.as_str()))
                    .cloned()
                    .collect::<Vec<_>>()
            });
            Ok(members(
                p,
                "MFADevices",
                devs.iter().map(|d| {
                    let x = format!(
                        "<UserName>{}</UserName><SerialNumber>{}</SerialNumber><EnableDate>{}</EnableDate>",
                        esc(&user),
                        esc(&d.serial),
                        iso(d.enabled.unwrap_or(d.created))
                    );
                    (d.serial.clone(), x)
                }),
            ))
        }
        _ => super::iam_groups_roles::dispatch(c, action).await,
    }
}

/// (kind, owner parameter) of a user/group/role policy action.
pub(crate) fn inline_target(action: &str) -> (&'static str, &'static str) {
    if action.contains("Group") {
        ("group", "GroupName")
    } else if action.contains("Role") {
        ("role", "RoleName")
    } else {
        ("user", "UserName")
    }
}

/// RFC 4648 base32 without padding (authenticator apps' seed format).
pub(crate) fn base32(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &x in b {
        buf = (buf << 8) | u32::from(x);
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}
