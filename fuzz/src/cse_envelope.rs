//! A client-side encrypted object's envelope (object metadata or its
//! `.instruction` file) is read back from an S3 server the client does not
//! trust. Properties: an envelope that parses writes back (as metadata and
//! as an instruction file) to one that parses to the same value; and for an
//! object sealed here, changing any one envelope value, any byte of the
//! wrapped key or any byte of the ciphertext never yields other plaintext:
//! either a step refuses it or the original plaintext comes back.
//!
//! Input: first byte picks the mode. Mode 0: `name\tvalue` lines of
//! metadata, a NUL, then an instruction file body. Mode 1: a flip position
//! byte, then the plaintext.

use std::collections::BTreeMap;

use strongroom_cse::content::{new_content, open_content};
use strongroom_cse::{CommitmentPolicy, Envelope, Format, Keyring, Located};
use zeroize::Zeroizing;

fn lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn found(r: Result<Located, strongroom_cse::CseError>) -> Option<Envelope> {
    match r {
        Ok(Located::Found(e)) => Some(e),
        _ => None,
    }
}

fn parse(data: &[u8]) {
    let (meta, ins) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(meta) = std::str::from_utf8(meta) else { return };
    let meta = lines(meta);
    let ins = ins.and_then(|b| Envelope::parse_instruction(b).ok());
    let Some(env) = found(Envelope::read(&meta, ins.as_ref())) else {
        return;
    };
    let again = found(Envelope::read(&env.to_metadata(), None)).expect("written metadata reads back");
    assert_eq!(again, env);
    let (object, file) = env.to_instruction();
    let file = Envelope::parse_instruction(file.as_bytes()).expect("written instruction file parses");
    let again = found(Envelope::read(&object, Some(&file))).expect("written instruction file reads back");
    assert_eq!(again, env);
}

/// Decrypts `ct` (ciphertext || tag) with what `meta` and the keyring give;
/// None where any step refuses.
fn open(rt: &tokio::runtime::Runtime, k: &Keyring, meta: &BTreeMap<String, String>, ct: &[u8]) -> Option<Vec<u8>> {
    let env = found(Envelope::read(meta, None))?;
    let dk = rt.block_on(k.unwrap(&env, &BTreeMap::new())).ok()?;
    let ck = open_content(&env.content, &dk, CommitmentPolicy::RequireEncryptAllowDecrypt).ok()?;
    let (body, tag) = ct.split_at(ct.len().checked_sub(16)?);
    let mut plain = body.to_vec();
    let mut s = ck.stream();
    s.decrypt(&mut plain).ok()?;
    s.verify(tag).ok()?;
    Some(plain)
}

fn seal(flip: u8, plain: &[u8]) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let k = Keyring::Aes {
        key: Zeroizing::new(vec![7u8; 32]),
        description: BTreeMap::from([("purpose".to_owned(), "fuzz".to_owned())]),
    };
    let format = if flip % 2 == 0 { Format::V3 } else { Format::V2 };
    let nk = rt.block_on(k.new_key(format, &BTreeMap::new())).expect("new key");
    let (ck, content) = new_content(format, &nk.data_key).expect("content");
    let env = Envelope {
        content,
        wrap: nk.wrap,
        edk: nk.edk.clone(),
        context: nk.context.clone(),
    };
    let mut ct = plain.to_vec();
    let mut s = ck.stream();
    s.encrypt(&mut ct).expect("encrypt");
    ct.extend_from_slice(&s.finish());
    let meta = env.to_metadata();
    assert_eq!(
        open(&rt, &k, &meta, &ct).as_deref(),
        Some(plain),
        "sealed object does not open"
    );

    // one envelope value changed: one character of it
    let names: Vec<&String> = meta.keys().collect();
    let name = names[usize::from(flip) % names.len()];
    let mut bad = meta.clone();
    let v = bad.get_mut(name).expect("value");
    let mut bytes = v.clone().into_bytes();
    if !bytes.is_empty() {
        let i = usize::from(flip / 8) % bytes.len();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        *v = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(p) = open(&rt, &k, &bad, &ct) {
            assert_eq!(p, plain, "changed {name} opened to other plaintext");
        }
    }
    // one ciphertext or tag byte changed: never opens
    let mut bad_ct = ct.clone();
    let i = usize::from(flip).wrapping_mul(131) % bad_ct.len();
    bad_ct[i] ^= 1;
    assert!(open(&rt, &k, &meta, &bad_ct).is_none(), "changed ciphertext opened");
    // another AES key never opens it
    let other = Keyring::Aes {
        key: Zeroizing::new(vec![8u8; 32]),
        description: BTreeMap::new(),
    };
    assert!(open(&rt, &other, &meta, &ct).is_none(), "opened under another key");
}

/// One case.
pub fn run(data: &[u8]) {
    match data {
        [0, rest @ ..] => parse(rest),
        [1, flip, plain @ ..] => seal(*flip, &plain[..plain.len().min(1 << 16)]),
        _ => {}
    }
}
