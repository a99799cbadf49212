//! One-time registration codes: how they are made and how they are kept.
//!
//! A code is drawn from the thread-local CSPRNG (ChaCha, reseeded from the
//! operating system). Redis never sees it: it keeps an HMAC-SHA256 of the code
//! under a server secret, bound to the code id, so a copy of the database
//! does not let anyone redeem a link, and one code's hash cannot be replayed
//! for another id.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use rand::distr::Uniform;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The contract's alphabet: `a-z A-Z 0-9`.
pub const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A plain code. `Debug` and `Display` never show it; only
/// [`PlainCode::expose`] does, at the few places that must.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCode(String);

impl PlainCode {
    pub fn new(code: String) -> Self {
        Self(code)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlainCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainCode(***)")
    }
}

/// Makes codes of a fixed length from [`ALPHABET`].
#[derive(Clone, Debug)]
pub struct CodeGenerator {
    length: usize,
    index: Uniform<usize>,
}

impl CodeGenerator {
    /// `length` must be at least 1; configuration checks the range.
    pub fn new(length: usize) -> Self {
        // A non-empty constant range cannot fail.
        let index = Uniform::new(0, ALPHABET.len()).expect("alphabet is not empty");
        Self {
            length: length.max(1),
            index,
        }
    }

    pub fn generate(&self) -> PlainCode {
        let mut rng = rand::rng();
        let code = (0..self.length)
            .map(|_| char::from(ALPHABET[rng.sample(self.index)]))
            .collect();
        PlainCode(code)
    }
}

/// A fresh random UUID (v4) from the same generator as the codes.
pub fn new_id() -> Uuid {
    uuid::Builder::from_random_bytes(rand::rng().random()).into_uuid()
}

/// Keyed hashes of codes.
#[derive(Clone)]
pub struct CodeHasher {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHasher(***)")
    }
}

impl CodeHasher {
    pub fn new(key: &SecretSlice<u8>) -> Self {
        // HMAC accepts keys of any length.
        let mac = Hmac::<Sha256>::new_from_slice(key.expose_secret())
            .expect("HMAC takes keys of any length");
        Self { mac }
    }

    /// The hex HMAC of `code` for `code_id`.
    pub fn hash(&self, code_id: &Uuid, code: &str) -> String {
        hex::encode(self.digest(code_id, code))
    }

    /// Whether `code` matches the stored hex hash, in constant time.
    pub fn verify(&self, code_id: &Uuid, code: &str, stored_hex: &str) -> bool {
        let Ok(stored) = hex::decode(stored_hex) else {
            return false;
        };
        let actual = self.digest(code_id, code);
        actual.as_slice().ct_eq(stored.as_slice()).into()
    }

    fn digest(&self, code_id: &Uuid, code: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(code_id.as_bytes());
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_have_the_length_and_alphabet() {
        let generator = CodeGenerator::new(12);
        let codes: HashSet<String> = (0..2000)
            .map(|_| generator.generate().expose().to_owned())
            .collect();
        assert_eq!(codes.len(), 2000, "codes repeat");
        for code in &codes {
            assert_eq!(code.len(), 12);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
        }
        let seen: HashSet<u8> = codes.iter().flat_map(|c| c.bytes()).collect();
        assert_eq!(seen.len(), ALPHABET.len(), "every character is reachable");
    }

    #[test]
    fn hash_is_keyed_bound_to_the_id_and_verified() {
        let key: SecretSlice<u8> = vec![1u8, 2, 3, 4].into();
        let other: SecretSlice<u8> = vec![9u8, 2, 3, 4].into();
        let hasher = CodeHasher::new(&key);
        let id = new_id();
        let hash = hasher.hash(&id, "SKJd342kAAAA");
        assert_eq!(hash.len(), 64);
        assert!(hasher.verify(&id, "SKJd342kAAAA", &hash));
        assert!(!hasher.verify(&id, "SKJd342kAAAB", &hash));
        assert!(!hasher.verify(&new_id(), "SKJd342kAAAA", &hash));
        assert!(!CodeHasher::new(&other).verify(&id, "SKJd342kAAAA", &hash));
        assert!(!hasher.verify(&id, "SKJd342kAAAA", "not hex"));
    }

    #[test]
    fn debug_never_shows_a_code() {
        let code = CodeGenerator::new(12).generate();
        assert!(!format!("{code:?}").contains(code.expose()));
    }

    #[test]
    fn ids_are_version_4() {
        assert_eq!(new_id().get_version_num(), 4);
    }
}
