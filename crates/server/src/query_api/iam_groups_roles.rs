//! IAM actions on groups, roles and attachments, and GetAccountSummary.

use strongroom_iam::IamError;
use strongroom_iam::directory::{AccountIam, Group, Role};

use super::iam::{inline_target, user_xml};
use super::members;
use super::{Call, allowed, entity_arn, esc, iso};

fn group_xml(acct: &str, g: &Group) -> String {
    format!(
        "<Path>{}</Path><GroupName>{}</GroupName><GroupId>{}</GroupId><Arn>arn:aws:iam::{acct}:group{}{}</Arn><CreateDate>{}</CreateDate>",
        esc(&g.path),
        esc(&g.name),
        g.id,
        esc(&g.path),
        esc(&g.name),
        iso(g.created)
    )
}

fn urlenc(s: &str) -> String {
    esc(&percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string())
}

fn role_xml(acct: &str, r: &Role) -> String {
    let desc = r
        .description
        .as_deref()
        .map(|d| format!("<Description>{}</Description>", esc(d)))
        .unwrap_or_default();
    format!(
        "<Path>{}</Path><RoleName>{}</RoleName><RoleId>{}</RoleId><Arn>arn:aws:iam::{acct}:role{}{}</Arn><CreateDate>{}</CreateDate><AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument>{desc}<MaxSessionDuration>{}</MaxSessionDuration>",
        esc(&r.path),
        esc(&r.name),
        r.id,
        esc(&r.path),
        esc(&r.name),
        iso(r.created),
        urlenc(&r.trust.text),
        r.max_session
    )
}

/// The attached policy ARNs of a user, group or role.
fn attached(a: &AccountIam, kind: &str, owner: &str) -> Option<Vec<String>> {
    match kind {
        "user" => a.users.get(owner).map(|u| u.attached.clone()),
        "group" => a.groups.get(owner).map(|g| g.attached.clone()),
        _ => a.roles.get(owner).map(|r| r.attached.clone()),
    }
}

/// The inline policies (name -> text) of a user, group or role.
fn inline(a: &AccountIam, kind: &str, owner: &str) -> Option<Vec<(String, String)>> {
    let pick = |m: &std::collections::BTreeMap<String, strongroom_iam::directory::Doc>| {
        m.iter().map(|(k, d)| (k.clone(), d.text.clone())).collect::<Vec<_>>()
    };
    match kind {
        "user" => a.users.get(owner).map(|u| pick(&u.inline)),
        "group" => a.groups.get(owner).map(|g| pick(&g.inline)),
        _ => a.roles.get(owner).map(|r| pick(&r.inline)),
    }
}

pub(crate) async fn dispatch(c: &Call<'_>, action: &str) -> Result<String, IamError> {
    let acct = c.who.account_id().to_owned();
    let ids = c.ids;
    let p = &c.params;
    let group_arn = |n: &str| entity_arn(c, "group", n, None);
    let role_arn = |n: &str| entity_arn(c, "role", n, None);
    let no_such = |what: String| IamError::new(404, "NoSuchEntity", format!("The {what} cannot be found."));
    match action {
        "CreateGroup" => {
            let name = p.need("GroupName")?;
            allowed(c, "iam:CreateGroup", &entity_arn(c, "group", name, p.get("Path")))?;
            let g = ids.create_group(&acct, name, p.get("Path")).await?;
            Ok(format!("<Group>{}</Group>", group_xml(&acct, &g)))
        }
        "GetGroup" => {
            let name = p.need("GroupName")?;
            allowed(c, "iam:GetGroup", &group_arn(name))?;
            let (g, users) = ids.iam_view(&acct, |a| {
                let users: Vec<_> = a
                    .users
                    .values()
                    .filter(|u| u.groups.iter().any(|x| x == name))
                    .cloned()
                    .collect();
                (a.groups.get(name).cloned(), users)
            });
            let g = g.ok_or_else(|| no_such(format!("group with name {name}")))?;
            Ok(format!(
                "<Group>{}</Group>{}",
                group_xml(&acct, &g),
                members(p, "Users", users.iter().map(|u| (u.name.clone(), user_xml(&acct, u))))
            ))
        }
        "ListGroups" => {
            allowed(c, "iam:ListGroups", &format!("arn:aws:iam::{acct}:group/"))?;
            let prefix = p.get("PathPrefix").unwrap_or("/");
            let groups = ids.iam_view(&acct, |a| {
                a.groups
                    .values()
                    .filter(|g| g.path.starts_with(prefix))
                    .cloned()
                    .collect::<Vec<_>>()
            });
            Ok(members(
                p,
                "Groups",
                groups.iter().map(|g| (g.name.clone(), group_xml(&acct, g))),
            ))
        }
        "ListGroupsForUser" => {
            let user = p.need("UserName")?;
            allowed(c, "iam:ListGroupsForUser", &entity_arn(c, "user", user, None))?;
            let groups = ids
                .iam_view(&acct, |a| {
                    a.users.get(user).map(|u| {
                        u.groups
                            .iter()
                            .filter_map(|g| a.groups.get(g).cloned())
                            .collect::<Vec<_>>()
                    })
                })
                .ok_or_else(|| no_such(format!("user with name {user}")))?;
            Ok(members(
                p,
                "Groups",
                groups.iter().map(|g| (g.name.clone(), group_xml(&acct, g))),
            ))
        }
        "UpdateGroup" => {
            let name = p.need("GroupName")?;
            allowed(c, "iam:UpdateGroup", &group_arn(name))?;
            ids.update_group(&acct, name, p.get("NewGroupName"), p.get("NewPath"))
                .await?;
            Ok(String::new())
        }
        "DeleteGroup" => {
            let name = p.need("GroupName")?;
            allowed(c, "iam:DeleteGroup", &group_arn(name))?;
            ids.delete_group(&acct, name).await?;
            Ok(String::new())
        }
        "AddUserToGroup" | "RemoveUserFromGroup" => {
            let group = p.need("GroupName")?;
            allowed(c, &format!("iam:{action}"), &group_arn(group))?;
            ids.group_membership(&acct, group, p.need("UserName")?, action == "AddUserToGroup")
                .await?;
            Ok(String::new())
        }
        "CreateRole" => {
            let name = p.need("RoleName")?;
            allowed(c, "iam:CreateRole", &entity_arn(c, "role", name, p.get("Path")))?;
            if let Some(path) = p.get("Path")
                && (!path.starts_with('/') || !path.ends_with('/'))
            {
                return Err(IamError::validation("Path must begin and end with /"));
            }
            let mut r = ids
                .create_role(
                    &acct,
                    name,
                    p.get("Path"),
                    p.need("AssumeRolePolicyDocument")?,
                    p.num("MaxSessionDuration")?,
                )
                .await?;
            if let Some(d) = p.get("Description") {
                ids.update_role(&acct, name, Some(d), None).await?;
                r.description = Some(d.to_owned());
            }
            Ok(format!("<Role>{}</Role>", role_xml(&acct, &r)))
        }
        "GetRole" => {
            let name = p.need("RoleName")?;
            allowed(c, "iam:GetRole", &role_arn(name))?;
            let r = ids
                .iam_view(&acct, |a| a.roles.get(name).cloned())
                .ok_or_else(|| no_such(format!("role with name {name}")))?;
            Ok(format!("<Role>{}</Role>", role_xml(&acct, &r)))
        }
        "ListRoles" => {
            allowed(c, "iam:ListRoles", &format!("arn:aws:iam::{acct}:role/"))?;
            let prefix = p.get("PathPrefix").unwrap_or("/");
            let roles = ids.iam_view(&acct, |a| {
                a.roles
                    .values()
                    .filter(|r| r.path.starts_with(prefix))
                    .cloned()
                    .collect::<Vec<_>>()
            });
            Ok(members(
                p,
                "Roles",
                roles.iter().map(|r| (r.name.clone(), role_xml(&acct, r))),
            ))
        }
        "UpdateRole" => {
            let name = p.need("RoleName")?;
            allowed(c, "iam:UpdateRole", &role_arn(name))?;
            ids.update_role(&acct, name, p.get("Description"), p.num("MaxSessionDuration")?)
                .await?;
            Ok(String::new())
        }
        "DeleteRole" => {
            let name = p.need("RoleName")?;
            allowed(c, "iam:DeleteRole", &role_arn(name))?;
            ids.delete_role(&acct, name).await?;
            Ok(String::new())
        }
        "GetGroupPolicy" | "GetRolePolicy" => {
            let (kind, owner_param) = inline_target(action);
            let owner = p.need(owner_param)?;
            let name = p.need("PolicyName")?;
            allowed(c, &format!("iam:{action}"), &entity_arn(c, kind, owner, None))?;
            let doc = ids
                .iam_view(&acct, |a| inline(a, kind, owner))
                .ok_or_else(|| no_such(format!("{kind} with name {owner}")))?
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| no_such(format!("{kind} policy with name {name}")))?;
            Ok(format!(
                "<{owner_param}>{}</{owner_param}><PolicyName>{}</PolicyName><PolicyDocument>{}</PolicyDocument>",
                esc(owner),
                esc(name),
                urlenc(&doc)
            ))
        }
        "ListGroupPolicies" | "ListRolePolicies" => {
            let (kind, owner_param) = inline_target(action);
            let owner = p.need(owner_param)?;
            allowed(c, &format!("iam:{action}"), &entity_arn(c, kind, owner, None))?;
            let names = ids
                .iam_view(&acct, |a| inline(a, kind, owner))
                .ok_or_else(|| no_such(format!("{kind} with name {owner}")))?;
            Ok(members(
                p,
                "PolicyNames",
                names.iter().map(|(n, _)| (n.clone(), esc(n))),
            ))
        }
        "ListAttachedUserPolicies" | "ListAttachedGroupPolicies" | "ListAttachedRolePolicies" => {
            let (kind, owner_param) = inline_target(action);
            let owner = p.need(owner_param)?;
            allowed(c, &format!("iam:{action}"), &entity_arn(c, kind, owner, None))?;
            let arns = ids
                .iam_view(&acct, |a| attached(a, kind, owner))
                .ok_or_else(|| no_such(format!("{kind} with name {owner}")))?;
            Ok(members(
                p,
                "AttachedPolicies",
                arns.iter().map(|arn| {
                    let name = arn.rsplit('/').next().unwrap_or_default();
                    let x = format!(
                        "<PolicyName>{}</PolicyName><PolicyArn>{}</PolicyArn>",
                        esc(name),
                        esc(arn)
                    );
                    (name.to_owned(), x)
                }),
            ))
        }
        "CreateOpenIDConnectProvider" => {
            allowed(c, "iam:CreateOpenIDConnectProvider", "*")?;
            let arn = ids
                .create_oidc(&acct, p.need("Url")?, p.list("ClientIDList"), p.list("ThumbprintList"))
                .await?;
            Ok(format!(
                "<OpenIDConnectProviderArn>{}</OpenIDConnectProviderArn>",
                esc(&arn)
            ))
        }
        "ListOpenIDConnectProviders" => {
            allowed(c, "iam:ListOpenIDConnectProviders", "*")?;
            let arns = ids.iam_view(&acct, |a| a.oidc.keys().cloned().collect::<Vec<_>>());
            let inner: String = arns
                .iter()
                .map(|a| format!("<member><Arn>{}</Arn></member>", esc(a)))
                .collect();
            Ok(format!(
                "<OpenIDConnectProviderList>{inner}</OpenIDConnectProviderList>"
            ))
        }
        "GetOpenIDConnectProvider" => {
            let arn = p.need("OpenIDConnectProviderArn")?;
            allowed(c, "iam:GetOpenIDConnectProvider", arn)?;
            let o = ids
                .iam_view(&acct, |a| a.oidc.get(arn).cloned())
                .ok_or_else(|| no_such(format!("OpenIDConnect provider {arn}")))?;
            let list = |tag: &str, v: &[String]| {
                let inner: String = v.iter().map(|x| format!("<member>{}</member>", esc(x))).collect();
                format!("<{tag}>{inner}</{tag}>")
            };
            Ok(format!(
                "<Url>{}</Url>{}{}<CreateDate>{}</CreateDate>",
                esc(&o.url),
                list("ClientIDList", &o.client_ids),
                list("ThumbprintList", &o.thumbprints),
                iso(o.created)
            ))
        }
        "DeleteOpenIDConnectProvider" => {
            let arn = p.need("OpenIDConnectProviderArn")?;
            allowed(c, "iam:DeleteOpenIDConnectProvider", arn)?;
            ids.change_oidc(&acct, arn, |_| false).await?;
            Ok(String::new())
        }
        "AddClientIDToOpenIDConnectProvider" | "RemoveClientIDFromOpenIDConnectProvider" => {
            let arn = p.need("OpenIDConnectProviderArn")?;
            allowed(c, &format!("iam:{action}"), arn)?;
            let id = p.need("ClientID")?.to_owned();
            let add = action.starts_with("Add");
            ids.change_oidc(&acct, arn, |o| {
                if add {
                    if !o.client_ids.contains(&id) {
                        o.client_ids.push(id);
                    }
                } else {
                    o.client_ids.retain(|x| *x != id);
                }
                true
            })
            .await?;
            Ok(String::new())
        }
        "UpdateOpenIDConnectProviderThumbprint" => {
            let arn = p.need("OpenIDConnectProviderArn")?;
            allowed(c, "iam:UpdateOpenIDConnectProviderThumbprint", arn)?;
            let thumbs = p.list("ThumbprintList");
            ids.change_oidc(&acct, arn, |o| {
                o.thumbprints = thumbs;
                true
            })
            .await?;
            Ok(String::new())
        }
        "GetAccountSummary" => {
            allowed(c, "iam:GetAccountSummary", "*")?;
            let (users, groups, roles, policies) = ids.iam_view(&acct, |a| {
                (a.users.len(), a.groups.len(), a.roles.len(), a.policies.len())
            });
            let entries = [
                ("Users", users),
                ("UsersQuota", 5000),
                ("Groups", groups),
                ("GroupsQuota", 300),
                ("Roles", roles),
                ("RolesQuota", 1000),
                ("Policies", policies),
                ("PoliciesQuota", 1500),
                ("AccessKeysPerUserQuota", 2),
                ("AttachedPoliciesPerUserQuota", 10),
                ("AttachedPoliciesPerGroupQuota", 10),
                ("AttachedPoliciesPerRoleQuota", 10),
            ];
            let body: String = entries
                .iter()
                .map(|(k, v)| format!("<entry><key>{k}</key><value>{v}</value></entry>"))
                .collect();
            Ok(format!("<SummaryMap>{body}</SummaryMap>"))
        }
        _ => Err(IamError::new(
            400,
            "InvalidAction",
            format!("The action {action} is not valid for this web service."),
        )),
    }
}
