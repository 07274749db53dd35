//! Account secrets at rest: sealed under the master key, legacy clear
//! records re-sealed at load, a missing master key refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use strongroom_crypt::{Key, MasterKeys, key_line};
use strongroom_iam::{Identities, NewAccount};
use strongroom_store::Store;

const SECRET: &str = "SecretThatMustNotBeOnDisk00000000000001";

fn ring(keys: &[&Key]) -> Arc<MasterKeys> {
    let text: Vec<String> = keys.iter().map(|k| key_line(k)).collect();
    Arc::new(MasterKeys::parse(&text.join("\n")).unwrap())
}

fn account() -> NewAccount {
    NewAccount {
        id: "123456789012".into(),
        name: "a".into(),
        email: "a@localhost".into(),
        canonical_id: None,
        access_key: "AKIATESTSEALING00001".into(),
        secret_key: SECRET.into(),
    }
}

fn raw_record(store: &Store) -> String {
    String::from_utf8(store.system("account/123456789012").unwrap().unwrap()).unwrap()
}

#[tokio::test]
async fn secrets_are_sealed_and_reopen_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let k = Key::random().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let ids = Identities::load(store.clone(), ring(&[&k])).await.unwrap();
        ids.ensure(account()).await.unwrap();
        let rec = raw_record(&store);
        assert!(!rec.contains(SECRET), "secret in clear: {rec}");
        assert!(rec.contains("sealed_secret"));
    }
    let store = Store::open(dir.path()).unwrap();
    // without the key that sealed it, start-up refuses
    assert!(
        Identities::load(store.clone(), ring(&[&Key::random().unwrap()]))
            .await
            .is_err()
    );
    // rotated keyring: the old key still opens the record, which is then
    // re-sealed under the new active key, so the old key can go
    let new = Key::random().unwrap();
    let ids = Identities::load(store.clone(), ring(&[&k, &new])).await.unwrap();
    assert!(ids.account("123456789012").is_some());
    drop(ids);
    let ids = Identities::load(store, ring(&[&new])).await.unwrap();
    assert!(ids.account("123456789012").is_some());
}

#[tokio::test]
async fn clear_secrets_of_older_builds_are_sealed_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let legacy = serde_json::json!({
        "id": "123456789012", "name": "a", "email": "a@localhost",
        "canonical_id": "c", "access_key": "AKIATESTSEALING00001", "secret_key": SECRET,
    })
    .to_string();
    store
        .commit(move |t| t.put_system("account/123456789012", legacy.as_bytes()))
        .await
        .unwrap();
    assert!(raw_record(&store).contains(SECRET));
    let ids = Identities::load(store.clone(), ring(&[&Key::random().unwrap()]))
        .await
        .unwrap();
    assert!(ids.account("123456789012").is_some());
    assert!(!raw_record(&store).contains(SECRET));
}

/// Expired STS sessions leave the store (at the next session and at load);
/// live ones survive a restart with their secret sealed, never in clear.
#[tokio::test]
async fn sessions_are_sealed_and_expired_ones_are_removed() {
    use strongroom_iam::directory::SessionOf;
    let dir = tempfile::tempdir().unwrap();
    let k = Key::random().unwrap();
    let (dead, live, live_secret);
    {
        let store = Store::open(dir.path()).unwrap();
        let ids = Identities::load(store.clone(), ring(&[&k])).await.unwrap();
        ids.ensure(account()).await.unwrap();
        let acct = "123456789012";
        // a session that is already over
        dead = ids
            .new_session(acct, SessionOf::User(None), 0, None, Default::default())
            .await
            .unwrap()
            .access_key;
        assert!(store.system(&format!("iam-session/{dead}")).unwrap().is_some());
        let l = ids
            .new_session(acct, SessionOf::User(None), 900, None, Default::default())
            .await
            .unwrap();
        live = l.access_key.clone();
        live_secret = l.secret.to_string();
        assert!(
            store.system(&format!("iam-session/{dead}")).unwrap().is_none(),
            "removed at the next session"
        );
        let raw = String::from_utf8(store.system(&format!("iam-session/{live}")).unwrap().unwrap()).unwrap();
        assert!(!raw.contains(&live_secret), "session secrets are sealed");
        assert!(
            !raw.contains(l.token.as_deref().unwrap().as_str()),
            "tokens are stored as digests"
        );
    }
    let store = Store::open(dir.path()).unwrap();
    let _ids = Identities::load(store.clone(), ring(&[&k])).await.unwrap();
    assert!(store.system(&format!("iam-session/{live}")).unwrap().is_some());
}

/// After a master-key rotation the old key can leave the keyring: MFA
/// device seeds and live STS session secrets are re-sealed under the
/// active key at start-up, as account and access-key secrets are. Before,
/// the root's device then refused every code and a live session kept the
/// server from starting until it expired.
#[tokio::test]
async fn mfa_seeds_and_live_sessions_are_resealed_so_the_old_master_key_can_go() {
    use strongroom_iam::MfaCaller;
    use strongroom_iam::directory::SessionOf;
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (Key::random().unwrap(), Key::random().unwrap());
    let acct = "123456789012";
    let store = Store::open(dir.path()).unwrap();
    let (serial, seed, session, session_secret);
    {
        let ids = Identities::load(store.clone(), ring(&[&old])).await.unwrap();
        ids.ensure(account()).await.unwrap();
        (serial, seed) = ids.enable_root_mfa(acct).await.unwrap();
        let s = ids
            .new_session(acct, SessionOf::User(None), 900, None, Default::default())
            .await
            .unwrap();
        session = s.access_key.clone();
        session_secret = s.secret.to_string();
    }
    // the rotation: the new key is active, the old one still present
    drop(Identities::load(store.clone(), ring(&[&old, &new])).await.unwrap());
    // the old key gone
    let ids = Identities::load(store.clone(), ring(&[&new])).await.unwrap();
    assert_eq!(
        ids.secret_of(&session).as_deref().map(String::as_str),
        Some(session_secret.as_str())
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = strongroom_iam::totp::code(&seed, now / 30);
    let header = format!("{serial} {code:06}");
    assert_eq!(ids.check_mfa(acct, Some(&header), now, MfaCaller::Owner).await, Ok(()));
}
