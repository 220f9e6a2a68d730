//! The audit log's hash chain and the vault's signatures.
//!
//! Every audit event gets a *digest* over what the store holds of it — metadata and
//! the ciphertext of its detail, never plaintext — so erasing a subject (destroying
//! the key of that ciphertext) leaves every digest, and so the chain, verifiable.
//! Sealed events are linked in order: `link(k) = H(tag, link(k-1), k, digest(k))`,
//! starting from a per-tenant genesis value. Anyone can recompute a chain (it needs
//! no key); what an attacker with write access cannot recompute are the Ed25519
//! signatures over chain heads (checkpoints) and over erasure receipts.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::SecretKey;

/// What of an audit event the chain covers: everything the store holds of it.
pub struct ChainEvent<'a> {
    pub tenant: &'a str,
    pub atoken: &'a str,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub record: Option<&'a str>,
    pub status: &'a str,
    pub app: Option<&'a str>,
    /// The sealed detail: ciphertext.
    pub detail: Option<&'a [u8]>,
    pub classes: Option<&'a str>,
    /// The action's stable name; events written before names existed have none, and
    /// their digest is what it was (the field is hashed only when present).
    pub name: Option<&'a str>,
}

fn field(h: &mut Sha256, value: Option<&[u8]>) {
    match value {
        None => h.update([0u8]),
        Some(v) => {
            h.update([1u8]);
            h.update((v.len() as u64).to_be_bytes());
            h.update(v);
        }
    }
}

/// The digest of one event: SHA-256 over a length-prefixed encoding of its fields.
pub fn event_digest(e: &ChainEvent<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"strongbox/v1/audit-event");
    field(&mut h, Some(e.tenant.as_bytes()));
    field(&mut h, Some(e.atoken.as_bytes()));
    field(&mut h, Some(&e.at.to_be_bytes()));
    field(&mut h, Some(e.actor.as_bytes()));
    field(&mut h, Some(e.action.as_bytes()));
    field(&mut h, e.record.map(str::as_bytes));
    field(&mut h, Some(e.status.as_bytes()));
    field(&mut h, e.app.map(str::as_bytes));
    field(&mut h, e.detail);
    field(&mut h, e.classes.map(str::as_bytes));
    if let Some(name) = e.name {
        field(&mut h, Some(name.as_bytes()));
    }
    h.finalize().into()
}

/// The link before the first event of `tenant`'s chain (position 0).
pub fn chain_genesis(tenant: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"strongbox/v1/audit-genesis");
    field(&mut h, Some(tenant.as_bytes()));
    h.finalize().into()
}

/// The link at position `seq` (1, 2, …): the previous link, the position and the
/// event's digest.
pub fn chain_link(prev: &[u8], seq: i64, digest: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"strongbox/v1/audit-link");
    field(&mut h, Some(prev));
    h.update(seq.to_be_bytes());
    h.update(digest);
    h.finalize().into()
}

/// A short public fingerprint of some bytes (a destroyed wrapped key): the first 16
/// bytes of their SHA-256, as hex.
pub fn fingerprint(bytes: &[u8]) -> String {
    let d: [u8; 32] = Sha256::digest(bytes).into();
    hex::encode(&d[..16])
}

/// What a checkpoint signs: the chain of `tenant` had link `hash` at position `seq`
/// when it was signed at `at` (Unix seconds).
pub fn checkpoint_message(tenant: &str, seq: i64, hash: &[u8], at: i64) -> Vec<u8> {
    let mut m = Vec::with_capacity(96 + tenant.len());
    m.extend_from_slice(b"strongbox/v1/audit-checkpoint\n");
    m.extend_from_slice(&(tenant.len() as u64).to_be_bytes());
    m.extend_from_slice(tenant.as_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&(hash.len() as u64).to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&at.to_be_bytes());
    m
}

/// What kind of statement a signature is over; part of what is signed, so a
/// signature on one kind can never pass for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedKind {
    Checkpoint,
    Receipt,
    Report,
}

impl SignedKind {
    fn tag(self) -> &'static [u8] {
        match self {
            SignedKind::Checkpoint => b"strongbox/v1/sig/checkpoint\0",
            SignedKind::Receipt => b"strongbox/v1/sig/receipt\0",
            SignedKind::Report => b"strongbox/v1/sig/report\0",
        }
    }
}

fn tagged(kind: SignedKind, msg: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(kind.tag().len() + msg.len());
    m.extend_from_slice(kind.tag());
    m.extend_from_slice(msg);
    m
}

/// The vault's Ed25519 signing key (its seed is a key-ring entry, wrapped by the root
/// key like the KEKs). No `Debug` output of the key; wiped on drop.
pub struct VaultSigner(SigningKey);

impl VaultSigner {
    pub fn new(seed: &SecretKey) -> Self {
        VaultSigner(SigningKey::from_bytes(seed.bytes()))
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// A 64-byte signature over `msg` as a statement of `kind`.
    pub fn sign(&self, kind: SignedKind, msg: &[u8]) -> [u8; 64] {
        self.0.sign(&tagged(kind, msg)).to_bytes()
    }
}

impl std::fmt::Debug for VaultSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultSigner([REDACTED])")
    }
}

/// Whether `signature` is `public_key`'s signature over `msg` as a statement of
/// `kind` (strict verification: no malleable or weak-key signatures).
pub fn verify_signature(public_key: &[u8], kind: SignedKind, msg: &[u8], signature: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (
        <[u8; 32]>::try_from(public_key),
        <[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    let Ok(pk) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    pk.verify_strict(&tagged(kind, msg), &Signature::from_bytes(&sig))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(atoken: &'a str, detail: Option<&'a [u8]>) -> ChainEvent<'a> {
        ChainEvent {
            tenant: "default",
            atoken,
            at: 1_700_000_000,
            actor: "root",
            action: "get user record",
            record: Some("8e9a8f0e-0000-4000-8000-000000000000"),
            status: "ok",
            app: None,
            detail,
            classes: None,
            name: None,
        }
    }

    #[test]
    fn digests_cover_every_field() {
        let a = event_digest(&event("a", None));
        assert_ne!(a, event_digest(&event("b", None)));
        assert_ne!(a, event_digest(&event("a", Some(b""))));
        let mut e = event("a", None);
        e.record = None;
        assert_ne!(a, event_digest(&e));
        // Field boundaries are unambiguous: moving a byte between fields changes it.
        let mut x = event("a", None);
        x.actor = "ro";
        x.action = "otget user record";
        assert_ne!(a, event_digest(&x));
    }

    #[test]
    fn links_depend_on_position_and_predecessor() {
        let d = event_digest(&event("a", None));
        let g = chain_genesis("default");
        assert_ne!(chain_link(&g, 1, &d), chain_link(&g, 2, &d));
        assert_ne!(chain_link(&g, 1, &d), chain_link(&[0; 32], 1, &d));
        assert_ne!(g, chain_genesis("other"));
    }

    #[test]
    fn signatures_verify_only_for_their_kind_and_message() {
        let seed = SecretKey::generate().unwrap();
        let s = VaultSigner::new(&seed);
        let sig = s.sign(SignedKind::Receipt, b"msg");
        let pk = s.public_key();
        assert!(verify_signature(&pk, SignedKind::Receipt, b"msg", &sig));
        assert!(!verify_signature(&pk, SignedKind::Checkpoint, b"msg", &sig));
        assert!(!verify_signature(&pk, SignedKind::Receipt, b"msh", &sig));
        let other = VaultSigner::new(&SecretKey::generate().unwrap()).public_key();
        assert!(!verify_signature(&other, SignedKind::Receipt, b"msg", &sig));
        assert!(!verify_signature(
            &pk,
            SignedKind::Receipt,
            b"msg",
            &sig[..63]
        ));
    }
}
