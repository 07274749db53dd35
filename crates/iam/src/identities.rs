//! Accounts and their credentials, persisted as system records
//! `account/<id>` and cached in memory for signature verification.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use strongroom_crypt::MasterKeys;
use strongroom_store::{Account, Store, StoreError};
use zeroize::Zeroizing;

/// What can go wrong managing identities.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid account: {0}")]
    Invalid(String),
}

/// What may be known of an account without its secret.
#[derive(Clone, Debug)]
pub struct AccountInfo {
    pub id: String,
    pub name: String,
    pub canonical_id: String,
    pub access_key: String,
}

/// An account to create (e.g. from a bootstrap file).
pub struct NewAccount {
    pub id: String,
    pub name: String,
    pub email: String,
    pub canonical_id: Option<String>,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every account, by access key and by id.
#[derive(Clone)]
pub struct Identities {
    pub(crate) store: Store,
    pub(crate) master: Arc<MasterKeys>,
    by_key: Arc<RwLock<HashMap<String, Account>>>,
    /// IAM users, keys, groups, policies, roles and sessions.
    pub(crate) dir: Arc<RwLock<crate::directory::Directory>>,
    /// Serializes IAM changes (read, modify, persist, publish).
    pub(crate) writer: Arc<tokio::sync::Mutex<()>>,
}

/// Why an access key did not yield a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// No such key (or deleted, or an expired session).
    Unknown,
    /// A session key without its token, or with another one.
    BadToken,
}

fn secret_context(account_id: &str) -> Vec<u8> {
    format!("strongroom account secret v1\0{account_id}").into_bytes()
}

impl Identities {
    /// Loads every account from the store, opening their sealed secrets
    /// with the master keyring; secrets stored in clear by an older build,
    /// or sealed under a master key that is no longer the active one, are
    /// sealed under the active key now.
    pub async fn load(store: Store, master: Arc<MasterKeys>) -> Result<Identities, IdentityError> {
        let mut by_key = HashMap::new();
        let mut legacy = Vec::new();
        for (_, v) in store.system_scan("account/")? {
            let mut a: Account = serde_json::from_slice(&v).map_err(|e| IdentityError::Invalid(e.to_string()))?;
            match a.sealed_secret.take() {
                Some(sealed) => {
                    a.secret_key = unseal(&master, &a.id, &sealed)?;
                    // after a master-key rotation, re-seal under the active key
                    if !sealed.starts_with(&format!("{}:", master.active().0)) {
                        legacy.push(a.id.clone());
                    }
                }
                None => legacy.push(a.id.clone()),
            }
            by_key.insert(a.access_key.clone(), a);
        }
        let (dir, mut reseal) = crate::directory::Directory::load(&store, &master)?;
        reseal.extend(
            crate::mfa::reseal_stale(&store, &master)?
                .into_iter()
                .map(|(n, v)| (n, Some(v))),
        );
        if !reseal.is_empty() {
            store
                .commit(move |t| -> Result<(), StoreError> {
                    for (name, v) in &reseal {
                        match v {
                            Some(v) => t.put_system(name, v)?,
                            None => t.delete_system(name)?,
                        }
                    }
                    Ok(())
                })
                .await?;
        }
        let ids = Identities {
            store,
            master,
            by_key: Arc::new(RwLock::new(by_key)),
            dir: Arc::new(RwLock::new(dir)),
            writer: Arc::new(tokio::sync::Mutex::new(())),
        };
        for id in legacy {
            let a = ids
                .by_key
                .read()
                .ok()
                .and_then(|m| m.values().find(|a| a.id == id).cloned());
            if let Some(a) = a {
                ids.persist(&a, true).await?;
            }
        }
        Ok(ids)
    }

    /// The stored form of an account: its secret sealed.
    fn stored(&self, a: &Account) -> Result<Vec<u8>, IdentityError> {
        let (mid, mk) = self.master.active();
        let sealed = strongroom_crypt::seal_bytes(mk, a.secret_key.as_bytes(), &secret_context(&a.id))
            .map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let mut rec = a.clone();
        rec.secret_key = String::new();
        rec.sealed_secret = Some(format!("{mid}:{}", base64_simd::STANDARD.encode_to_string(&sealed)));
        serde_json::to_vec(&rec).map_err(|e| IdentityError::Invalid(e.to_string()))
    }

    /// Writes an account record (unless it exists and `replace` is false);
    /// true when written.
    async fn persist(&self, a: &Account, replace: bool) -> Result<bool, IdentityError> {
        let rec = self.stored(a)?;
        let name = format!("account/{}", a.id);
        self.store
            .commit(move |txn| -> Result<bool, IdentityError> {
                if !replace && txn.system(&name)?.is_some() {
                    return Ok(false);
                }
                txn.put_system(&name, &rec)?;
                Ok(true)
            })
            .await
    }

    /// The store the identities live in (shared with account-level
    /// settings such as Block Public Access).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Number of accounts.
    pub fn count(&self) -> usize {
        self.by_key.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Creates `new` unless an account with its id exists. Returns true when
    /// it was created.
    pub async fn ensure(&self, new: NewAccount) -> Result<bool, IdentityError> {
        self.save(new, false).await
    }

    /// Creates or replaces the account `new.id` (root credentials given by
    /// the operator win over stored ones).
    pub async fn upsert(&self, new: NewAccount) -> Result<(), IdentityError> {
        self.save(new, true).await.map(|_| ())
    }

    async fn save(&self, new: NewAccount, replace: bool) -> Result<bool, IdentityError> {
        validate(&new)?;
        let acct = Account {
            canonical_id: new.canonical_id.clone().unwrap_or_else(|| derive_canonical_id(&new.id)),
            id: new.id,
            name: new.name,
            email: new.email,
            access_key: new.access_key,
            secret_key: new.secret_key,
            sealed_secret: None,
        };
        if self
            .with_account(&acct.access_key, |a| a.id != acct.id)
            .unwrap_or(false)
        {
            return Err(IdentityError::Invalid(format!(
                "access key of account {} is taken",
                acct.id
            )));
        }
        let written = self.persist(&acct, replace).await?;
        if written && let Ok(mut m) = self.by_key.write() {
            m.retain(|_, a| a.id != acct.id);
            m.insert(acct.access_key.clone(), acct);
        }
        Ok(written)
    }

    /// Runs `f` on the account of an access key, without copying its secret.
    pub(crate) fn with_account<R>(&self, access_key: &str, f: impl FnOnce(&Account) -> R) -> Option<R> {
        self.by_key.read().ok().and_then(|m| m.get(access_key).map(f))
    }

    /// Runs `f` on the secret of an access key (for verifiers that sign
    /// themselves); the secret is never copied out.
    /// Runs `f` with the secret of an access key (accounts, IAM users,
    /// sessions), if it exists.
    pub fn with_secret<R>(&self, access_key: &str, f: impl FnOnce(&str) -> R) -> Option<R> {
        self.secret_of(access_key).map(|s| f(&s))
    }

    /// Runs `f` on the account with this id.
    fn with_account_id<R>(&self, id: &str, f: impl FnOnce(&Account) -> R) -> Option<R> {
        self.by_key
            .read()
            .ok()
            .and_then(|m| m.values().find(|a| a.id == id).map(f))
    }

    /// Public facts of the account with this id (no secret).
    pub fn account(&self, id: &str) -> Option<AccountInfo> {
        self.with_account_id(id, |a| AccountInfo {
            id: a.id.clone(),
            name: a.name.clone(),
            canonical_id: a.canonical_id.clone(),
            access_key: a.access_key.clone(),
        })
    }

    /// The canonical id of account `id` (one copy, not the account's).
    pub fn canonical_id(&self, id: &str) -> Option<String> {
        self.with_account_id(id, |a| a.canonical_id.clone())
    }

    /// The principal of an access key whose signature a verifier checked
    /// (s3s for S3, [`Identities::verify_sigv4`] for the other services):
    /// an account root, an IAM user's active key, or a live session whose
    /// token matches (compared in constant time). Callers must only pass
    /// keys that were verified.
    pub fn principal(&self, access_key: &str, token: Option<&str>) -> Result<crate::Principal, KeyError> {
        if let Some(p) = self.with_account(access_key, |a| crate::Principal {
            account_id: a.id.clone(),
            display_name: a.name.clone(),
            canonical_id: a.canonical_id.clone(),
            access_key: a.access_key.clone(),
            kind: crate::CallerKind::Root,
            mfa_at: None,
            temporary: false,
            _proof: crate::Proof,
        }) {
            return Ok(p);
        }
        let dir = self.dir.read().map_err(|_| KeyError::Unknown)?;
        let base = |account: &str, kind: crate::CallerKind, mfa_at: Option<i64>, temporary: bool| {
            let info = self.account(account);
            crate::Principal {
                account_id: account.to_owned(),
                display_name: info.as_ref().map(|i| i.name.clone()).unwrap_or_default(),
                canonical_id: info.map(|i| i.canonical_id).unwrap_or_default(),
                access_key: access_key.to_owned(),
                kind,
                mfa_at,
                temporary,
                _proof: crate::Proof,
            }
        };
        if let Some(k) = dir.keys.get(access_key) {
            if k.status != crate::directory::KeyStatus::Active {
                return Err(KeyError::Unknown);
            }
            if k.user.is_empty() {
                // an extra access key of the account root
                let mut p = base(&k.account, crate::CallerKind::Root, None, false);
                p.access_key = k.id.clone();
                return Ok(p);
            }
            let user = dir.accounts.get(&k.account).and_then(|a| a.users.get(&k.user));
            let Some(u) = user else {
                return Err(KeyError::Unknown);
            };
            let kind = crate::CallerKind::User {
                name: u.name.clone(),
                id: u.id.clone(),
                path: u.path.clone(),
            };
            return Ok(base(&k.account, kind, None, false));
        }
        if let Some(sess) = dir.sessions.get(access_key) {
            if sess.expires <= crate::now_secs() {
                return Err(KeyError::Unknown);
            }
            let given = token
                .map(|t| crate::sigv4::sha256_hex(t.as_bytes()))
                .unwrap_or_default();
            if !strongroom_crypt::ct_eq(given.as_bytes(), sess.token_sha256.as_bytes()) {
                return Err(KeyError::BadToken);
            }
            // the entity the session was issued to, by unique id: none (it
            // was deleted, or the record predates ids) is no session
            let acct = dir.accounts.get(&sess.account);
            let id = sess.entity.as_deref();
            let kind = match &sess.of {
                crate::directory::SessionOf::User(None) => crate::CallerKind::Root,
                crate::directory::SessionOf::User(Some(_)) => {
                    let u = acct.zip(id).and_then(|(a, id)| a.user_by_id(id));
                    match u {
                        Some(u) => crate::CallerKind::User {
                            name: u.name.clone(),
                            id: u.id.clone(),
                            path: u.path.clone(),
                        },
                        None => return Err(KeyError::Unknown),
                    }
                }
                crate::directory::SessionOf::Role { session, .. } => {
                    let r = acct.zip(id).and_then(|(a, id)| a.role_by_id(id));
                    match r {
                        Some(r) => crate::CallerKind::Role {
                            role: r.name.clone(),
                            role_id: r.id.clone(),
                            session: session.clone(),
                            path: r.path.clone(),
                        },
                        None => return Err(KeyError::Unknown),
                    }
                }
            };
            return Ok(base(&sess.account, kind, sess.mfa_at, true));
        }
        Err(KeyError::Unknown)
    }

    /// The secret of any access key (root, IAM user's active key, live
    /// session), for signature verification.
    /// The secret of an access key, for the signature verifiers.
    pub fn secret_of(&self, access_key: &str) -> Option<Zeroizing<String>> {
        if let Some(s) = self.with_account(access_key, |a| Zeroizing::new(a.secret_key.clone())) {
            return Some(s);
        }
        let dir = self.dir.read().ok()?;
        if let Some(k) = dir.keys.get(access_key)
            && k.status == crate::directory::KeyStatus::Active
        {
            return Some(k.secret.clone());
        }
        dir.sessions
            .get(access_key)
            .filter(|s| s.expires > crate::now_secs())
            .map(|s| s.secret.clone())
    }
}

fn validate(a: &NewAccount) -> Result<(), IdentityError> {
    if a.id.len() != 12 || !a.id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdentityError::Invalid(format!(
            "account id must be 12 digits: {:?}",
            a.id
        )));
    }
    if a.access_key.len() < 16 || !a.access_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(IdentityError::Invalid(
            "access key must be at least 16 letters or digits".into(),
        ));
    }
    if a.secret_key.len() < 20 {
        return Err(IdentityError::Invalid(
            "secret key must be at least 20 characters".into(),
        ));
    }
    if let Some(c) = &a.canonical_id
        && (c.len() != 64 || !c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(IdentityError::Invalid("canonical_id must be 64 hex digits".into()));
    }
    Ok(())
}

/// Canonical user id derived from the account id when none is given.
pub fn derive_canonical_id(account_id: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("strongroom-canonical:{account_id}").as_bytes(),
    );
    hex_simd::encode_to_string(d.as_ref(), hex_simd::AsciiCase::Lower)
}

fn unseal(master: &MasterKeys, account_id: &str, sealed: &str) -> Result<String, IdentityError> {
    let bad = |m: &str| IdentityError::Invalid(format!("secret of account {account_id}: {m}"));
    let (mid, b64) = sealed.split_once(':').ok_or_else(|| bad("malformed"))?;
    let mk = master
        .get(mid)
        .ok_or_else(|| bad(&format!("sealed under master key {mid}, which is not in the keyring")))?;
    let blob = base64_simd::STANDARD.decode_to_vec(b64).map_err(|_| bad("malformed"))?;
    let plain =
        strongroom_crypt::open_bytes(mk, &blob, &secret_context(account_id)).map_err(|_| bad("does not open"))?;
    String::from_utf8(plain.to_vec()).map_err(|_| bad("not UTF-8"))
}
