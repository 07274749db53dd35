//! The built-in KMS: keys of every account, sealed under the server master
//! key; the cryptographic operations; key policies; quotas; audit.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use strongroom_crypt::{Key, MasterKeys};
use strongroom_store::Store;

use crate::audit::Audit;
use crate::keys::{AliasRecord, KeyRecord, Material, alias_name, key_name};
use crate::ledger::Ledger;
use crate::policy;
use crate::quota::Quota;
use crate::{Caller, Context, DataKey, KeyService, KmsError};

/// First byte of a ciphertext blob.
const BLOB_FORMAT: u8 = 1;
const KEY_ID_LEN: usize = 36;
pub(crate) const DEFAULT_S3_ALIAS: &str = "alias/aws/s3";

/// Settings of the built-in KMS.
#[derive(Clone, Debug)]
pub struct KmsSettings {
    pub region: String,
    /// Cryptographic requests a second per account (0 = unlimited).
    pub rate_limit: u32,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, KeyRecord>,
    aliases: HashMap<(String, String), AliasRecord>,
}

pub struct Kms {
    store: Store,
    master: Arc<MasterKeys>,
    pub(crate) region: String,
    state: RwLock<State>,
    quota: Quota,
    ledger: Ledger,
    /// Mutations (create, alias, state, rotation) one at a time.
    writing: tokio::sync::Mutex<()>,
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn b64(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(b)
}

pub(crate) fn unb64(s: &str) -> Option<Vec<u8>> {
    base64_simd::STANDARD.decode_to_vec(s).ok()
}

fn internal(e: impl std::fmt::Display) -> KmsError {
    KmsError::Internal(e.to_string())
}

fn new_key_id() -> Result<String, KmsError> {
    let mut b = [0u8; 16];
    strongroom_crypt::fill_random(&mut b).map_err(internal)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex_simd::encode_to_string(b, hex_simd::AsciiCase::Lower);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

fn material_context(key_id: &str, version: u32) -> Vec<u8> {
    format!("strongroom kms material v1\0{key_id}\0{version}").into_bytes()
}

fn blob_context(arn: &str, version: u32, ctx: &Context) -> Vec<u8> {
    let c = serde_json::to_string(ctx).unwrap_or_default();
    format!("strongroom kms v1\0{arn}\0{version}\0{c}").into_bytes()
}

/// Crypto operations count against the request-rate quota.
fn is_crypto(op: &str) -> bool {
    matches!(
        op,
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" | "Encrypt" | "Decrypt" | "ReEncrypt" | "GenerateRandom"
    )
}

impl Kms {
    /// Loads the keys from the store.
    /// Loads the keys; key material sealed under a master key that is no
    /// longer the active one is re-sealed under the active key, so a
    /// rotated-out master key stops being needed by the KMS.
    pub async fn open(
        store: Store,
        master: Arc<MasterKeys>,
        audit: Audit,
        s: KmsSettings,
    ) -> Result<Arc<Kms>, KmsError> {
        let mut st = State::default();
        for (_, v) in store.system_scan("kms/key/").map_err(internal)? {
            let k: KeyRecord = serde_json::from_slice(&v).map_err(internal)?;
            st.keys.insert(k.key_id.clone(), k);
        }
        for (_, v) in store.system_scan("kms/alias/").map_err(internal)? {
            let a: AliasRecord = serde_json::from_slice(&v).map_err(internal)?;
            st.aliases.insert((a.account.clone(), a.name.clone()), a);
        }
        let kms = Arc::new(Kms {
            store,
            master,
            region: s.region.clone(),
            state: RwLock::new(st),
            quota: Quota::new(s.rate_limit),
            ledger: Ledger::new(audit, s.region.clone()),
            writing: tokio::sync::Mutex::new(()),
        });
        let active = kms.master.active().0.to_owned();
        let stale: Vec<KeyRecord> = kms
            .read()?
            .keys
            .values()
            .filter(|k| k.materials.iter().any(|m| m.master != active))
            .cloned()
            .collect();
        for mut k in stale {
            for m in k.materials.iter_mut().filter(|m| m.master != active) {
                let material = kms.material_of(&k.key_id, m)?;
                *m = kms.seal_material(&k.key_id, m.version, &material, m.created)?;
            }
            kms.save_key(k).await?;
        }
        Ok(kms)
    }

    pub(crate) fn key_arn(&self, account: &str, id: &str) -> String {
        format!("arn:aws:kms:{}:{account}:key/{id}", self.region)
    }

    pub(crate) fn alias_arn(&self, account: &str, name: &str) -> String {
        format!("arn:aws:kms:{}:{account}:{name}", self.region)
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, State>, KmsError> {
        self.state.read().map_err(|_| internal("kms state poisoned"))
    }

    fn write_state(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>, KmsError> {
        self.state.write().map_err(|_| internal("kms state poisoned"))
    }

    /// Finds a key by id, key ARN, alias name or alias ARN, as `account`
    /// sees it.
    pub(crate) fn find(&self, account: &str, key_id: &str) -> Result<KeyRecord, KmsError> {
        let st = self.read()?;
        let not_found = || {
            if key_id.contains("alias/") {
                let arn = if key_id.starts_with("arn:") {
                    key_id.to_owned()
                } else {
                    self.alias_arn(account, key_id)
                };
                KmsError::NotFound(format!("Alias {arn} is not found."))
            } else {
                let arn = if key_id.starts_with("arn:") {
                    key_id.to_owned()
                } else {
                    self.key_arn(account, key_id)
                };
                KmsError::NotFound(format!("Key '{arn}' does not exist"))
            }
        };
        let id = if let Some(rest) = key_id.strip_prefix("arn:aws:kms:") {
            // region:account:key/<id> or region:account:alias/<name>
            let mut p = rest.splitn(3, ':');
            let (Some(_region), Some(acct), Some(res)) = (p.next(), p.next(), p.next()) else {
                return Err(KmsError::NotFound(format!("Invalid arn {key_id}")));
            };
            if let Some(id) = res.strip_prefix("key/") {
                id.to_owned()
            } else if res.starts_with("alias/") {
                st.aliases
                    .get(&(acct.to_owned(), res.to_owned()))
                    .map(|a| a.target.clone())
                    .ok_or_else(not_found)?
            } else {
                return Err(KmsError::NotFound(format!("Invalid arn {key_id}")));
            }
        } else if key_id.starts_with("alias/") {
            st.aliases
                .get(&(account.to_owned(), key_id.to_owned()))
                .map(|a| a.target.clone())
                .ok_or_else(not_found)?
        } else {
            key_id.to_owned()
        };
        let k = st.keys.get(&id).cloned().ok_or_else(not_found)?;
        // a bare key id names a key of the caller's own account
        if !key_id.starts_with("arn:") && !key_id.starts_with("alias/") && k.account != account {
            return Err(not_found());
        }
        if k.state == "PendingDeletion" && k.deletion_date.is_some_and(|d| d <= now()) {
            return Err(not_found());
        }
        Ok(k)
    }

    /// Checks the key policy (and the caller's identity policies) for
    /// `action` by `caller`.
    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        key: &KeyRecord,
        action: &str,
        ctx: &Context,
    ) -> Result<(), KmsError> {
        self.authorize_bypass(caller, key, action, ctx, None)
    }

    /// [`Kms::authorize`] with the request's BypassPolicyLockoutSafetyCheck
    /// (CreateKey, PutKeyPolicy).
    pub(crate) fn authorize_bypass(
        &self,
        caller: &Caller,
        key: &KeyRecord,
        action: &str,
        ctx: &Context,
        bypass_lockout: Option<bool>,
    ) -> Result<(), KmsError> {
        let p = policy::parse(&key.policy)?;
        let keys = policy::kms_keys(&caller.account_id, caller.via_service.as_deref(), ctx, bypass_lockout);
        let r = policy::Request {
            action,
            principal_arn: &caller.arn,
            account: &caller.account_id,
            via_service: caller.via_service.as_deref(),
            context: ctx,
            source_ip: &caller.source_ip,
            key_arn: &key.arn,
            identity: caller.identity_decision(action, &key.arn, &keys),
            bypass_lockout,
        };
        if policy::allows(&p, &r) {
            Ok(())
        } else {
            Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: {action} on resource: {} because no resource-based policy allows the {action} action",
                caller.arn, key.arn
            )))
        }
    }

    /// The key must be usable for cryptography.
    pub(crate) fn usable(key: &KeyRecord) -> Result<(), KmsError> {
        match key.state.as_str() {
            "Enabled" => Ok(()),
            "Disabled" => Err(KmsError::Disabled(format!("{} is disabled.", key.arn))),
            _ => Err(KmsError::InvalidState(format!("{} is pending deletion.", key.arn))),
        }
    }

    fn material(&self, key: &KeyRecord, version: u32) -> Result<Key, KmsError> {
        let m = key.materials.iter().find(|m| m.version == version).ok_or_else(|| {
            KmsError::InvalidCiphertext("The ciphertext refers to a key version that does not exist.".into())
        })?;
        self.material_of(&key.key_id, m)
    }

    fn material_of(&self, key_id: &str, m: &Material) -> Result<Key, KmsError> {
        let version = m.version;
        let mk = self
            .master
            .get(&m.master)
            .ok_or_else(|| internal(format!("master key {} missing from the keyring", m.master)))?;
        let sealed = unb64(&m.sealed).ok_or_else(|| internal("sealed material is not base64"))?;
        strongroom_crypt::unwrap(mk, &sealed, &material_context(key_id, version)).map_err(internal)
    }

    fn seal_material(&self, key_id: &str, version: u32, k: &Key, created: i64) -> Result<Material, KmsError> {
        let (mid, mk) = self.master.active();
        let sealed = strongroom_crypt::wrap(mk, k, &material_context(key_id, version)).map_err(internal)?;
        Ok(Material {
            version,
            master: mid.to_owned(),
            sealed: b64(&sealed),
            created,
        })
    }

    fn new_material(&self, key_id: &str, version: u32) -> Result<Material, KmsError> {
        let k = Key::random().map_err(internal)?;
        self.seal_material(key_id, version, &k, now())
    }

    /// Persists a key record and updates memory.
    pub(crate) async fn save_key(&self, k: KeyRecord) -> Result<(), KmsError> {
        let bytes = serde_json::to_vec(&k).map_err(internal)?;
        let name = key_name(&k.key_id);
        self.store
            .commit(move |t| t.put_system(&name, &bytes))
            .await
            .map_err(internal)?;
        self.write_state()?.keys.insert(k.key_id.clone(), k);
        Ok(())
    }

    pub(crate) async fn save_alias(&self, a: AliasRecord) -> Result<(), KmsError> {
        let bytes = serde_json::to_vec(&a).map_err(internal)?;
        let name = alias_name(&a.account, &a.name);
        self.store
            .commit(move |t| t.put_system(&name, &bytes))
            .await
            .map_err(internal)?;
        self.write_state()?
            .aliases
            .insert((a.account.clone(), a.name.clone()), a);
        Ok(())
    }

    pub(crate) async fn drop_alias(&self, account: &str, name: &str) -> Result<(), KmsError> {
        let n = alias_name(account, name);
        self.store
            .commit(move |t| t.delete_system(&n))
            .await
            .map_err(internal)?;
        self.write_state()?
            .aliases
            .remove(&(account.to_owned(), name.to_owned()));
        Ok(())
    }

    pub(crate) fn aliases_of(&self, account: &str) -> Result<Vec<AliasRecord>, KmsError> {
        let mut v: Vec<AliasRecord> = self
            .read()?
            .aliases
            .values()
            .filter(|a| a.account == account)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    pub(crate) fn keys_of(&self, account: &str) -> Result<Vec<KeyRecord>, KmsError> {
        let t = now();
        let mut v: Vec<KeyRecord> = self
            .read()?
            .keys
            .values()
            .filter(|k| {
                k.account == account && !(k.state == "PendingDeletion" && k.deletion_date.is_some_and(|d| d <= t))
            })
            .cloned()
            .collect();
        v.sort_by(|a, b| a.created.cmp(&b.created).then(a.key_id.cmp(&b.key_id)));
        Ok(v)
    }

    /// Creates a key (customer managed unless `aws_managed`).
    pub(crate) async fn create_key(
        &self,
        account: &str,
        description: String,
        policy_doc: Option<String>,
        tags: Vec<(String, String)>,
        aws_managed: bool,
    ) -> Result<KeyRecord, KmsError> {
        let id = new_key_id()?;
        let policy_doc = match policy_doc {
            Some(p) => {
                policy::parse(&p)?;
                p
            }
            None if aws_managed => policy::aws_managed_policy(account, &self.region),
            None => policy::default_policy(account),
        };
        let k = KeyRecord {
            arn: self.key_arn(account, &id),
            key_id: id.clone(),
            account: account.to_owned(),
            description,
            state: "Enabled".into(),
            created: now(),
            deletion_date: None,
            manager: if aws_managed { "AWS".into() } else { "CUSTOMER".into() },
            // AWS managed keys rotate every year, always
            rotation_enabled: aws_managed,
            rotation_period_days: 365,
            next_rotation: aws_managed.then(|| now() + 365 * 86400),
            rotations: Vec::new(),
            materials: vec![self.new_material(&id, 1)?],
            policy: policy_doc,
            tags,
        };
        self.save_key(k.clone()).await?;
        Ok(k)
    }

    /// The account's `aws/s3` key, created on first use.
    pub(crate) async fn default_s3_key(&self, account: &str) -> Result<KeyRecord, KmsError> {
        if let Ok(k) = self.find(account, DEFAULT_S3_ALIAS) {
            return Ok(k);
        }
        let _one = self.writing.lock().await;
        if let Ok(k) = self.find(account, DEFAULT_S3_ALIAS) {
            return Ok(k);
        }
        let k = self
            .create_key(
                account,
                "Default key that protects my S3 objects when no other key is defined".into(),
                None,
                Vec::new(),
                true,
            )
            .await?;
        let t = now();
        self.save_alias(AliasRecord {
            name: DEFAULT_S3_ALIAS.into(),
            account: account.to_owned(),
            target: k.key_id.clone(),
            created: t,
            updated: t,
        })
        .await?;
        Ok(k)
    }

    pub(crate) fn lock(&self) -> &tokio::sync::Mutex<()> {
        &self.writing
    }

    /// Rotates a key: a new material version becomes current.
    pub(crate) async fn rotate(&self, mut k: KeyRecord, on_demand: bool) -> Result<KeyRecord, KmsError> {
        let next = k.current().map_or(1, |m| m.version + 1);
        k.materials.push(self.new_material(&k.key_id, next)?);
        k.rotations.push(now());
        if !on_demand && k.rotation_enabled {
            k.next_rotation = Some(now() + i64::from(k.rotation_period_days) * 86400);
        }
        self.save_key(k.clone()).await?;
        Ok(k)
    }

    /// Rotates every key whose automatic rotation is due.
    pub async fn rotate_due(&self) -> Result<usize, KmsError> {
        let t = now();
        let due: Vec<KeyRecord> = self
            .read()?
            .keys
            .values()
            .filter(|k| k.rotation_enabled && k.state == "Enabled" && k.next_rotation.is_some_and(|n| n <= t))
            .cloned()
            .collect();
        let _one = self.writing.lock().await;
        for k in &due {
            self.rotate(k.clone(), false).await?;
        }
        Ok(due.len())
    }

    /// Encrypts `plaintext` under the current material of `key`.
    pub(crate) fn seal(&self, key: &KeyRecord, plaintext: &[u8], ctx: &Context) -> Result<Vec<u8>, KmsError> {
        let m = key.current().ok_or_else(|| internal("key has no material"))?;
        let material = self.material(key, m.version)?;
        let sealed = strongroom_crypt::seal_bytes(&material, plaintext, &blob_context(&key.arn, m.version, ctx))
            .map_err(internal)?;
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + 4 + sealed.len());
        out.push(BLOB_FORMAT);
        out.extend_from_slice(key.key_id.as_bytes());
        out.extend_from_slice(&m.version.to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The key a ciphertext blob was made under.
    pub(crate) fn blob_key(&self, blob: &[u8]) -> Result<(KeyRecord, u32), KmsError> {
        let invalid = || KmsError::InvalidCiphertext(String::new());
        let (&BLOB_FORMAT, rest) = blob.split_first().ok_or_else(invalid)? else {
            return Err(invalid());
        };
        let id = rest
            .get(..KEY_ID_LEN)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(invalid)?;
        let v = rest
            .get(KEY_ID_LEN..KEY_ID_LEN + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(invalid)?;
        let k = self.read()?.keys.get(id).cloned().ok_or_else(invalid)?;
        Ok((k, v))
    }

    /// Decrypts a blob made by [`Kms::seal`].
    pub(crate) fn unseal(
        &self,
        key: &KeyRecord,
        version: u32,
        blob: &[u8],
        ctx: &Context,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, KmsError> {
        let material = self.material(key, version)?;
        let sealed = blob
            .get(1 + KEY_ID_LEN + 4..)
            .ok_or_else(|| KmsError::InvalidCiphertext(String::new()))?;
        strongroom_crypt::open_bytes(&material, sealed, &blob_context(&key.arn, version, ctx))
            .map_err(|_| KmsError::InvalidCiphertext(String::new()))
    }

    /// Counts and audits one operation.
    pub(crate) async fn account_for(
        &self,
        caller: &Caller,
        op: &'static str,
        key_arn: Option<&str>,
        ctx: Option<&Context>,
        result: &Result<(), KmsError>,
    ) -> Result<(), KmsError> {
        self.ledger.record(caller, op, key_arn, ctx, result).await
    }

    /// Applies the request-rate quota.
    pub(crate) fn throttle(&self, caller: &Caller, op: &str) -> Result<(), KmsError> {
        if is_crypto(op) && !self.quota.take(&caller.account_id) {
            return Err(KmsError::Throttled(
                "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.".into(),
            ));
        }
        Ok(())
    }

    async fn data_key(&self, caller: &Caller, key_id: Option<&str>, ctx: &Context) -> Result<DataKey, KmsError> {
        self.throttle(caller, "GenerateDataKey")?;
        let key = match key_id {
            Some(id) => self.find(&caller.account_id, id)?,
            None => self.default_s3_key(&caller.account_id).await?,
        };
        self.authorize(caller, &key, "kms:GenerateDataKey", ctx)?;
        Self::usable(&key)?;
        let dk = Key::random().map_err(internal)?;
        let ciphertext = self.seal(&key, dk.bytes(), ctx)?;
        Ok(DataKey {
            key_arn: key.arn,
            plaintext: dk,
            ciphertext,
        })
    }

    async fn decrypt_key(&self, caller: &Caller, blob: &[u8], ctx: &Context) -> Result<(String, Key), KmsError> {
        self.throttle(caller, "Decrypt")?;
        let (key, version) = self.blob_key(blob)?;
        self.authorize(caller, &key, "kms:Decrypt", ctx)?;
        Self::usable(&key)?;
        let plain = self.unseal(&key, version, blob, ctx)?;
        let k = Key::from_slice(&plain).ok_or_else(|| KmsError::InvalidCiphertext(String::new()))?;
        Ok((key.arn, k))
    }
}

#[async_trait::async_trait]
impl KeyService for Kms {
    async fn generate_data_key(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        context: &Context,
    ) -> Result<DataKey, KmsError> {
        let res = self.data_key(caller, key_id, context).await;
        let arn = res
            .as_ref()
            .ok()
            .map(|d| d.key_arn.clone())
            .or(key_id.map(str::to_owned));
        let unit = res.as_ref().map(|_| ()).map_err(Clone::clone);
        self.account_for(caller, "GenerateDataKey", arn.as_deref(), Some(context), &unit)
            .await?;
        res
    }

    async fn decrypt(&self, caller: &Caller, ciphertext: &[u8], context: &Context) -> Result<(String, Key), KmsError> {
        let res = self.decrypt_key(caller, ciphertext, context).await;
        let arn = match &res {
            Ok((a, _)) => Some(a.clone()),
            Err(_) => self.blob_key(ciphertext).ok().map(|(k, _)| k.arn),
        };
        let unit = res.as_ref().map(|_| ()).map_err(Clone::clone);
        self.account_for(caller, "Decrypt", arn.as_deref(), Some(context), &unit)
            .await?;
        res
    }

    fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    async fn authorize_use(
        &self,
        caller: &Caller,
        key_arn: &str,
        action: &str,
        context: &Context,
    ) -> Result<(), KmsError> {
        let key = self.find(&caller.account_id, key_arn)?;
        self.authorize(caller, &key, action, context)?;
        Self::usable(&key)
    }

    async fn resolve(&self, caller: &Caller, key_id: Option<&str>) -> Result<String, KmsError> {
        let key = match key_id {
            Some(id) => self.find(&caller.account_id, id)?,
            None => self.default_s3_key(&caller.account_id).await?,
        };
        Self::usable(&key)?;
        Ok(key.arn)
    }
}
