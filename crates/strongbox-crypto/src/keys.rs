//! Key types. None of them implements `Debug` with its bytes, `Display`, `Clone` into
//! plain memory, or `Serialize`; all are wiped when dropped.

use std::fmt;

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{Aad, CryptoError, open, random_bytes, seal};

type HmacSha256 = Hmac<Sha256>;

const CANARY_PLAINTEXT: &[u8] = b"strongbox canary v1";

/// 32 secret bytes, wiped on drop, redacted in `Debug`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = SecretKey([0; 32]);
        random_bytes(&mut k.0)?;
        Ok(k)
    }

    /// Takes ownership of 32 bytes; the caller's copy should be wiped.
    fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::Malformed)?;
        Ok(SecretKey(arr))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// HKDF-SHA256 subkey for a purpose label.
    fn derive(&self, info: &str) -> SecretKey {
        let hk = Hkdf::<Sha256>::new(Some(b"strongbox"), &self.0);
        let mut out = SecretKey([0; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        if hk.expand(info.as_bytes(), &mut out.0).is_err() {
            unreachable!("HKDF-SHA256 can always produce 32 bytes");
        }
        out
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

/// The root of the key hierarchy. Never stored in the database.
#[derive(Debug)]
pub struct RootKey(SecretKey);

impl RootKey {
    pub fn generate() -> Result<Self, CryptoError> {
        SecretKey::generate().map(RootKey)
    }

    /// Parses 64 hex characters (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(CryptoError::BadKeyEncoding);
        }
        let mut buf = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, &mut buf[..]).map_err(|_| CryptoError::BadKeyEncoding)?;
        SecretKey::from_slice(&buf[..]).map(RootKey)
    }

    /// The key as 64 lowercase hex characters, for printing once at `init`.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.bytes()))
    }

    /// Splits the key into `shares` Shamir shares, any `threshold` of which rebuild it.
    pub fn split(
        &self,
        shares: u8,
        threshold: u8,
    ) -> Result<Vec<crate::shamir::Share>, CryptoError> {
        crate::shamir::split(self.0.bytes(), shares, threshold)
    }

    /// Rebuilds a key from shares. Wrong shares give a wrong key, never an error:
    /// check it against the canary before use.
    pub fn from_shares(shares: &[crate::shamir::Share]) -> Result<Self, CryptoError> {
        let secret = crate::shamir::combine(shares)?;
        SecretKey::from_slice(&secret[..]).map(RootKey)
    }

    /// A value stored in the database that proves, later, that a supplied root key is
    /// the one the store was initialized with — checked by AEAD authentication, so a
    /// wrong key is refused without ever decrypting data with it.
    pub fn make_canary(&self) -> Result<Vec<u8>, CryptoError> {
        seal(
            &self.0.derive("strongbox/v1/canary"),
            &canary_aad(),
            CANARY_PLAINTEXT,
        )
    }

    /// True when `canary` was made by this key.
    pub fn check_canary(&self, canary: &[u8]) -> bool {
        match open(&self.0.derive("strongbox/v1/canary"), &canary_aad(), canary) {
            Ok(pt) => bool::from(pt.as_slice().ct_eq(CANARY_PLAINTEXT)),
            Err(_) => false,
        }
    }

    /// Wraps a key-ring entry (KEK or index secret) for storage.
    pub fn wrap(&self, entry: &KeyRingEntry<'_>, key: &SecretKey) -> Result<Vec<u8>, CryptoError> {
        seal(&self.wrap_key(), &entry.aad(), key.bytes())
    }

    /// Unwraps a key-ring entry; fails if the blob was moved to another entry.
    pub fn unwrap(&self, entry: &KeyRingEntry<'_>, blob: &[u8]) -> Result<SecretKey, CryptoError> {
        let pt = open(&self.wrap_key(), &entry.aad(), blob)?;
        SecretKey::from_slice(&pt)
    }

    fn wrap_key(&self) -> SecretKey {
        self.0.derive("strongbox/v1/wrap")
    }

    /// What a running vault keeps to add key-ring entries (a new KEK) without keeping
    /// the root key itself: the wrapping key derived from it.
    pub fn wrapper(&self) -> KeyWrapper {
        KeyWrapper(self.wrap_key())
    }

    /// The hasher for access tokens (root and API tokens are stored only as its
    /// output), as first derived from the root key. After a root-key rotation it lives
    /// on as a key-ring entry instead, so token hashes stay valid.
    pub fn token_hasher(&self) -> TokenHasher {
        TokenHasher(self.0.derive("strongbox/v1/token"))
    }

    /// Re-wraps a key-ring entry wrapped by `old` under this key.
    pub fn rewrap(
        &self,
        old: &RootKey,
        entry: &KeyRingEntry<'_>,
        blob: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let key = old.unwrap(entry, blob)?;
        self.wrap(entry, &key)
    }
}

fn canary_aad() -> Aad {
    Aad::new("", "canary", "", "")
}

/// Wraps and unwraps key-ring entries, like the root key it was derived from.
#[derive(Debug)]
pub struct KeyWrapper(SecretKey);

impl Clone for KeyWrapper {
    fn clone(&self) -> Self {
        KeyWrapper(SecretKey(self.0.0))
    }
}

impl KeyWrapper {
    pub fn wrap(&self, entry: &KeyRingEntry<'_>, key: &SecretKey) -> Result<Vec<u8>, CryptoError> {
        seal(&self.0, &entry.aad(), key.bytes())
    }

    /// Wraps a token hasher's key as a key-ring entry.
    pub fn wrap_token_hasher(
        &self,
        entry: &KeyRingEntry<'_>,
        hasher: &TokenHasher,
    ) -> Result<Vec<u8>, CryptoError> {
        self.wrap(entry, &hasher.0)
    }

    /// The token hasher kept as a key-ring entry.
    pub fn unwrap_token_hasher(
        &self,
        entry: &KeyRingEntry<'_>,
        blob: &[u8],
    ) -> Result<TokenHasher, CryptoError> {
        self.unwrap(entry, blob).map(TokenHasher)
    }

    pub fn unwrap(&self, entry: &KeyRingEntry<'_>, blob: &[u8]) -> Result<SecretKey, CryptoError> {
        let pt = open(&self.0, &entry.aad(), blob)?;
        SecretKey::from_slice(&pt)
    }
}

/// Where a wrapped key-ring entry belongs: (tenant, kind, version).
pub struct KeyRingEntry<'a> {
    pub tenant: &'a str,
    pub kind: &'a str,
    pub version: i64,
}

impl KeyRingEntry<'_> {
    fn aad(&self) -> Aad {
        Aad::new(self.tenant, self.kind, &self.version.to_string(), "key")
    }
}

/// A key-encryption key: wraps data-subject DEKs. Versioned for rotation.
#[derive(Debug)]
pub struct Kek {
    pub version: i64,
    key: SecretKey,
}

impl Kek {
    pub fn new(version: i64, key: SecretKey) -> Self {
        Kek { version, key }
    }

    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// Wraps a DEK for subject `subject` of `tenant`.
    pub fn wrap_dek(&self, tenant: &str, subject: &str, dek: &Dek) -> Result<Vec<u8>, CryptoError> {
        seal(&self.key, &self.dek_aad(tenant, subject), dek.0.bytes())
    }

    /// Unwraps the DEK of `subject`; fails if the wrapped DEK belongs to someone else.
    pub fn unwrap_dek(&self, tenant: &str, subject: &str, blob: &[u8]) -> Result<Dek, CryptoError> {
        let pt = open(&self.key, &self.dek_aad(tenant, subject), blob)?;
        SecretKey::from_slice(&pt).map(Dek)
    }

    fn dek_aad(&self, tenant: &str, subject: &str) -> Aad {
        Aad::new(tenant, "dek", subject, &self.version.to_string())
    }
}

/// A data-encryption key: one per data subject. Destroying its wrapped form erases
/// everything encrypted under it (crypto-shredding).
#[derive(Debug)]
pub struct Dek(SecretKey);

/// A copy lives in another wiped-on-drop `Dek`, never in plain memory.
impl Clone for Dek {
    fn clone(&self) -> Self {
        Dek(SecretKey((self.0).0))
    }
}

impl Dek {
    pub fn generate() -> Result<Self, CryptoError> {
        SecretKey::generate().map(Dek)
    }

    pub fn seal(&self, aad: &Aad, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal(&self.0, aad, plaintext)
    }

    pub fn open(&self, aad: &Aad, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open(&self.0, aad, blob)
    }
}

/// Per-tenant secret from which every blind-index key is derived. Versioned so that
/// index keys can be rotated.
#[derive(Debug)]
pub struct IndexSecret {
    pub version: i64,
    key: SecretKey,
}

impl IndexSecret {
    pub fn new(version: i64, key: SecretKey) -> Self {
        IndexSecret { version, key }
    }

    /// The HMAC key of one index (`login`, `email`, …).
    pub fn index_key(&self, index: &str) -> BlindIndexKey {
        BlindIndexKey(self.key.derive(&format!("strongbox/v1/index/{index}")))
    }
}

/// HMAC-SHA256 key of one blind index.
#[derive(Debug)]
pub struct BlindIndexKey(SecretKey);

impl BlindIndexKey {
    /// The blind index of a (normalized) value.
    pub fn digest(&self, normalized: &str) -> [u8; 32] {
        hmac(&self.0, normalized.as_bytes())
    }
}

/// Hashes access tokens so that only the hash is stored; a database writer without
/// the root key cannot mint a hash for a token of its own choosing.
#[derive(Debug)]
pub struct TokenHasher(SecretKey);

impl TokenHasher {
    /// A hasher with a fresh random key (a new tenant's).
    pub fn generate() -> Result<Self, CryptoError> {
        SecretKey::generate().map(TokenHasher)
    }

    pub fn hash(&self, token: &str) -> [u8; 32] {
        hmac(&self.0, token.as_bytes())
    }

    /// Constant-time check of `token` against a stored hash.
    pub fn verify(&self, token: &str, stored: &[u8]) -> bool {
        bool::from(self.hash(token).as_slice().ct_eq(stored))
    }
}

/// HMAC-SHA256 of `msg` under an operator-supplied secret (webhook signatures).
pub fn hmac_sha256(secret: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn hmac(key: &SecretKey, msg: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key.bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// A new record token: a random UUIDv4, lowercase, carrying no information.
pub fn new_record_token() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// A new event token: a UUIDv7 (millisecond time, then random bits), so tokens of
/// later events sort after earlier ones and their index grows at one end. The time
/// it reveals is the event's own, which the event records anyway.
pub fn new_event_token() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// Parses a record token given by a client: any 8-4-4-4-12 hex UUID (Databunker's
/// tokens have no version bits), returned in canonical lowercase form.
pub fn parse_record_token(text: &str) -> Option<String> {
    let b = text.as_bytes();
    if b.len() != 36 {
        return None;
    }
    for (i, c) in b.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        };
        if !ok {
            return None;
        }
    }
    Some(text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canary_detects_wrong_key() {
        let k = RootKey::generate().unwrap();
        let canary = k.make_canary().unwrap();
        assert!(k.check_canary(&canary));
        assert!(!RootKey::generate().unwrap().check_canary(&canary));
        assert!(!k.check_canary(b"garbage"));
    }

    #[test]
    fn root_key_hex_round_trip_and_errors() {
        let k = RootKey::generate().unwrap();
        let hex = k.to_hex();
        let k2 = RootKey::from_hex(&format!(" {}\n", hex.as_str())).unwrap();
        assert_eq!(k.0.bytes(), k2.0.bytes());
        assert!(RootKey::from_hex("abcd").is_err());
        assert!(RootKey::from_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let k = RootKey::from_hex(&"ab".repeat(32)).unwrap();
        let shown = format!("{k:?}");
        assert!(!shown.contains("ab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn wrapped_entries_are_bound_to_their_place() {
        let root = RootKey::generate().unwrap();
        let kek = SecretKey::generate().unwrap();
        let e1 = KeyRingEntry {
            tenant: "t",
            kind: "kek",
            version: 1,
        };
        let e2 = KeyRingEntry {
            tenant: "t",
            kind: "kek",
            version: 2,
        };
        let blob = root.wrap(&e1, &kek).unwrap();
        assert_eq!(root.unwrap(&e1, &blob).unwrap().bytes(), kek.bytes());
        assert!(root.unwrap(&e2, &blob).is_err());
        assert!(RootKey::generate().unwrap().unwrap(&e1, &blob).is_err());
    }

    #[test]
    fn wrapped_dek_is_bound_to_its_subject() {
        let kek = Kek::new(1, SecretKey::generate().unwrap());
        let dek = Dek::generate().unwrap();
        let blob = kek.wrap_dek("t", "alice", &dek).unwrap();
        assert!(kek.unwrap_dek("t", "alice", &blob).is_ok());
        assert!(kek.unwrap_dek("t", "bob", &blob).is_err());
        let kek2 = Kek::new(2, SecretKey::from_slice(kek.key().bytes()).unwrap());
        assert!(kek2.unwrap_dek("t", "alice", &blob).is_err());
    }

    #[test]
    fn index_keys_differ_per_index() {
        let s = IndexSecret::new(1, SecretKey::generate().unwrap());
        assert_ne!(
            s.index_key("login").digest("x"),
            s.index_key("email").digest("x")
        );
        assert_eq!(
            s.index_key("login").digest("x"),
            s.index_key("login").digest("x")
        );
    }

    #[test]
    fn token_hash_verifies_only_the_token() {
        let h = RootKey::generate().unwrap().token_hasher();
        let stored = h.hash("DEMO");
        assert!(h.verify("DEMO", &stored));
        assert!(!h.verify("demo", &stored));
        assert!(!h.verify("", &stored));
    }

    #[test]
    fn record_tokens() {
        let t = new_record_token();
        assert_eq!(parse_record_token(&t).as_deref(), Some(t.as_str()));
        assert_eq!(
            parse_record_token("303004FA-D963-9850-5873-2481B281D8CE").as_deref(),
            Some("303004fa-d963-9850-5873-2481b281d8ce")
        );
        assert!(parse_record_token("303004fa-d963-9850-5873-2481b281d8c").is_none());
        assert!(parse_record_token("303004fa+d963-9850-5873-2481b281d8ce").is_none());
        assert!(parse_record_token("x03004fa-d963-9850-5873-2481b281d8ce").is_none());
    }

    proptest! {
        #[test]
        fn parse_record_token_never_panics(s in ".{0,50}") {
            let _ = parse_record_token(&s);
        }

        #[test]
        fn dek_wrap_round_trip(subject in "[a-z0-9-]{1,36}", tenant in "[a-z]{0,10}") {
            let kek = Kek::new(3, SecretKey::generate().unwrap());
            let dek = Dek::generate().unwrap();
            let blob = kek.wrap_dek(&tenant, &subject, &dek).unwrap();
            let back = kek.unwrap_dek(&tenant, &subject, &blob).unwrap();
            prop_assert_eq!(back.0.bytes(), dek.0.bytes());
        }
    }
}
