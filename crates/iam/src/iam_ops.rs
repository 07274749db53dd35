//! Changes to IAM entities, as the IAM and STS APIs and `strongroom admin`
//! make them. Each change runs on a copy of the directory, persists the
//! records it touched in one commit, then publishes the copy, so a failed
//! change leaves nothing behind.

use std::collections::BTreeMap;

use strongroom_store::StoreError;
use zeroize::Zeroizing;

use crate::directory::{
    AccessKey, Directory, Doc, KeyStatus, ManagedPolicy, Session, SessionOf, User, VirtualMfa, key_context, new_id,
    new_secret, seal,
};
use crate::iam_input::{IamError, doc, valid_name, valid_path};
use crate::policy::Kind;
use crate::{Identities, IdentityError, now_secs};

/// Records a change touched, to persist.
#[derive(Default)]
pub(crate) struct Touched {
    pub(crate) accounts: Vec<String>,
    pub(crate) keys: Vec<String>,
    pub(crate) sessions: Vec<String>,
    /// Other system records to write (`Some`) or delete, in the same commit.
    pub(crate) records: Vec<(String, Option<Vec<u8>>)>,
}

/// New credentials, shown once.
pub struct NewCredentials {
    pub access_key: String,
    pub secret: Zeroizing<String>,
    pub token: Option<Zeroizing<String>>,
    pub expires: Option<i64>,
    pub created: i64,
}

/// Session policies that bound a new session (AssumeRole `Policy` and
/// `PolicyArns`); the default bounds nothing.
#[derive(Default)]
pub struct SessionLimits {
    pub policy: Option<Doc>,
    pub policy_arns: Vec<String>,
}

/// Public facts of an access key.
pub struct KeyInfo {
    pub id: String,
    pub user: String,
    pub status: KeyStatus,
    pub created: i64,
}

impl Identities {
    pub(crate) async fn change<R>(
        &self,
        f: impl FnOnce(&mut Directory, &mut Touched) -> Result<R, IamError>,
    ) -> Result<R, IamError> {
        let _g = self.writer.lock().await;
        let mut d = self.dir.read().map_err(IamError::internal)?.clone();
        let mut t = Touched::default();
        let r = f(&mut d, &mut t)?;
        let mut writes: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for a in &t.accounts {
            let v = d
                .accounts
                .get(a)
                .map(serde_json::to_vec)
                .transpose()
                .map_err(IamError::internal)?;
            writes.push((format!("iam/{a}"), v));
        }
        for k in &t.keys {
            let v = d
                .keys
                .get(k)
                .map(serde_json::to_vec)
                .transpose()
                .map_err(IamError::internal)?;
            writes.push((format!("iam-key/{k}"), v));
        }
        for s in &t.sessions {
            let v = d
                .sessions
                .get(s)
                .map(serde_json::to_vec)
                .transpose()
                .map_err(IamError::internal)?;
            writes.push((format!("iam-session/{s}"), v));
        }
        writes.append(&mut t.records);
        self.store
            .commit(move |txn| -> Result<(), StoreError> {
                for (name, v) in &writes {
                    match v {
                        Some(v) => txn.put_system(name, v)?,
                        None => txn.delete_system(name)?,
                    }
                }
                Ok(())
            })
            .await
            .map_err(IamError::internal)?;
        *self.dir.write().map_err(IamError::internal)? = d;
        Ok(r)
    }

    /// A copy of an account's IAM entities (for reads).
    pub fn iam_view<R>(&self, account: &str, f: impl FnOnce(&crate::directory::AccountIam) -> R) -> R {
        let empty = crate::directory::AccountIam::default();
        match self.dir.read() {
            Ok(d) => f(d.accounts.get(account).unwrap_or(&empty)),
            Err(_) => f(&empty),
        }
    }

    /// The unique id of the IAM user or role an ARN names, path included
    /// (`arn:aws:iam::ACCT:user/PATH/NAME`, `...:role/...`); None when no
    /// such entity exists now.
    pub fn entity_id_of(&self, arn: &str) -> Option<String> {
        self.dir.read().ok()?.entity_id_of(arn)
    }

    pub async fn create_user(&self, account: &str, name: &str, path: Option<&str>) -> Result<User, IamError> {
        valid_name(name, 64)?;
        if let Some(p) = path {
            valid_path(p)?;
        }
        let id = new_id("AIDA")?;
        let path = path.unwrap_or("/").to_owned();
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            if a.users.keys().any(|u| u.eq_ignore_ascii_case(name)) {
                return Err(IamError::exists(&format!("User with name {name}")));
            }
            let u = User {
                name: name.to_owned(),
                id,
                path,
                created: now_secs(),
                inline: BTreeMap::new(),
                attached: Vec::new(),
                groups: Vec::new(),
                mfa: None,
            };
            a.users.insert(name.to_owned(), u.clone());
            t.accounts.push(account.to_owned());
            Ok(u)
        })
        .await
    }

    pub fn get_user(&self, account: &str, name: &str) -> Result<User, IamError> {
        self.iam_view(account, |a| a.users.get(name).cloned())
            .ok_or_else(|| IamError::no_such(&format!("user with name {name}")))
    }

    pub async fn delete_user(&self, account: &str, name: &str) -> Result<(), IamError> {
        self.change(|d, t| {
            let has_keys = d.keys.values().any(|k| k.account == account && k.user == name);
            let a = d.accounts.entry(account.to_owned()).or_default();
            let u = a
                .users
                .get(name)
                .ok_or_else(|| IamError::no_such(&format!("user with name {name}")))?;
            if has_keys || !u.inline.is_empty() || !u.attached.is_empty() || !u.groups.is_empty() || u.mfa.is_some() {
                return Err(IamError::new(
                    409,
                    "DeleteConflict",
                    "Cannot delete entity, must remove access keys, policies, groups and MFA devices first.",
                ));
            }
            let id = u.id.clone();
            a.users.remove(name);
            t.accounts.push(account.to_owned());
            drop_sessions_of(d, t, &id);
            Ok(())
        })
        .await
    }

    /// Creates an access key for a user (at most two per user).
    pub async fn create_access_key(&self, account: &str, user: &str) -> Result<NewCredentials, IamError> {
        let id = new_id("AKIA")?;
        let secret = new_secret(30)?;
        let sealed = seal(&self.master, &secret, &key_context(&id))?;
        let created = now_secs();
        let shown = secret.clone();
        self.change(|d, t| {
            // an empty user name is the account root (its extra keys)
            if !user.is_empty() && !d.accounts.get(account).is_some_and(|a| a.users.contains_key(user)) {
                return Err(IamError::no_such(&format!("user with name {user}")));
            }
            let n = d
                .keys
                .values()
                .filter(|k| k.account == account && k.user == user)
                .count();
            if n >= 2 {
                return Err(IamError::new(
                    409,
                    "LimitExceeded",
                    "Cannot exceed quota for AccessKeysPerUser: 2",
                ));
            }
            d.keys.insert(
                id.clone(),
                AccessKey {
                    id: id.clone(),
                    account: account.to_owned(),
                    user: user.to_owned(),
                    status: KeyStatus::Active,
                    created,
                    sealed_secret: sealed,
                    secret,
                },
            );
            t.keys.push(id.clone());
            Ok(())
        })
        .await?;
        Ok(NewCredentials {
            access_key: id,
            secret: shown,
            token: None,
            expires: None,
            created,
        })
    }

    /// Adds a user's key with a given secret (bootstrap files); idempotent.
    pub async fn import_access_key(&self, account: &str, user: &str, id: &str, secret: &str) -> Result<(), IamError> {
        if id.len() < 16 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) || secret.len() < 20 {
            return Err(IamError::validation(
                "access keys need 16+ letters/digits and 20+ character secrets",
            ));
        }
        if self.account(account).is_some_and(|a| a.access_key == id) || self.with_account(id, |_| ()).is_some() {
            return Err(IamError::exists(&format!("Access key {id}")));
        }
        let sealed = seal(&self.master, secret, &key_context(id))?;
        let secret = Zeroizing::new(secret.to_owned());
        self.change(|d, t| {
            if let Some(k) = d.keys.get(id)
                && (k.account != account || k.user != user)
            {
                return Err(IamError::exists(&format!("Access key {id}")));
            }
            d.keys.insert(
                id.to_owned(),
                AccessKey {
                    id: id.to_owned(),
                    account: account.to_owned(),
                    user: user.to_owned(),
                    status: KeyStatus::Active,
                    created: now_secs(),
                    sealed_secret: sealed,
                    secret,
                },
            );
            t.keys.push(id.to_owned());
            Ok(())
        })
        .await
    }

    pub fn list_access_keys(&self, account: &str, user: &str) -> Result<Vec<KeyInfo>, IamError> {
        if !user.is_empty() {
            self.get_user(account, user)?;
        }
        let d = self.dir.read().map_err(IamError::internal)?;
        let mut v: Vec<KeyInfo> = d
            .keys
            .values()
            .filter(|k| k.account == account && k.user == user)
            .map(|k| KeyInfo {
                id: k.id.clone(),
                user: k.user.clone(),
                status: k.status,
                created: k.created,
            })
            .collect();
        v.sort_by_key(|k| k.created);
        Ok(v)
    }

    /// The user a key belongs to (for UpdateAccessKey without UserName).
    pub fn key_owner(&self, account: &str, key: &str) -> Option<String> {
        let d = self.dir.read().ok()?;
        d.keys.get(key).filter(|k| k.account == account).map(|k| k.user.clone())
    }

    pub async fn update_access_key(
        &self,
        account: &str,
        user: &str,
        key: &str,
        status: KeyStatus,
    ) -> Result<(), IamError> {
        self.change(|d, t| {
            let k = d
                .keys
                .get_mut(key)
                .filter(|k| k.account == account && k.user == user)
                .ok_or_else(|| IamError::no_such(&format!("Access Key with id {key}")))?;
            k.status = status;
            t.keys.push(key.to_owned());
            Ok(())
        })
        .await
    }

    pub async fn delete_access_key(&self, account: &str, user: &str, key: &str) -> Result<(), IamError> {
        self.change(|d, t| {
            if !d.keys.get(key).is_some_and(|k| k.account == account && k.user == user) {
                return Err(IamError::no_such(&format!("Access Key with id {key}")));
            }
            d.keys.remove(key);
            t.keys.push(key.to_owned());
            Ok(())
        })
        .await
    }

    /// Puts (`Some`) or deletes (`None`) an inline policy of a user, group
    /// or role (`kind` = "user" | "group" | "role").
    pub async fn set_inline_policy(
        &self,
        account: &str,
        kind: &str,
        owner: &str,
        name: &str,
        text: Option<&str>,
    ) -> Result<(), IamError> {
        valid_name(name, 128)?;
        let parsed = text.map(|t| doc(t, Kind::Identity)).transpose()?;
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            let map = match kind {
                "user" => a.users.get_mut(owner).map(|u| &mut u.inline),
                "group" => a.groups.get_mut(owner).map(|g| &mut g.inline),
                _ => a.roles.get_mut(owner).map(|r| &mut r.inline),
            }
            .ok_or_else(|| IamError::no_such(&format!("{kind} with name {owner}")))?;
            match parsed {
                Some(p) => {
                    map.insert(name.to_owned(), p);
                }
                None => {
                    if map.remove(name).is_none() {
                        return Err(IamError::no_such(&format!("{kind} policy with name {name}")));
                    }
                }
            }
            t.accounts.push(account.to_owned());
            Ok(())
        })
        .await
    }

    pub async fn create_policy(
        &self,
        account: &str,
        name: &str,
        path: Option<&str>,
        text: &str,
    ) -> Result<ManagedPolicy, IamError> {
        valid_name(name, 128)?;
        let parsed = doc(text, Kind::Identity)?;
        let id = new_id("ANPA")?;
        let path = path.unwrap_or("/").to_owned();
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            if a.policies.contains_key(name) {
                return Err(IamError::exists(&format!("A policy called {name}")));
            }
            let p = ManagedPolicy {
                arn: format!("arn:aws:iam::{account}:policy{path}{name}"),
                name: name.to_owned(),
                id,
                path,
                created: now_secs(),
                doc: parsed,
            };
            a.policies.insert(name.to_owned(), p.clone());
            t.accounts.push(account.to_owned());
            Ok(p)
        })
        .await
    }

    /// Attaches (`attach`) or detaches a managed policy to a user, group or role.
    pub async fn attach_policy(
        &self,
        account: &str,
        kind: &str,
        owner: &str,
        arn: &str,
        attach: bool,
    ) -> Result<(), IamError> {
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            if a.managed_doc(arn).is_none() {
                return Err(IamError::no_such(&format!("Policy {arn}")));
            }
            let list = match kind {
                "user" => a.users.get_mut(owner).map(|u| &mut u.attached),
                "group" => a.groups.get_mut(owner).map(|g| &mut g.attached),
                _ => a.roles.get_mut(owner).map(|r| &mut r.attached),
            }
            .ok_or_else(|| IamError::no_such(&format!("{kind} with name {owner}")))?;
            if attach {
                if !list.iter().any(|x| x == arn) {
                    list.push(arn.to_owned());
                }
            } else {
                let before = list.len();
                list.retain(|x| x != arn);
                if list.len() == before {
                    return Err(IamError::no_such(&format!("Policy {arn} attached to {owner}")));
                }
            }
            t.accounts.push(account.to_owned());
            Ok(())
        })
        .await
    }

    /// Creates an unassigned virtual MFA device; returns it and its seed.
    pub async fn create_virtual_mfa(
        &self,
        account: &str,
        name: &str,
    ) -> Result<(VirtualMfa, Zeroizing<Vec<u8>>), IamError> {
        valid_name(name, 128)?;
        let serial = format!("arn:aws:iam::{account}:mfa/{name}");
        let (seed, record) = self.new_device_secret(&serial).map_err(IamError::internal)?;
        let dev = VirtualMfa {
            serial: serial.clone(),
            user: None,
            created: now_secs(),
            enabled: None,
        };
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            if a.mfa_devices.contains_key(&serial) {
                return Err(IamError::exists(&format!(
                    "MFADevice entity at the same path and name {name}"
                )));
            }
            a.mfa_devices.insert(serial.clone(), dev.clone());
            t.accounts.push(account.to_owned());
            // the seed is written only with the device it belongs to
            t.records.push((record.0, Some(record.1)));
            Ok(())
        })
        .await?;
        Ok((dev, seed))
    }

    /// DeleteVirtualMFADevice: an unassigned device and its secret (one
    /// still enabled for a user must be deactivated first, as AWS).
    pub async fn delete_virtual_mfa(&self, account: &str, serial: &str) -> Result<(), IamError> {
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            let dev = a
                .mfa_devices
                .get(serial)
                .ok_or_else(|| IamError::no_such(&format!("VirtualMFADevice with serial number {serial}")))?;
            if dev.user.is_some() {
                return Err(IamError::new(
                    409,
                    "DeleteConflict",
                    "MFA Device is still in use. Deactivate it first.",
                ));
            }
            a.mfa_devices.remove(serial);
            t.accounts.push(account.to_owned());
            t.records.push((crate::mfa::device_record(serial), None));
            Ok(())
        })
        .await
    }

    /// Assigns a virtual device to a user after two consecutive codes.
    pub async fn enable_mfa(
        &self,
        account: &str,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> Result<(), IamError> {
        let known = self.iam_view(account, |a| {
            (
                a.users.contains_key(user),
                a.mfa_devices.get(serial).map(|d| d.user.clone()),
            )
        });
        match known {
            (false, _) => return Err(IamError::no_such(&format!("user with name {user}"))),
            (_, None) => return Err(IamError::no_such(&format!("MFA device {serial}"))),
            (_, Some(Some(_))) => return Err(IamError::exists("MFA Device")),
            _ => {}
        }
        if !self
            .device_codes_consecutive(serial, code1, code2, now_secs().max(0).unsigned_abs())
            .await
        {
            return Err(IamError::new(
                403,
                "InvalidAuthenticationCode",
                "Authentication code for device is not valid.",
            ));
        }
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            if let Some(dev) = a.mfa_devices.get_mut(serial) {
                dev.user = Some(user.to_owned());
                dev.enabled = Some(now_secs());
            }
            if let Some(u) = a.users.get_mut(user) {
                u.mfa = Some(serial.to_owned());
            }
            t.accounts.push(account.to_owned());
            Ok(())
        })
        .await
    }

    pub async fn deactivate_mfa(&self, account: &str, user: &str, serial: &str) -> Result<(), IamError> {
        self.change(|d, t| {
            let a = d.accounts.entry(account.to_owned()).or_default();
            let u = a
                .users
                .get_mut(user)
                .ok_or_else(|| IamError::no_such(&format!("user with name {user}")))?;
            if u.mfa.as_deref() != Some(serial) {
                return Err(IamError::no_such(&format!("MFA device {serial}")));
            }
            u.mfa = None;
            if let Some(dev) = a.mfa_devices.get_mut(serial) {
                dev.user = None;
                dev.enabled = None;
            }
            t.accounts.push(account.to_owned());
            Ok(())
        })
        .await
    }

    /// Issues temporary credentials, bounded by session policies when
    /// given (`policy`, and managed policies by ARN, which must exist).
    pub async fn new_session(
        &self,
        account: &str,
        of: SessionOf,
        secs: u64,
        mfa_at: Option<i64>,
        limits: SessionLimits,
    ) -> Result<NewCredentials, IamError> {
        let id = new_id("ASIA")?;
        let secret = new_secret(30)?;
        let token = new_secret(96)?;
        let sealed = seal(&self.master, &secret, &key_context(&id))?;
        let issued = now_secs();
        let expires = issued + i64::try_from(secs).unwrap_or(3600);
        let s = Session {
            id: id.clone(),
            account: account.to_owned(),
            of,
            expires,
            issued,
            mfa_at,
            sealed_secret: sealed,
            token_sha256: crate::sigv4::sha256_hex(token.as_bytes()),
            secret: secret.clone(),
            entity: None,
            policy: limits.policy,
            policy_arns: limits.policy_arns,
        };
        let mut s = s;
        self.change(|d, t| {
            // bound to the entity's unique id, not to its name
            let a = d.accounts.get(account);
            s.entity = match &s.of {
                SessionOf::User(None) => None,
                SessionOf::User(Some(name)) => Some(
                    a.and_then(|a| a.users.get(name))
                        .map(|u| u.id.clone())
                        .ok_or_else(|| IamError::no_such(&format!("user with name {name}")))?,
                ),
                SessionOf::Role { role, .. } => Some(
                    a.and_then(|a| a.roles.get(role))
                        .map(|r| r.id.clone())
                        .ok_or_else(|| IamError::no_such(&format!("role with name {role}")))?,
                ),
            };
            if !s.policy_arns.is_empty() {
                let a = d
                    .accounts
                    .get(account)
                    .ok_or_else(|| IamError::no_such(&format!("account {account}")))?;
                for arn in &s.policy_arns {
                    if a.managed_doc(arn).is_none() {
                        return Err(IamError::no_such(&format!("policy {arn}")));
                    }
                }
            }
            // expired sessions leave memory and the store
            let expired: Vec<String> = d
                .sessions
                .iter()
                .filter(|(_, s)| s.expires <= issued)
                .map(|(k, _)| k.clone())
                .collect();
            for k in expired {
                d.sessions.remove(&k);
                t.sessions.push(k);
            }
            d.sessions.insert(id.clone(), s);
            t.sessions.push(id.clone());
            Ok(())
        })
        .await?;
        Ok(NewCredentials {
            access_key: id,
            secret,
            token: Some(token),
            expires: Some(expires),
            created: issued,
        })
    }
}

/// Ends every session of the entity with unique id `id` (it was deleted).
pub(crate) fn drop_sessions_of(d: &mut Directory, t: &mut Touched, id: &str) {
    let gone: Vec<String> = d
        .sessions
        .iter()
        .filter(|(_, s)| s.entity.as_deref() == Some(id))
        .map(|(k, _)| k.clone())
        .collect();
    for k in gone {
        d.sessions.remove(&k);
        t.sessions.push(k);
    }
}

/// A fresh access key id and secret in AWS's shapes (for new accounts).
pub fn generate_credentials() -> Result<(String, Zeroizing<String>), IdentityError> {
    Ok((new_id("AKIA")?, new_secret(30)?))
}
