//! The built-in KMS's JSON API (`X-Amz-Target: TrentService.*`) reads
//! untrusted JSON bodies and untrusted ciphertext blobs. Properties: every
//! answer is 200 or a 4xx with a JSON error naming its `__type` (bad input
//! is never a 5xx or a panic); a ciphertext blob decrypts to exactly the
//! plaintext it was made from, under exactly its encryption context; a blob
//! with any byte changed, or arbitrary bytes offered as a blob, is refused
//! with InvalidCiphertextException and never decrypts.
//!
//! Input: first byte picks the operation (or, past the list, the ciphertext
//! property with the rest as plaintext); the rest is the JSON body.

use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use strongroom_kms::{Caller, Kms};

use strongroom_kms::api::OPERATIONS as OPS;

struct World {
    rt: tokio::runtime::Runtime,
    kms: Arc<Kms>,
    caller: Caller,
    /// A key the fuzzed operations cannot name (no alias, a random id).
    hidden: String,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir().join(format!("strongroom-fuzz-kms-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let store = strongroom_store::Store::open(&dir).expect("store");
        let master = Arc::new(strongroom_crypt::MasterKeys::parse(&"ab".repeat(32)).expect("keyring"));
        let audit = strongroom_kms::Audit::open(&dir).expect("audit");
        let settings = strongroom_kms::KmsSettings {
            region: "us-east-1".into(),
            rate_limit: 0,
        };
        let kms = rt.block_on(Kms::open(store, master, audit, settings)).expect("kms");
        let caller = Caller {
            account_id: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:root".into(),
            access_key: "AKIAFUZZ000000000001".into(),
            source_ip: "127.0.0.1".into(),
            via_service: None,
            identity: None,
        };
        let call = |op: &str, body: Value| {
            let (st, out) = rt.block_on(strongroom_kms::api::handle(
                &kms,
                &caller,
                &format!("TrentService.{op}"),
                body.to_string().as_bytes(),
            ));
            assert_eq!(st, 200, "{op}: {}", String::from_utf8_lossy(&out));
            serde_json::from_slice::<Value>(&out).expect("json")
        };
        // the key the seeds name by alias, and the hidden one
        let named = call("CreateKey", json!({}))["KeyMetadata"]["KeyId"]
            .as_str()
            .expect("id")
            .to_owned();
        call("CreateAlias", json!({"AliasName": "alias/fuzz", "TargetKeyId": named}));
        let hidden = call("CreateKey", json!({}))["KeyMetadata"]["KeyId"]
            .as_str()
            .expect("id")
            .to_owned();
        World {
            rt,
            kms,
            caller,
            hidden,
        }
    })
}

fn call(w: &World, op: &str, body: &[u8]) -> (u16, Value) {
    let (st, out) = w.rt.block_on(strongroom_kms::api::handle(
        &w.kms,
        &w.caller,
        &format!("TrentService.{op}"),
        body,
    ));
    let v: Value = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{op}: answer is not JSON ({e}): {}", String::from_utf8_lossy(&out)));
    assert!(st == 200 || (400..500).contains(&st), "{op}: status {st}: {v}");
    if st != 200 {
        assert!(
            v["__type"].as_str().is_some_and(|t| !t.is_empty()),
            "{op}: error without __type: {v}"
        );
    }
    (st, v)
}

fn b64(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(b)
}

fn unb64(s: &str) -> Vec<u8> {
    base64_simd::STANDARD.decode_to_vec(s).expect("base64")
}

fn refused_blob(w: &World, blob: &[u8], ctx: &Value) {
    let body = json!({"CiphertextBlob": b64(blob), "EncryptionContext": ctx}).to_string();
    let (st, v) = call(w, "Decrypt", body.as_bytes());
    assert_eq!(st, 400, "a changed or foreign ciphertext decrypted: {v}");
    assert_eq!(v["__type"], "InvalidCiphertextException", "{v}");
}

/// One case.
pub fn run(data: &[u8]) {
    let w = world();
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Some(op) = OPS.get(usize::from(pick)) else {
        // ciphertext property: the rest is the plaintext (KMS takes 1..=4096 bytes)
        let plain = &body[..body.len().min(4096)];
        if plain.is_empty() {
            return;
        }
        let ctx = json!({"bucket": "b", "n": (pick as usize).to_string()});
        let enc = json!({"KeyId": w.hidden, "Plaintext": b64(plain), "EncryptionContext": ctx}).to_string();
        let (st, v) = call(w, "Encrypt", enc.as_bytes());
        assert_eq!(st, 200, "{v}");
        let blob = unb64(v["CiphertextBlob"].as_str().expect("blob"));
        let dec = json!({"CiphertextBlob": b64(&blob), "EncryptionContext": ctx}).to_string();
        let (st, v) = call(w, "Decrypt", dec.as_bytes());
        assert_eq!(st, 200, "{v}");
        assert_eq!(unb64(v["Plaintext"].as_str().expect("plaintext")), plain);
        let at = usize::from(pick).wrapping_mul(31).wrapping_add(plain.len()) % blob.len();
        let mut bad = blob.clone();
        bad[at] ^= 1 << (pick % 8);
        refused_blob(w, &bad, &ctx);
        refused_blob(w, &blob, &json!({"bucket": "other", "n": (pick as usize).to_string()}));
        refused_blob(w, &blob[..blob.len() - 1], &ctx);
        refused_blob(w, plain, &ctx);
        return;
    };
    call(w, op, body);
}
