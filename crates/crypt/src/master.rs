//! The server master keys (SSE-S3, and the seal over KMS key material).
//! A keyring is text: one key a line as 64 hex digits, `#` comments; the
//! last key is the active one (new objects), every key stays usable for
//! reading, so rotating means appending a line.

use std::collections::HashMap;

use crate::Key;

/// A loaded keyring.
pub struct MasterKeys {
    active: (String, Key),
    keys: HashMap<String, Key>,
}

/// Why a keyring was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyringError {
    #[error("line {0} is not a 256-bit key in 64 hex digits")]
    BadLine(usize),
    #[error("line {0} holds an all-zero key, which is never accepted")]
    ZeroKey(usize),
    #[error("the keyring holds no key")]
    Empty,
}

/// Stable public id of a master key: 16 hex digits of
/// SHA-256("strongroom master key id" || key). Reveals nothing usable.
pub fn key_id(k: &Key) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        &[b"strongroom master key id".as_slice(), k.bytes()].concat(),
    );
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A key as a keyring line.
pub fn key_line(k: &Key) -> String {
    k.bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(s: &str) -> Option<Key> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut b = [0u8; 32];
    for (i, out) in b.iter_mut().enumerate() {
        *out = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let k = Key::from_slice(&b);
    zeroize::Zeroize::zeroize(&mut b);
    k
}

impl MasterKeys {
    /// Parses a keyring's text.
    pub fn parse(text: &str) -> Result<MasterKeys, KeyringError> {
        let mut keys = HashMap::new();
        let mut active = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let k = parse_hex(line).ok_or(KeyringError::BadLine(n + 1))?;
            if k.is_zero() {
                return Err(KeyringError::ZeroKey(n + 1));
            }
            let id = key_id(&k);
            active = Some((id.clone(), k.clone()));
            keys.insert(id, k);
        }
        Ok(MasterKeys {
            active: active.ok_or(KeyringError::Empty)?,
            keys,
        })
    }

    /// The key new data is sealed under, with its id.
    pub fn active(&self) -> (&str, &Key) {
        (&self.active.0, &self.active.1)
    }

    /// A key by id (any key of the ring).
    pub fn get(&self, id: &str) -> Option<&Key> {
        self.keys.get(id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true for a parsed keyring.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_key_is_active_and_all_are_kept() -> Result<(), crate::CryptError> {
        let (a, b) = (Key::random()?, Key::random()?);
        let text = format!("# ring\n{}\n\n{}\n", key_line(&a), key_line(&b));
        let ring = MasterKeys::parse(&text).map_err(|_| crate::CryptError::Malformed)?;
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.active().0, key_id(&b));
        assert!(ring.get(&key_id(&a)).is_some());
        Ok(())
    }

    #[test]
    fn refuses_zero_malformed_and_empty() {
        assert_eq!(MasterKeys::parse(&"0".repeat(64)).err(), Some(KeyringError::ZeroKey(1)));
        assert_eq!(MasterKeys::parse("abc").err(), Some(KeyringError::BadLine(1)));
        assert_eq!(MasterKeys::parse(&"g".repeat(64)).err(), Some(KeyringError::BadLine(1)));
        assert_eq!(MasterKeys::parse("# nothing\n").err(), Some(KeyringError::Empty));
    }
}
