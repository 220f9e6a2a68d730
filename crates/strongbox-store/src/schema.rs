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
//!
//! Version 5 gives every audit event its action's stable name (`audit.name`:
//! `agreement.withdraw`) and widens `audit.action`, the title with its arguments, to
//! 255 characters (a 65-character brief took it past 64). Adding a nullable column and
//! widening a `VARCHAR` are catalog changes on PostgreSQL and done in place by InnoDB
//! (the length prefix is two bytes either way); SQLite does not limit `TEXT`.
//!
//! Version 7 (PostgreSQL only) turns on row-level security for the tenant tables:
//! see the migration's comment and `SqlxStore::scoped`.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

pub const MIGRATIONS_TABLE: &str =
    "CREATE TABLE strongbox_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)";

/// The tables the migrations create, in order (the migrations table first), read
/// from the statements themselves.
pub fn table_names(dialect: Dialect) -> Vec<&'static str> {
    let mut names = vec!["strongbox_migrations"];
    for (_, statements) in migrations(dialect) {
        for st in *statements {
            if let Some(rest) = st.strip_prefix("CREATE TABLE ")
                && let Some(name) = rest.split_whitespace().next()
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
    }
    names
}

/// The newest schema version this build knows.
pub fn newest_version(dialect: Dialect) -> i64 {
    migrations(dialect)
        .iter()
        .map(|(v, _)| *v)
        .max()
        .unwrap_or(0)
}

/// What opening a store does about its schema.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Create `strongbox_migrations` first (a new store).
    pub create_table: bool,
    /// Versions to apply, in order.
    pub apply: Vec<i64>,
}

/// Decides what to migrate, before anything is written. `tables`: the tables already
/// in the database (or schema); `applied`: the versions recorded in
/// `strongbox_migrations`, `None` when that table does not exist. `shown` names the
/// store in errors. A new store is created only by `init` (`create`), and only where
/// none of its tables exists yet; read-only commands (`read_only`) never migrate.
pub fn plan(
    dialect: Dialect,
    tables: &[String],
    applied: Option<&[i64]>,
    create: bool,
    read_only: bool,
    shown: &str,
) -> crate::Result<Plan> {
    let known: Vec<i64> = migrations(dialect).iter().map(|(v, _)| *v).collect();
    let Some(applied) = applied else {
        let taken: Vec<&str> = table_names(dialect)
            .into_iter()
            .filter(|t| tables.iter().any(|have| have.eq_ignore_ascii_case(t)))
            .collect();
        if !taken.is_empty() {
            return Err(crate::StoreError::Backend(format!(
                "{shown} already has tables that Strongbox would create ({}); nothing was \
                 changed. Give Strongbox a database of its own (on PostgreSQL, \
                 --database-schema NAME gives it a schema of its own)",
                taken.join(", ")
            )));
        }
        if !create {
            return Err(crate::StoreError::NotInitialized(String::new()));
        }
        return Ok(Plan {
            create_table: true,
            apply: known,
        });
    };
    if let Some(newer) = applied.iter().copied().filter(|v| !known.contains(v)).max() {
        return Err(crate::StoreError::Backend(format!(
            "{shown} has schema version {newer}, newer than this build of Strongbox knows \
             ({}): run a newer version",
            newest_version(dialect)
        )));
    }
    let apply: Vec<i64> = known.into_iter().filter(|v| !applied.contains(v)).collect();
    if read_only && !apply.is_empty() {
        let at = applied.iter().copied().max().unwrap_or(0);
        return Err(crate::StoreError::Backend(format!(
            "the schema of {shown} is at version {at} and this build needs version {}; \
             this command does not change the schema: run `strongbox serve` once with a \
             role that may",
            newest_version(dialect)
        )));
    }
    Ok(Plan {
        create_table: false,
        apply,
    })
}

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
    (5, &["ALTER TABLE audit ADD COLUMN name TEXT"]),
    // One person's audit trail without scanning everyone's; `record` first, so that
    // the whole log's newest-first page keeps walking the primary key.
    (
        6,
        &["CREATE INDEX audit_record ON audit (record, tenant, id)"],
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
    (
        5,
        &[
            "ALTER TABLE audit ALTER COLUMN action TYPE VARCHAR(255)",
            "ALTER TABLE audit ADD COLUMN name VARCHAR(64)",
        ],
    ),
    (
        6,
        &["CREATE INDEX audit_record ON audit (record, tenant, id)"],
    ),
    // Row-level security: a second wall between tenants. Every table with a tenant
    // column gets a policy that admits only the rows of the tenant named by the
    // transaction's `strongbox.tenant`; it binds the `strongbox_tenant` role, which
    // tenant-scoped handles switch to (`SET LOCAL ROLE`), and not the owner.
    (
        7,
        &[
            // The role tenant-scoped transactions run as (cluster-wide: created once,
            // by whichever database gets there first; a user who may not create roles
            // leaves it to an operator, and tenants other than the main one are then
            // refused until it exists).
            "DO $$ BEGIN \
               BEGIN CREATE ROLE strongbox_tenant NOLOGIN; \
               EXCEPTION WHEN duplicate_object OR unique_violation OR insufficient_privilege THEN NULL; END; \
               IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'strongbox_tenant') THEN \
                 BEGIN EXECUTE 'GRANT strongbox_tenant TO ' || quote_ident(current_user); \
                 EXCEPTION WHEN OTHERS THEN NULL; END; \
                 EXECUTE format('GRANT USAGE ON SCHEMA %I TO strongbox_tenant', current_schema()); \
                 GRANT SELECT ON meta TO strongbox_tenant; \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON key_ring, users, user_index, audit, \
                   records, audit_seal, audit_head, audit_checkpoint TO strongbox_tenant; \
                 GRANT USAGE ON SEQUENCE audit_id_seq TO strongbox_tenant; \
               END IF; \
             END $$",
            "ALTER TABLE key_ring ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_scope ON key_ring USING (tenant = current_setting('strongbox.tenant', true)) \
             WITH CHECK (tenant = current_setting('strongbox.tenant', true))",
            "ALTER TABLE users ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_scope ON users USING (tenant = current_setting('strongbox.tenant', true)) \
             WITH CHECK (tenant = current_setting('strongbox.tenant', true))",
            "ALTER TABLE user_index ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_scope ON user_index USING (tenant = current_setting('strongbox.tenant', true)) \
             WITH CHECK (tenant = current_setting('strongbox.tenant', true))",
            "ALTER TABLE audit ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_scope ON audit USING (tenant = current_setting('strongbox.tenant', true)) \
             WITH CHECK (tenant = current_setting('strongbox.tenant', true))",
            "ALTER TABLE records ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_scope ON records USING (tenant = current_setting('strongbox.tenant', true)) \
             WITH CHECK (tenant = current_setting('strongbox.tenant', true))",
            "ALTER TABLE audit_seal ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_scope ON audit_seal USING (tenant = current_setting('strongbox.tenant', true)) \
             WITH CHECK (tenant = current_setting('strongbox.tenant', true))",
            "ALTER TABLE audit_head ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_scope ON audit_head USING (tenant = current_setting('strongbox.tenant', true)) \
             WITH CHECK (tenant = current_setting('strongbox.tenant', true))",
            "ALTER TABLE audit_checkpoint ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_scope ON audit_checkpoint USING (tenant = current_setting('strongbox.tenant', true)) \
             WITH CHECK (tenant = current_setting('strongbox.tenant', true))",
        ],
    ),
    // Room in `actor` for the policy decisions a role token's calls record.
    (
        8,
        &["ALTER TABLE audit ALTER COLUMN actor TYPE VARCHAR(255)"],
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
    (
        5,
        &["ALTER TABLE audit MODIFY action VARCHAR(255) NOT NULL, ADD COLUMN name VARCHAR(64)"],
    ),
    (
        6,
        &["CREATE INDEX audit_record ON audit (record, tenant, id)"],
    ),
    // Room in `actor` for the policy decisions a role token's calls record.
    (7, &["ALTER TABLE audit MODIFY actor VARCHAR(255) NOT NULL"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        let d = Dialect::Postgres;
        let newest = newest_version(d);
        let all: Vec<i64> = (1..=newest).collect();
        let none: Vec<String> = Vec::new();
        let app = vec!["orders".to_string(), "USERS".to_string()];
        // A fresh database: everything, by init only.
        let p = plan(d, &none, None, true, false, "db").unwrap();
        assert!(p.create_table && p.apply == all);
        assert!(matches!(
            plan(d, &none, None, false, false, "db"),
            Err(crate::StoreError::NotInitialized(_))
        ));
        // An application's `users`: refused, named, before anything is written.
        let e = plan(d, &app, None, true, false, "db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("(users)"), "{e}");
        // Up to date: nothing, also read-only.
        let p = plan(d, &none, Some(&all), false, true, "db").unwrap();
        assert!(!p.create_table && p.apply.is_empty());
        // Behind: the rest; read-only refuses.
        let p = plan(d, &none, Some(&all[..1]), false, false, "db").unwrap();
        assert_eq!(p.apply, all[1..].to_vec());
        let e = plan(d, &none, Some(&all[..1]), false, true, "db").unwrap_err();
        assert!(e.to_string().contains("does not change the schema"), "{e}");
        // Ahead: refused.
        let ahead = vec![newest + 1];
        assert!(plan(d, &none, Some(&ahead), false, false, "db").is_err());
    }

    #[test]
    fn every_dialect_names_the_same_tables() {
        let sqlite = table_names(Dialect::Sqlite);
        assert!(sqlite.contains(&"users") && sqlite.contains(&"audit_checkpoint"));
        assert_eq!(sqlite, table_names(Dialect::Postgres));
        assert_eq!(sqlite, table_names(Dialect::Mysql));
    }
}
