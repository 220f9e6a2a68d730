//! Statements shared by every backend, written with `?` placeholders. PostgreSQL's
//! `$n` form is derived once by [`numbered`]. Every value is bound, never spliced.
//! Where a dialect needs its own text, a function here picks it.

use crate::schema::Dialect;

pub const PING: &str = "SELECT 1";
pub const META_GET: &str = "SELECT value FROM meta WHERE name = ?";
pub const META_PUT: &str = "INSERT INTO meta (name, value) VALUES (?, ?)";
pub const KEYS_GET: &str =
    "SELECT kind, version, wrapped, created FROM key_ring WHERE tenant = ? ORDER BY kind, version";
pub const KEY_PUT: &str =
    "INSERT INTO key_ring (tenant, kind, version, wrapped, created) VALUES (?, ?, ?, ?, ?)";

pub const USER_GET: &str = "SELECT token, kek_version, wrapped_dek, data, version, created, updated, erased \
     FROM users WHERE tenant = ? AND token = ?";
pub const USERS_PAGE: &str = "SELECT token, kek_version, wrapped_dek, data, version, created, updated, erased \
     FROM users WHERE tenant = ? AND erased IS NULL ORDER BY token DESC LIMIT ? OFFSET ?";
pub const USERS_COUNT: &str = "SELECT COUNT(*) FROM users WHERE tenant = ? AND erased IS NULL";
pub const USER_INSERT: &str = "INSERT INTO users (tenant, token, kek_version, wrapped_dek, data, version, created, updated, erased) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
pub const USER_UPDATE: &str = "UPDATE users SET data = ?, version = version + 1, updated = ? \
     WHERE tenant = ? AND token = ? AND version = ? AND erased IS NULL";
/// Hides a live profile (a soft delete): the row becomes a tombstone like an
/// erased one while its ciphertext and key wait in a `trash` record.
pub const USER_HIDE: &str = "UPDATE users SET data = NULL, wrapped_dek = NULL, kek_version = NULL, \
     erased = ?, updated = ?, version = version + 1 \
     WHERE tenant = ? AND token = ? AND version = ? AND erased IS NULL";
/// Brings a hidden profile back (only while no erasure has replaced the hiding).
pub const USER_REVIVE: &str = "UPDATE users SET data = ?, wrapped_dek = ?, kek_version = ?, \
     erased = NULL, updated = ?, version = version + 1 \
     WHERE tenant = ? AND token = ? AND erased IS NOT NULL AND wrapped_dek IS NULL";
pub const USER_ERASE_KEEP: &str = "UPDATE users SET data = ?, wrapped_dek = ?, kek_version = ?, \
     erased = ?, updated = ?, version = version + 1 WHERE tenant = ? AND token = ?";
pub const USER_ERASE: &str = "UPDATE users SET data = NULL, wrapped_dek = NULL, kek_version = NULL, \
     erased = ?, updated = ?, version = version + 1 WHERE tenant = ? AND token = ?";

/// The user holding a blind index, in one round trip.
pub const USER_BY_INDEX: &str = "SELECT u.token, u.kek_version, u.wrapped_dek, u.data, u.version, u.created, u.updated, u.erased \
     FROM user_index i JOIN users u ON u.tenant = i.tenant AND u.token = i.token \
     WHERE i.tenant = ? AND i.name = ? AND i.digest = ?";
/// The same for a value under either of two index-key versions (while a rotation's
/// backfill runs), the newer version's entry first.
pub const USER_BY_INDEX2: &str = "SELECT u.token, u.kek_version, u.wrapped_dek, u.data, u.version, u.created, u.updated, u.erased \
     FROM user_index i JOIN users u ON u.tenant = i.tenant AND u.token = i.token \
     WHERE i.tenant = ? AND i.name = ? AND i.digest IN (?, ?) ORDER BY i.key_version DESC LIMIT 1";
pub const INDEX_INSERT: &str =
    "INSERT INTO user_index (tenant, name, digest, token, key_version) VALUES (?, ?, ?, ?, ?)";
/// [`INDEX_INSERT`] of `n` rows in one statement.
pub fn index_insert_rows(n: usize) -> String {
    let mut sql =
        String::from("INSERT INTO user_index (tenant, name, digest, token, key_version) VALUES ");
    sql.push_str(&vec!["(?, ?, ?, ?, ?)"; n].join(", "));
    sql
}
pub const INDEX_DROP_ONE: &str =
    "DELETE FROM user_index WHERE tenant = ? AND token = ? AND name = ?";
pub const INDEX_DROP_ALL: &str = "DELETE FROM user_index WHERE tenant = ? AND token = ?";
/// Every entry of one index (the search grams, when search is turned off).
pub const INDEX_DROP_NAME: &str = "DELETE FROM user_index WHERE tenant = ? AND name = ?";
/// The holders of the entries of index `name` whose digests lie in `[lo, hi]`: the
/// people holding one search gram (a digest prefix, then their token).
pub const INDEX_RANGE_TOKENS: &str = "SELECT token FROM user_index \
     WHERE tenant = ? AND name = ? AND digest >= ? AND digest <= ? LIMIT ?";
/// The next users by token, after a token (erased ones too: the caller skips them).
pub const USERS_AFTER: &str = "SELECT token, kek_version, wrapped_dek, data, version, created, updated, erased \
     FROM users WHERE tenant = ? AND token > ? ORDER BY token LIMIT ?";

/// Columns of an audit insert, in `bind_audit` order.
pub const AUDIT_INSERT_HEAD: &str = "INSERT INTO audit (atoken, tenant, at, actor, action, record, status, app, detail, classes, name) VALUES ";
pub const AUDIT_WIDTH: usize = 11;
pub const AUDIT_INSERT: &str = "INSERT INTO audit (atoken, tenant, at, actor, action, record, status, app, detail, classes, name) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// `SELECT` of whole audit rows, in the column order `audit_row` reads.
macro_rules! select_audit {
    ($rest:literal) => {
        concat!(
            "SELECT id, atoken, at, actor, action, record, status, app, detail, classes, tenant, name \
             FROM audit ",
            $rest
        )
    };
}
pub const AUDIT_IN_RANGE: &str =
    select_audit!("WHERE id >= ? AND id < ? AND atoken = ? AND tenant = ?");
pub const AUDIT_AFTER: &str = select_audit!("WHERE id > ? ORDER BY id LIMIT ?");
/// Two subqueries, not `SELECT MIN(id), MAX(id)`: SQLite answers a lone MIN or MAX
/// from the primary key's ends, but both in one query scan the whole log.
pub const AUDIT_ID_RANGE: &str = "SELECT (SELECT MIN(id) FROM audit), (SELECT MAX(id) FROM audit)";
pub const AUDIT_AT_FROM: &str = "SELECT id, at FROM audit WHERE id >= ? ORDER BY id LIMIT 1";
pub const AUDIT_PAGE_ALL: &str =
    select_audit!("WHERE tenant = ? ORDER BY id DESC LIMIT ? OFFSET ?");
pub const AUDIT_PAGE_RECORD: &str =
    select_audit!("WHERE tenant = ? AND record = ? ORDER BY id DESC LIMIT ? OFFSET ?");
pub const AUDIT_COUNT_ALL: &str = "SELECT COUNT(*) FROM audit WHERE tenant = ?";
/// Events after an id, bounded above too (by `i64::MAX`): PostgreSQL estimates a
/// one-sided `id > $2` it has no statistics or value for (a prepared statement's
/// generic plan, a table not analyzed yet) as a third of the table and scans all of
/// it, on every call; a two-sided range it estimates as a narrow one and walks the
/// primary key from `$2`. The soak test found this (docs/benchmarks.md).
pub const AUDIT_COUNT_AFTER: &str =
    "SELECT COUNT(*) FROM audit WHERE tenant = ? AND id > ? AND id <= ?";
pub const AUDIT_COUNT_RECORD: &str = "SELECT COUNT(*) FROM audit WHERE tenant = ? AND record = ?";

pub const HEAD_GET: &str =
    "SELECT seq, hash, max_id, gaps, version FROM audit_head WHERE tenant = ?";
pub const HEAD_INSERT: &str = "INSERT INTO audit_head (seq, hash, max_id, gaps, version, tenant) \
     VALUES (?, ?, ?, ?, ?, ?)";
pub const HEAD_UPDATE: &str = "UPDATE audit_head SET seq = ?, hash = ?, max_id = ?, gaps = ?, version = ? \
     WHERE tenant = ? AND version = ?";
pub const SEAL_INSERT_HEAD: &str = "INSERT INTO audit_seal (tenant, seq, audit_id, hash) VALUES ";
pub const SEAL_WIDTH: usize = 4;
pub const SEALS_AFTER: &str = "SELECT seq, audit_id, hash FROM audit_seal \
     WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?";
pub const SEAL_OF: &str = "SELECT seq, audit_id, hash FROM audit_seal \
     WHERE tenant = ? AND seq > ? AND audit_id = ?";
pub const CHECKPOINT_INSERT: &str =
    "INSERT INTO audit_checkpoint (tenant, seq, hash, at, signature) VALUES (?, ?, ?, ?, ?)";
pub const CHECKPOINT_EXISTS: &str = "SELECT seq FROM audit_checkpoint WHERE tenant = ? AND seq = ?";
pub const CHECKPOINTS: &str =
    "SELECT seq, hash, at, signature FROM audit_checkpoint WHERE tenant = ? ORDER BY seq";

/// `SELECT` of a whole record row, in the column order `record_row` reads.
macro_rules! select_records {
    ($rest:literal) => {
        concat!(
            "SELECT kind, id, owner, label, created, updated, expires, version, meta, body, \
             kek_version, wrapped_dek FROM records ",
            $rest
        )
    };
}

pub const RECORD_GET: &str = select_records!("WHERE tenant = ? AND kind = ? AND id = ?");
// No ORDER BY on the two lookups below: SQLite would then walk the primary key
// (tenant, kind, id) through every record of the kind rather than sort the few
// rows the owner or label index finds. The callers sort.
pub const RECORDS_OF_OWNER: &str = select_records!("WHERE tenant = ? AND owner = ? AND kind = ?");
pub const RECORDS_OF_OWNERS: &str =
    select_records!("WHERE tenant = ? AND kind = ? AND owner IN (?, ?, ?, ?) ORDER BY owner, id");
pub const GUARD_EXISTS: &str =
    "SELECT COUNT(*) FROM records WHERE tenant = ? AND kind = ? AND owner IN (?, ?, ?, ?)";
pub const RECORDS_OF_KIND: &str = select_records!("WHERE tenant = ? AND kind = ? ORDER BY id");
pub const RECORDS_BY_LABEL: &str = select_records!("WHERE tenant = ? AND kind = ? AND label = ?");
pub const RECORDS_DUE: &str = select_records!(
    "WHERE tenant = ? AND kind = ? AND expires IS NOT NULL AND expires <= ? ORDER BY id"
);
/// The first `?` records due, for workers that take them in batches.
pub const RECORDS_DUE_FIRST: &str = select_records!(
    "WHERE tenant = ? AND kind = ? AND expires IS NOT NULL AND expires <= ? ORDER BY id LIMIT ?"
);
pub const RECORDS_COUNT_KIND: &str = "SELECT COUNT(*) FROM records WHERE tenant = ? AND kind = ?";
pub const RECORD_LABELS: &str = "SELECT DISTINCT label FROM records WHERE tenant = ? AND kind = ? AND label IS NOT NULL ORDER BY label";
pub const RECORD_INSERT: &str = "INSERT INTO records (tenant, kind, id, owner, label, created, updated, expires, version, meta, body, kek_version, wrapped_dek) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// Replaces a record's mutable columns if its version is still the one read.
pub const RECORD_UPDATE: &str = "UPDATE records SET owner = ?, label = ?, updated = ?, expires = ?, version = version + 1, \
     meta = ?, body = ?, kek_version = ?, wrapped_dek = ? WHERE tenant = ? AND kind = ? AND id = ? AND version = ?";
pub const RECORD_DELETE: &str = "DELETE FROM records WHERE tenant = ? AND kind = ? AND id = ?";
pub const RECORDS_DELETE_OWNER: &str =
    "DELETE FROM records WHERE tenant = ? AND owner = ? AND kind <> ?";
pub const RECORDS_STRIP_OWNER: &str = "UPDATE records SET body = NULL, kek_version = NULL, wrapped_dek = NULL, \
     version = version + 1 WHERE tenant = ? AND owner = ? AND kind = ?";
pub const RECORD_DELETE_AT: &str =
    "DELETE FROM records WHERE tenant = ? AND kind = ? AND id = ? AND version = ?";
pub const RECORDS_DELETE_LABELLED: &str =
    "DELETE FROM records WHERE tenant = ? AND kind = ? AND label = ?";
pub const RECORDS_DELETE_EXPIRED: &str =
    "DELETE FROM records WHERE tenant = ? AND kind = ? AND expires IS NOT NULL AND expires <= ?";

/// Rows in the tables an initialized store always has rows in.
pub const COUNT_ANY: &str = "SELECT (SELECT COUNT(*) FROM meta) + (SELECT COUNT(*) FROM users) \
     + (SELECT COUNT(*) FROM records) + (SELECT COUNT(*) FROM audit)";

pub const USERS_KEK_BELOW: &str = "SELECT token, kek_version, wrapped_dek FROM users \
     WHERE tenant = ? AND kek_version < ? AND wrapped_dek IS NOT NULL AND token > ? ORDER BY token LIMIT ?";
pub const RECORDS_KEK_BELOW: &str = "SELECT kind, id, kek_version, wrapped_dek FROM records \
     WHERE tenant = ? AND kek_version < ? AND wrapped_dek IS NOT NULL \
     AND (kind > ? OR (kind = ? AND id > ?)) ORDER BY kind, id LIMIT ?";
pub const USERS_KEK_COUNT: &str = "SELECT COUNT(*) FROM users \
     WHERE tenant = ? AND kek_version >= ? AND kek_version < ? AND wrapped_dek IS NOT NULL";
pub const RECORDS_KEK_COUNT: &str = "SELECT COUNT(*) FROM records \
     WHERE tenant = ? AND kek_version >= ? AND kek_version < ? AND wrapped_dek IS NOT NULL";
pub const USER_REWRAP: &str = "UPDATE users SET wrapped_dek = ?, kek_version = ? \
     WHERE tenant = ? AND token = ? AND kek_version = ? AND wrapped_dek = ?";
/// Bumps the row version, so that a writer that read the record before (and would
/// write its old wrapped DEK back) retries instead.
pub const RECORD_REWRAP: &str = "UPDATE records SET wrapped_dek = ?, kek_version = ?, version = version + 1 \
     WHERE tenant = ? AND kind = ? AND id = ? AND kek_version = ? AND wrapped_dek = ?";
/// Deletes a KEK only if no DEK uses it, checked in the same statement.
pub const KEK_RETIRE: &str = "DELETE FROM key_ring WHERE tenant = ? AND kind = 'kek' AND version = ? \
     AND NOT EXISTS (SELECT 1 FROM users WHERE tenant = ? AND kek_version = ? AND wrapped_dek IS NOT NULL) \
     AND NOT EXISTS (SELECT 1 FROM records WHERE tenant = ? AND kek_version = ? AND wrapped_dek IS NOT NULL)";

/// The (token, name) pairs whose index entries, among versions `old` and `new`, are
/// under `old` only: grouped, not a self-join (MariaDB planned the join through the
/// primary key's (tenant, name) prefix once parameters were bound: about a minute
/// per batch at 10,000 users). Binds: tenant, old, new, then `$rest`'s, then old.
macro_rules! index_behind {
    ($select:literal, $rest:literal) => {
        concat!(
            $select,
            " FROM user_index WHERE tenant = ? AND key_version IN (?, ?)",
            $rest,
            " GROUP BY token, name HAVING MAX(key_version) = ?"
        )
    };
}
/// Users with index entries not yet under the new key version, with tokens in
/// `(after, upto]`. Binds: tenant, old, new, after, upto, old, tenant.
pub const USERS_TO_REINDEX: &str = concat!(
    "SELECT u.token, u.kek_version, u.wrapped_dek, u.data, u.version, u.created, u.updated, u.erased \
     FROM (",
    index_behind!("SELECT DISTINCT token", " AND token > ? AND token <= ?"),
    ") b JOIN users u ON u.tenant = ? AND u.token = b.token ORDER BY u.token"
);
/// Binds: tenant, old, new, old.
pub const INDEX_BEHIND_COUNT: &str = concat!(
    "SELECT COUNT(*) FROM (",
    index_behind!("SELECT token", ""),
    ") b"
);
pub const INDEX_VERSION_COUNT: &str =
    "SELECT COUNT(*) FROM user_index WHERE tenant = ? AND key_version = ?";
/// The user row's version, locked until the transaction ends (PostgreSQL, MariaDB);
/// SQLite's writer holds the whole database already.
pub const USER_VERSION_LOCK: &str =
    "SELECT version FROM users WHERE tenant = ? AND token = ? FOR UPDATE";
pub const USER_VERSION: &str = "SELECT version FROM users WHERE tenant = ? AND token = ?";
/// The user row's version, locked where the dialect can.
pub fn user_version_locked(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => USER_VERSION,
        Dialect::Postgres | Dialect::Mysql => USER_VERSION_LOCK,
    }
}
/// An index entry that may already be there (a backfill on two nodes at once).
pub const INDEX_INSERT_IF_NEW: &str = "INSERT INTO user_index (tenant, name, digest, token, key_version) \
     VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
pub const INDEX_INSERT_IF_NEW_MYSQL: &str = "INSERT IGNORE INTO user_index (tenant, name, digest, token, key_version) \
     VALUES (?, ?, ?, ?, ?)";
pub fn index_insert_if_new(d: Dialect) -> &'static str {
    match d {
        Dialect::Mysql => INDEX_INSERT_IF_NEW_MYSQL,
        Dialect::Sqlite | Dialect::Postgres => INDEX_INSERT_IF_NEW,
    }
}
/// Deletes index secret `version` only if every entry under it has one under the
/// successor (checked in the same statement). Binds: tenant, version, tenant,
/// version, successor, version.
pub const INDEX_KEY_RETIRE: &str = concat!(
    "DELETE FROM key_ring WHERE tenant = ? AND kind = 'index' AND version = ? AND NOT EXISTS (",
    index_behind!("SELECT token", ""),
    ")"
);
/// Tokens with entries under retired index versions (below the `?`), after a token.
pub const INDEX_OLD_TOKENS: &str = "SELECT DISTINCT token FROM user_index WHERE tenant = ? \
     AND token > ? AND key_version < ? ORDER BY token LIMIT ?";
pub const INDEX_PURGE: &str = "DELETE FROM user_index WHERE tenant = ? AND token >= ? AND token <= ? \
     AND key_version < ?";
pub const KEY_VERSIONS: &str =
    "SELECT kind, version FROM key_ring WHERE tenant = ? ORDER BY kind, version";

/// PostgreSQL: restored audit ids do not move the id sequence; new events must come after.
pub const AUDIT_SEQUENCE_RESET: &str = "SELECT setval(pg_get_serial_sequence('audit', 'id'), \
     COALESCE((SELECT MAX(id) FROM audit), 0) + 1, false)";
pub const META_CANARY: &str = "canary";
pub const META_SWAP: &str = "UPDATE meta SET value = ? WHERE name = ? AND value = ?";
pub const META_DELETE: &str = "DELETE FROM meta WHERE name = ?";

/// Everything a tenant holds, table by table (`DropTenant`): its key ring first.
pub const TENANT_DROP: &[&str] = &[
    "DELETE FROM key_ring WHERE tenant = ?",
    "DELETE FROM user_index WHERE tenant = ?",
    "DELETE FROM users WHERE tenant = ?",
    "DELETE FROM records WHERE tenant = ?",
    "DELETE FROM audit_checkpoint WHERE tenant = ?",
    "DELETE FROM audit_seal WHERE tenant = ?",
    "DELETE FROM audit_head WHERE tenant = ?",
    "DELETE FROM audit WHERE tenant = ?",
];
pub const KEY_REWRAP: &str =
    "UPDATE key_ring SET wrapped = ? WHERE tenant = ? AND kind = ? AND version = ?";
pub const META_ROOT_TOKEN: &str = "root_token_hash";

/// `rows` comma-separated tuples of `width` placeholders, for multi-row VALUES lists:
/// `values_list(2, 3)` is `(?, ?, ?), (?, ?, ?)`.
pub fn values_list(rows: usize, width: usize) -> String {
    let tuple = format!("({})", vec!["?"; width].join(", "));
    vec![tuple; rows].join(", ")
}

/// Ids looked up by one `IN (…)` query at most.
pub const MAX_IDS_PER_STATEMENT: usize = 512;
/// The lengths `IN (…)` lists are padded to.
pub const ID_LIST_WIDTHS: [usize; 4] = [4, 32, 128, MAX_IDS_PER_STATEMENT];
/// The row counts multi-row link inserts are split into (largest first).
pub const SEAL_INSERT_WIDTHS: [usize; 5] = [512, 128, 32, 8, 1];

/// The audit rows with one of `n` ids.
pub fn audit_by_ids(n: usize) -> String {
    format!(
        "{}WHERE id IN ({})",
        select_audit!(""),
        vec!["?"; n].join(", ")
    )
}

/// The insert of `n` audit-chain links.
pub fn seal_insert(n: usize) -> String {
    format!("{SEAL_INSERT_HEAD}{}", values_list(n, SEAL_WIDTH))
}

/// Rewrites `?` placeholders as `$1, $2, …` for PostgreSQL. The statements above have
/// no `?` inside literals, so a plain scan is exact.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_lists() {
        assert_eq!(super::values_list(2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(super::values_list(1, 1), "(?)");
    }

    #[test]
    fn numbered_placeholders() {
        assert_eq!(super::numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
    }

    /// PostgreSQL walks the primary key for the audit tail count in every plan it
    /// can make: generic (a prepared statement after five runs) and custom, on a
    /// table it has no statistics for. A one-sided `id > $2` scans the whole log.
    #[tokio::test]
    async fn postgres_counts_the_audit_tail_through_the_primary_key() {
        use sqlx::{Connection, Row};
        let Ok(url) = std::env::var("STRONGBOX_TEST_POSTGRES_URL") else {
            return;
        };
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        // A temporary table shadows nothing else and goes with the connection; it
        // has the key columns of the real `audit` table.
        for st in [
            "CREATE TEMP TABLE audit (id BIGSERIAL PRIMARY KEY, tenant VARCHAR(64) NOT NULL, \
             detail BYTEA)",
            "INSERT INTO audit (tenant, detail) SELECT 'default', '\\x00' \
             FROM generate_series(1, 20000)",
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(st))
                .execute(&mut c)
                .await
                .unwrap();
        }
        let count = super::numbered(super::AUDIT_COUNT_AFTER);
        let args = "'default', 19990, 9223372036854775807";
        for mode in ["force_generic_plan", "force_custom_plan"] {
            let script = format!("SET plan_cache_mode = {mode}; PREPARE {mode} AS {count}");
            sqlx::raw_sql(sqlx::AssertSqlSafe(script))
                .execute(&mut c)
                .await
                .unwrap();
            let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
                "EXPLAIN EXECUTE {mode}({args})"
            )))
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
            let plan = plan.join("\n");
            assert!(plan.contains("audit_pkey"), "{mode}: {plan}");
            assert!(!plan.contains("Seq Scan"), "{mode}: {plan}");
        }
    }
}
