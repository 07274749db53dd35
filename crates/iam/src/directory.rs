//! IAM entities inside accounts: users with access keys, groups, customer
//! managed policies, roles with trust policies, and temporary (STS)
//! credentials. Persisted as system records (`iam/<account>` holds an
//! account's entities, `iam-key/<id>` one access key with its secret sealed
//! under the master key, `iam-session/<id>` one session) and held in memory,
//! with every policy document parsed once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strongroom_crypt::MasterKeys;
use zeroize::Zeroizing;

use crate::IdentityError;
use crate::policy::{Kind, Policy};

/// A policy document as written, with its parsed form.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Doc {
    pub text: String,
    #[serde(skip)]
    pub parsed: Option<Arc<Policy>>,
}

impl Doc {
    pub fn new(text: &str, kind: Kind) -> Result<Doc, crate::policy::Malformed> {
        let p = Policy::parse(text, kind)?;
        Ok(Doc {
            text: text.to_owned(),
            parsed: Some(Arc::new(p)),
        })
    }
    fn reparse(&mut self, kind: Kind) {
        self.parsed = Policy::parse(&self.text, kind).ok().map(Arc::new);
    }
    /// Binds the parsed document's user and role principals.
    pub(crate) fn bind(&mut self, ids: BTreeMap<String, String>) {
        if let Some(p) = &self.parsed {
            let mut p = (**p).clone();
            p.bind(ids);
            self.parsed = Some(Arc::new(p));
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    #[serde(default)]
    pub inline: BTreeMap<String, Doc>,
    #[serde(default)]
    pub attached: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Serial of the user's enabled MFA device.
    #[serde(default)]
    pub mfa: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    #[serde(default)]
    pub inline: BTreeMap<String, Doc>,
    #[serde(default)]
    pub attached: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ManagedPolicy {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub path: String,
    pub created: i64,
    pub doc: Doc,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    pub trust: Doc,
    #[serde(default)]
    pub inline: BTreeMap<String, Doc>,
    #[serde(default)]
    pub attached: Vec<String>,
    pub max_session: u64,
    #[serde(default)]
    pub description: Option<String>,
    /// The unique ids the trust policy's user and role principals were
    /// bound to when it was written.
    #[serde(default)]
    pub trust_principals: BTreeMap<String, String>,
}

/// A virtual MFA device created through the IAM API.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VirtualMfa {
    pub serial: String,
    pub user: Option<String>,
    pub created: i64,
    pub enabled: Option<i64>,
}

/// Everything IAM holds for one account.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AccountIam {
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
    /// Customer managed policies by name.
    #[serde(default)]
    pub policies: BTreeMap<String, ManagedPolicy>,
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    #[serde(default)]
    pub mfa_devices: BTreeMap<String, VirtualMfa>,
    /// OpenID Connect identity providers by ARN.
    #[serde(default)]
    pub oidc: BTreeMap<String, OidcProvider>,
}

/// An OpenID Connect identity provider (registry only: web-identity
/// federation is not built).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OidcProvider {
    pub url: String,
    pub client_ids: Vec<String>,
    pub thumbprints: Vec<String>,
    pub created: i64,
}

impl AccountIam {
    fn reparse(&mut self) {
        for u in self.users.values_mut() {
            u.inline.values_mut().for_each(|d| d.reparse(Kind::Identity));
        }
        for g in self.groups.values_mut() {
            g.inline.values_mut().for_each(|d| d.reparse(Kind::Identity));
        }
        for p in self.policies.values_mut() {
            p.doc.reparse(Kind::Identity);
        }
        for r in self.roles.values_mut() {
            r.trust.reparse(Kind::Trust);
            r.trust.bind(r.trust_principals.clone());
            r.inline.values_mut().for_each(|d| d.reparse(Kind::Identity));
        }
    }

    /// The user with this unique id.
    pub fn user_by_id(&self, id: &str) -> Option<&User> {
        self.users.values().find(|u| u.id == id)
    }

    /// The role with this unique id.
    pub fn role_by_id(&self, id: &str) -> Option<&Role> {
        self.roles.values().find(|r| r.id == id)
    }

    /// The path of a stored user, group or role (`kind` = "user" |
    /// "group" | "role"; names as stored).
    pub fn path_of(&self, kind: &str, name: &str) -> Option<&str> {
        match kind {
            "user" => self.users.get(name).map(|u| u.path.as_str()),
            "group" => self.groups.get(name).map(|g| g.path.as_str()),
            "role" => self.roles.get(name).map(|r| r.path.as_str()),
            _ => None,
        }
    }

    /// The managed policy an ARN names, if it is this account's.
    pub fn managed(&self, arn: &str) -> Option<&ManagedPolicy> {
        self.policies.values().find(|p| p.arn == arn)
    }

    /// The parsed document of a managed policy: this account's or an AWS
    /// managed one.
    pub fn managed_doc(&self, arn: &str) -> Option<Arc<Policy>> {
        self.managed(arn)
            .and_then(|m| m.doc.parsed.clone())
            .or_else(|| aws_managed(arn))
    }
}

/// The AWS managed policies Strongroom knows (`arn:aws:iam::aws:policy/NAME`),
/// with AWS's documents.
const AWS_MANAGED: &[(&str, &str)] = &[
    (
        "AmazonS3FullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","s3-object-lambda:*"],"Resource":"*"}]}"#,
    ),
    (
        "AmazonS3ReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*","s3:Describe*","s3-object-lambda:Get*","s3-object-lambda:List*"],"Resource":"*"}]}"#,
    ),
    (
        "IAMReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:GenerateCredentialReport","iam:GenerateServiceLastAccessedDetails","iam:Get*","iam:List*","iam:SimulateCustomPolicy","iam:SimulatePrincipalPolicy"],"Resource":"*"}]}"#,
    ),
    (
        "IAMFullAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:*"],"Resource":"*"}]}"#,
    ),
];

/// An AWS managed policy by ARN.
pub fn aws_managed(arn: &str) -> Option<Arc<Policy>> {
    static PARSED: std::sync::OnceLock<Vec<(String, Arc<Policy>)>> = std::sync::OnceLock::new();
    let all = PARSED.get_or_init(|| {
        AWS_MANAGED
            .iter()
            .filter_map(|(n, d)| {
                Policy::parse(d, Kind::Identity)
                    .ok()
                    .map(|p| (format!("arn:aws:iam::aws:policy/{n}"), Arc::new(p)))
            })
            .collect()
    });
    all.iter().find(|(a, _)| a == arn).map(|(_, p)| p.clone())
}

/// Active or Inactive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
        }
    }
}

/// An IAM user's long-term access key.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub account: String,
    pub user: String,
    pub status: KeyStatus,
    pub created: i64,
    pub sealed_secret: String,
    #[serde(skip)]
    pub secret: Zeroizing<String>,
}

/// Who a session acts as.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SessionOf {
    /// GetSessionToken by a user (None: the account root).
    User(Option<String>),
    /// AssumeRole: role name and session name.
    Role { role: String, session: String },
}

/// Temporary credentials from STS.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub account: String,
    pub of: SessionOf,
    /// Unix seconds.
    pub expires: i64,
    pub issued: i64,
    /// Unix seconds of the MFA check, if the session was MFA-authenticated.
    pub mfa_at: Option<i64>,
    pub sealed_secret: String,
    /// SHA-256 of the session token (hex).
    pub token_sha256: String,
    #[serde(skip)]
    pub secret: Zeroizing<String>,
    /// The unique id of the user or role the session acts as (None for an
    /// account root's session). The session resolves to that entity, never
    /// to whoever holds its name now: deleted, it dies; a new entity under
    /// the old name is not it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Session policies (AssumeRole `Policy` and `PolicyArns`): the session
    /// may do only what these allow as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Doc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_arns: Vec<String>,
}

/// A system record to write (name and bytes) or, with `None`, to delete.
pub(crate) type Record = (String, Option<Vec<u8>>);

/// The in-memory directory.
#[derive(Clone, Default)]
pub struct Directory {
    pub accounts: HashMap<String, AccountIam>,
    pub keys: HashMap<String, AccessKey>,
    pub sessions: HashMap<String, Session>,
}

impl Directory {
    /// The unique id of the IAM user or role an ARN names, path included;
    /// None when no such entity exists.
    pub fn entity_id_of(&self, arn: &str) -> Option<String> {
        if !crate::policy::is_entity_arn(arn) {
            return None;
        }
        let mut p = arn.splitn(6, ':');
        let a = self.accounts.get(p.nth(4)?)?;
        let (kind, full) = p.next()?.split_once('/')?;
        let (path, name) = match full.rsplit_once('/') {
            Some((p, n)) => (format!("/{p}/"), n),
            None => ("/".to_owned(), full),
        };
        match kind {
            "user" => a.users.get(name).filter(|u| u.path == path).map(|u| u.id.clone()),
            "role" => a.roles.get(name).filter(|r| r.path == path).map(|r| r.id.clone()),
            _ => None,
        }
    }

    /// Binds the user and role principals of a document to the unique ids
    /// of the entities they name now (see `Principals::bound`); an error
    /// naming the first principal that names no entity.
    pub fn bind_principals(&self, p: &Policy) -> Result<BTreeMap<String, String>, String> {
        p.entity_principals()
            .into_iter()
            .map(|arn| match self.entity_id_of(&arn) {
                Some(id) => Ok((arn, id)),
                None => Err(arn),
            })
            .collect()
    }
}

pub(crate) fn key_context(id: &str) -> Vec<u8> {
    format!("strongroom iam key secret v1\0{id}").into_bytes()
}

pub(crate) fn seal(master: &MasterKeys, secret: &str, ctx: &[u8]) -> Result<String, IdentityError> {
    let (mid, mk) = master.active();
    let sealed =
        strongroom_crypt::seal_bytes(mk, secret.as_bytes(), ctx).map_err(|e| IdentityError::Invalid(e.to_string()))?;
    Ok(format!("{mid}:{}", base64_simd::STANDARD.encode_to_string(&sealed)))
}

pub(crate) fn unseal(master: &MasterKeys, sealed: &str, ctx: &[u8]) -> Result<Zeroizing<String>, IdentityError> {
    let bad = |m: &str| IdentityError::Invalid(format!("sealed IAM secret: {m}"));
    let (mid, b64) = sealed.split_once(':').ok_or_else(|| bad("malformed"))?;
    let mk = master.get(mid).ok_or_else(|| bad("master key not in the keyring"))?;
    let blob = base64_simd::STANDARD.decode_to_vec(b64).map_err(|_| bad("malformed"))?;
    let plain = strongroom_crypt::open_bytes(mk, &blob, ctx).map_err(|_| bad("does not open"))?;
    Ok(Zeroizing::new(
        String::from_utf8(plain.to_vec()).map_err(|_| bad("not UTF-8"))?,
    ))
}

impl Directory {
    /// Loads every IAM record; secrets sealed under an older master key
    /// are returned for re-sealing.
    pub(crate) fn load(
        store: &strongroom_store::Store,
        master: &MasterKeys,
    ) -> Result<(Directory, Vec<Record>), IdentityError> {
        let bad = |e: serde_json::Error| IdentityError::Invalid(e.to_string());
        let mut d = Directory::default();
        let mut reseal = Vec::new();
        let active = format!("{}:", master.active().0);
        for (name, v) in store.system_scan("iam/")? {
            let mut a: AccountIam = serde_json::from_slice(&v).map_err(bad)?;
            a.reparse();
            d.accounts.insert(name.trim_start_matches("iam/").to_owned(), a);
        }
        for (name, v) in store.system_scan("iam-key/")? {
            let mut k: AccessKey = serde_json::from_slice(&v).map_err(bad)?;
            k.secret = unseal(master, &k.sealed_secret, &key_context(&k.id))?;
            if !k.sealed_secret.starts_with(&active) {
                k.sealed_secret = seal(master, &k.secret, &key_context(&k.id))?;
                reseal.push((name, Some(serde_json::to_vec(&k).map_err(bad)?)));
            }
            d.keys.insert(k.id.clone(), k);
        }
        let now = crate::now_secs();
        for (name, v) in store.system_scan("iam-session/")? {
            let mut s: Session = serde_json::from_slice(&v).map_err(bad)?;
            if s.expires <= now {
                // expired sessions are forgotten for good
                reseal.push((name, None));
                continue;
            }
            s.secret = unseal(master, &s.sealed_secret, &key_context(&s.id))?;
            if !s.sealed_secret.starts_with(&active) {
                s.sealed_secret = seal(master, &s.secret, &key_context(&s.id))?;
                reseal.push((name.clone(), Some(serde_json::to_vec(&s).map_err(bad)?)));
            }
            if let Some(doc) = &mut s.policy {
                doc.reparse(Kind::Identity);
            }
            d.sessions.insert(s.id.clone(), s);
        }
        Ok((d, reseal))
    }

    /// Identity policies that apply to a user: inline, attached, and those
    /// of the user's groups. An error when any of them cannot be used (a
    /// stored document that no longer parses, an attached policy that is
    /// gone): a Deny among them must not silently disappear.
    pub fn user_policies(&self, account: &str, user: &str) -> Result<Vec<Arc<Policy>>, String> {
        let a = self
            .accounts
            .get(account)
            .ok_or_else(|| format!("account {account} has no IAM records"))?;
        let u = a.users.get(user).ok_or_else(|| format!("user {user} is gone"))?;
        let mut out = parsed_docs(u.inline.iter(), &format!("user {user}"))?;
        attached_docs(a, &u.attached, &mut out)?;
        for g in &u.groups {
            let g = a
                .groups
                .get(g)
                .ok_or_else(|| format!("group {g} of user {user} is gone"))?;
            out.extend(parsed_docs(g.inline.iter(), &format!("group {}", g.name))?);
            attached_docs(a, &g.attached, &mut out)?;
        }
        Ok(out)
    }

    /// The session policies of a session's access key: None when it has
    /// none; an error when one cannot be used.
    pub fn session_policies(&self, key: &str) -> Result<Option<Vec<Arc<Policy>>>, String> {
        let s = self.sessions.get(key).ok_or_else(|| "the session is gone".to_owned())?;
        if s.policy.is_none() && s.policy_arns.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::new();
        if let Some(doc) = &s.policy {
            out.push(
                doc.parsed
                    .clone()
                    .ok_or_else(|| "the session policy does not parse".to_owned())?,
            );
        }
        let a = self
            .accounts
            .get(&s.account)
            .ok_or_else(|| format!("account {} has no IAM records", s.account))?;
        attached_docs(a, &s.policy_arns, &mut out)?;
        Ok(Some(out))
    }

    /// Identity policies of a role (fails like [`Directory::user_policies`]).
    pub fn role_policies(&self, account: &str, role: &str) -> Result<Vec<Arc<Policy>>, String> {
        let a = self
            .accounts
            .get(account)
            .ok_or_else(|| format!("account {account} has no IAM records"))?;
        let r = a.roles.get(role).ok_or_else(|| format!("role {role} is gone"))?;
        let mut out = parsed_docs(r.inline.iter(), &format!("role {role}"))?;
        attached_docs(a, &r.attached, &mut out)?;
        Ok(out)
    }
}

/// The parsed form of each inline document; an error for one that did not parse.
fn parsed_docs<'a>(docs: impl Iterator<Item = (&'a String, &'a Doc)>, owner: &str) -> Result<Vec<Arc<Policy>>, String> {
    docs.map(|(name, d)| {
        d.parsed
            .clone()
            .ok_or_else(|| format!("inline policy {name} of {owner} does not parse"))
    })
    .collect()
}

fn attached_docs(a: &AccountIam, arns: &[String], out: &mut Vec<Arc<Policy>>) -> Result<(), String> {
    for arn in arns {
        out.push(
            a.managed_doc(arn)
                .ok_or_else(|| format!("attached policy {arn} is gone or does not parse"))?,
        );
    }
    Ok(())
}

/// Random identifiers in AWS's shapes: prefix + 16 upper-case letters and
/// digits (AKIA..., AIDA..., ASIA...).
pub(crate) fn new_id(prefix: &str) -> Result<String, IdentityError> {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut b = [0u8; 16];
    strongroom_crypt::fill_random(&mut b).map_err(|e| IdentityError::Invalid(e.to_string()))?;
    let tail: String = b.iter().map(|x| ALPHA[usize::from(*x) % ALPHA.len()] as char).collect();
    Ok(format!("{prefix}{tail}"))
}

/// A random secret of `n` bytes, base64 (40 characters for 30 bytes).
pub(crate) fn new_secret(n: usize) -> Result<Zeroizing<String>, IdentityError> {
    let mut b = Zeroizing::new(vec![0u8; n]);
    strongroom_crypt::fill_random(&mut b).map_err(|e| IdentityError::Invalid(e.to_string()))?;
    Ok(Zeroizing::new(base64_simd::STANDARD.encode_to_string(&*b)))
}
