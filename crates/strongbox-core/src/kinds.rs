//! The vocabulary of what is stored: the kinds of records (`records.kind`) and of
//! key-ring entries (`key_ring.kind`), in one place. Their names are written to the
//! database and to backups: never change one; add a new kind instead.

/// What a row of `records` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A user's document of one application (`/v1/userapp`).
    App,
    /// A session (`/v1/session`), linked to a user or not.
    Session,
    /// A legal basis (`/v1/lbasis`).
    LegalBasis,
    /// A consent: a person's agreement to a legal basis.
    Agreement,
    /// A processing activity (`/v1/pactivity`).
    Activity,
    /// A data-subject request waiting for the DPO.
    Request,
    /// The guard that makes filing one request atomic.
    RequestGuard,
    /// A shared record (`/v1/sharedrecord`).
    Share,
    /// A user access token (Databunker's xtoken), as its keyed hash.
    AccessToken,
    /// A user's retention state (`/v1/exp`).
    Retention,
    /// A signed erasure receipt (and so an entry of the erasure ledger).
    Receipt,
    /// A webhook waiting for delivery.
    Outbox,
}

impl RecordKind {
    /// The stored name.
    pub const fn name(self) -> &'static str {
        match self {
            RecordKind::App => "app",
            RecordKind::Session => "session",
            RecordKind::LegalBasis => "lbasis",
            RecordKind::Agreement => "agreement",
            RecordKind::Activity => "pactivity",
            RecordKind::Request => "request",
            RecordKind::RequestGuard => "reqguard",
            RecordKind::Share => "share",
            RecordKind::AccessToken => "xtoken",
            RecordKind::Retention => "exp",
            RecordKind::Receipt => "receipt",
            RecordKind::Outbox => "outbox",
        }
    }
}

/// What an entry of the key ring is (each wrapped by the root key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A key-encryption key: wraps the per-person DEKs.
    Kek,
    /// An index secret: the blind indexes' HMAC keys derive from it.
    Index,
    /// The access-token hasher's key, once a root-key rotation made it an entry.
    TokenHasher,
    /// The audit chain's Ed25519 signing key.
    Signing,
}

impl KeyKind {
    /// The stored name.
    pub const fn name(self) -> &'static str {
        match self {
            KeyKind::Kek => "kek",
            KeyKind::Index => "index",
            KeyKind::TokenHasher => "token",
            KeyKind::Signing => "signing",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<KeyKind> {
        [
            KeyKind::Kek,
            KeyKind::Index,
            KeyKind::TokenHasher,
            KeyKind::Signing,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}
