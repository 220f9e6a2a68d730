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

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, params};
use tokio::sync::oneshot;

use crate::exec::{Arg, DbError, Exec, Map, Row, Sql, run_ready};
use crate::now;
use crate::ops;
use crate::schema::{self, Dialect};
use crate::{InitData, OpenOptions, Result, StoreError, WriteOp};

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
    fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        let pooled = self.inner.readers.lock().ok().and_then(|mut v| v.pop());
        let conn = match pooled {
            Some(c) => c,
            None => open_reader(&self.inner.path)?,
        };
        let out = f(&conn);
        if let Ok(mut v) = self.inner.readers.lock()
            && v.len() < MAX_IDLE_READERS
        {
            v.push(conn);
        }
        out
    }

    /// The rows of a query, read on a pooled connection.
    pub(crate) fn query<T>(&self, sql: Sql, args: &[Arg<'_>], map: Map<T>) -> Result<Vec<T>> {
        self.read(|c| query(c, &sql, args, map))
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
    mut conn: Connection,
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
        commit_batch(&mut conn, &mut batch, &purge);
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
fn commit_batch(conn: &mut Connection, batch: &mut Vec<(Job, Reply)>, purge: &AtomicBool) {
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
            results.push(run_ready(ops::audit(
                &mut SqliteExec(&mut *conn),
                tenant,
                audit,
            )));
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

/// A statement parameter as SQLite binds it (borrowed, not copied).
impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Int(Some(i)) => ValueRef::Integer(i),
            Arg::Text(Some(t)) => ValueRef::Text(t.as_bytes()),
            Arg::Bytes(Some(b)) => ValueRef::Blob(b),
            Arg::Int(None) | Arg::Text(None) | Arg::Bytes(None) => ValueRef::Null,
        }))
    }
}

/// Statements on one connection, through its statement cache. Never waits, so the
/// shared operations run on it to completion in one poll ([`run_ready`]).
/// Holds the connection mutably: `&mut Connection` is `Send`, as [`Exec`] requires.
pub(crate) struct SqliteExec<'c>(pub(crate) &'c mut Connection);

impl Exec for SqliteExec<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&mut self, sql: Sql, args: &[Arg<'_>]) -> std::result::Result<u64, DbError> {
        self.0
            .prepare_cached(&sql)
            .and_then(|mut st| st.execute(rusqlite::params_from_iter(args)))
            .map(|n| n as u64)
            .map_err(|e| {
                if is_unique_violation(&e) {
                    DbError::Unique(backend(e))
                } else {
                    DbError::Other(backend(e))
                }
            })
    }

    async fn query<T: Send>(&mut self, sql: Sql, args: &[Arg<'_>], map: Map<T>) -> Result<Vec<T>> {
        query(self.0, &sql, args, map)
    }
}

fn query<T>(c: &Connection, sql: &str, args: &[Arg<'_>], map: Map<T>) -> Result<Vec<T>> {
    let mut st = c.prepare_cached(sql).map_err(backend)?;
    let mut rows = st
        .query(rusqlite::params_from_iter(args))
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        out.push(map(&Row::Sqlite(r))?);
    }
    Ok(out)
}

fn apply(c: &mut Connection, job: &Job) -> Result<()> {
    let mut ex = SqliteExec(c);
    run_ready(async {
        match job {
            Job::Init(init) => ops::initialize(&mut ex, init).await,
            Job::Write(op) => ops::apply(&mut ex, op).await,
        }
    })
}
