//! Keys and cryptographic primitives of Strongbox. No I/O happens here.
//!
//! Key hierarchy (see `docs/security-model.md`):
//!
//! ```text
//! root key (never stored)
//!   ├─ HKDF "strongbox/v1/wrap"    → wraps key-ring entries (KEKs, index secrets)
//!   ├─ HKDF "strongbox/v1/canary"  → seals the stored canary that proves the key is right
//!   └─ HKDF "strongbox/v1/token"   → HMAC key for access-token hashes
//! KEK (per tenant, versioned, stored wrapped) → wraps one DEK per data subject
//! DEK (per data subject, stored wrapped)      → AES-256-GCM over the subject's records
//! index secret (per tenant, versioned)        → HKDF per index name → HMAC-SHA256 blind index
//! audit signing seed (per tenant, wrapped)     → Ed25519 key: signs checkpoints and receipts
//! ```
//!
//! Every secret lives in a [`SecretKey`]: no `Debug`/`Display` output, wiped on drop.

mod aead;
mod chain;
mod keys;
pub mod shamir;

pub use aead::{Aad, open, seal};
pub use chain::{
    ChainEvent, SignedKind, VaultSigner, chain_genesis, chain_link, checkpoint_message,
    event_digest, fingerprint, verify_signature,
};
pub use keys::{
    BlindIndexKey, Dek, IndexSecret, Kek, KeyRingEntry, KeyWrapper, RootKey, SecretKey,
    TokenHasher, hmac_sha256, new_event_token, new_record_token, parse_record_token,
};

/// Everything that can go wrong in this crate. Messages never contain key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Authentication failed: wrong key, wrong context (AAD) or tampered ciphertext.
    #[error("decryption failed: wrong key, wrong context or tampered data")]
    Decrypt,
    /// The blob is too short or has an unknown format version.
    #[error("malformed ciphertext")]
    Malformed,
    /// A key in text form is not 64 hexadecimal characters.
    #[error("a key must be 64 hexadecimal characters (32 bytes)")]
    BadKeyEncoding,
    /// The operating system's random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// A key share is malformed, fails its checksum, or the shares do not fit together.
    #[error("bad key share (mistyped, damaged, duplicate, or from another split)")]
    BadShare,
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|_| CryptoError::Random)
}
