//! What SSE stores is read back as untrusted bytes: a data key wrapped
//! under a key-encryption key (`wrap`/`unwrap`), secrets sealed under one
//! (`seal_bytes`/`open_bytes`: IAM secrets, KMS material), and objects as
//! packages (`Sealer`/`Opener`). Properties: seal then open gives back
//! exactly what was sealed; any change to a sealed byte, a wrong context or
//! a wrong key fails to open (never opens to other bytes); arbitrary bytes
//! never open.
//!
//! Input: 1 byte of mode and parameters, then data.

use strongroom_crypt::{Key, Opener, Sealer, StreamKeys, open_bytes, seal_bytes, unwrap, wrap};

fn key(b: u8) -> Key {
    Key::from_slice(&[b; 32]).expect("key")
}

/// One case.
pub fn run(data: &[u8]) {
    let [mode, flip_at, rest @ ..] = data else { return };
    let kek = key(1);
    match mode % 4 {
        // wrapped data keys
        0 => {
            let Some(dk) = rest.get(..32).and_then(Key::from_slice) else {
                return;
            };
            let ctx = &rest[32..];
            let blob = wrap(&kek, &dk, ctx).expect("wrap");
            assert_eq!(unwrap(&kek, &blob, ctx).expect("unwrap").bytes(), dk.bytes());
            let mut bad = blob.clone();
            let i = usize::from(*flip_at) % bad.len();
            bad[i] ^= 1;
            assert!(unwrap(&kek, &bad, ctx).is_err(), "a changed wrapped key opened");
            assert!(unwrap(&key(2), &blob, ctx).is_err(), "opened under another key");
            let mut other = ctx.to_vec();
            other.push(0);
            assert!(unwrap(&kek, &blob, &other).is_err(), "opened under another context");
        }
        // sealed secrets
        1 => {
            let (ctx, plain) = rest.split_at(rest.len().min(usize::from(*flip_at) % 16));
            let blob = seal_bytes(&kek, plain, ctx).expect("seal");
            assert_eq!(&open_bytes(&kek, &blob, ctx).expect("open")[..], plain);
            for i in [usize::from(*flip_at) % blob.len(), blob.len() - 1] {
                let mut bad = blob.clone();
                bad[i] ^= 0x80;
                assert!(open_bytes(&kek, &bad, ctx).is_err(), "a changed sealed secret opened");
            }
            assert!(
                open_bytes(&kek, &blob[..blob.len() - 1], ctx).is_err(),
                "a truncated blob opened"
            );
        }
        // arbitrary stored bytes never open
        2 => {
            assert!(unwrap(&kek, rest, b"ctx").is_err());
            assert!(open_bytes(&kek, rest, b"ctx").is_err());
        }
        // object packages, fed in fuzz-chosen pieces
        _ => {
            let layers = 1 + usize::from(*flip_at % 2);
            let (k1, k2) = (key(3), key(4));
            let dks: Vec<&Key> = [&k1, &k2][..layers].to_vec();
            let salt = [6u8; 16];
            let step = 1 + usize::from(*flip_at) * 97;
            // stretch small inputs over several packages
            let plain: Vec<u8> = rest
                .iter()
                .cycle()
                .take((rest.len() * (1 + usize::from(*flip_at) * 5)).min(300_000))
                .copied()
                .collect();
            let mut s = Sealer::new(StreamKeys::derive(&dks, &salt).expect("keys"));
            let mut sealed = Vec::new();
            for c in plain.chunks(step) {
                s.update(c).expect("seal");
                sealed.extend_from_slice(&s.take());
            }
            sealed.extend_from_slice(&s.finish().expect("seal"));
            let o = Opener::new(StreamKeys::derive(&dks, &salt).expect("keys"), plain.len() as u64);
            let mut out = Vec::new();
            for (i, pkg) in sealed.chunks(o.stride()).enumerate() {
                let mut p = pkg.to_vec();
                let n = o.open(i as u64, &mut p).expect("open");
                out.extend_from_slice(&p[..n]);
            }
            assert_eq!(out, plain);
            // one changed byte: its package no longer opens
            let at = (usize::from(*flip_at) * 7919) % sealed.len();
            let idx = at / o.stride();
            let mut pkg = sealed[idx * o.stride()..((idx + 1) * o.stride()).min(sealed.len())].to_vec();
            pkg[at % o.stride()] ^= 1;
            assert!(o.open(idx as u64, &mut pkg).is_err(), "a changed package opened");
            // packages out of place do not open (reordering, truncation)
            if sealed.len() > o.stride() {
                let mut first = sealed[..o.stride()].to_vec();
                assert!(o.open(1, &mut first).is_err(), "package 0 opened as package 1");
            }
            // an opener told a different length does not accept the last package
            let shorter = Opener::new(StreamKeys::derive(&dks, &salt).expect("keys"), plain.len() as u64 + 1);
            let last = (sealed.len() - 1) / o.stride();
            let mut p = sealed[last * o.stride()..].to_vec();
            assert!(
                shorter.open(last as u64, &mut p).is_err(),
                "a truncated object opened as whole"
            );
        }
    }
}
