//! PostgreSQL and MySQL/MariaDB backend, through sqlx's `Any` driver over a connection
//! pool. Statements are prepared once per connection and cached by sqlx. Each write
//! runs in its own transaction; concurrent commits share WAL/redo-log flushes in the
//! server. Uniqueness of blind indexes is enforced by the database's primary key, so
//! any number of Strongbox nodes can share one database.

use std::borrow::Cow;
use std::sync::{Arc, Once};

use tokio::sync::{Mutex, mpsc, oneshot};

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, AssertSqlSafe, Row as _, Transaction};

use crate::exec::{Arg, DbError, Exec, Map, Row, Sql, args};
use crate::now;
use crate::ops;
use crate::schema::{self, Dialect};
use crate::{
    AuditEvent, Guard, IndexEntry, InitData, OpenOptions, Result, StoreError, UserRow, WriteOp, sql,
};

#[derive(Clone)]
pub struct SqlxStore {
    pool: AnyPool,
    dialect: Dialect,
    audit: mpsc::Sender<AuditJob>,
    /// On PostgreSQL, the tenant this handle is confined to by row-level security
    /// (see [`SqlxStore::scoped`]); `None`: the main tenant's handle, as the owner.
    scope: Option<std::sync::Arc<str>>,
}

/// The role a tenant-scoped transaction runs as: row-level security applies to it
/// (the owner, who runs the main tenant and the migrations, bypasses it).
pub const TENANT_ROLE: &str = "strongbox_tenant";

/// A lone audit event waiting for the batcher, with where to send the outcome.
type AuditJob = (String, AuditEvent, oneshot::Sender<Result<()>>);

/// Largest number of audit events written by one multi-row INSERT.
const MAX_AUDIT_BATCH: usize = 64;
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
            scope: None,
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
        let mut tx: Tx = self.pool.begin().await.map_err(backend)?;
        ops::initialize(&mut self.tx(&mut tx), &init).await?;
        tx.commit().await.map_err(backend)
    }

    /// A handle whose every statement on PostgreSQL runs in a transaction as
    /// [`TENANT_ROLE`] with `strongbox.tenant` set to `tenant`, so the row-level
    /// security policies let it see and write only that tenant's rows: a second
    /// wall behind the `tenant = ?` of every query. Other dialects: the same handle
    /// (their scoping is the queries'). `tenant` is a store key (`t<id>`).
    pub fn scoped(&self, tenant: &str) -> SqlxStore {
        let scope = (self.dialect == Dialect::Postgres).then(|| tenant.into());
        SqlxStore {
            scope,
            ..self.clone()
        }
    }

    /// Enters this handle's scope inside `tx` (nothing when it has none).
    async fn enter_scope(&self, tx: &mut Tx) -> Result<()> {
        let Some(scope) = &self.scope else {
            return Ok(());
        };
        // A store key is letters and digits; anything else is refused (it would be
        // spliced into the statement below), never run unscoped.
        if scope.is_empty() || !scope.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(StoreError::Backend(
                "a tenant's store key is not letters and digits".into(),
            ));
        }
        let sql = format!(
            "SET LOCAL ROLE {TENANT_ROLE}; SELECT set_config('strongbox.tenant', '{scope}', true)"
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut **tx)
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "cannot enter the tenant's row-level security scope (is the role \
                     {TENANT_ROLE} there, and may this user SET ROLE to it?): {e}"
                ))
            })?;
        Ok(())
    }

    /// Statements inside the transaction `tx`.
    fn tx<'t>(&self, tx: &'t mut Tx) -> TxExec<'t> {
        TxExec {
            tx,
            dialect: self.dialect,
        }
    }

    /// The rows of a query, read on a pooled connection.
    pub(crate) async fn query<T>(&self, sql: Sql, args: &[Arg<'_>], map: Map<T>) -> Result<Vec<T>> {
        if self.scope.is_some() {
            let mut tx: Tx = self.pool.begin().await.map_err(backend)?;
            self.enter_scope(&mut tx).await?;
            let rows = statement(self.dialect, sql, args)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            return rows.iter().map(|r| map(&Row::Any(r))).collect();
        }
        let rows = statement(self.dialect, sql, args)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| map(&Row::Any(r))).collect()
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
            && self.scope.is_none()
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
            self.enter_scope(&mut tx).await?;
            match ops::apply(&mut self.tx(&mut tx), &op).await {
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
        let owners = guard.map(|g| g.binds());
        let no_value: Vec<u8> = Vec::new();
        let mut values: Vec<Arg<'_>> = ops::user_args(tenant, u).to_vec();
        if let (Some(g), Some([o1, o2, o3, o4])) = (guard, &owners) {
            values.extend(args![
                sql::META_CANARY,
                no_value,
                tenant,
                g.kind,
                o1,
                o2,
                o3,
                o4
            ]);
        }
        for e in indexes {
            values.extend(args![tenant, e.name, e.digest, u.token, e.key_version]);
        }
        values.extend(ops::audit_args(tenant, a));
        match statement(self.dialect, sql.into(), &values)
            .execute(&self.pool)
            .await
        {
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
            let values: Vec<Arg<'_>> = batch
                .iter()
                .flat_map(|(tenant, a, _)| ops::audit_args(tenant, a))
                .collect();
            let q = statement(self.dialect, sql.into(), &values);
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
        self.enter_scope(&mut tx).await?;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            sqlx::query("SAVEPOINT op")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let r = ops::apply(&mut self.tx(&mut tx), op).await;
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
}

/// Statements inside one transaction of a server backend.
pub(crate) struct TxExec<'t> {
    tx: &'t mut Tx,
    dialect: Dialect,
}

impl Exec for TxExec<'_> {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn execute(&mut self, sql: Sql, args: &[Arg<'_>]) -> std::result::Result<u64, DbError> {
        statement(self.dialect, sql, args)
            .execute(&mut **self.tx)
            .await
            .map(|r| r.rows_affected())
            .map_err(db_error)
    }

    async fn query<T: Send>(&mut self, sql: Sql, args: &[Arg<'_>], map: Map<T>) -> Result<Vec<T>> {
        let rows = statement(self.dialect, sql, args)
            .fetch_all(&mut **self.tx)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| map(&Row::Any(r))).collect()
    }
}

fn db_error(e: sqlx::Error) -> DbError {
    if unique_violation(&e) {
        DbError::Unique(backend(e))
    } else {
        DbError::Other(backend(e))
    }
}

/// A statement in this dialect's placeholder syntax with its parameters bound.
/// (sqlx's `Any` driver takes owned values, so text and bytes are copied here.)
fn statement(
    dialect: Dialect,
    sql: Sql,
    args: &[Arg<'_>],
) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
    let sql = match dialect {
        Dialect::Postgres => Cow::Owned(sql::numbered(&sql)),
        Dialect::Sqlite | Dialect::Mysql => sql,
    };
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for a in args {
        q = match *a {
            Arg::Int(v) => q.bind(v),
            Arg::Text(v) => q.bind(v.map(str::to_owned)),
            Arg::Bytes(v) => q.bind(v.map(<[u8]>::to_vec)),
        };
    }
    q
}
