//! Sealed codes: the outbox in Redis and the messages in RabbitMQ carry the
//! plain code only encrypted.
//!
//! XChaCha20-Poly1305 with a random 192-bit nonce per code, so nonces never
//! need coordination between API processes. The code id is authenticated as
//! associated data: a sealed code moved into another job does not open.
//! Every key has an id; the first configured key seals, all of them open, so
//! keys can be rotated while jobs sealed with the old one drain.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngExt;
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::code::PlainCode;

/// Bytes in a seal key.
pub const KEY_BYTES: usize = 32;

/// A code as the outbox and RabbitMQ hold it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedCode {
    /// Id of the key that sealed it.
    pub kid: String,
    /// Base64url nonce.
    pub nonce: String,
    /// Base64url ciphertext with the tag.
    pub ct: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("no seal key with id {0:?} is configured")]
    UnknownKey(String),
    #[error("the sealed code is damaged or belongs to another job")]
    Damaged,
}

/// Seals with the active key and opens with any configured key.
#[derive(Clone)]
pub struct Sealer {
    active: String,
    ciphers: HashMap<String, XChaCha20Poly1305>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("active", &self.active)
            .field("keys", &self.ciphers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Sealer {
    /// `keys` in order of preference: the first one seals.
    pub fn new(keys: &[(String, SecretSlice<u8>)]) -> Result<Self, String> {
        let Some((active, _)) = keys.first() else {
            return Err("at least one seal key is needed".into());
        };
        let mut ciphers = HashMap::new();
        for (kid, key) in keys {
            let cipher = XChaCha20Poly1305::new_from_slice(key.expose_secret())
                .map_err(|_| format!("seal key {kid:?} must have {KEY_BYTES} bytes"))?;
            if ciphers.insert(kid.clone(), cipher).is_some() {
                return Err(format!("seal key id {kid:?} is given twice"));
            }
        }
        Ok(Self {
            active: active.clone(),
            ciphers,
        })
    }

    pub fn seal(&self, code_id: &Uuid, code: &PlainCode) -> SealedCode {
        let nonce_bytes: [u8; 24] = rand::rng().random();
        let nonce = XNonce::from(nonce_bytes);
        let payload = Payload {
            msg: code.expose().as_bytes(),
            aad: code_id.as_bytes(),
        };
        // Encryption only fails for messages longer than the cipher's limit
        // (256 GiB); a code is a few bytes.
        let ct = self.ciphers[&self.active]
            .encrypt(&nonce, payload)
            .expect("a code is far below the cipher's length limit");
        SealedCode {
            kid: self.active.clone(),
            nonce: B64.encode(nonce_bytes),
            ct: B64.encode(ct),
        }
    }

    pub fn open(&self, code_id: &Uuid, sealed: &SealedCode) -> Result<PlainCode, SealError> {
        let cipher = self
            .ciphers
            .get(&sealed.kid)
            .ok_or_else(|| SealError::UnknownKey(sealed.kid.clone()))?;
        let nonce: [u8; 24] = B64
            .decode(&sealed.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(SealError::Damaged)?;
        let ct = B64.decode(&sealed.ct).map_err(|_| SealError::Damaged)?;
        let payload = Payload {
            msg: &ct,
            aad: code_id.as_bytes(),
        };
        let plain = cipher
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SealError::Damaged)?;
        String::from_utf8(plain)
            .map(PlainCode::new)
            .map_err(|_| SealError::Damaged)
    }
}

/// Parses `kid:base64key,kid:base64key`; the first key seals.
pub fn parse_keys(text: &str) -> Result<Vec<(String, SecretSlice<u8>)>, String> {
    let mut keys = Vec::new();
    for (index, item) in text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let Some((kid, key)) = item.split_once(':') else {
            return Err(format!("entry {} is not kid:base64key", index + 1));
        };
        let kid = kid.trim();
        let kid_ok = (1..=32).contains(&kid.len())
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !kid_ok {
            return Err(format!(
                "entry {}: a key id is 1 to 32 of A-Z a-z 0-9 - _",
                index + 1
            ));
        }
        let Some(bytes) = crate::config::decode_key(key) else {
            return Err(format!("key {kid:?} is not valid base64"));
        };
        if bytes.len() != KEY_BYTES {
            return Err(format!(
                "key {kid:?} must have {KEY_BYTES} bytes, not {}",
                bytes.len()
            ));
        }
        if crate::config::is_weak(&bytes) {
            return Err(format!("key {kid:?} is weak (a pattern, not random)"));
        }
        keys.push((kid.to_owned(), bytes.into()));
    }
    if keys.is_empty() {
        return Err("no keys given".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::new_id;

    fn key(seed: u8) -> SecretSlice<u8> {
        (0..32u8)
            .map(|i| i.wrapping_mul(seed))
            .collect::<Vec<_>>()
            .into()
    }

    #[test]
    fn seals_opens_and_rotates() {
        let old = Sealer::new(&[("k1".into(), key(3))]).unwrap();
        let new = Sealer::new(&[("k2".into(), key(5)), ("k1".into(), key(3))]).unwrap();
        let id = new_id();
        let code = PlainCode::new("SKJd342kAbCd".into());

        let sealed = old.seal(&id, &code);
        assert!(!sealed.ct.contains("SKJd342k"));
        assert_eq!(new.open(&id, &sealed).unwrap(), code);
        assert_eq!(new.seal(&id, &code).kid, "k2");
        assert_eq!(
            old.open(&id, &new.seal(&id, &code)),
            Err(SealError::UnknownKey("k2".into()))
        );
        assert_eq!(old.open(&new_id(), &sealed), Err(SealError::Damaged));
        let mut broken = sealed.clone();
        broken.ct.replace_range(0..2, "AA");
        assert_eq!(old.open(&id, &broken), Err(SealError::Damaged));
    }

    #[test]
    fn parses_key_lists() {
        let a = B64.encode((0..32u8).collect::<Vec<_>>());
        let keys = parse_keys(&format!("new:{a}, old:{a}")).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(parse_keys("k1").is_err());
        assert!(parse_keys(&format!("bad id:{a}")).is_err());
        assert!(parse_keys("k:c2hvcnQ").is_err());
        assert!(parse_keys(&format!("k:{}", B64.encode([0u8; 32]))).is_err());
        assert!(Sealer::new(&[("a".into(), key(3)), ("a".into(), key(5))]).is_err());
    }
}
