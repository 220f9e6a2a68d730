//! SQLite backend (rusqlite, bundled SQLite, WAL mode).
//!
//! SQLite has one writer, so all writes go through one writer thread that drains
//! every pending request, applies each inside its own savepoint, commits the whole
//! batch in one transaction (group commit) and only then answers each request. Reads
//! run inline over a small pool of read connections, which WAL lets proceed while the
//! writer commits.
//!
//! A pipelined variant (commit with `synchronous=NORMAL`, then fdatasync the WAL from a
//! second thread while the writer commits the next batch) was measured and dropped:
//! batches got smaller and the extra commits cost more CPU than the overlap saved on
//! this 2-core machine (GET 9.5k/s against 12.9k/s at 16 connections).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::schema::{self, Dialect};
use crate::{
    AuditEvent, AuditHead, AuditRow, CheckpointRow, InitData, KeyRow, OpenOptions, RecordRow,
    Result, SealRow, StoreError, StoreMeta, UserRow, WriteOp, sql,
};
use crate::{now, same_versions};

/// How hard SQLite works to keep a commit through a power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a commit is on stable storage before it is acknowledged.
    #[default]
    Full,
    /// `synchronous=NORMAL` (opt-in): survives a process crash, but the last commits
    /// before a power loss or kernel crash may be lost although acknowledged.
    Normal,
}

/// Page cache of the writer connection, in KiB.
const WRITER_CACHE_KIB: u32 = 48 * 1024;
/// Largest number of requests committed in one transaction.
const MAX_BATCH: usize = 512;
/// Read connections kept open when idle.
const MAX_IDLE_READERS: usize = 8;

#[allow(
    clippy::large_enum_variant,
    reason = "jobs move once through a channel; boxing the write would cost an allocation per write"
)]
enum Job {
    Write(WriteOp),
    Init(InitData),
}

type Reply = oneshot::Sender<Result<()>>;

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writer: Sender<(Job, Reply)>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

impl SqliteStore {
    pub async fn open(path: &Path, opts: &OpenOptions) -> Result<Self> {
        let path = path.to_path_buf();
        let opts = opts.clone();
        let (tx, rx) = channel();
        let writer_path = path.clone();
        // Open the writer and migrate on a blocking thread, then hand it to its own thread.
        let conn = tokio::task::spawn_blocking(move || open_writer(&writer_path, &opts))
            .await
            .map_err(backend)??;
        let finish = Arc::new(AtomicBool::new(false));
        let writer_finish = finish.clone();
        // An erasure's WAL truncation left to the checkpointer.
        let purge = Arc::new(AtomicBool::new(false));
        let writer_purge = purge.clone();
        std::thread::Builder::new()
            .name("strongbox-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, writer_finish, writer_purge))
            .map_err(backend)?;
        let inner = Arc::new(Inner {
            path: path.clone(),
            readers: Mutex::new(Vec::new()),
            writer: tx,
        });
        let alive = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("strongbox-sqlite-checkpointer".into())
            .spawn(move || checkpointer_loop(path, alive, finish, purge))
            .map_err(backend)?;
        Ok(SqliteStore { inner })
    }

    async fn submit(&self, job: Job) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .writer
            .send((job, tx))
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?
    }

    pub async fn initialize(&self, init: InitData) -> Result<()> {
        self.submit(Job::Init(init)).await
    }

    pub async fn write(&self, op: WriteOp) -> Result<()> {
        self.submit(Job::Write(op)).await
    }

    /// Queues every op at once, so the writer commits them in as few transactions as
    /// its batch size allows.
    pub async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<Result<()>>> {
        let mut pending = Vec::with_capacity(ops.len());
        for op in ops {
            let (tx, rx) = oneshot::channel();
            self.inner
                .writer
                .send((Job::Write(op), tx))
                .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?;
            pending.push(rx);
        }
        let mut out = Vec::with_capacity(pending.len());
        for rx in pending {
            out.push(
                rx.await
                    .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?,
            );
        }
        Ok(out)
    }

    /// Runs `f` with a pooled read connection. Reads are point lookups on a WAL
    /// database that take microseconds, so they run on the calling task's thread: a
    /// hand-off to the blocking pool cost more than the read itself (measured with
    /// `bench/run.py`: 13.8k → 25.8k point lookups/s at 16 connections).
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T>,
    {
        let pooled = self.inner.readers.lock().ok().and_then(|mut v| v.pop());
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.inner.path)?,
        };
        let out = f(&conn).map_err(backend);
        if let Ok(mut v) = self.inner.readers.lock()
            && v.len() < MAX_IDLE_READERS
        {
            v.push(conn);
        }
        out
    }

    pub async fn meta(&self) -> Result<StoreMeta> {
        let (canary, token) = self
            .read(|c| {
                let get = |name: &str| -> rusqlite::Result<Option<Vec<u8>>> {
                    c.prepare_cached(sql::META_GET)?
                        .query_row([name], |r| r.get(0))
                        .optional()
                };
                Ok((get(sql::META_CANARY)?, get(sql::META_ROOT_TOKEN)?))
            })
            .await?;
        match (canary, token) {
            (Some(canary), Some(root_token_hash)) => Ok(StoreMeta {
                canary,
                root_token_hash,
            }),
            _ => Err(StoreError::NotInitialized("the store".into())),
        }
    }

    pub async fn keys(&self, tenant: &str) -> Result<Vec<KeyRow>> {
        let tenant = tenant.to_string();
        self.read(move |c| {
            let mut st = c.prepare_cached(sql::KEYS_GET)?;
            let rows = st.query_map([tenant], |r| {
                Ok(KeyRow {
                    kind: r.get(0)?,
                    version: r.get(1)?,
                    wrapped: r.get(2)?,
                    created: r.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    pub async fn user(&self, tenant: &str, token: &str) -> Result<Option<UserRow>> {
        self.read(|c| {
            c.prepare_cached(sql::USER_GET)?
                .query_row(params![tenant, token], user_row)
                .optional()
        })
        .await
    }

    pub async fn user_by_index(
        &self,
        tenant: &str,
        name: &str,
        digests: &[Vec<u8>],
    ) -> Result<Option<UserRow>> {
        self.read(|c| match digests {
            [one] => c
                .prepare_cached(sql::USER_BY_INDEX)?
                .query_row(params![tenant, name, one], user_row)
                .optional(),
            [a, b] => c
                .prepare_cached(sql::USER_BY_INDEX2)?
                .query_row(params![tenant, name, a, b], user_row)
                .optional(),
            _ => Ok(None),
        })
        .await
    }

    pub async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    /// Record rows selected by `statement` (one of `sql::RECORD*`) with text arguments.
    pub(crate) async fn records(&self, statement: &str, args: &[&str]) -> Result<Vec<RecordRow>> {
        self.read(|c| {
            let mut st = c.prepare_cached(statement)?;
            let rows = st.query_map(rusqlite::params_from_iter(args), record_row)?;
            rows.collect()
        })
        .await
    }

    pub(crate) async fn audit_page(
        &self,
        tenant: &str,
        record: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(u64, Vec<AuditRow>)> {
        self.read(|c| {
            let (total, rows) = match record {
                Some(r) => (
                    c.prepare_cached(sql::AUDIT_COUNT_RECORD)?
                        .query_row(params![tenant, r], |row| row.get::<_, i64>(0))?,
                    c.prepare_cached(sql::AUDIT_PAGE_RECORD)?
                        .query_map(params![tenant, r, limit, offset], audit_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()?,
                ),
                None => (
                    c.prepare_cached(sql::AUDIT_COUNT_ALL)?
                        .query_row(params![tenant], |row| row.get::<_, i64>(0))?,
                    c.prepare_cached(sql::AUDIT_PAGE_ALL)?
                        .query_map(params![tenant, limit, offset], audit_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()?,
                ),
            };
            Ok((total.max(0) as u64, rows))
        })
        .await
    }

    pub(crate) async fn users_page(
        &self,
        tenant: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(u64, Vec<UserRow>)> {
        self.read(|c| {
            let total: i64 = c
                .prepare_cached(sql::USERS_COUNT)?
                .query_row([tenant], |r| r.get(0))?;
            let rows = c
                .prepare_cached(sql::USERS_PAGE)?
                .query_map(params![tenant, limit, offset], user_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((total.max(0) as u64, rows))
        })
        .await
    }

    pub(crate) async fn audit_in_range(
        &self,
        tenant: &str,
        atoken: &str,
        lo: i64,
        hi: i64,
    ) -> Result<Option<AuditRow>> {
        self.read(|c| {
            c.prepare_cached(sql::AUDIT_IN_RANGE)?
                .query_row(params![lo, hi, atoken, tenant], audit_row)
                .optional()
        })
        .await
    }

    pub(crate) async fn audit_id_range(&self) -> Result<Option<(i64, i64)>> {
        self.read(|c| {
            c.prepare_cached(sql::AUDIT_ID_RANGE)?.query_row([], |r| {
                Ok(
                    match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
                        (Some(a), Some(b)) => Some((a, b)),
                        _ => None,
                    },
                )
            })
        })
        .await
    }

    pub(crate) async fn audit_at_from(&self, id: i64) -> Result<Option<(i64, i64)>> {
        self.read(|c| {
            c.prepare_cached(sql::AUDIT_AT_FROM)?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .await
    }

    pub(crate) async fn records_due(
        &self,
        tenant: &str,
        kind: &str,
        now: i64,
    ) -> Result<Vec<RecordRow>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::RECORDS_DUE)?;
            let rows = st.query_map(params![tenant, kind, now], record_row)?;
            rows.collect()
        })
        .await
    }

    /// Audit rows selected by `statement` (one of `sql::AUDIT_*`) with integer arguments.
    pub(crate) async fn audit_rows(&self, statement: &str, args: &[i64]) -> Result<Vec<AuditRow>> {
        self.read(|c| {
            let mut st = c.prepare_cached(statement)?;
            let rows = st.query_map(rusqlite::params_from_iter(args), audit_row)?;
            rows.collect()
        })
        .await
    }

    pub(crate) async fn audit_head(&self, tenant: &str) -> Result<Option<AuditHead>> {
        self.read(|c| {
            c.prepare_cached(sql::HEAD_GET)?
                .query_row([tenant], |r| {
                    Ok(AuditHead {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                        max_id: r.get(2)?,
                        gaps: AuditHead::parse_gaps(&r.get::<_, String>(3)?),
                        version: r.get(4)?,
                    })
                })
                .optional()
        })
        .await
    }

    pub(crate) async fn audit_seals(
        &self,
        tenant: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<SealRow>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::SEALS_AFTER)?;
            let rows = st.query_map(params![tenant, after, limit], seal_row)?;
            rows.collect()
        })
        .await
    }

    pub(crate) async fn audit_seal_of(
        &self,
        tenant: &str,
        after: i64,
        audit_id: i64,
    ) -> Result<Option<SealRow>> {
        self.read(|c| {
            c.prepare_cached(sql::SEAL_OF)?
                .query_row(params![tenant, after, audit_id], seal_row)
                .optional()
        })
        .await
    }

    pub(crate) async fn audit_checkpoints(&self, tenant: &str) -> Result<Vec<CheckpointRow>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::CHECKPOINTS)?;
            let rows = st.query_map([tenant], |r| {
                Ok(CheckpointRow {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                    at: r.get(2)?,
                    signature: r.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    pub(crate) async fn users_to_rewrap(
        &self,
        tenant: &str,
        below: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<crate::WrappedDek>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::USERS_KEK_BELOW)?;
            let rows = st.query_map(params![tenant, below, after, limit], |r| {
                Ok(crate::WrappedDek {
                    kind: None,
                    id: r.get(0)?,
                    kek_version: r.get(1)?,
                    wrapped: r.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    pub(crate) async fn records_to_rewrap(
        &self,
        tenant: &str,
        below: i64,
        after: (&str, &str),
        limit: i64,
    ) -> Result<Vec<crate::WrappedDek>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::RECORDS_KEK_BELOW)?;
            let rows = st.query_map(
                params![tenant, below, after.0, after.0, after.1, limit],
                |r| {
                    Ok(crate::WrappedDek {
                        kind: Some(r.get(0)?),
                        id: r.get(1)?,
                        kek_version: r.get(2)?,
                        wrapped: r.get(3)?,
                    })
                },
            )?;
            rows.collect()
        })
        .await
    }

    pub(crate) async fn count_wrapped(&self, tenant: &str, from: i64, below: i64) -> Result<i64> {
        self.read(|c| {
            let mut n = 0i64;
            for st in [sql::USERS_KEK_COUNT, sql::RECORDS_KEK_COUNT] {
                n += c
                    .prepare_cached(st)?
                    .query_row(params![tenant, from, below], |r| r.get::<_, i64>(0))?;
            }
            Ok(n)
        })
        .await
    }

    pub(crate) async fn users_to_reindex(
        &self,
        tenant: &str,
        (old, new): (i64, i64),
        (after, upto): (&str, &str),
    ) -> Result<Vec<UserRow>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::USERS_TO_REINDEX)?;
            let rows = st.query_map(
                params![tenant, old, new, after, upto, old, tenant],
                user_row,
            )?;
            rows.collect()
        })
        .await
    }

    pub(crate) async fn count_reindex(
        &self,
        tenant: &str,
        old: i64,
        new: i64,
    ) -> Result<(i64, i64)> {
        self.read(|c| {
            let behind = c
                .prepare_cached(sql::INDEX_BEHIND_COUNT)?
                .query_row(params![tenant, old, new, old], |r| r.get(0))?;
            let all = c
                .prepare_cached(sql::INDEX_VERSION_COUNT)?
                .query_row(params![tenant, old], |r| r.get(0))?;
            Ok((behind, all))
        })
        .await
    }

    pub(crate) async fn tokens_with_old_index(
        &self,
        tenant: &str,
        below: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::INDEX_OLD_TOKENS)?;
            let rows = st.query_map(params![tenant, after, below, limit], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }

    pub(crate) async fn meta_value(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.read(|c| {
            c.prepare_cached(sql::META_GET)?
                .query_row([name], |r| r.get(0))
                .optional()
        })
        .await
    }

    /// One integer selected by `statement` (no arguments).
    pub(crate) async fn count(&self, statement: &str) -> Result<i64> {
        self.read(|c| c.prepare_cached(statement)?.query_row([], |r| r.get(0)))
            .await
    }

    /// Every backed-up table from one read transaction on a connection of its own, so
    /// the writer keeps committing meanwhile (WAL readers see a fixed snapshot).
    pub(crate) async fn export(
        &self,
        out: tokio::sync::mpsc::Sender<crate::backup::ExportedRow>,
    ) -> Result<()> {
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let conn = open_reader(&path)?;
            conn.execute_batch("BEGIN").map_err(backend)?;
            for table in crate::backup::TABLES {
                let mut st = conn.prepare(&table.select()).map_err(backend)?;
                let mut rows = st.query([]).map_err(backend)?;
                while let Some(r) = rows.next().map_err(backend)? {
                    let mut cells = Vec::with_capacity(table.columns.len());
                    for i in 0..table.columns.len() {
                        cells.push(cell(r.get_ref(i).map_err(backend)?));
                    }
                    if out.blocking_send((table, cells)).is_err() {
                        return Err(StoreError::Backend("the backup reader stopped".into()));
                    }
                }
            }
            conn.execute_batch("COMMIT").map_err(backend)
        })
        .await
        .map_err(backend)?
    }

    /// A single text column selected by `statement`.
    pub(crate) async fn strings(&self, statement: &str, args: &[&str]) -> Result<Vec<String>> {
        self.read(|c| {
            let mut st = c.prepare_cached(statement)?;
            let rows = st.query_map(rusqlite::params_from_iter(args), |r| r.get(0))?;
            rows.collect()
        })
        .await
    }
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        event: AuditEvent {
            atoken: r.get(1)?,
            at: r.get(2)?,
            actor: r.get(3)?,
            action: r.get(4)?,
            record: r.get(5)?,
            status: r.get(6)?,
            app: r.get(7)?,
            detail: r.get(8)?,
            classes: r.get(9)?,
        },
        tenant: r.get(10)?,
    })
}

fn cell(v: rusqlite::types::ValueRef<'_>) -> crate::backup::Cell {
    use crate::backup::Cell;
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(f) => Cell::Int(f as i64),
        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
    }
}

fn seal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SealRow> {
    Ok(SealRow {
        seq: r.get(0)?,
        audit_id: r.get(1)?,
        hash: r.get(2)?,
    })
}

fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        kind: r.get(0)?,
        id: r.get(1)?,
        owner: r.get(2)?,
        label: r.get(3)?,
        created: r.get(4)?,
        updated: r.get(5)?,
        expires: r.get(6)?,
        version: r.get(7)?,
        meta: r.get(8)?,
        body: r.get(9)?,
        kek_version: r.get(10)?,
        wrapped_dek: r.get(11)?,
    })
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        token: r.get(0)?,
        kek_version: r.get(1)?,
        wrapped_dek: r.get(2)?,
        data: r.get(3)?,
        version: r.get(4)?,
        created: r.get(5)?,
        updated: r.get(6)?,
        erased: r.get(7)?,
    })
}

fn configure(conn: &Connection, durability: Durability) -> Result<()> {
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA busy_timeout=5000; \
         PRAGMA foreign_keys=ON;"
    ))
    .map_err(backend)
}

/// Says what is wrong with the data directory or the database file, by path,
/// before SQLite would report it as "not initialized" or fail on the first write.
fn check_path(path: &Path, create: bool, read_only: bool) -> Result<()> {
    let unusable = |what: String| Err(StoreError::Backend(what));
    let not_initialized = || Err(StoreError::NotInitialized(String::new()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return unusable(format!(
                    "{} is not a directory (the data directory must be one)",
                    dir.display()
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return if create { Ok(()) } else { not_initialized() };
            }
            Err(e) => {
                return unusable(format!(
                    "cannot use the data directory {}: {e}",
                    dir.display()
                ));
            }
        }
    }
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => unusable(format!("{} is not a file", path.display())),
        Ok(_) if read_only => Ok(()),
        Ok(_) => match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            Ok(_) => Ok(()),
            Err(e) => unusable(format!(
                "cannot open {} for writing: {e} (the vault writes to its database)",
                path.display()
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if create {
                Ok(())
            } else {
                not_initialized()
            }
        }
        Err(e) => unusable(format!("cannot read {}: {e}", path.display())),
    }
}

fn open_writer(path: &Path, opts: &OpenOptions) -> Result<Connection> {
    check_path(path, opts.create, opts.read_only)?;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        // Only the vault's own user may list or open its files.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", dir.display())))?;
    }
    if !path.exists() {
        // Created empty with mode 0600 before SQLite opens it; SQLite gives its WAL
        // and shared-memory files the database file's mode.
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", path.display())))?;
    }
    let conn = Connection::open(path).map_err(backend)?;
    // SQLite falls back to read-only when it cannot write the file or its
    // directory (for the WAL): refuse to start rather than answer 503 to every write.
    if !opts.read_only && conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
        return Err(StoreError::Backend(format!(
            "{} opens read-only (check the permissions of the file and its directory)",
            path.display()
        )));
    }
    configure(&conn, opts.durability)?;
    // Checkpoints run on their own thread (see `checkpointer_loop`), not inside the
    // writer's commits, where they stalled every write for tens of milliseconds. (With
    // SQLite's own auto-checkpoints under sustained load the WAL also never started
    // over: it grew to 1.6 GB in a 15 s create run.)
    conn.execute_batch("PRAGMA wal_autocheckpoint=0;")
        .map_err(backend)?;
    // A burst can grow the WAL file well past the checkpoint threshold, and SQLite
    // reuses it from the start without shrinking it; this cuts a file grown past
    // the limit back when the writer starts the WAL over. The limit is far above
    // the steady-state size on purpose: truncating at every restart (a 1 MiB limit
    // was tried) made every restart regrow the file under fsync and cost 35-40 % of
    // request throughput in the benchmark.
    conn.execute_batch(&format!("PRAGMA journal_size_limit={WAL_SIZE_LIMIT};"))
        .map_err(backend)?;
    // Deleted and overwritten content is zeroed in the page, so an erasure leaves
    // no old row bytes behind once its pages reach the database file (see
    // `purge_wal`).
    conn.execute_batch("PRAGMA secure_delete=ON;")
        .map_err(backend)?;
    // The writer inserts at random places in the index B-trees; a page cache larger
    // than SQLite's 2 MiB default keeps their pages in memory as the store grows (it
    // only takes memory as pages are used).
    conn.execute_batch(&format!("PRAGMA cache_size=-{WRITER_CACHE_KIB};"))
        .map_err(backend)?;
    migrate(&conn, path, opts)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend)?;
    conn.execute_batch("PRAGMA busy_timeout=5000; PRAGMA query_only=1;")
        .map_err(backend)?;
    Ok(conn)
}

/// Brings the schema up to date as [`schema::plan`] decides.
fn migrate(conn: &Connection, path: &Path, opts: &OpenOptions) -> Result<()> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut st| {
            st.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(backend)?;
    let applied = if tables.iter().any(|t| t == "strongbox_migrations") {
        let versions = conn
            .prepare("SELECT version FROM strongbox_migrations")
            .and_then(|mut st| {
                st.query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()
            })
            .map_err(backend)?;
        Some(versions)
    } else {
        None
    };
    let shown = format!("sqlite file {}", path.display());
    let plan = schema::plan(
        Dialect::Sqlite,
        &tables,
        applied.as_deref(),
        opts.create,
        opts.read_only,
        &shown,
    )?;
    if plan.create_table {
        conn.execute_batch(schema::MIGRATIONS_TABLE)
            .map_err(backend)?;
    }
    for (version, statements) in schema::migrations(Dialect::Sqlite) {
        if !plan.apply.contains(version) {
            continue;
        }
        let tx = conn.unchecked_transaction().map_err(backend)?;
        for st in *statements {
            tx.execute_batch(st).map_err(backend)?;
        }
        tx.execute(
            "INSERT INTO strongbox_migrations (version, applied) VALUES (?, ?)",
            params![version, now()],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

/// WAL size above which the checkpointer copies the WAL back into the database.
const CHECKPOINT_WAL_BYTES: u64 = 4 * 1024 * 1024;
/// Size a WAL file grown past it is cut back to when the writer starts it over.
const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;
/// Uncopied WAL frames the writer may be asked to copy itself between two batches.
const FINISH_TAIL_FRAMES: i64 = 256;

/// Copies committed WAL frames into the database file in the background (PASSIVE: it
/// never blocks the writer or readers), so the WAL stays small without the writer
/// paying for checkpoints. Stops when the store is dropped.
///
/// A concurrent checkpoint never catches up with a busy writer, and SQLite restarts
/// the WAL from its beginning only when every frame has been copied. So after each
/// pass the checkpointer asks the writer (`finish`) to copy the few frames committed
/// meanwhile between two batches; the next write then starts the WAL over.
fn checkpointer_loop(
    path: PathBuf,
    alive: std::sync::Weak<Inner>,
    finish: Arc<AtomicBool>,
    purge: Arc<AtomicBool>,
) {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let mut conn: Option<Connection> = None;
    while alive.strong_count() > 0 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if size < CHECKPOINT_WAL_BYTES && !purge.load(Ordering::Acquire) {
            continue;
        }
        if conn.is_none() {
            conn = Connection::open(&path)
                .and_then(|c| c.execute_batch("PRAGMA busy_timeout=5000;").map(|()| c))
                .map_err(|e| tracing::warn!(error = %e, "checkpointer cannot open the database"))
                .ok();
        }
        if let Some(c) = &conn
            && purge.load(Ordering::Acquire)
        {
            // An erasure's truncation the writer could not finish (a long reader).
            purge.store(!purge_wal(c), Ordering::Release);
            continue;
        }
        if let Some(c) = &conn {
            // Catch up with the writer pass after pass, and hand the writer only the
            // short tail left over, so that finishing never stalls it for long.
            for _ in 0..32 {
                let started = std::time::Instant::now();
                let r = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                });
                match r {
                    Ok((log, done)) => {
                        tracing::debug!(
                            log,
                            done,
                            micros = started.elapsed().as_micros() as u64,
                            "sqlite checkpoint"
                        );
                        if log - done <= FINISH_TAIL_FRAMES {
                            finish.store(true, Ordering::Release);
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "sqlite checkpoint failed");
                        break;
                    }
                }
            }
        }
    }
}

fn writer_loop(
    conn: Connection,
    rx: Receiver<(Job, Reply)>,
    finish_checkpoint: Arc<AtomicBool>,
    purge: Arc<AtomicBool>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let started = std::time::Instant::now();
        let n = batch.len();
        commit_batch(&conn, &mut batch, &purge);
        tracing::trace!(
            batch = n,
            micros = started.elapsed().as_micros() as u64,
            "sqlite group commit"
        );
        if finish_checkpoint.swap(false, Ordering::AcqRel)
            && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "finishing the sqlite checkpoint failed");
        }
    }
}

/// One transaction for the whole batch; each job in its own savepoint so that one
/// refused job (a duplicate index, a stale version) does not undo the others.
fn commit_batch(conn: &Connection, batch: &mut Vec<(Job, Reply)>, purge: &AtomicBool) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let msg = e.to_string();
        for (_, reply) in batch.drain(..) {
            let _ = reply.send(Err(StoreError::Backend(msg.clone())));
        }
        return;
    }
    let mut results = Vec::with_capacity(batch.len());
    for (job, _) in batch.iter() {
        // A lone audit event is one INSERT, which SQLite already applies atomically;
        // only multi-statement jobs need a savepoint of their own.
        if let Job::Write(WriteOp::Audit { tenant, audit }) = job {
            results.push(insert_audit(conn, tenant, audit));
            continue;
        }
        let r = exec_cached(conn, "SAVEPOINT job").and_then(|()| apply(conn, job));
        let r = match r {
            Ok(()) => exec_cached(conn, "RELEASE job"),
            Err(e) => exec_cached(conn, "ROLLBACK TO job").and(Err(e)),
        };
        if r.is_err() {
            // Never leave the savepoint open, whatever failed.
            let _ = exec_cached(conn, "RELEASE job");
        }
        results.push(r);
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            let destroyed = batch.iter().zip(&results).any(|((job, _), r)| {
                r.is_ok() && matches!(job, Job::Write(op) if op.destroys_keys())
            });
            if destroyed && !purge_wal(conn) {
                purge.store(true, Ordering::Release);
            }
            for ((_, reply), r) in batch.drain(..).zip(results) {
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let msg = e.to_string();
            tracing::error!(error = %msg, "SQLite group commit failed");
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Backend(msg.clone())));
            }
        }
    }
}

/// After a commit that destroyed key material: copies the WAL into the database
/// file (whose pages `secure_delete` zeroed) and truncates it to nothing, so the
/// destroyed bytes are in neither file when the erasure is acknowledged. Readers
/// hold it up at most `PURGE_WAIT_MS`; if one is still reading an older snapshot
/// then (a long backup export), the checkpointer finishes the purge as soon as it
/// can, and a warning says so. Returns whether the WAL is truncated.
fn purge_wal(conn: &Connection) -> bool {
    let r = conn
        .execute_batch(&format!("PRAGMA busy_timeout={PURGE_WAIT_MS};"))
        .and_then(|()| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
        });
    let _ = conn.execute_batch("PRAGMA busy_timeout=5000;");
    match r {
        Ok(0) => true,
        Ok(_) => {
            tracing::warn!(
                "an erasure is committed but a long reader keeps its old pages in the WAL; \
                 the WAL is truncated when that reader finishes"
            );
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "truncating the WAL after an erasure failed; retrying");
            false
        }
    }
}

/// How long the writer waits for readers to let it truncate the WAL after an
/// erasure, in milliseconds.
const PURGE_WAIT_MS: u32 = 1000;

/// Runs a parameterless statement through the statement cache.
fn exec_cached(c: &Connection, sql: &str) -> Result<()> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(backend)
}

fn insert_audit(c: &Connection, tenant: &str, a: &crate::AuditEvent) -> Result<()> {
    c.prepare_cached(sql::AUDIT_INSERT)
        .and_then(|mut s| {
            s.execute(params![
                a.atoken, tenant, a.at, a.actor, a.action, a.record, a.status, a.app, a.detail,
                a.classes
            ])
        })
        .map(|_| ())
        .map_err(backend)
}

fn apply(c: &Connection, job: &Job) -> Result<()> {
    match job {
        Job::Init(init) => {
            let exists: Option<Vec<u8>> = c
                .prepare_cached(sql::META_GET)
                .and_then(|mut s| s.query_row([sql::META_CANARY], |r| r.get(0)).optional())
                .map_err(backend)?;
            if exists.is_some() {
                return Err(StoreError::AlreadyInitialized);
            }
            let mut put = c.prepare_cached(sql::META_PUT).map_err(backend)?;
            put.execute(params![sql::META_CANARY, init.canary])
                .map_err(backend)?;
            put.execute(params![sql::META_ROOT_TOKEN, init.root_token_hash])
                .map_err(backend)?;
            for (name, value) in &init.meta {
                put.execute(params![name, value]).map_err(backend)?;
            }
            let mut key = c.prepare_cached(sql::KEY_PUT).map_err(backend)?;
            for k in &init.keys {
                key.execute(params![
                    init.tenant,
                    k.kind,
                    k.version,
                    k.wrapped,
                    k.created
                ])
                .map_err(backend)?;
            }
            Ok(())
        }
        Job::Write(op) => apply_op(c, op),
    }
}

fn apply_op(c: &Connection, op: &WriteOp) -> Result<()> {
    let exec = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<usize> {
        c.prepare_cached(sql)
            .and_then(|mut s| s.execute(p))
            .map_err(backend)
    };
    let insert_indexes = |tenant: &str, token: &str, idx: &[crate::IndexEntry]| -> Result<()> {
        for e in idx {
            let r = c.prepare_cached(sql::INDEX_INSERT).and_then(|mut s| {
                s.execute(params![tenant, e.name, e.digest, token, e.key_version])
            });
            match r {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => return Err(StoreError::Duplicate(e.name)),
                Err(err) => return Err(backend(err)),
            }
        }
        Ok(())
    };
    let audit = |tenant: &str, a: &crate::AuditEvent| insert_audit(c, tenant, a);
    match op {
        WriteOp::CreateUser {
            tenant,
            user: u,
            indexes,
            audit: a,
            guard,
        } => {
            if let Some(g) = guard {
                let [o1, o2, o3, o4] = g.binds();
                let n: i64 = c
                    .prepare_cached(sql::GUARD_EXISTS)
                    .and_then(|mut s| {
                        s.query_row(params![tenant, g.kind, o1, o2, o3, o4], |r| r.get(0))
                    })
                    .map_err(backend)?;
                if n > 0 {
                    return Err(StoreError::Guarded);
                }
            }
            exec(
                sql::USER_INSERT,
                params![
                    tenant,
                    u.token,
                    u.kek_version,
                    u.wrapped_dek,
                    u.data,
                    u.version,
                    u.created,
                    u.updated,
                    u.erased
                ],
            )?;
            insert_indexes(tenant, &u.token, indexes)?;
            audit(tenant, a)
        }
        WriteOp::UpdateUser {
            tenant,
            token,
            expected_version,
            data,
            drop_indexes,
            add_indexes,
            audit: a,
        } => {
            let n = exec(
                sql::USER_UPDATE,
                params![data, a.at, tenant, token, expected_version],
            )?;
            if n == 0 {
                return Err(StoreError::Stale);
            }
            for name in drop_indexes {
                exec(sql::INDEX_DROP_ONE, params![tenant, token, name])?;
            }
            insert_indexes(tenant, token, add_indexes)?;
            audit(tenant, a)
        }
        WriteOp::EraseUser {
            tenant,
            token,
            preserve,
            keep_kind,
            audit: a,
        } => {
            match preserve {
                None => {
                    exec(sql::USER_ERASE, params![a.at, a.at, tenant, token])?;
                    exec(sql::INDEX_DROP_ALL, params![tenant, token])?;
                }
                Some(p) => {
                    exec(
                        sql::USER_ERASE_KEEP,
                        params![
                            p.data,
                            p.wrapped_dek,
                            p.kek_version,
                            a.at,
                            a.at,
                            tenant,
                            token
                        ],
                    )?;
                    for name in &p.drop_indexes {
                        exec(sql::INDEX_DROP_ONE, params![tenant, token, name])?;
                    }
                }
            }
            exec(sql::RECORDS_DELETE_OWNER, params![tenant, token, keep_kind])?;
            exec(sql::RECORDS_STRIP_OWNER, params![tenant, token, keep_kind])?;
            audit(tenant, a)
        }
        WriteOp::Audit { tenant, audit: a } => audit(tenant, a),
        WriteOp::PutRecord {
            tenant,
            record: r,
            expected_version: None,
        } => {
            let res = c.prepare_cached(sql::RECORD_INSERT).and_then(|mut s| {
                s.execute(params![
                    tenant,
                    r.kind,
                    r.id,
                    r.owner,
                    r.label,
                    r.created,
                    r.updated,
                    r.expires,
                    r.version,
                    r.meta,
                    r.body,
                    r.kek_version,
                    r.wrapped_dek
                ])
            });
            match res {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate("record")),
                Err(e) => Err(backend(e)),
            }
        }
        WriteOp::PutRecord {
            tenant,
            record: r,
            expected_version: Some(v),
        } => {
            let n = exec(
                sql::RECORD_UPDATE,
                params![
                    r.owner,
                    r.label,
                    r.updated,
                    r.expires,
                    r.meta,
                    r.body,
                    r.kek_version,
                    r.wrapped_dek,
                    tenant,
                    r.kind,
                    r.id,
                    v
                ],
            )?;
            if n == 0 {
                return Err(StoreError::Stale);
            }
            Ok(())
        }
        WriteOp::DeleteRecord { tenant, kind, id } => {
            exec(sql::RECORD_DELETE, params![tenant, kind, id]).map(|_| ())
        }
        WriteOp::DeleteExpired { tenant, kind, now } => {
            exec(sql::RECORDS_DELETE_EXPIRED, params![tenant, kind, now]).map(|_| ())
        }
        WriteOp::Seal {
            tenant,
            expected_version,
            seals,
            head,
        } => {
            let gaps = head.gaps_text();
            let moved = match expected_version {
                None => c
                    .prepare_cached(sql::HEAD_INSERT)
                    .and_then(|mut s| {
                        s.execute(params![
                            head.seq,
                            head.hash,
                            head.max_id,
                            gaps,
                            head.version,
                            tenant
                        ])
                    })
                    .or_else(|e| {
                        if is_unique_violation(&e) {
                            Ok(0)
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(backend)?,
                Some(v) => exec(
                    sql::HEAD_UPDATE,
                    params![
                        head.seq,
                        head.hash,
                        head.max_id,
                        gaps,
                        head.version,
                        tenant,
                        v
                    ],
                )?,
            };
            if moved == 0 {
                return Err(StoreError::Stale);
            }
            let mut st = c.prepare_cached(&sql::seal_insert(1)).map_err(backend)?;
            for l in seals {
                st.execute(params![tenant, l.seq, l.audit_id, l.hash])
                    .map_err(backend)?;
            }
            Ok(())
        }
        WriteOp::Checkpoint {
            tenant,
            checkpoint: k,
        } => {
            let r = c
                .prepare_cached(sql::CHECKPOINT_INSERT)
                .and_then(|mut s| s.execute(params![tenant, k.seq, k.hash, k.at, k.signature]));
            match r {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Ok(()),
                Err(e) => Err(backend(e)),
            }
        }
        WriteOp::AddKey { tenant, key, meta } => {
            let r = c.prepare_cached(sql::KEY_PUT).and_then(|mut s| {
                s.execute(params![
                    tenant,
                    key.kind,
                    key.version,
                    key.wrapped,
                    key.created
                ])
            });
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(StoreError::Duplicate("key")),
                Err(e) => return Err(backend(e)),
            }
            for (name, value) in meta {
                exec(sql::META_PUT, params![name, value])?;
            }
            Ok(())
        }
        WriteOp::Rewrap {
            tenant,
            rows,
            audit: a,
        } => {
            for r in rows {
                let d = &r.old;
                match &d.kind {
                    None => exec(
                        sql::USER_REWRAP,
                        params![
                            r.new_wrapped,
                            r.new_version,
                            tenant,
                            d.id,
                            d.kek_version,
                            d.wrapped
                        ],
                    )?,
                    Some(kind) => exec(
                        sql::RECORD_REWRAP,
                        params![
                            r.new_wrapped,
                            r.new_version,
                            tenant,
                            kind,
                            d.id,
                            d.kek_version,
                            d.wrapped
                        ],
                    )?,
                };
            }
            audit(tenant, a)
        }
        WriteOp::Reindex {
            tenant,
            rows,
            audit: a,
        } => {
            for r in rows {
                let version: Option<i64> = c
                    .prepare_cached(sql::USER_VERSION)
                    .and_then(|mut s| s.query_row(params![tenant, r.token], |r| r.get(0)))
                    .optional()
                    .map_err(backend)?;
                if version != Some(r.version) {
                    continue;
                }
                for e in &r.entries {
                    exec(
                        sql::INDEX_INSERT_IF_NEW,
                        params![tenant, e.name, e.digest, r.token, e.key_version],
                    )?;
                }
            }
            audit(tenant, a)
        }
        WriteOp::RetireIndexKey {
            tenant,
            version,
            successor,
            audit: a,
        } => {
            let n = exec(
                sql::INDEX_KEY_RETIRE,
                params![tenant, version, tenant, version, successor, version],
            )?;
            if n == 0 {
                return Err(StoreError::Stale);
            }
            audit(tenant, a)
        }
        WriteOp::PurgeIndex {
            tenant,
            below,
            from,
            to,
        } => {
            exec(sql::INDEX_PURGE, params![tenant, from, to, below])?;
            Ok(())
        }
        WriteOp::RetireKek {
            tenant,
            version,
            audit: a,
        } => {
            let n = exec(
                sql::KEK_RETIRE,
                params![tenant, version, tenant, version, tenant, version],
            )?;
            if n == 0 {
                return Err(StoreError::Stale);
            }
            audit(tenant, a)
        }
        WriteOp::SwapRootToken { expected, value } => {
            if exec(
                sql::META_SWAP,
                params![value, sql::META_ROOT_TOKEN, expected],
            )? == 0
            {
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
            if exec(
                sql::META_SWAP,
                params![canary, sql::META_CANARY, expected_canary],
            )? == 0
            {
                return Err(StoreError::Stale);
            }
            let present: Vec<(String, i64)> = c
                .prepare_cached(sql::KEY_VERSIONS)
                .and_then(|mut st| {
                    st.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(backend)?;
            let expected: Vec<(String, i64)> =
                keys.iter().map(|k| (k.kind.clone(), k.version)).collect();
            if !same_versions(present, expected) {
                return Err(StoreError::Stale);
            }
            for k in keys {
                exec(
                    sql::KEY_REWRAP,
                    params![k.wrapped, tenant, k.kind, k.version],
                )?;
            }
            for k in added {
                exec(
                    sql::KEY_PUT,
                    params![tenant, k.kind, k.version, k.wrapped, k.created],
                )?;
            }
            for (name, value) in meta {
                exec(sql::META_DELETE, params![name])?;
                if let Some(v) = value {
                    exec(sql::META_PUT, params![name, v])?;
                }
            }
            Ok(())
        }
        WriteOp::ImportRows { table, rows } => {
            let mut st = c.prepare_cached(&table.insert(1)).map_err(backend)?;
            for row in rows {
                let values = row.iter().map(|v| match v {
                    crate::backup::Cell::Null => rusqlite::types::Value::Null,
                    crate::backup::Cell::Int(i) => rusqlite::types::Value::Integer(*i),
                    crate::backup::Cell::Text(t) => rusqlite::types::Value::Text(t.clone()),
                    crate::backup::Cell::Bytes(b) => rusqlite::types::Value::Blob(b.clone()),
                });
                st.execute(rusqlite::params_from_iter(values))
                    .map_err(backend)?;
            }
            Ok(())
        }
        WriteOp::Wipe(tables) => {
            for table in tables.iter().rev() {
                c.execute(&format!("DELETE FROM {}", table.name), [])
                    .map_err(backend)?;
            }
            Ok(())
        }
        WriteOp::Atomic(ops) => ops.iter().try_for_each(|op| apply_op(c, op)),
    }
}
