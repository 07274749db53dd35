//! Groups and roles (creation, membership), renames, updates and
//! deletions (the IAM API's
//! Update*/Delete* actions), with AWS's conflicts: a group with members or
//! policies, a role with policies, cannot be deleted.

use std::collections::BTreeMap;

use crate::directory::{Group, Role, new_id};
use crate::iam_input::{IamError, doc, valid_name, valid_path};
use crate::policy::Kind;
use crate::{Identities, now_secs};

/// EntityAlreadyExists when a rename to `new` would collide (names are
/// case-insensitive) with another entity among `names` (the renamed one
/// already taken out).
fn taken<'a>(
    mut names: impl Iterator<Item = &'a String>,
    old: &str,
    new: Option<&str>,
    what: &str,
) -> Result<(), IamError> {
    match new {
        Some(n) if n != old && names.any(|x| x.eq_ignore_ascii_case(n)) => Err(IamError::new(
            409,
            "EntityAlreadyExists",
            format!("{what} with name {n} already exists."),
        )),
        _ => Ok(()),
    }
}

fn conflict(what: &str) -> IamError {
    IamError::new(
        409,
        "DeleteConflict",
        format!("Cannot delete entity, must {what} first."),
    )
}

impl Identities {
    pub async fn create_group(&self, account: &str, name: &str, path: Option<&str>) -> Result<Group, IamError> {
        valid_name(name, 128)?;
        let id = new_id("AGPA")?;
        let path = path.unwrap_or("/").to_owned();
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            if a.groups.keys().any(|g| g.eq_ignore_ascii_case(name)) {
                return Err(IamError::exists(&format!("Group with name {name}")));
            }
            let g = Group {
                name: name.to_owned(),
                id,
                path,
                created: now_secs(),
                inline: BTreeMap::new(),
                attached: Vec::new(),
            };
            a.groups.insert(name.to_owned(), g.clone());
            t.accounts.push(account.to_owned());
            Ok(g)
        })
        .await
    }

    /// Adds (`add`) or removes a user from a group.
    pub async fn group_membership(&self, account: &str, group: &str, user: &str, add: bool) -> Result<(), IamError> {
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            if !a.groups.contains_key(group) {
                return Err(IamError::no_such(&format!("group with name {group}")));
            }
            let u = a
                .users
                .get_mut(user)
                .ok_or_else(|| IamError::no_such(&format!("user with name {user}")))?;
            if add {
                if !u.groups.iter().any(|g| g == group) {
                    u.groups.push(group.to_owned());
                }
            } else {
                u.groups.retain(|g| g != group);
            }
            t.accounts.push(account.to_owned());
            Ok(())
        })
        .await
    }

    pub async fn create_role(
        &self,
        account: &str,
        name: &str,
        path: Option<&str>,
        trust: &str,
        max_session: Option<u64>,
    ) -> Result<Role, IamError> {
        valid_name(name, 64)?;
        let trust = doc(trust, Kind::Trust)?;
        let max_session = max_session.unwrap_or(3600);
        if !(3600..=43_200).contains(&max_session) {
            return Err(IamError::validation(
                "MaxSessionDuration must be between 3600 and 43200 seconds",
            ));
        }
        let id = new_id("AROA")?;
        let path = path.unwrap_or("/").to_owned();
        let mut trust = trust;
        self.change(|d, t| {
            // the trust policy names entities that exist, bound to their ids
            let bound = match &trust.parsed {
                Some(p) => d.bind_principals(p).map_err(|arn| {
                    IamError::new(
                        400,
                        "MalformedPolicyDocument",
                        format!("Invalid principal in policy: \"AWS\":\"{arn}\""),
                    )
                })?,
                None => BTreeMap::new(),
            };
            trust.bind(bound.clone());
            let a = d.accounts.entry(account.to_owned()).or_default();
            if a.roles.keys().any(|r| r.eq_ignore_ascii_case(name)) {
                return Err(IamError::exists(&format!("Role with name {name}")));
            }
            let r = Role {
                name: name.to_owned(),
                id,
                path,
                created: now_secs(),
                trust,
                inline: BTreeMap::new(),
                attached: Vec::new(),
                max_session,
                description: None,
                trust_principals: bound,
            };
            a.roles.insert(name.to_owned(), r.clone());
            t.accounts.push(account.to_owned());
            Ok(r)
        })
        .await
    }

    /// UpdateUser: a new name and/or path; keys, groups and devices follow.
    pub async fn update_user(
        &self,
        account: &str,
        name: &str,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<(), IamError> {
        if let Some(n) = new_name {
            valid_name(n, 64)?;
        }
        if let Some(p) = new_path {
            valid_path(p)?;
        }
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            let mut u = a
                .users
                .remove(name)
                .ok_or_else(|| IamError::no_such(&format!("user with name {name}")))?;
            taken(a.users.keys(), name, new_name, "User")?;
            if let Some(p) = new_path {
                u.path = p.to_owned();
            }
            let renamed = new_name.unwrap_or(name).to_owned();
            u.name = renamed.clone();
            for dev in a.mfa_devices.values_mut() {
                if dev.user.as_deref() == Some(name) {
                    dev.user = Some(renamed.clone());
                }
            }
            a.users.insert(renamed.clone(), u);
            t.accounts.push(account.to_owned());
            for k in d.keys.values_mut() {
                if k.account == account && k.user == name {
                    k.user = renamed.clone();
                    t.keys.push(k.id.clone());
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn delete_group(&self, account: &str, name: &str) -> Result<(), IamError> {
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            let g = a
                .groups
                .get(name)
                .ok_or_else(|| IamError::no_such(&format!("group with name {name}")))?;
            if a.users.values().any(|u| u.groups.iter().any(|x| x == name)) {
                return Err(conflict("remove users from group"));
            }
            if !g.inline.is_empty() || !g.attached.is_empty() {
                return Err(conflict("delete policies"));
            }
            a.groups.remove(name);
            t.accounts.push(account.to_owned());
            Ok(())
        })
        .await
    }

    /// UpdateGroup: a new name and/or path; memberships follow.
    pub async fn update_group(
        &self,
        account: &str,
        name: &str,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<(), IamError> {
        if let Some(n) = new_name {
            valid_name(n, 128)?;
        }
        if let Some(p) = new_path {
            valid_path(p)?;
        }
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            let mut g = a
                .groups
                .remove(name)
                .ok_or_else(|| IamError::no_such(&format!("group with name {name}")))?;
            taken(a.groups.keys(), name, new_name, "Group")?;
            if let Some(p) = new_path {
                g.path = p.to_owned();
            }
            let renamed = new_name.unwrap_or(name).to_owned();
            g.name = renamed.clone();
            for u in a.users.values_mut() {
                for x in u.groups.iter_mut() {
                    if x == name {
                        *x = renamed.clone();
                    }
                }
            }
            a.groups.insert(renamed, g);
            t.accounts.push(account.to_owned());
            Ok(())
        })
        .await
    }

    pub async fn delete_role(&self, account: &str, name: &str) -> Result<(), IamError> {
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            let r = a
                .roles
                .get(name)
                .ok_or_else(|| IamError::no_such(&format!("role with name {name}")))?;
            if !r.inline.is_empty() || !r.attached.is_empty() {
                return Err(conflict("detach all policies"));
            }
            let id = r.id.clone();
            a.roles.remove(name);
            t.accounts.push(account.to_owned());
            crate::iam_ops::drop_sessions_of(d, t, &id);
            Ok(())
        })
        .await
    }

    /// UpdateRole: description and/or maximum session duration.
    pub async fn update_role(
        &self,
        account: &str,
        name: &str,
        description: Option<&str>,
        max_session: Option<u64>,
    ) -> Result<(), IamError> {
        if let Some(m) = max_session
            && !(3600..=43_200).contains(&m)
        {
            return Err(IamError::validation(
                "MaxSessionDuration must be between 3600 and 43200 seconds",
            ));
        }
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            let r = a
                .roles
                .get_mut(name)
                .ok_or_else(|| IamError::no_such(&format!("role with name {name}")))?;
            if let Some(desc) = description {
                r.description = Some(desc.to_owned());
            }
            if let Some(m) = max_session {
                r.max_session = m;
            }
            t.accounts.push(account.to_owned());
            Ok(())
        })
        .await
    }
}

impl Identities {
    /// CreateOpenIDConnectProvider; returns its ARN.
    pub async fn create_oidc(
        &self,
        account: &str,
        url: &str,
        client_ids: Vec<String>,
        thumbprints: Vec<String>,
    ) -> Result<String, IamError> {
        let host = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .filter(|h| !h.is_empty())
            .ok_or_else(|| IamError::validation("Url must begin with https:// (or http://)"))?;
        let arn = format!("arn:aws:iam::{account}:oidc-provider/{host}");
        let ret = arn.clone();
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            if a.oidc.contains_key(&arn) {
                return Err(IamError::new(
                    409,
                    "EntityAlreadyExists",
                    format!("Provider with url {url} already exists."),
                ));
            }
            a.oidc.insert(
                arn,
                crate::directory::OidcProvider {
                    url: url.to_owned(),
                    client_ids,
                    thumbprints,
                    created: crate::now_secs(),
                },
            );
            t.accounts.push(account.to_owned());
            Ok(())
        })
        .await?;
        Ok(ret)
    }

    /// Changes (`Some`) or deletes (`None` result) an OIDC provider.
    pub async fn change_oidc(
        &self,
        account: &str,
        arn: &str,
        f: impl FnOnce(&mut crate::directory::OidcProvider) -> bool,
    ) -> Result<(), IamError> {
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            let p = a
                .oidc
                .get_mut(arn)
                .ok_or_else(|| IamError::no_such(&format!("OpenIDConnect provider {arn}")))?;
            if !f(p) {
                a.oidc.remove(arn);
            }
            t.accounts.push(account.to_owned());
            Ok(())
        })
        .await
    }
}
