//! The AEAD envelope: AES-256-GCM, a fresh random 96-bit nonce per encryption, and
//! associated data that binds each ciphertext to where it belongs.
//!
//! Blob layout: `[format = 0x01][nonce: 12 bytes][ciphertext ‖ tag: 16 bytes]`.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use zeroize::Zeroizing;

use crate::{CryptoError, SecretKey, random_bytes};

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Associated data: an unambiguous encoding of (purpose, tenant, kind, id, field).
/// A ciphertext only opens under exactly the context it was sealed with, so a blob
/// copied to another row, tenant or field fails to decrypt.
#[derive(Clone)]
pub struct Aad(Vec<u8>);

impl Aad {
    /// Context for a record of `kind` with id `id` in `tenant`, field `field`.
    pub fn new(tenant: &str, kind: &str, id: &str, field: &str) -> Self {
        let mut out = Vec::with_capacity(16 + tenant.len() + kind.len() + id.len() + field.len());
        out.extend_from_slice(b"strongbox/v1");
        for part in [tenant, kind, id, field] {
            // Length-prefixed, so ("ab","c") and ("a","bc") differ.
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        Aad(out)
    }

    fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Encrypts `plaintext` under `key`, bound to `aad`.
pub fn seal(key: &SecretKey, aad: &Aad, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new_from_slice(key.bytes()).map_err(|_| CryptoError::Malformed)?;
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let ct = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| CryptoError::Malformed)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts a blob made by [`seal`]. Fails unless key, context and bytes are all intact.
pub fn open(key: &SecretKey, aad: &Aad, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if blob.len() < 1 + NONCE_LEN + TAG_LEN || blob[0] != FORMAT_V1 {
        return Err(CryptoError::Malformed);
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&blob[1..1 + NONCE_LEN]);
    let cipher = Aes256Gcm::new_from_slice(key.bytes()).map_err(|_| CryptoError::Malformed)?;
    cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &blob[1 + NONCE_LEN..],
                aad: aad.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SecretKey {
        SecretKey::generate().unwrap()
    }

    #[test]
    fn aad_is_unambiguous() {
        assert_ne!(
            Aad::new("ab", "c", "", "").as_bytes(),
            Aad::new("a", "bc", "", "").as_bytes()
        );
    }

    #[test]
    fn nonces_are_fresh() {
        let k = key();
        let aad = Aad::new("t", "user", "1", "profile");
        assert_ne!(seal(&k, &aad, b"x").unwrap(), seal(&k, &aad, b"x").unwrap());
    }

    #[test]
    fn truncated_and_unknown_format_are_malformed() {
        let k = key();
        let aad = Aad::new("t", "user", "1", "profile");
        let mut blob = seal(&k, &aad, b"hello").unwrap();
        assert_eq!(
            open(&k, &aad, &blob[..10]).unwrap_err(),
            CryptoError::Malformed
        );
        blob[0] = 9;
        assert_eq!(open(&k, &aad, &blob).unwrap_err(), CryptoError::Malformed);
    }

    proptest! {
        #[test]
        fn round_trip(pt in proptest::collection::vec(any::<u8>(), 0..2048), id in "[a-z0-9-]{0,40}") {
            let k = key();
            let aad = Aad::new("tenant", "user", &id, "profile");
            let blob = seal(&k, &aad, &pt).unwrap();
            let back = open(&k, &aad, &blob).unwrap();
            prop_assert_eq!(back.as_slice(), pt.as_slice());
        }

        #[test]
        fn other_context_or_key_fails(pt in proptest::collection::vec(any::<u8>(), 0..256), id in "[a-z0-9]{1,20}") {
            let k = key();
            let aad = Aad::new("tenant", "user", &id, "profile");
            let blob = seal(&k, &aad, &pt).unwrap();
            let other_id = format!("{id}x");
            let other_row = Aad::new("tenant", "user", &other_id, "profile");
            prop_assert_eq!(open(&k, &other_row, &blob).unwrap_err(), CryptoError::Decrypt);
            let other_tenant = Aad::new("tenant2", "user", &id, "profile");
            prop_assert_eq!(open(&k, &other_tenant, &blob).unwrap_err(), CryptoError::Decrypt);
            prop_assert_eq!(open(&key(), &aad, &blob).unwrap_err(), CryptoError::Decrypt);
        }

        #[test]
        fn any_bit_flip_fails(pt in proptest::collection::vec(any::<u8>(), 1..64), pos in any::<usize>(), bit in 0u8..8) {
            let k = key();
            let aad = Aad::new("t", "user", "1", "profile");
            let mut blob = seal(&k, &aad, &pt).unwrap();
            let i = 1 + pos % (blob.len() - 1);
            blob[i] ^= 1 << bit;
            prop_assert!(open(&k, &aad, &blob).is_err());
        }
    }
}
