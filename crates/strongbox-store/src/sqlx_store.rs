//! PostgreSQL and MySQL/MariaDB backend, through sqlx's `Any` driver over a connection
//! pool. Statements are prepared once per connection and cached by sqlx. Each write
//! runs in its own transaction; concurrent commits share WAL/redo-log flushes in the
//! server. Uniqueness of blind indexes is enforced by the database's primary key, so
//! any number of Strongbox nodes can share one database.

use std::borrow::Cow;
use std::sync::{Arc, Once};

use tokio::sync::{Mutex, mpsc, oneshot};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, AssertSqlSafe, Row, Transaction};

use crate::now;
use crate::schema::{self, Dialect};
use crate::{
    AuditEvent, AuditHead, AuditRow, CheckpointRow, Guard, IndexEntry, InitData, KeyRow,
    OpenOptions, RecordRow, Result, SealRow, StoreError, StoreMeta, UserRow, WriteOp, sql,
};

#[derive(Clone)]
pub struct SqlxStore {
    pool: AnyPool,
    dialect: Dialect,
    audit: mpsc::Sender<AuditJob>,
}

/// A lone audit event waiting for the batcher, with where to send the outcome.
type AuditJob = (String, AuditEvent, oneshot::Sender<Result<()>>);

/// Largest number of audit events written by one multi-row INSERT.
const MAX_AUDIT_BATCH: usize = 64;
/// Rows per insert statement in a restore (a multiple of which keeps the number of
/// distinct statements small).
const IMPORT_ROWS_PER_STATEMENT: usize = 64;
/// Batches in flight at once (each on its own pooled connection).
const AUDIT_BATCHERS: usize = 2;

fn backend(e: sqlx::Error) -> StoreError {
    // SQLSTATE 40001: serialization failure, and MariaDB's deadlock (1213);
    // 40P01: PostgreSQL's deadlock.
    let transient = matches!(&e, sqlx::Error::Database(d)
        if matches!(d.code().as_deref(), Some("40001" | "40P01")));
    if transient {
        StoreError::Deadlock(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// How long opening the store waits for the database server to answer.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Tries at rewriting the key ring's table after a retirement (see
/// `compact_key_ring`).
const COMPACT_ATTEMPTS: u32 = 5;

/// How often a write that lost a deadlock is run again.
const DEADLOCK_RETRIES: u32 = 4;

fn commit_unknown(e: impl std::fmt::Display) -> StoreError {
    StoreError::CommitUnknown(e.to_string())
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

type Tx = Transaction<'static, Any>;

impl SqlxStore {
    /// Opens a pool on `url`; `shown` names the server in errors (no password).
    pub async fn open(
        url: &str,
        schema: Option<&str>,
        shown: &str,
        opts: &OpenOptions,
    ) -> Result<Self> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let dialect = if url.starts_with("mysql://") {
            Dialect::Mysql
        } else {
            Dialect::Postgres
        };
        // One connection first, so a wrong address or a refused login is reported
        // within seconds with its cause, instead of as the pool's timeout.
        let probe = tokio::time::timeout(
            CONNECT_TIMEOUT,
            <sqlx::AnyConnection as sqlx::Connection>::connect(url),
        )
        .await;
        match probe {
            Ok(Ok(mut conn)) => {
                if let Some(schema) = schema
                    && opts.create
                {
                    // Only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on
                    // the database even when the schema exists, and a DBA may have
                    // made it and granted only rights on it.
                    let exists = sqlx::query("SELECT 1 FROM pg_namespace WHERE nspname = $1")
                        .bind(schema.to_string())
                        .fetch_optional(&mut conn)
                        .await
                        .map_err(backend)?;
                    if exists.is_none() {
                        // Validated by `Location::with_schema`: lower-case, digits, `_`.
                        let create = format!("CREATE SCHEMA \"{schema}\"");
                        sqlx::raw_sql(AssertSqlSafe(create))
                            .execute(&mut conn)
                            .await
                            .map_err(backend)?;
                    }
                }
                let _ = sqlx::Connection::close(conn).await;
            }
            Ok(Err(e)) => {
                return Err(StoreError::Backend(format!(
                    "cannot connect to {shown}: {e}"
                )));
            }
            Err(_) => {
                return Err(StoreError::Backend(format!(
                    "cannot connect to {shown}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let search_path = schema.map(|s| format!("SET search_path TO \"{s}\""));
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .after_connect(move |conn, _| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    if let Some(set) = search_path {
                        sqlx::raw_sql(AssertSqlSafe(set)).execute(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(backend)?;
        let (audit, rx) = mpsc::channel(4096);
        let store = SqlxStore {
            pool,
            dialect,
            audit,
        };
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..AUDIT_BATCHERS {
            tokio::spawn(store.clone().audit_batcher(rx.clone()));
        }
        if !opts.create && !store.has_schema().await? {
            return Err(StoreError::NotInitialized(String::new()));
        }
        store.migrate(opts, shown).await?;
        Ok(store)
    }

    /// The statement in this dialect's placeholder syntax.
    fn q(&self, s: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
        AssertSqlSafe(match self.dialect {
            Dialect::Postgres => Cow::Owned(sql::numbered(s)),
            _ => Cow::Borrowed(s),
        })
    }

    async fn has_schema(&self) -> Result<bool> {
        let probe = match self.dialect {
            Dialect::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'meta'"
            }
            _ => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = 'meta'"
            }
        };
        let row = sqlx::query(probe)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        let n: i64 = row.try_get(0).map_err(backend)?;
        Ok(n > 0)
    }

    /// The tables of the current schema (PostgreSQL) or database (MySQL).
    async fn tables(&self) -> Result<Vec<String>> {
        let probe = match self.dialect {
            Dialect::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE table_schema = current_schema()"
            }
            _ => {
                "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
                 WHERE table_schema = DATABASE()"
            }
        };
        let rows = sqlx::query(probe)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(backend))
            .collect()
    }

    /// Brings the schema up to date as [`schema::plan`] decides, which checks first
    /// (tables an application already has, a read-only command).
    async fn migrate(&self, opts: &OpenOptions, shown: &str) -> Result<()> {
        let tables = self.tables().await?;
        let applied = if tables.iter().any(|t| t == "strongbox_migrations") {
            let rows = sqlx::query("SELECT version FROM strongbox_migrations")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            Some(
                rows.iter()
                    .map(|r| r.try_get::<i64, _>(0).map_err(backend))
                    .collect::<Result<Vec<i64>>>()?,
            )
        } else {
            None
        };
        let plan = schema::plan(
            self.dialect,
            &tables,
            applied.as_deref(),
            opts.create,
            opts.read_only,
            shown,
        )?;
        if plan.create_table {
            sqlx::query(schema::MIGRATIONS_TABLE)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        }
        for (version, statements) in schema::migrations(self.dialect) {
            if !plan.apply.contains(version) {
                continue;
            }
            // PostgreSQL runs DDL transactionally; MySQL commits DDL implicitly, so a
            // crash mid-migration there needs the operator (documented in operations.md).
            let mut tx = self.pool.begin().await.map_err(backend)?;
            for st in *statements {
                sqlx::query(AssertSqlSafe(*st))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            sqlx::query(
                self.q("INSERT INTO strongbox_migrations (version, applied) VALUES (?, ?)"),
            )
            .bind(*version)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
        }
        Ok(())
    }

    pub async fn initialize(&self, init: InitData) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let exists = sqlx::query(self.q(sql::META_GET))
            .bind(sql::META_CANARY)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if exists.is_some() {
            return Err(StoreError::AlreadyInitialized);
        }
        let fixed = [
            (sql::META_CANARY, &init.canary),
            (sql::META_ROOT_TOKEN, &init.root_token_hash),
        ];
        let extra = init.meta.iter().map(|(n, v)| (n.as_str(), v));
        for (name, value) in fixed.into_iter().chain(extra) {
            let r = sqlx::query(self.q(sql::META_PUT))
                .bind(name.to_string())
                .bind(value.clone())
                .execute(&mut *tx)
                .await;
            match r {
                Ok(_) => {}
                // Two concurrent `init`s: the loser sees the winner's row.
                Err(e) if unique_violation(&e) => return Err(StoreError::AlreadyInitialized),
                Err(e) => return Err(backend(e)),
            }
        }
        for k in &init.keys {
            sqlx::query(self.q(sql::KEY_PUT))
                .bind(init.tenant.clone())
                .bind(k.kind.clone())
                .bind(k.version)
                .bind(k.wrapped.clone())
                .bind(k.created)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    pub async fn meta(&self) -> Result<StoreMeta> {
        let get = async |name: &str| -> Result<Option<Vec<u8>>> {
            let row = sqlx::query(self.q(sql::META_GET))
                .bind(name.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
            row.map(|r| r.try_get::<Vec<u8>, _>(0).map_err(backend))
                .transpose()
        };
        let canary = get(sql::META_CANARY).await?;
        let token = get(sql::META_ROOT_TOKEN).await?;
        match (canary, token) {
            (Some(canary), Some(root_token_hash)) => Ok(StoreMeta {
                canary,
                root_token_hash,
            }),
            _ => Err(StoreError::NotInitialized("the store".into())),
        }
    }

    pub async fn keys(&self, tenant: &str) -> Result<Vec<KeyRow>> {
        let rows = sqlx::query(self.q(sql::KEYS_GET))
            .bind(tenant.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(KeyRow {
                    kind: r.try_get(0).map_err(backend)?,
                    version: r.try_get(1).map_err(backend)?,
                    wrapped: r.try_get(2).map_err(backend)?,
                    created: r.try_get(3).map_err(backend)?,
                })
            })
            .collect()
    }

    pub async fn user(&self, tenant: &str, token: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(self.q(sql::USER_GET))
            .bind(tenant.to_string())
            .bind(token.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| user_row(&r)).transpose()
    }

    pub async fn user_by_index(
        &self,
        tenant: &str,
        name: &str,
        digests: &[Vec<u8>],
    ) -> Result<Option<UserRow>> {
        let statement = match digests.len() {
            1 => sql::USER_BY_INDEX,
            2 => sql::USER_BY_INDEX2,
            _ => return Ok(None),
        };
        let mut q = sqlx::query(self.q(statement))
            .bind(tenant.to_string())
            .bind(name.to_string());
        for d in digests {
            q = q.bind(d.clone());
        }
        let row = q.fetch_optional(&self.pool).await.map_err(backend)?;
        row.map(|r| user_row(&r)).transpose()
    }

    /// Record rows selected by `statement` (one of `sql::RECORD*`) with text arguments.
    pub(crate) async fn records(
        &self,
        statement: &'static str,
        args: &[&str],
    ) -> Result<Vec<RecordRow>> {
        let mut q = sqlx::query(self.q(statement));
        for a in args {
            q = q.bind(a.to_string());
        }
        let rows = q.fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(record_row).collect()
    }

    pub(crate) async fn records_due(
        &self,
        tenant: &str,
        kind: &str,
        now: i64,
    ) -> Result<Vec<RecordRow>> {
        let rows = sqlx::query(self.q(sql::RECORDS_DUE))
            .bind(tenant.to_string())
            .bind(kind.to_string())
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(record_row).collect()
    }

    /// A single text column selected by `statement`.
    pub(crate) async fn strings(
        &self,
        statement: &'static str,
        args: &[&str],
    ) -> Result<Vec<String>> {
        let mut q = sqlx::query(self.q(statement));
        for a in args {
            q = q.bind(a.to_string());
        }
        let rows = q.fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(|r| r.try_get(0).map_err(backend)).collect()
    }

    pub(crate) async fn audit_page(
        &self,
        tenant: &str,
        record: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(u64, Vec<AuditRow>)> {
        let (count, page) = match record {
            Some(r) => (
                sqlx::query(self.q(sql::AUDIT_COUNT_RECORD))
                    .bind(tenant.to_string())
                    .bind(r.to_string()),
                sqlx::query(self.q(sql::AUDIT_PAGE_RECORD))
                    .bind(tenant.to_string())
                    .bind(r.to_string()),
            ),
            None => (
                sqlx::query(self.q(sql::AUDIT_COUNT_ALL)).bind(tenant.to_string()),
                sqlx::query(self.q(sql::AUDIT_PAGE_ALL)).bind(tenant.to_string()),
            ),
        };
        let total: i64 = count
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(backend)?;
        let rows = page
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let rows = rows.iter().map(audit_row).collect::<Result<Vec<_>>>()?;
        Ok((total.max(0) as u64, rows))
    }

    pub(crate) async fn users_page(
        &self,
        tenant: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(u64, Vec<UserRow>)> {
        let total: i64 = sqlx::query(self.q(sql::USERS_COUNT))
            .bind(tenant.to_string())
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(backend)?;
        let rows = sqlx::query(self.q(sql::USERS_PAGE))
            .bind(tenant.to_string())
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let rows = rows.iter().map(user_row).collect::<Result<Vec<_>>>()?;
        Ok((total.max(0) as u64, rows))
    }

    pub(crate) async fn audit_in_range(
        &self,
        tenant: &str,
        atoken: &str,
        lo: i64,
        hi: i64,
    ) -> Result<Option<AuditRow>> {
        let row = sqlx::query(self.q(sql::AUDIT_IN_RANGE))
            .bind(lo)
            .bind(hi)
            .bind(atoken.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| audit_row(&r)).transpose()
    }

    pub(crate) async fn audit_id_range(&self) -> Result<Option<(i64, i64)>> {
        let row = sqlx::query(sql::AUDIT_ID_RANGE)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        let min: Option<i64> = row.try_get(0).map_err(backend)?;
        let max: Option<i64> = row.try_get(1).map_err(backend)?;
        Ok(min.zip(max))
    }

    pub(crate) async fn audit_at_from(&self, id: i64) -> Result<Option<(i64, i64)>> {
        let row = sqlx::query(self.q(sql::AUDIT_AT_FROM))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| {
            Ok((
                r.try_get(0).map_err(backend)?,
                r.try_get(1).map_err(backend)?,
            ))
        })
        .transpose()
    }

    /// Audit rows selected by `statement` (one of `sql::AUDIT_*`) with integer arguments.
    pub(crate) async fn audit_rows(
        &self,
        statement: &'static str,
        args: &[i64],
    ) -> Result<Vec<AuditRow>> {
        let mut q = sqlx::query(self.q(statement));
        for a in args {
            q = q.bind(*a);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(audit_row).collect()
    }

    /// Audit rows selected by a statement built at run time (placeholders only).
    pub(crate) async fn audit_rows_dynamic(
        &self,
        statement: String,
        args: &[i64],
    ) -> Result<Vec<AuditRow>> {
        let statement = match self.dialect {
            Dialect::Postgres => sql::numbered(&statement),
            _ => statement,
        };
        let mut q = sqlx::query(AssertSqlSafe(statement));
        for a in args {
            q = q.bind(*a);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(audit_row).collect()
    }

    pub(crate) async fn audit_head(&self, tenant: &str) -> Result<Option<AuditHead>> {
        let row = sqlx::query(self.q(sql::HEAD_GET))
            .bind(tenant.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| {
            Ok(AuditHead {
                seq: r.try_get(0).map_err(backend)?,
                hash: r.try_get(1).map_err(backend)?,
                max_id: r.try_get(2).map_err(backend)?,
                gaps: AuditHead::parse_gaps(&r.try_get::<String, _>(3).map_err(backend)?),
                version: r.try_get(4).map_err(backend)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn audit_seals(
        &self,
        tenant: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<SealRow>> {
        let rows = sqlx::query(self.q(sql::SEALS_AFTER))
            .bind(tenant.to_string())
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(seal_row).collect()
    }

    pub(crate) async fn audit_seal_of(
        &self,
        tenant: &str,
        after: i64,
        audit_id: i64,
    ) -> Result<Option<SealRow>> {
        let row = sqlx::query(self.q(sql::SEAL_OF))
            .bind(tenant.to_string())
            .bind(after)
            .bind(audit_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(seal_row).transpose()
    }

    pub(crate) async fn audit_checkpoints(&self, tenant: &str) -> Result<Vec<CheckpointRow>> {
        let rows = sqlx::query(self.q(sql::CHECKPOINTS))
            .bind(tenant.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(CheckpointRow {
                    seq: r.try_get(0).map_err(backend)?,
                    hash: r.try_get(1).map_err(backend)?,
                    at: r.try_get(2).map_err(backend)?,
                    signature: r.try_get(3).map_err(backend)?,
                })
            })
            .collect()
    }

    pub(crate) async fn users_to_rewrap(
        &self,
        tenant: &str,
        below: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<crate::WrappedDek>> {
        let rows = sqlx::query(self.q(sql::USERS_KEK_BELOW))
            .bind(tenant.to_string())
            .bind(below)
            .bind(after.to_string())
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(crate::WrappedDek {
                    kind: None,
                    id: r.try_get(0).map_err(backend)?,
                    kek_version: r.try_get(1).map_err(backend)?,
                    wrapped: r.try_get(2).map_err(backend)?,
                })
            })
            .collect()
    }

    pub(crate) async fn records_to_rewrap(
        &self,
        tenant: &str,
        below: i64,
        after: (&str, &str),
        limit: i64,
    ) -> Result<Vec<crate::WrappedDek>> {
        let rows = sqlx::query(self.q(sql::RECORDS_KEK_BELOW))
            .bind(tenant.to_string())
            .bind(below)
            .bind(after.0.to_string())
            .bind(after.0.to_string())
            .bind(after.1.to_string())
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(crate::WrappedDek {
                    kind: Some(r.try_get(0).map_err(backend)?),
                    id: r.try_get(1).map_err(backend)?,
                    kek_version: r.try_get(2).map_err(backend)?,
                    wrapped: r.try_get(3).map_err(backend)?,
                })
            })
            .collect()
    }

    pub(crate) async fn count_wrapped(&self, tenant: &str, from: i64, below: i64) -> Result<i64> {
        let mut n = 0;
        for st in [sql::USERS_KEK_COUNT, sql::RECORDS_KEK_COUNT] {
            let row = sqlx::query(self.q(st))
                .bind(tenant.to_string())
                .bind(from)
                .bind(below)
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
            n += row.try_get::<i64, _>(0).map_err(backend)?;
        }
        Ok(n)
    }

    pub(crate) async fn users_to_reindex(
        &self,
        tenant: &str,
        (old, new): (i64, i64),
        (after, upto): (&str, &str),
    ) -> Result<Vec<UserRow>> {
        let rows = sqlx::query(self.q(sql::USERS_TO_REINDEX))
            .bind(tenant.to_string())
            .bind(old)
            .bind(new)
            .bind(after.to_string())
            .bind(upto.to_string())
            .bind(old)
            .bind(tenant.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(user_row).collect()
    }

    pub(crate) async fn count_reindex(
        &self,
        tenant: &str,
        old: i64,
        new: i64,
    ) -> Result<(i64, i64)> {
        let behind = sqlx::query(self.q(sql::INDEX_BEHIND_COUNT))
            .bind(tenant.to_string())
            .bind(old)
            .bind(new)
            .bind(old)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get::<i64, _>(0))
            .map_err(backend)?;
        let all = sqlx::query(self.q(sql::INDEX_VERSION_COUNT))
            .bind(tenant.to_string())
            .bind(old)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get::<i64, _>(0))
            .map_err(backend)?;
        Ok((behind, all))
    }

    pub(crate) async fn tokens_with_old_index(
        &self,
        tenant: &str,
        below: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(self.q(sql::INDEX_OLD_TOKENS))
            .bind(tenant.to_string())
            .bind(after.to_string())
            .bind(below)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| r.try_get(0).map_err(backend)).collect()
    }

    pub(crate) async fn meta_value(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query(self.q(sql::META_GET))
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| r.try_get(0).map_err(backend)).transpose()
    }

    /// One integer selected by `statement` (no arguments).
    pub(crate) async fn count(&self, statement: &'static str) -> Result<i64> {
        let row = sqlx::query(statement)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        row.try_get::<i64, _>(0).map_err(backend)
    }

    /// Every backed-up table from one REPEATABLE READ, read-only transaction: all its
    /// reads see one snapshot while other connections keep writing.
    pub(crate) async fn export(
        &self,
        out: tokio::sync::mpsc::Sender<crate::backup::ExportedRow>,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        // Never hand a connection back to the pool inside this transaction (if the
        // backup is abandoned midway): close it instead.
        conn.close_on_drop();
        let begin: &[&str] = match self.dialect {
            Dialect::Postgres => &["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"],
            _ => &[
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
            ],
        };
        for st in begin {
            sqlx::query(AssertSqlSafe(*st))
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
        }
        let r = Self::export_tables(&mut conn, &out).await;
        let end = if r.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let closed = sqlx::query(end).execute(&mut *conn).await.map_err(backend);
        r.and(closed.map(|_| ()))
    }

    async fn export_tables(
        conn: &mut sqlx::pool::PoolConnection<Any>,
        out: &tokio::sync::mpsc::Sender<crate::backup::ExportedRow>,
    ) -> Result<()> {
        use crate::backup::{Cell, Kind};
        use futures_util::TryStreamExt;
        for table in crate::backup::TABLES {
            let statement = table.select();
            let mut rows = sqlx::query(AssertSqlSafe(statement)).fetch(&mut **conn);
            while let Some(r) = rows.try_next().await.map_err(backend)? {
                let mut cells = Vec::with_capacity(table.columns.len());
                for (i, (_, kind)) in table.columns.iter().enumerate() {
                    let c = match kind {
                        Kind::Int => r.try_get::<Option<i64>, _>(i).map(|v| v.map(Cell::Int)),
                        Kind::Text => r.try_get::<Option<String>, _>(i).map(|v| v.map(Cell::Text)),
                        Kind::Bytes => r
                            .try_get::<Option<Vec<u8>>, _>(i)
                            .map(|v| v.map(Cell::Bytes)),
                    };
                    cells.push(c.map_err(backend)?.unwrap_or(Cell::Null));
                }
                if out.send((table, cells)).await.is_err() {
                    return Err(StoreError::Backend("the backup reader stopped".into()));
                }
            }
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    pub async fn write(&self, op: WriteOp) -> Result<()> {
        if let WriteOp::Audit { tenant, audit } = op {
            let (tx, rx) = oneshot::channel();
            let stopped = || StoreError::Backend("the audit writer has stopped".into());
            self.audit
                .send((tenant, audit, tx))
                .await
                .map_err(|_| stopped())?;
            return rx.await.map_err(|_| stopped())?;
        }
        if self.dialect == Dialect::Postgres
            && let WriteOp::CreateUser {
                tenant,
                user,
                indexes,
                audit,
                guard,
            } = &op
        {
            match self
                .create_user_pg(tenant, user, indexes, audit, guard.as_ref())
                .await
            {
                // A taken index: the transaction below finds out which one, in order.
                // A deadlock: the transaction below tries again.
                Err(StoreError::Duplicate(_) | StoreError::Deadlock(_)) => {}
                other => return other,
            }
        }
        let mut attempt = 0;
        loop {
            let mut tx: Tx = self.pool.begin().await.map_err(backend)?;
            match self.apply(&mut tx, &op).await {
                Ok(()) => {
                    tx.commit().await.map_err(commit_unknown)?;
                    if op.rewrites_key_ring() {
                        self.compact_key_ring().await;
                    }
                    return Ok(());
                }
                // Rolled back when `tx` drops; a short, growing pause breaks the tie.
                Err(StoreError::Deadlock(_)) if attempt < DEADLOCK_RETRIES => {
                    drop(tx);
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
                }
                Err(StoreError::Deadlock(detail)) => return Err(StoreError::Backend(detail)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Rewrites the key ring's table after a KEK was retired or the root key rotated,
    /// so the deleted or replaced rows (wrapped KEKs) do not linger as dead row
    /// versions (PostgreSQL) or delete-marked records (InnoDB) in its data file: the
    /// end of an erasure epoch. The table holds a few rows, so this takes
    /// milliseconds, but it needs an exclusive lock: a long reader (a backup export
    /// holds one for its whole run) must not make every node's key reload queue
    /// behind it. So the first try, made before the write is answered (a short-lived
    /// command such as `rotate root-key` must not exit before it), gives up on the
    /// lock after two seconds; the retries then run in the background, a few times,
    /// after which the engine's own housekeeping overwrites the rows (logged).
    async fn compact_key_ring(&self) {
        let done =
            |()| tracing::info!("key ring table rewritten: retired key material is gone from it");
        match self.try_compact_key_ring().await {
            Ok(()) => return done(()),
            Err(e) => tracing::info!(error = %e, "rewriting the key ring table must wait"),
        }
        let store = self.clone();
        tokio::spawn(async move {
            for attempt in 2..=COMPACT_ATTEMPTS {
                tokio::time::sleep(std::time::Duration::from_secs(15)).await;
                match store.try_compact_key_ring().await {
                    Ok(()) => return done(()),
                    Err(e) if attempt == COMPACT_ATTEMPTS => {
                        tracing::warn!(error = %e, "rewriting the key ring table failed; gave up");
                    }
                    Err(e) => {
                        tracing::info!(error = %e, attempt, "rewriting the key ring table must wait");
                    }
                }
            }
        });
    }

    async fn try_compact_key_ring(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let (limit, rewrite, reset) = match self.dialect {
            Dialect::Postgres => (
                "SET lock_timeout = '2s'",
                "VACUUM FULL key_ring",
                "RESET lock_timeout",
            ),
            _ => (
                "SET SESSION lock_wait_timeout = 2",
                "OPTIMIZE TABLE key_ring",
                "SET SESSION lock_wait_timeout = DEFAULT",
            ),
        };
        sqlx::raw_sql(AssertSqlSafe(limit))
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        // OPTIMIZE answers with status rows; an `error` row is a failure.
        let done = sqlx::raw_sql(AssertSqlSafe(rewrite))
            .fetch_all(&mut *conn)
            .await
            .map_err(backend);
        let _ = sqlx::raw_sql(AssertSqlSafe(reset))
            .execute(&mut *conn)
            .await;
        for row in done? {
            let kind: String = row.try_get("Msg_type").unwrap_or_default();
            if kind.eq_ignore_ascii_case("error") {
                let text: String = row.try_get("Msg_text").unwrap_or_default();
                return Err(StoreError::Backend(format!(
                    "OPTIMIZE TABLE key_ring: {text}"
                )));
            }
        }
        Ok(())
    }

    /// A create on PostgreSQL in one round trip: the user row, its index entries and
    /// its audit event as data-modifying CTEs of one statement, which commits or fails
    /// as a whole. A unique violation is reported as `Duplicate` without saying which
    /// index; the caller then replays the create statement by statement to name it.
    ///
    /// A guard rides along as one more CTE that, only when guarded records exist,
    /// inserts a second `canary` row into `meta`: the primary key refuses it, the
    /// whole statement fails as a unique violation, and the replay (which checks the
    /// guard first) reports `Guarded`. So the common case stays one round trip.
    async fn create_user_pg(
        &self,
        tenant: &str,
        u: &UserRow,
        indexes: &[IndexEntry],
        a: &AuditEvent,
        guard: Option<&Guard>,
    ) -> Result<()> {
        let mut sql = String::from(
            "WITH u AS (INSERT INTO users (tenant, token, kek_version, wrapped_dek, data, version, created, updated, erased) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?))",
        );
        if guard.is_some() {
            sql.push_str(
                ", g AS (INSERT INTO meta (name, value) SELECT ?, ? WHERE EXISTS \
                 (SELECT 1 FROM records WHERE tenant = ? AND kind = ? AND owner IN (?, ?, ?, ?)))",
            );
        }
        if !indexes.is_empty() {
            sql.push_str(
                ", i AS (INSERT INTO user_index (tenant, name, digest, token, key_version) VALUES ",
            );
            sql.push_str(&sql::values_list(indexes.len(), 5));
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(sql::AUDIT_INSERT);
        let mut q = bind_user(sqlx::query(AssertSqlSafe(sql::numbered(&sql))), tenant, u);
        if let Some(g) = guard {
            let [o1, o2, o3, o4] = g.binds();
            q = q
                .bind(sql::META_CANARY)
                .bind(Vec::<u8>::new())
                .bind(tenant.to_string())
                .bind(g.kind.clone())
                .bind(o1)
                .bind(o2)
                .bind(o3)
                .bind(o4);
        }
        for e in indexes {
            q = q
                .bind(tenant.to_string())
                .bind(e.name)
                .bind(e.digest.clone())
                .bind(u.token.clone())
                .bind(e.key_version);
        }
        match bind_audit(q, tenant, a).execute(&self.pool).await {
            Ok(_) => Ok(()),
            Err(e) if unique_violation(&e) => Err(StoreError::Duplicate("")),
            Err(e) => Err(backend(e)),
        }
    }

    /// Group commit for lone audit events (one per read of personal data): every event
    /// queued while the previous batch was being written goes into one multi-row
    /// INSERT — a single atomic statement, one round trip and one commit — and each
    /// caller is answered after that commit.
    async fn audit_batcher(self, rx: Arc<Mutex<mpsc::Receiver<AuditJob>>>) {
        let mut batch: Vec<AuditJob> = Vec::with_capacity(MAX_AUDIT_BATCH);
        loop {
            {
                let mut rx = rx.lock().await;
                match rx.recv().await {
                    Some(job) => batch.push(job),
                    None => return,
                }
                while batch.len() < MAX_AUDIT_BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
            }
            let mut sql = String::from(sql::AUDIT_INSERT_HEAD);
            sql.push_str(&sql::values_list(batch.len(), sql::AUDIT_WIDTH));
            let sql = match self.dialect {
                Dialect::Postgres => sql::numbered(&sql),
                _ => sql,
            };
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (tenant, a, _) in &batch {
                q = bind_audit(q, tenant, a);
            }
            let r = q.execute(&self.pool).await.map(|_| ()).map_err(backend);
            for (_, _, reply) in batch.drain(..) {
                let _ = reply.send(
                    r.as_ref()
                        .map(|_| ())
                        .map_err(|e| StoreError::Backend(e.to_string())),
                );
            }
        }
    }

    /// All ops in one transaction, each in its own savepoint so that a refused op
    /// (duplicate index) does not undo the others.
    /// A deadlock rolls the whole transaction back (savepoints too): the batch
    /// then runs again from the start.
    pub async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<Result<()>>> {
        let mut attempt = 0;
        loop {
            match self.write_batch_once(&ops).await {
                Err(StoreError::Deadlock(_)) if attempt < DEADLOCK_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
                }
                Err(StoreError::Deadlock(detail)) => return Err(StoreError::Backend(detail)),
                other => return other,
            }
        }
    }

    async fn write_batch_once(&self, ops: &[WriteOp]) -> Result<Vec<Result<()>>> {
        let mut tx: Tx = self.pool.begin().await.map_err(backend)?;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            sqlx::query("SAVEPOINT op")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let r = self.apply(&mut tx, op).await;
            if let Err(StoreError::Deadlock(d)) = r {
                return Err(StoreError::Deadlock(d));
            }
            let end = if r.is_ok() {
                "RELEASE SAVEPOINT op"
            } else {
                "ROLLBACK TO SAVEPOINT op"
            };
            sqlx::query(end).execute(&mut *tx).await.map_err(backend)?;
            out.push(r);
        }
        tx.commit().await.map_err(commit_unknown)?;
        Ok(out)
    }

    async fn exec(
        &self,
        tx: &mut Tx,
        q: sqlx::query::Query<'_, Any, sqlx::any::AnyArguments>,
    ) -> Result<u64> {
        q.execute(&mut **tx)
            .await
            .map(|r| r.rows_affected())
            .map_err(backend)
    }

    async fn insert_indexes(
        &self,
        tx: &mut Tx,
        tenant: &str,
        token: &str,
        idx: &[IndexEntry],
    ) -> Result<()> {
        for e in idx {
            let r = sqlx::query(self.q(sql::INDEX_INSERT))
                .bind(tenant.to_string())
                .bind(e.name)
                .bind(e.digest.clone())
                .bind(token.to_string())
                .bind(e.key_version)
                .execute(&mut **tx)
                .await;
            match r {
                Ok(_) => {}
                Err(err) if unique_violation(&err) => return Err(StoreError::Duplicate(e.name)),
                Err(err) => return Err(backend(err)),
            }
        }
        Ok(())
    }

    async fn audit(&self, tx: &mut Tx, tenant: &str, a: &AuditEvent) -> Result<()> {
        let q = bind_audit(sqlx::query(self.q(sql::AUDIT_INSERT)), tenant, a);
        self.exec(tx, q).await.map(|_| ())
    }

    async fn apply(&self, tx: &mut Tx, op: &WriteOp) -> Result<()> {
        match op {
            WriteOp::CreateUser {
                tenant,
                user: u,
                indexes,
                audit,
                guard,
            } => {
                if let Some(g) = guard {
                    let [o1, o2, o3, o4] = g.binds();
                    let n: i64 = sqlx::query(self.q(sql::GUARD_EXISTS))
                        .bind(tenant.clone())
                        .bind(g.kind.clone())
                        .bind(o1)
                        .bind(o2)
                        .bind(o3)
                        .bind(o4)
                        .fetch_one(&mut **tx)
                        .await
                        .and_then(|r| r.try_get(0))
                        .map_err(backend)?;
                    if n > 0 {
                        return Err(StoreError::Guarded);
                    }
                }
                let q = bind_user(sqlx::query(self.q(sql::USER_INSERT)), tenant, u);
                self.exec(tx, q).await?;
                self.insert_indexes(tx, tenant, &u.token, indexes).await?;
                self.audit(tx, tenant, audit).await
            }
            WriteOp::UpdateUser {
                tenant,
                token,
                expected_version,
                data,
                drop_indexes,
                add_indexes,
                audit,
            } => {
                let q = sqlx::query(self.q(sql::USER_UPDATE))
                    .bind(data.clone())
                    .bind(audit.at)
                    .bind(tenant.clone())
                    .bind(token.clone())
                    .bind(*expected_version);
                if self.exec(tx, q).await? == 0 {
                    return Err(StoreError::Stale);
                }
                for name in drop_indexes {
                    let q = sqlx::query(self.q(sql::INDEX_DROP_ONE))
                        .bind(tenant.clone())
                        .bind(token.clone())
                        .bind(*name);
                    self.exec(tx, q).await?;
                }
                self.insert_indexes(tx, tenant, token, add_indexes).await?;
                self.audit(tx, tenant, audit).await
            }
            WriteOp::EraseUser {
                tenant,
                token,
                preserve,
                keep_kind,
                audit,
            } => {
                match preserve {
                    None => {
                        let q = sqlx::query(self.q(sql::USER_ERASE))
                            .bind(audit.at)
                            .bind(audit.at)
                            .bind(tenant.clone())
                            .bind(token.clone());
                        self.exec(tx, q).await?;
                        let q = sqlx::query(self.q(sql::INDEX_DROP_ALL))
                            .bind(tenant.clone())
                            .bind(token.clone());
                        self.exec(tx, q).await?;
                    }
                    Some(p) => {
                        let q = sqlx::query(self.q(sql::USER_ERASE_KEEP))
                            .bind(p.data.clone())
                            .bind(p.wrapped_dek.clone())
                            .bind(p.kek_version)
                            .bind(audit.at)
                            .bind(audit.at)
                            .bind(tenant.clone())
                            .bind(token.clone());
                        self.exec(tx, q).await?;
                        for name in &p.drop_indexes {
                            let q = sqlx::query(self.q(sql::INDEX_DROP_ONE))
                                .bind(tenant.clone())
                                .bind(token.clone())
                                .bind(*name);
                            self.exec(tx, q).await?;
                        }
                    }
                }
                for statement in [sql::RECORDS_DELETE_OWNER, sql::RECORDS_STRIP_OWNER] {
                    let q = sqlx::query(self.q(statement))
                        .bind(tenant.clone())
                        .bind(token.clone())
                        .bind(keep_kind.clone());
                    self.exec(tx, q).await?;
                }
                self.audit(tx, tenant, audit).await
            }
            WriteOp::Audit { tenant, audit } => self.audit(tx, tenant, audit).await,
            WriteOp::PutRecord {
                tenant,
                record: r,
                expected_version: None,
            } => {
                let q = sqlx::query(self.q(sql::RECORD_INSERT))
                    .bind(tenant.clone())
                    .bind(r.kind.clone())
                    .bind(r.id.clone())
                    .bind(r.owner.clone())
                    .bind(r.label.clone())
                    .bind(r.created)
                    .bind(r.updated)
                    .bind(r.expires)
                    .bind(r.version)
                    .bind(r.meta.clone())
                    .bind(r.body.clone())
                    .bind(r.kek_version)
                    .bind(r.wrapped_dek.clone());
                match q.execute(&mut **tx).await {
                    Ok(_) => Ok(()),
                    Err(e) if unique_violation(&e) => Err(StoreError::Duplicate("record")),
                    Err(e) => Err(backend(e)),
                }
            }
            WriteOp::PutRecord {
                tenant,
                record: r,
                expected_version: Some(v),
            } => {
                let q = sqlx::query(self.q(sql::RECORD_UPDATE))
                    .bind(r.owner.clone())
                    .bind(r.label.clone())
                    .bind(r.updated)
                    .bind(r.expires)
                    .bind(r.meta.clone())
                    .bind(r.body.clone())
                    .bind(r.kek_version)
                    .bind(r.wrapped_dek.clone())
                    .bind(tenant.clone())
                    .bind(r.kind.clone())
                    .bind(r.id.clone())
                    .bind(*v);
                if self.exec(tx, q).await? == 0 {
                    return Err(StoreError::Stale);
                }
                Ok(())
            }
            WriteOp::DeleteRecord { tenant, kind, id } => {
                let q = sqlx::query(self.q(sql::RECORD_DELETE))
                    .bind(tenant.clone())
                    .bind(kind.clone())
                    .bind(id.clone());
                self.exec(tx, q).await.map(|_| ())
            }
            WriteOp::DeleteExpired { tenant, kind, now } => {
                let q = sqlx::query(self.q(sql::RECORDS_DELETE_EXPIRED))
                    .bind(tenant.clone())
                    .bind(kind.clone())
                    .bind(*now);
                self.exec(tx, q).await.map(|_| ())
            }
            WriteOp::Seal {
                tenant,
                expected_version,
                seals,
                head,
            } => {
                let (statement, version) = match expected_version {
                    None => (sql::HEAD_INSERT, None),
                    Some(v) => (sql::HEAD_UPDATE, Some(*v)),
                };
                let mut q = sqlx::query(self.q(statement))
                    .bind(head.seq)
                    .bind(head.hash.clone())
                    .bind(head.max_id)
                    .bind(head.gaps_text())
                    .bind(head.version)
                    .bind(tenant.clone());
                if let Some(v) = version {
                    q = q.bind(v);
                }
                let moved = match q.execute(&mut **tx).await {
                    Ok(r) => r.rows_affected(),
                    Err(e) if unique_violation(&e) => 0,
                    Err(e) => return Err(backend(e)),
                };
                if moved == 0 {
                    return Err(StoreError::Stale);
                }
                // Statements of a few fixed sizes, so the per-connection statement
                // cache holds a handful of them.
                let mut rest = seals.as_slice();
                while !rest.is_empty() {
                    let width = sql::SEAL_INSERT_WIDTHS
                        .iter()
                        .copied()
                        .find(|w| *w <= rest.len())
                        .unwrap_or(1);
                    let (chunk, tail) = rest.split_at(width);
                    rest = tail;
                    let statement = sql::seal_insert(chunk.len());
                    let statement = match self.dialect {
                        Dialect::Postgres => sql::numbered(&statement),
                        _ => statement,
                    };
                    let mut q = sqlx::query(AssertSqlSafe(statement));
                    for l in chunk {
                        q = q
                            .bind(tenant.clone())
                            .bind(l.seq)
                            .bind(l.audit_id)
                            .bind(l.hash.clone());
                    }
                    self.exec(tx, q).await?;
                }
                Ok(())
            }
            WriteOp::Checkpoint {
                tenant,
                checkpoint: k,
            } => {
                // An existing checkpoint at the same position is kept: on PostgreSQL a
                // failed statement would abort the transaction, so check first.
                let exists = sqlx::query(
                    self.q("SELECT 1 FROM audit_checkpoint WHERE tenant = ? AND seq = ?"),
                )
                .bind(tenant.clone())
                .bind(k.seq)
                .fetch_optional(&mut **tx)
                .await
                .map_err(backend)?;
                if exists.is_some() {
                    return Ok(());
                }
                let q = sqlx::query(self.q(sql::CHECKPOINT_INSERT))
                    .bind(tenant.clone())
                    .bind(k.seq)
                    .bind(k.hash.clone())
                    .bind(k.at)
                    .bind(k.signature.clone());
                match q.execute(&mut **tx).await {
                    Ok(_) => Ok(()),
                    Err(e) if unique_violation(&e) => Err(StoreError::Stale),
                    Err(e) => Err(backend(e)),
                }
            }
            WriteOp::AddKey { tenant, key, meta } => {
                let q = sqlx::query(self.q(sql::KEY_PUT))
                    .bind(tenant.clone())
                    .bind(key.kind.clone())
                    .bind(key.version)
                    .bind(key.wrapped.clone())
                    .bind(key.created);
                match q.execute(&mut **tx).await {
                    Ok(_) => {}
                    Err(e) if unique_violation(&e) => return Err(StoreError::Duplicate("key")),
                    Err(e) => return Err(backend(e)),
                }
                for (name, value) in meta {
                    let q = sqlx::query(self.q(sql::META_PUT))
                        .bind(name.clone())
                        .bind(value.clone());
                    self.exec(tx, q).await?;
                }
                Ok(())
            }
            WriteOp::Rewrap {
                tenant,
                rows,
                audit,
            } => {
                for r in rows {
                    let d = &r.old;
                    let q = match &d.kind {
                        None => sqlx::query(self.q(sql::USER_REWRAP))
                            .bind(r.new_wrapped.clone())
                            .bind(r.new_version)
                            .bind(tenant.clone())
                            .bind(d.id.clone())
                            .bind(d.kek_version)
                            .bind(d.wrapped.clone()),
                        Some(kind) => sqlx::query(self.q(sql::RECORD_REWRAP))
                            .bind(r.new_wrapped.clone())
                            .bind(r.new_version)
                            .bind(tenant.clone())
                            .bind(kind.clone())
                            .bind(d.id.clone())
                            .bind(d.kek_version)
                            .bind(d.wrapped.clone()),
                    };
                    self.exec(tx, q).await?;
                }
                self.audit(tx, tenant, audit).await
            }
            WriteOp::Reindex {
                tenant,
                rows,
                audit,
            } => {
                let insert = match self.dialect {
                    Dialect::Mysql => sql::INDEX_INSERT_IF_NEW_MYSQL,
                    _ => sql::INDEX_INSERT_IF_NEW,
                };
                for r in rows {
                    // Locked, so that a change of the profile (which rewrites its
                    // entries) cannot commit between this check and the inserts.
                    let version: Option<i64> = sqlx::query(self.q(sql::USER_VERSION_LOCK))
                        .bind(tenant.clone())
                        .bind(r.token.clone())
                        .fetch_optional(&mut **tx)
                        .await
                        .and_then(|row| row.map(|row| row.try_get(0)).transpose())
                        .map_err(backend)?;
                    if version != Some(r.version) {
                        continue;
                    }
                    for e in &r.entries {
                        let q = sqlx::query(self.q(insert))
                            .bind(tenant.clone())
                            .bind(e.name)
                            .bind(e.digest.clone())
                            .bind(r.token.clone())
                            .bind(e.key_version);
                        self.exec(tx, q).await?;
                    }
                }
                self.audit(tx, tenant, audit).await
            }
            WriteOp::RetireIndexKey {
                tenant,
                version,
                successor,
                audit,
            } => {
                let q = sqlx::query(self.q(sql::INDEX_KEY_RETIRE))
                    .bind(tenant.clone())
                    .bind(*version)
                    .bind(tenant.clone())
                    .bind(*version)
                    .bind(*successor)
                    .bind(*version);
                if self.exec(tx, q).await? == 0 {
                    return Err(StoreError::Stale);
                }
                self.audit(tx, tenant, audit).await
            }
            WriteOp::PurgeIndex {
                tenant,
                below,
                from,
                to,
            } => {
                let q = sqlx::query(self.q(sql::INDEX_PURGE))
                    .bind(tenant.clone())
                    .bind(from.clone())
                    .bind(to.clone())
                    .bind(*below);
                self.exec(tx, q).await.map(|_| ())
            }
            WriteOp::RetireKek {
                tenant,
                version,
                audit,
            } => {
                let mut q = sqlx::query(self.q(sql::KEK_RETIRE));
                for _ in 0..3 {
                    q = q.bind(tenant.clone()).bind(*version);
                }
                if self.exec(tx, q).await? == 0 {
                    return Err(StoreError::Stale);
                }
                self.audit(tx, tenant, audit).await
            }
            WriteOp::SwapRootToken { expected, value } => {
                let q = sqlx::query(self.q(sql::META_SWAP))
                    .bind(value.clone())
                    .bind(sql::META_ROOT_TOKEN)
                    .bind(expected.clone());
                if self.exec(tx, q).await? == 0 {
                    return Err(StoreError::Stale);
                }
                Ok(())
            }
            WriteOp::Rekey {
                tenant,
                expected_canary,
                canary,
                keys,
                added,
                meta,
            } => {
                let q = sqlx::query(self.q(sql::META_SWAP))
                    .bind(canary.clone())
                    .bind(sql::META_CANARY)
                    .bind(expected_canary.clone());
                if self.exec(tx, q).await? == 0 {
                    return Err(StoreError::Stale);
                }
                let rows = sqlx::query(self.q(sql::KEY_VERSIONS))
                    .bind(tenant.clone())
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(backend)?;
                let present = rows
                    .iter()
                    .map(|r| {
                        Ok((
                            r.try_get(0).map_err(backend)?,
                            r.try_get(1).map_err(backend)?,
                        ))
                    })
                    .collect::<Result<Vec<(String, i64)>>>()?;
                let expected = keys.iter().map(|k| (k.kind.clone(), k.version)).collect();
                if !crate::same_versions(present, expected) {
                    return Err(StoreError::Stale);
                }
                for k in keys {
                    let q = sqlx::query(self.q(sql::KEY_REWRAP))
                        .bind(k.wrapped.clone())
                        .bind(tenant.clone())
                        .bind(k.kind.clone())
                        .bind(k.version);
                    self.exec(tx, q).await?;
                }
                for k in added {
                    let q = sqlx::query(self.q(sql::KEY_PUT))
                        .bind(tenant.clone())
                        .bind(k.kind.clone())
                        .bind(k.version)
                        .bind(k.wrapped.clone())
                        .bind(k.created);
                    self.exec(tx, q).await?;
                }
                for (name, value) in meta {
                    let q = sqlx::query(self.q(sql::META_DELETE)).bind(name.clone());
                    self.exec(tx, q).await?;
                    if let Some(v) = value {
                        let q = sqlx::query(self.q(sql::META_PUT))
                            .bind(name.clone())
                            .bind(v.clone());
                        self.exec(tx, q).await?;
                    }
                }
                Ok(())
            }
            WriteOp::ImportRows { table, rows } => {
                use crate::backup::{Cell, Kind};
                for chunk in rows.chunks(IMPORT_ROWS_PER_STATEMENT) {
                    let statement = table.insert(chunk.len());
                    let statement = match self.dialect {
                        Dialect::Postgres => sql::numbered(&statement),
                        _ => statement,
                    };
                    let mut q = sqlx::query(AssertSqlSafe(statement));
                    for row in chunk {
                        for (cell, (_, kind)) in row.iter().zip(table.columns) {
                            q = match (cell, kind) {
                                (Cell::Int(i), _) => q.bind(*i),
                                (Cell::Text(t), _) => q.bind(t.clone()),
                                (Cell::Bytes(b), _) => q.bind(b.clone()),
                                (Cell::Null, Kind::Int) => q.bind(None::<i64>),
                                (Cell::Null, Kind::Text) => q.bind(None::<String>),
                                (Cell::Null, Kind::Bytes) => q.bind(None::<Vec<u8>>),
                            };
                        }
                    }
                    self.exec(tx, q).await?;
                }
                if table.name == "audit" && self.dialect == Dialect::Postgres {
                    // Explicit ids do not move the sequence; new events must come after.
                    let q = sqlx::query(
                        "SELECT setval(pg_get_serial_sequence('audit', 'id'), \
                         COALESCE((SELECT MAX(id) FROM audit), 0) + 1, false)",
                    );
                    self.exec(tx, q).await?;
                }
                Ok(())
            }
            WriteOp::Wipe(tables) => {
                for table in tables.iter().rev() {
                    let q = sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", table.name)));
                    self.exec(tx, q).await?;
                }
                Ok(())
            }
            WriteOp::Atomic(ops) => {
                for op in ops {
                    Box::pin(self.apply(tx, op)).await?;
                }
                Ok(())
            }
        }
    }
}

type Q<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Binds a user row in the column order of `sql::USER_INSERT`.
fn bind_user<'q>(q: Q<'q>, tenant: &str, u: &UserRow) -> Q<'q> {
    q.bind(tenant.to_string())
        .bind(u.token.clone())
        .bind(u.kek_version)
        .bind(u.wrapped_dek.clone())
        .bind(u.data.clone())
        .bind(u.version)
        .bind(u.created)
        .bind(u.updated)
        .bind(u.erased)
}

/// Binds an audit event in the column order of `sql::AUDIT_INSERT`.
fn bind_audit<'q>(q: Q<'q>, tenant: &str, a: &AuditEvent) -> Q<'q> {
    q.bind(a.atoken.clone())
        .bind(tenant.to_string())
        .bind(a.at)
        .bind(a.actor.clone())
        .bind(a.action.clone())
        .bind(a.record.clone())
        .bind(a.status.clone())
        .bind(a.app.clone())
        .bind(a.detail.clone())
        .bind(a.classes.clone())
}

fn audit_row(r: &AnyRow) -> Result<AuditRow> {
    Ok(AuditRow {
        id: r.try_get(0).map_err(backend)?,
        event: AuditEvent {
            atoken: r.try_get(1).map_err(backend)?,
            at: r.try_get(2).map_err(backend)?,
            actor: r.try_get(3).map_err(backend)?,
            action: r.try_get(4).map_err(backend)?,
            record: r.try_get(5).map_err(backend)?,
            status: r.try_get(6).map_err(backend)?,
            app: r.try_get(7).map_err(backend)?,
            detail: r.try_get(8).map_err(backend)?,
            classes: r.try_get(9).map_err(backend)?,
        },
        tenant: r.try_get(10).map_err(backend)?,
    })
}

fn seal_row(r: &AnyRow) -> Result<SealRow> {
    Ok(SealRow {
        seq: r.try_get(0).map_err(backend)?,
        audit_id: r.try_get(1).map_err(backend)?,
        hash: r.try_get(2).map_err(backend)?,
    })
}

fn record_row(r: &AnyRow) -> Result<RecordRow> {
    Ok(RecordRow {
        kind: r.try_get(0).map_err(backend)?,
        id: r.try_get(1).map_err(backend)?,
        owner: r.try_get(2).map_err(backend)?,
        label: r.try_get(3).map_err(backend)?,
        created: r.try_get(4).map_err(backend)?,
        updated: r.try_get(5).map_err(backend)?,
        expires: r.try_get(6).map_err(backend)?,
        version: r.try_get(7).map_err(backend)?,
        meta: r.try_get(8).map_err(backend)?,
        body: r.try_get(9).map_err(backend)?,
        kek_version: r.try_get(10).map_err(backend)?,
        wrapped_dek: r.try_get(11).map_err(backend)?,
    })
}

fn user_row(r: &AnyRow) -> Result<UserRow> {
    Ok(UserRow {
        token: r.try_get(0).map_err(backend)?,
        kek_version: r.try_get(1).map_err(backend)?,
        wrapped_dek: r.try_get(2).map_err(backend)?,
        data: r.try_get(3).map_err(backend)?,
        version: r.try_get(4).map_err(backend)?,
        created: r.try_get(5).map_err(backend)?,
        updated: r.try_get(6).map_err(backend)?,
        erased: r.try_get(7).map_err(backend)?,
    })
}
