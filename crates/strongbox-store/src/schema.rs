//! The schema, one migration list per dialect. The logical schema is the same on every
//! backend; only column types differ. Applied migrations are recorded in
//! `strongbox_migrations` and never edited: add a new version instead.
//!
//! No column holds plaintext personal data: `users.data` and `users.wrapped_dek` are
//! AEAD ciphertext, `user_index.digest` is an HMAC, tokens are random.
//!
//! The `audit` table is append-only and has no secondary index on purpose: every read
//! of personal data appends an event durably before it is answered, and a random-key
//! index (by record or event token) would dirty one more page per event, which on
//! SQLite cost more than the rest of the read (measured: `docs/benchmarks.md`; again for
//! version 3: 25-30 % of GET and PUT). The audit API finds events by time instead
//! (`Store::audit_event`).
//!
//! Version 2 adds `records`: every document other than a profile (app data, sessions,
//! consents, legal bases, requests, …) in one shape — a key within its kind, the owning
//! subject (for listing and erasure), one label for the kind's secondary lookup,
//! plaintext metadata that is never personal data, and an AEAD-sealed body.
//!
//! Version 4 adds the audit chain: `audit_seal` (one link per sealed event: its
//! position, its row and the chain hash there), `audit_head` (where each tenant's
//! sealer stands) and `audit_checkpoint` (signed chain heads). The event rows stay as
//! they were written; links are appended beside them, never updated.
//!
//! Version 3 adds an event's app, its sealed detail (values before and after a change)
//! and the data classes (`pii`, `phi`, …) of the fields it touched.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

pub const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS strongbox_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)";

/// (version, statements) for a dialect.
pub fn migrations(dialect: Dialect) -> &'static [(i64, &'static [&'static str])] {
    match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
        Dialect::Mysql => MYSQL,
    }
}

const SQLITE: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
            "CREATE TABLE key_ring (tenant TEXT NOT NULL, kind TEXT NOT NULL, version INTEGER NOT NULL, \
         wrapped BLOB NOT NULL, created INTEGER NOT NULL, PRIMARY KEY (tenant, kind, version))",
            "CREATE TABLE users (tenant TEXT NOT NULL, token TEXT NOT NULL, kek_version INTEGER, \
         wrapped_dek BLOB, data BLOB, version INTEGER NOT NULL, created INTEGER NOT NULL, \
         updated INTEGER NOT NULL, erased INTEGER, PRIMARY KEY (tenant, token))",
            "CREATE TABLE user_index (tenant TEXT NOT NULL, name TEXT NOT NULL, digest BLOB NOT NULL, \
         token TEXT NOT NULL, key_version INTEGER NOT NULL, PRIMARY KEY (tenant, name, digest))",
            "CREATE INDEX user_index_token ON user_index (tenant, token)",
            "CREATE TABLE audit (id INTEGER PRIMARY KEY, atoken TEXT NOT NULL, \
         tenant TEXT NOT NULL, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, \
         record TEXT, status TEXT NOT NULL)",
        ],
    ),
    (
        2,
        &[
            "CREATE TABLE records (tenant TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, \
             owner TEXT, label TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL, \
             expires INTEGER, version INTEGER NOT NULL, meta BLOB, body BLOB, kek_version INTEGER, \
             wrapped_dek BLOB, PRIMARY KEY (tenant, kind, id))",
            "CREATE INDEX records_owner ON records (tenant, owner, kind)",
            "CREATE INDEX records_label ON records (tenant, kind, label)",
        ],
    ),
    (
        3,
        &[
            "ALTER TABLE audit ADD COLUMN app TEXT",
            "ALTER TABLE audit ADD COLUMN detail BLOB",
            "ALTER TABLE audit ADD COLUMN classes TEXT",
        ],
    ),
    (
        4,
        &[
            "CREATE TABLE audit_seal (tenant TEXT NOT NULL, seq INTEGER NOT NULL, \
             audit_id INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (tenant, seq)) WITHOUT ROWID",
            "CREATE TABLE audit_head (tenant TEXT PRIMARY KEY, seq INTEGER NOT NULL, \
             hash BLOB NOT NULL, max_id INTEGER NOT NULL, gaps TEXT NOT NULL, version INTEGER NOT NULL)",
            "CREATE TABLE audit_checkpoint (tenant TEXT NOT NULL, seq INTEGER NOT NULL, \
             hash BLOB NOT NULL, at INTEGER NOT NULL, signature BLOB NOT NULL, PRIMARY KEY (tenant, seq))",
        ],
    ),
];

const POSTGRES: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE meta (name VARCHAR(64) PRIMARY KEY, value BYTEA NOT NULL)",
            "CREATE TABLE key_ring (tenant VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL, version BIGINT NOT NULL, \
         wrapped BYTEA NOT NULL, created BIGINT NOT NULL, PRIMARY KEY (tenant, kind, version))",
            "CREATE TABLE users (tenant VARCHAR(64) NOT NULL, token VARCHAR(36) NOT NULL, kek_version BIGINT, \
         wrapped_dek BYTEA, data BYTEA, version BIGINT NOT NULL, created BIGINT NOT NULL, \
         updated BIGINT NOT NULL, erased BIGINT, PRIMARY KEY (tenant, token))",
            "CREATE TABLE user_index (tenant VARCHAR(64) NOT NULL, name VARCHAR(16) NOT NULL, digest BYTEA NOT NULL, \
         token VARCHAR(36) NOT NULL, key_version BIGINT NOT NULL, PRIMARY KEY (tenant, name, digest))",
            "CREATE INDEX user_index_token ON user_index (tenant, token)",
            "CREATE TABLE audit (id BIGSERIAL PRIMARY KEY, atoken VARCHAR(36) NOT NULL, \
         tenant VARCHAR(64) NOT NULL, at BIGINT NOT NULL, actor VARCHAR(64) NOT NULL, action VARCHAR(64) NOT NULL, \
         record VARCHAR(36), status VARCHAR(16) NOT NULL)",
        ],
    ),
    (
        2,
        &[
            "CREATE TABLE records (tenant VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL, id VARCHAR(200) NOT NULL, \
             owner VARCHAR(80), label VARCHAR(80), created BIGINT NOT NULL, updated BIGINT NOT NULL, \
             expires BIGINT, version BIGINT NOT NULL, meta BYTEA, body BYTEA, kek_version BIGINT, \
             wrapped_dek BYTEA, PRIMARY KEY (tenant, kind, id))",
            "CREATE INDEX records_owner ON records (tenant, owner, kind)",
            "CREATE INDEX records_label ON records (tenant, kind, label)",
        ],
    ),
    (
        3,
        &[
            "ALTER TABLE audit ADD COLUMN app VARCHAR(32)",
            "ALTER TABLE audit ADD COLUMN detail BYTEA",
            "ALTER TABLE audit ADD COLUMN classes VARCHAR(64)",
        ],
    ),
    (
        4,
        &[
            "CREATE TABLE audit_seal (tenant VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, \
             audit_id BIGINT NOT NULL, hash BYTEA NOT NULL, PRIMARY KEY (tenant, seq))",
            "CREATE TABLE audit_head (tenant VARCHAR(64) PRIMARY KEY, seq BIGINT NOT NULL, \
             hash BYTEA NOT NULL, max_id BIGINT NOT NULL, gaps TEXT NOT NULL, version BIGINT NOT NULL)",
            "CREATE TABLE audit_checkpoint (tenant VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, \
             hash BYTEA NOT NULL, at BIGINT NOT NULL, signature BYTEA NOT NULL, PRIMARY KEY (tenant, seq))",
        ],
    ),
];

const MYSQL: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE meta (name VARCHAR(64) PRIMARY KEY, value LONGBLOB NOT NULL) \
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE key_ring (tenant VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL, version BIGINT NOT NULL, \
         wrapped BLOB NOT NULL, created BIGINT NOT NULL, PRIMARY KEY (tenant, kind, version)) \
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE users (tenant VARCHAR(64) NOT NULL, token VARCHAR(36) NOT NULL, kek_version BIGINT, \
         wrapped_dek BLOB, data LONGBLOB, version BIGINT NOT NULL, created BIGINT NOT NULL, \
         updated BIGINT NOT NULL, erased BIGINT, PRIMARY KEY (tenant, token)) \
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE user_index (tenant VARCHAR(64) NOT NULL, name VARCHAR(16) NOT NULL, digest VARBINARY(32) NOT NULL, \
         token VARCHAR(36) NOT NULL, key_version BIGINT NOT NULL, PRIMARY KEY (tenant, name, digest), \
         KEY user_index_token (tenant, token)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE audit (id BIGINT AUTO_INCREMENT PRIMARY KEY, atoken VARCHAR(36) NOT NULL, \
         tenant VARCHAR(64) NOT NULL, at BIGINT NOT NULL, actor VARCHAR(64) NOT NULL, action VARCHAR(64) NOT NULL, \
         record VARCHAR(36), status VARCHAR(16) NOT NULL) \
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    ),
    (
        2,
        &[
            "CREATE TABLE records (tenant VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL, id VARCHAR(200) NOT NULL, \
             owner VARCHAR(80), label VARCHAR(80), created BIGINT NOT NULL, updated BIGINT NOT NULL, \
             expires BIGINT, version BIGINT NOT NULL, meta LONGBLOB, body LONGBLOB, kek_version BIGINT, \
             wrapped_dek BLOB, PRIMARY KEY (tenant, kind, id), KEY records_owner (tenant, owner, kind), \
             KEY records_label (tenant, kind, label)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    ),
    (
        3,
        &[
            "ALTER TABLE audit ADD COLUMN app VARCHAR(32), ADD COLUMN detail LONGBLOB, \
           ADD COLUMN classes VARCHAR(64)",
        ],
    ),
    (
        4,
        &[
            "CREATE TABLE audit_seal (tenant VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, \
             audit_id BIGINT NOT NULL, hash VARBINARY(32) NOT NULL, PRIMARY KEY (tenant, seq)) \
             ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE audit_head (tenant VARCHAR(64) PRIMARY KEY, seq BIGINT NOT NULL, \
             hash VARBINARY(32) NOT NULL, max_id BIGINT NOT NULL, gaps MEDIUMTEXT NOT NULL, \
             version BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE audit_checkpoint (tenant VARCHAR(64) NOT NULL, seq BIGINT NOT NULL, \
             hash VARBINARY(32) NOT NULL, at BIGINT NOT NULL, signature VARBINARY(64) NOT NULL, \
             PRIMARY KEY (tenant, seq)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    ),
];
