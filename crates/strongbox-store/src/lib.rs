//! Storage for Strongbox: one interface ([`Store`]) over SQLite, PostgreSQL and
//! MySQL/MariaDB.
//!
//! The store knows rows and transactions, never plaintext or keys: every value that
//! could carry personal data arrives here already encrypted (profiles, wrapped keys)
//! or as a keyed digest (blind indexes). Writes are [`WriteOp`]s; each one commits
//! atomically together with its audit event, and is acknowledged only once durable.
//!
//! Layout: every read is a method of [`Store`] below and every write an arm of
//! `ops::apply`, each written once against the executor seam of `exec` (parameter
//! lists, row mappers in `rows`); the statements are in `sql`, the schema in
//! `schema`. The backends (`sqlite`, `sqlx_store`) only connect, run statements
//! and transactions their way, and keep their own fast paths (SQLite's group
//! commit and inline reads; PostgreSQL's one-round-trip create, batched audit
//! inserts).

pub mod backup;
mod chunkdir;
mod exec;
pub mod metrics;
mod ops;
mod rows;
mod schema;
mod sql;
mod sqlite;
mod sqlx_store;

use std::path::PathBuf;
use std::time::Instant;

pub use chunkdir::ChunkDir;
use exec::{Arg, Map, Sql, args};
pub use sqlite::Durability;
use sqlite::SqliteStore;
use sqlx_store::SqlxStore;

/// A data subject's row. `data` and `wrapped_dek` are `None` once erased.
#[derive(Clone)]
pub struct UserRow {
    pub token: String,
    pub kek_version: Option<i64>,
    pub wrapped_dek: Option<Vec<u8>>,
    pub data: Option<Vec<u8>>,
    /// Optimistic-concurrency version; incremented by every change.
    pub version: i64,
    pub created: i64,
    pub updated: i64,
    pub erased: Option<i64>,
}

/// One blind-index entry: (index name, keyed digest of the normalized value).
#[derive(Clone, Debug)]
pub struct IndexEntry {
    pub name: &'static str,
    pub digest: Vec<u8>,
    pub key_version: i64,
}

impl IndexEntry {
    /// An entry of a search index (named `g:<field>`): one of the many trigram
    /// entries a subject holds, its digest ending in the subject's token, so it
    /// never collides with another subject's and is written in batches.
    pub fn is_gram(&self) -> bool {
        self.name.starts_with("g:")
    }
}

/// One audit event. Holds no plaintext personal data: who (principal label), what
/// (action), which record (random token), when, and the result. Personal data the
/// event carries (a profile before and after a change) is in `detail`, sealed under
/// the subject's DEK, so erasing the subject leaves the event but not the data.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// Time-ordered UUID (v7), so its index grows at one end.
    pub atoken: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub record: Option<String>,
    pub status: String,
    /// The app a user-app event concerns.
    pub app: Option<String>,
    pub detail: Option<Vec<u8>>,
    /// The data classes of the fields the event touched (`phi,pii`), when a schema
    /// classifies them. Not personal data.
    pub classes: Option<String>,
    /// The action's stable name (`user.get`); `action` holds its title with the
    /// arguments. Absent on events written before schema version 5.
    pub name: Option<String>,
}

/// A stored audit event with its position in the log.
#[derive(Clone, Debug)]
pub struct AuditRow {
    pub id: i64,
    pub tenant: String,
    pub event: AuditEvent,
}

/// One link of a tenant's audit chain: the event stored as row `audit_id` is at
/// position `seq`, and the chain's hash there is `hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealRow {
    pub seq: i64,
    pub audit_id: i64,
    pub hash: Vec<u8>,
}

/// Where a tenant's sealer stands: the last link (`seq`, `hash`), the highest event
/// row it has looked at (`max_id`) and the lower ids it has not seen yet (`gaps`:
/// events still being committed, or ids a rolled-back transaction used), each with
/// when it was first missed. `version` guards against two sealers at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub max_id: i64,
    pub gaps: Vec<(i64, i64)>,
    pub version: i64,
}

impl AuditHead {
    /// `id:first_missed` pairs, comma-separated, as stored.
    fn gaps_text(&self) -> String {
        let parts: Vec<String> = self
            .gaps
            .iter()
            .map(|(id, t)| format!("{id}:{t}"))
            .collect();
        parts.join(",")
    }

    fn parse_gaps(text: &str) -> Vec<(i64, i64)> {
        text.split(',')
            .filter_map(|p| {
                let (id, t) = p.split_once(':')?;
                Some((id.parse().ok()?, t.parse().ok()?))
            })
            .collect()
    }
}

/// A signed statement that a tenant's chain had link `hash` at position `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointRow {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at: i64,
    pub signature: Vec<u8>,
}

/// A document of some kind other than a user profile: app data, a session, a
/// consent, a legal basis, …  `meta` is plaintext and must never hold personal data;
/// `body` is AEAD ciphertext, sealed under the owner's DEK or, for a record with no
/// owner, under its own DEK (`wrapped_dek`, wrapped by KEK `kek_version`).
#[derive(Clone, Debug, Default)]
pub struct RecordRow {
    pub kind: String,
    /// Key within the kind (unique per tenant and kind).
    pub id: String,
    /// The subject it belongs to: a user token, or a pseudonymous placeholder (a
    /// keyed digest) for a person not in the vault yet. Erasing the user deletes it.
    pub owner: Option<String>,
    /// The one secondary lookup of the kind (an app name, a consent's brief, …).
    pub label: Option<String>,
    pub created: i64,
    pub updated: i64,
    /// Unix seconds after which the record is expired (and may be purged).
    pub expires: Option<i64>,
    /// Optimistic-concurrency version; 1 on insert, incremented by every update.
    pub version: i64,
    pub meta: Option<Vec<u8>>,
    pub body: Option<Vec<u8>>,
    pub kek_version: Option<i64>,
    pub wrapped_dek: Option<Vec<u8>>,
}

/// See `WriteOp::CreateUser::guard`: records of `kind` owned by one of `owners`
/// (at most four: an email and a phone, each under at most two index-key versions).
#[derive(Clone, Debug)]
pub struct Guard {
    pub kind: String,
    pub owners: Vec<String>,
}

impl Guard {
    /// The four owners the guard statement binds.
    fn binds(&self) -> [String; 4] {
        owners4(&self.owners)
    }
}

/// Up to four owners as the four `IN` places of a statement (the first repeated).
fn owners4(owners: &[String]) -> [String; 4] {
    let first = owners.first().cloned().unwrap_or_default();
    std::array::from_fn(|i| owners.get(i).cloned().unwrap_or_else(|| first.clone()))
}

/// Index entries under a new index-key version for one user, written only if the
/// user row is still at `version` (a change meanwhile wrote its own entries).
#[derive(Clone, Debug)]
pub struct Reindexed {
    pub token: String,
    pub version: i64,
    pub entries: Vec<IndexEntry>,
}

/// What survives an erasure: the kept fields sealed under a fresh DEK, and the index
/// entries that go (the others stay, for kept lookup fields).
#[derive(Clone, Debug)]
pub struct Preserved {
    pub data: Vec<u8>,
    pub kek_version: i64,
    pub wrapped_dek: Vec<u8>,
    pub drop_indexes: Vec<&'static str>,
}

/// A DEK wrapped by an old KEK: a user's (`kind` is `None`, `id` the token) or a
/// record's own.
#[derive(Clone, Debug)]
pub struct WrappedDek {
    pub kind: Option<String>,
    pub id: String,
    pub kek_version: i64,
    pub wrapped: Vec<u8>,
}

/// A DEK re-wrapped: as read (`old`), and its new wrapping under `new_version`.
#[derive(Clone, Debug)]
pub struct Rewrapped {
    pub old: WrappedDek,
    pub new_version: i64,
    pub new_wrapped: Vec<u8>,
}

/// A wrapped key-ring entry (a KEK or an index secret).
#[derive(Clone)]
pub struct KeyRow {
    pub kind: String,
    pub version: i64,
    pub wrapped: Vec<u8>,
    pub created: i64,
}

/// What `strongbox init` writes.
pub struct InitData {
    pub tenant: String,
    pub canary: Vec<u8>,
    pub root_token_hash: Vec<u8>,
    pub keys: Vec<KeyRow>,
    /// More `meta` rows (how the root key is kept: the seal configuration).
    pub meta: Vec<(String, Vec<u8>)>,
}

/// What an initialized store holds about itself.
pub struct StoreMeta {
    pub canary: Vec<u8>,
    pub root_token_hash: Vec<u8>,
}

/// A change that commits atomically with its audit event.
#[derive(Clone)]
pub enum WriteOp {
    CreateUser {
        tenant: String,
        user: UserRow,
        /// Inserted in order; the first one taken by another subject is reported.
        indexes: Vec<IndexEntry>,
        audit: AuditEvent,
        /// Refuse with [`StoreError::Guarded`] (writing nothing) if records of this
        /// kind are owned by any of these owners: lets the caller take a slower,
        /// complete path in the rare case there is something to carry over.
        guard: Option<Guard>,
    },
    UpdateUser {
        tenant: String,
        token: String,
        expected_version: i64,
        data: Vec<u8>,
        /// Index names whose entries for this subject are removed first.
        drop_indexes: Vec<&'static str>,
        add_indexes: Vec<IndexEntry>,
        audit: AuditEvent,
    },
    /// A soft delete: the profile's ciphertext and wrapped DEK leave the row (the
    /// caller keeps them in a record of the same commit) with its index entries;
    /// `Stale` unless the row is live at `expected_version`.
    HideUser {
        tenant: String,
        token: String,
        expected_version: i64,
        audit: AuditEvent,
    },
    /// Undoes [`WriteOp::HideUser`]: the profile back in the row with its index
    /// entries (`Duplicate` if one is taken meanwhile); `Stale` if the row is not
    /// hidden (erased since, or restored).
    ReviveUser {
        tenant: String,
        token: String,
        data: Vec<u8>,
        kek_version: i64,
        wrapped_dek: Vec<u8>,
        add_indexes: Vec<IndexEntry>,
        audit: AuditEvent,
    },
    /// Crypto-shredding: the wrapped DEK, the ciphertext and the index entries go, and
    /// so do all records the user owns; the token row stays as a tombstone.
    EraseUser {
        tenant: String,
        token: String,
        /// Fields kept through erasure (a schema's `preserve`), re-sealed under a new
        /// DEK; `None` erases everything.
        preserve: Option<Preserved>,
        /// Records of this kind keep their row (without body or key): the trace of
        /// a request survives the person it was about.
        keep_kind: String,
        audit: AuditEvent,
    },
    /// An audit event on its own (a read of personal data, a refused request).
    Audit { tenant: String, audit: AuditEvent },
    /// Appends links to a tenant's audit chain and moves its head, if the head is
    /// still at `expected_version` (`None`: there is no head yet); `Stale` otherwise
    /// (another sealer was faster).
    Seal {
        tenant: String,
        expected_version: Option<i64>,
        seals: Vec<SealRow>,
        head: AuditHead,
    },
    /// Stores a signed checkpoint (an existing one at the same position is kept).
    Checkpoint {
        tenant: String,
        checkpoint: CheckpointRow,
    },
    /// Adds a key-ring entry together with meta values (a public key);
    /// `Duplicate("key")` if the entry exists.
    AddKey {
        tenant: String,
        key: KeyRow,
        meta: Vec<(String, Vec<u8>)>,
    },
    /// Inserts a record (`expected_version: None`; `Duplicate("record")` if its key is
    /// taken) or replaces one whose version is still `expected_version` (`Stale`
    /// otherwise, also when it is gone).
    PutRecord {
        tenant: String,
        record: RecordRow,
        expected_version: Option<i64>,
    },
    /// Deletes one record; deleting a missing record is not an error.
    DeleteRecord {
        tenant: String,
        kind: String,
        id: String,
    },
    /// Deletes one record if it is still at `version` (`Stale` otherwise, also when
    /// it is gone): an expiry that must not take a record renewed meanwhile.
    DeleteRecordAt {
        tenant: String,
        kind: String,
        id: String,
        version: i64,
    },
    /// Deletes every record of `kind` labelled `label` (the chunks of one file).
    DeleteLabelled {
        tenant: String,
        kind: String,
        label: String,
    },
    /// Deletes the records of `kind` whose expiry is at or before `now`.
    DeleteExpired {
        tenant: String,
        kind: String,
        now: i64,
    },
    /// DEKs re-wrapped under a newer KEK, each only if still exactly as read (the
    /// same version and wrapped bytes: an erasure or a rewrite meanwhile wins).
    Rewrap {
        tenant: String,
        rows: Vec<Rewrapped>,
        audit: AuditEvent,
    },
    /// Deletes KEK `version` if no DEK uses it (checked in the same statement);
    /// `Stale` if one does.
    RetireKek {
        tenant: String,
        version: i64,
        audit: AuditEvent,
    },
    /// Index entries under a new index-key version (a rotation's backfill); an entry
    /// already there is left as it is.
    Reindex {
        tenant: String,
        rows: Vec<Reindexed>,
        audit: AuditEvent,
    },
    /// Deletes index secret `version` if every entry under it has one under
    /// `successor` (checked in the same statement); `Stale` otherwise.
    RetireIndexKey {
        tenant: String,
        version: i64,
        successor: i64,
        audit: AuditEvent,
    },
    /// Deletes every entry of the indexes `names` (whoever holds them).
    DropIndexes {
        tenant: String,
        names: Vec<&'static str>,
    },
    /// Deletes the index entries under versions below `below` of the users with
    /// tokens in `from..=to` (after a cut-over: nobody looks them up any more).
    PurgeIndex {
        tenant: String,
        below: i64,
        from: String,
        to: String,
    },
    /// A new root key: the key ring re-wrapped (entries updated, or added) and the
    /// canary replaced, if the canary is still `expected_canary` (`Stale` otherwise:
    /// another rotation won); `meta` rows set or deleted (`None`) with it.
    Rekey {
        tenant: String,
        expected_canary: Vec<u8>,
        canary: Vec<u8>,
        /// Every entry of the key ring, re-wrapped; the ring must still hold exactly
        /// these (kind, version) pairs (`Stale` otherwise: one was added or retired).
        keys: Vec<KeyRow>,
        /// Entries to add.
        added: Vec<KeyRow>,
        meta: Vec<(String, Option<Vec<u8>>)>,
    },
    /// Replaces the wrapped keys of another tenant's ring in a root-key rotation (with
    /// the `Rekey` of the main tenant, in one `Atomic`): the ring must still hold
    /// exactly these (kind, version) pairs (`Stale` otherwise).
    RewrapRing { tenant: String, keys: Vec<KeyRow> },
    /// Removes every row of `tenant` (its key ring, people, records and audit log) and
    /// the `meta` entries named: a deleted tenant, crypto-shredded.
    DropTenant { tenant: String, meta: Vec<String> },
    /// A new root token: its hash replaces `expected` (`Stale` if that is no longer
    /// the stored one: another rotation won).
    SwapRootToken { expected: Vec<u8>, value: Vec<u8> },
    /// Rows of a backup, inserted as they are (a restore).
    ImportRows {
        table: &'static backup::Table,
        rows: Vec<Vec<backup::Cell>>,
    },
    /// Deletes every row of these tables (a forced restore).
    Wipe(Vec<&'static backup::Table>),
    /// Several ops that commit or fail together (a change with its audit event, a
    /// user creation that also adopts the consents given before it).
    Atomic(Vec<WriteOp>),
}

impl WriteOp {
    /// Whether this op destroys key material (an erasure's wrapped DEK, a retired
    /// KEK or a root-key rotation's old wrapping): the backends make such a commit
    /// physical where the engine allows it before it is acknowledged.
    pub fn destroys_keys(&self) -> bool {
        match self {
            WriteOp::EraseUser { .. }
            | WriteOp::RetireKek { .. }
            | WriteOp::Rekey { .. }
            | WriteOp::RewrapRing { .. }
            | WriteOp::DropTenant { .. } => true,
            WriteOp::Atomic(ops) => ops.iter().any(WriteOp::destroys_keys),
            _ => false,
        }
    }

    /// A retired KEK or a root-key rotation: rows of the key ring were deleted or
    /// replaced, and the stores rewrite that small table so no old row survives in it.
    pub fn rewrites_key_ring(&self) -> bool {
        match self {
            WriteOp::RetireKek { .. }
            | WriteOp::Rekey { .. }
            | WriteOp::RewrapRing { .. }
            | WriteOp::DropTenant { .. } => true,
            WriteOp::Atomic(ops) => ops.iter().any(WriteOp::rewrites_key_ring),
            _ => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique blind index is held by another subject.
    #[error("duplicate index: {0}")]
    Duplicate(&'static str),
    /// The row changed since it was read (optimistic concurrency), or is gone.
    #[error("record changed concurrently")]
    Stale,
    /// A create's guard found records to carry over; nothing was written.
    #[error("records exist that the create must take over")]
    Guarded,
    #[error("the store is already initialized")]
    AlreadyInitialized,
    /// Which store (a path or a URL without its password), for the operator.
    #[error("{0} is not initialized (run `strongbox init` first)")]
    NotInitialized(String),
    #[error("unsupported database URL: {0}")]
    BadUrl(String),
    /// Anything the database or the driver reported. The text comes from the driver
    /// and never contains bound values (they are ciphertext or digests anyway).
    #[error("storage error: {0}")]
    Backend(String),
    /// The database chose this transaction as a deadlock's victim (or could not
    /// serialize it): nothing was written, and running it again may well succeed.
    /// Writes are retried a few times before this is reported.
    #[error("storage error: {0}")]
    Deadlock(String),
    /// The database failed while committing (a lost connection): the write may or
    /// may not have happened.
    #[error("storage error while committing: {0}")]
    CommitUnknown(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// How far (seconds) an event's recorded time may stray from the order of ids: events
/// are timed when created and numbered when committed, a few milliseconds later.
pub const AUDIT_TIME_WINDOW: i64 = 30;

/// Unix seconds now, for the store's own bookkeeping (when a migration was applied).
/// Domain time never comes from here: the vault passes it in from its clock.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where the data lives. Its `Debug` is [`Location::describe`]: a URL's password
/// never reaches a log line.
#[derive(Clone)]
pub enum Location {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A `postgres://` or `mysql://` URL, and on PostgreSQL the schema that holds
    /// Strongbox's tables (`None`: the role's search path, usually `public`).
    Server { url: String, schema: Option<String> },
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Location {
    /// Picks the backend from a URL scheme. Unknown schemes are refused rather than
    /// silently creating a new SQLite file.
    pub fn from_url(url: &str) -> Result<Self> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::BadUrl("sqlite:// needs a file path".into()));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        for scheme in ["postgres://", "postgresql://", "mysql://", "mariadb://"] {
            if url.starts_with(scheme) {
                let url = match url.strip_prefix("mariadb://") {
                    Some(rest) => format!("mysql://{rest}"),
                    None => url.to_string(),
                };
                return Ok(Location::Server { url, schema: None });
            }
        }
        let scheme = url.split("://").next().unwrap_or("");
        Err(StoreError::BadUrl(format!(
            "scheme `{scheme}` (use sqlite://, postgres:// or mysql://)"
        )))
    }

    /// The SQLite file inside a data directory.
    pub fn data_dir(dir: impl Into<PathBuf>) -> Self {
        Location::Sqlite(dir.into().join("strongbox.sqlite3"))
    }

    /// A description safe to print (no password).
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => format!("sqlite file {}", p.display()),
            Location::Server { url, schema } => {
                let scheme = url.split("://").next().unwrap_or("");
                // Host and database only: no user info, no query (it may hold a
                // `password=`).
                let host = url
                    .split("://")
                    .nth(1)
                    .map(|rest| rest.split('?').next().unwrap_or(rest))
                    .map(|rest| rest.rsplit('@').next().unwrap_or(rest))
                    .unwrap_or("");
                match schema {
                    Some(schema) => format!("{scheme}://{host} (schema {schema})"),
                    None => format!("{scheme}://{host}"),
                }
            }
        }
    }

    /// Whether this is an SQLite file that exists (a server is never "local").
    pub fn exists_locally(&self) -> bool {
        matches!(self, Location::Sqlite(p) if p.is_file())
    }

    /// Puts Strongbox's tables in schema `name` of a PostgreSQL database (created
    /// by `init`), so they never share `public` with an application's.
    pub fn with_schema(self, name: Option<String>) -> Result<Self> {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Ok(self);
        };
        let valid = name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(StoreError::BadUrl(format!(
                "schema name `{name}`: use lower-case letters, digits and _ (at most 63)"
            )));
        }
        match self {
            Location::Server { url, .. } if url.starts_with("postgres") => Ok(Location::Server {
                url,
                schema: Some(name),
            }),
            _ => Err(StoreError::BadUrl(
                "--database-schema is for PostgreSQL; on MySQL/MariaDB and SQLite give \
                 Strongbox a database of its own"
                    .into(),
            )),
        }
    }
}

/// Options for opening a store.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Create the database (file) and schema if missing; only `init` does this.
    pub create: bool,
    /// A command that only reads (`backup` from the store, `audit verify`): the
    /// schema is checked, never migrated, so a role with read rights only suffices.
    pub read_only: bool,
    pub durability: Durability,
}

/// The one storage interface the rest of Strongbox sees.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqliteStore),
    Sqlx(SqlxStore),
}

impl Store {
    /// A handle confined to `tenant` by the database where it can be (PostgreSQL's
    /// row-level security; see `SqlxStore::scoped`), the same handle elsewhere.
    pub fn scoped(&self, tenant: &str) -> Store {
        match &self.backend {
            Backend::Sqlx(s) => Store {
                backend: Backend::Sqlx(s.scoped(tenant)),
            },
            Backend::Sqlite(_) => self.clone(),
        }
    }

    pub async fn open(location: &Location, opts: &OpenOptions) -> Result<Store> {
        let backend = match location {
            Location::Sqlite(path) => SqliteStore::open(path, opts).await.map(Backend::Sqlite),
            Location::Server { url, schema } => {
                SqlxStore::open(url, schema.as_deref(), &location.describe(), opts)
                    .await
                    .map(Backend::Sqlx)
            }
        }
        .map_err(|e| match e {
            StoreError::NotInitialized(_) => StoreError::NotInitialized(location.describe()),
            e => e,
        })?;
        Ok(Store { backend })
    }

    /// Every row of a query.
    async fn all<T>(&self, sql: &'static str, args: &[Arg<'_>], map: Map<T>) -> Result<Vec<T>> {
        self.run(Sql::Borrowed(sql), args, map).await
    }

    /// Every row of a query (the one place reads reach a backend).
    async fn run<T>(&self, sql: Sql, args: &[Arg<'_>], map: Map<T>) -> Result<Vec<T>> {
        match &self.backend {
            Backend::Sqlite(s) => s.query(sql, args, map),
            Backend::Sqlx(s) => s.query(sql, args, map).await,
        }
    }

    /// The first row of a query, if any.
    async fn one<T>(&self, sql: &'static str, args: &[Arg<'_>], map: Map<T>) -> Result<Option<T>> {
        Ok(self.all(sql, args, map).await?.into_iter().next())
    }

    /// A query's single integer (a count).
    async fn int(&self, sql: &'static str, args: &[Arg<'_>]) -> Result<i64> {
        Ok(self.one(sql, args, rows::int).await?.unwrap_or(0))
    }

    /// Writes the initial meta rows and key ring; refuses if already initialized.
    pub async fn initialize(&self, init: InitData) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.initialize(init).await,
            Backend::Sqlx(s) => s.initialize(init).await,
        }
    }

    pub async fn meta(&self) -> Result<StoreMeta> {
        let canary = self.meta_value(sql::META_CANARY).await?;
        let token = self.meta_value(sql::META_ROOT_TOKEN).await?;
        match (canary, token) {
            (Some(canary), Some(root_token_hash)) => Ok(StoreMeta {
                canary,
                root_token_hash,
            }),
            _ => Err(StoreError::NotInitialized("the store".into())),
        }
    }

    pub async fn keys(&self, tenant: &str) -> Result<Vec<KeyRow>> {
        self.all(sql::KEYS_GET, &args![tenant], rows::key).await
    }

    pub async fn user(&self, tenant: &str, token: &str) -> Result<Option<UserRow>> {
        let started = Instant::now();
        let r = self
            .one(sql::USER_GET, &args![tenant, token], rows::user)
            .await;
        metrics::STORE_READS.observe(started.elapsed());
        r
    }

    /// How many live (not erased) users `tenant` has.
    pub async fn count_users(&self, tenant: &str) -> Result<u64> {
        let total = self.int(sql::USERS_COUNT, &args![tenant]).await?;
        Ok(total.max(0) as u64)
    }

    /// A page of live (not erased) user rows by token, descending (bulk listing),
    /// and how many there are in all.
    pub async fn users_page(
        &self,
        tenant: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(u64, Vec<UserRow>)> {
        let (offset, limit) = (offset as i64, limit as i64);
        let total = self.int(sql::USERS_COUNT, &args![tenant]).await?;
        let page = self
            .all(sql::USERS_PAGE, &args![tenant, limit, offset], rows::user)
            .await?;
        Ok((total.max(0) as u64, page))
    }

    /// The user that holds one of `digests` (the same value under each index-key
    /// version in use, at most two) in index `name`, if any.
    pub async fn user_by_index(
        &self,
        tenant: &str,
        name: &str,
        digests: &[Vec<u8>],
    ) -> Result<Option<UserRow>> {
        let started = Instant::now();
        let r = match digests {
            [one] => {
                self.one(sql::USER_BY_INDEX, &args![tenant, name, one], rows::user)
                    .await
            }
            [a, b] => {
                self.one(sql::USER_BY_INDEX2, &args![tenant, name, a, b], rows::user)
                    .await
            }
            _ => Ok(None),
        };
        metrics::STORE_READS.observe(started.elapsed());
        r
    }

    pub async fn record(&self, tenant: &str, kind: &str, id: &str) -> Result<Option<RecordRow>> {
        let started = Instant::now();
        let r = self
            .one(sql::RECORD_GET, &args![tenant, kind, id], rows::record)
            .await;
        metrics::STORE_READS.observe(started.elapsed());
        r
    }

    /// The records of `kind` owned by `owner`, by key.
    pub async fn records_of(
        &self,
        tenant: &str,
        owner: &str,
        kind: &str,
    ) -> Result<Vec<RecordRow>> {
        let mut rows = self
            .records(sql::RECORDS_OF_OWNER, &args![tenant, owner, kind])
            .await?;
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(rows)
    }

    /// The records of `kind` owned by any of `owners` (at most four; one query), by
    /// owner then key.
    pub async fn records_of_owners(
        &self,
        tenant: &str,
        kind: &str,
        owners: &[String],
    ) -> Result<Vec<RecordRow>> {
        let [a, b, c, d] = owners4(owners);
        self.records(sql::RECORDS_OF_OWNERS, &args![tenant, kind, a, b, c, d])
            .await
    }

    /// Every record of `kind`, by key.
    pub async fn records_of_kind(&self, tenant: &str, kind: &str) -> Result<Vec<RecordRow>> {
        self.records(sql::RECORDS_OF_KIND, &args![tenant, kind])
            .await
    }

    /// The records of `kind` with `label`, by key.
    pub async fn records_by_label(
        &self,
        tenant: &str,
        kind: &str,
        label: &str,
    ) -> Result<Vec<RecordRow>> {
        let mut rows = self
            .records(sql::RECORDS_BY_LABEL, &args![tenant, kind, label])
            .await?;
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(rows)
    }

    /// The records of `kind` whose expiry is at or before `now`.
    pub async fn records_due(&self, tenant: &str, kind: &str, now: i64) -> Result<Vec<RecordRow>> {
        self.records(sql::RECORDS_DUE, &args![tenant, kind, now])
            .await
    }

    /// The first `limit` records of `kind` due at `now`, by key.
    pub async fn records_due_first(
        &self,
        tenant: &str,
        kind: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<RecordRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.records(sql::RECORDS_DUE_FIRST, &args![tenant, kind, now, limit])
            .await
    }

    /// How many records of `kind` there are.
    pub async fn count_records(&self, tenant: &str, kind: &str) -> Result<i64> {
        self.int(sql::RECORDS_COUNT_KIND, &args![tenant, kind])
            .await
    }

    async fn records(&self, sql: &'static str, args: &[Arg<'_>]) -> Result<Vec<RecordRow>> {
        let started = Instant::now();
        let r = self.all(sql, args, rows::record).await;
        metrics::STORE_READS.observe(started.elapsed());
        r
    }

    /// The distinct labels used by records of `kind`, sorted.
    pub async fn record_labels(&self, tenant: &str, kind: &str) -> Result<Vec<String>> {
        self.all(sql::RECORD_LABELS, &args![tenant, kind], rows::text)
            .await
    }

    /// A page of audit events, newest first: all of the tenant's, or those about
    /// `record`. Also returns how many there are in all.
    pub async fn audit_page(
        &self,
        tenant: &str,
        record: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<(u64, Vec<AuditRow>)> {
        let (offset, limit) = (offset as i64, limit as i64);
        let (total, page) = match record {
            Some(r) => (
                self.int(sql::AUDIT_COUNT_RECORD, &args![tenant, r]).await?,
                self.all(
                    sql::AUDIT_PAGE_RECORD,
                    &args![tenant, r, limit, offset],
                    rows::audit,
                )
                .await?,
            ),
            None => (
                self.audit_total(tenant).await?,
                self.all(
                    sql::AUDIT_PAGE_ALL,
                    &args![tenant, limit, offset],
                    rows::audit,
                )
                .await?,
            ),
        };
        Ok((total.max(0) as u64, page))
    }

    /// How many audit events `tenant` has, without counting them all: the chain
    /// head's position (every event up to its `max_id` is sealed, but for its gaps),
    /// plus the events after `max_id`, plus those of its gaps that have appeared.
    /// The head is read first, so an event sealed meanwhile is counted once. Exact,
    /// except an event whose transaction committed after the sealer gave up its id
    /// (`GAP_TTL`), which the chain's verifier reports anyway.
    async fn audit_total(&self, tenant: &str) -> Result<i64> {
        let Some(head) = self.audit_head(tenant).await? else {
            return self.int(sql::AUDIT_COUNT_ALL, &args![tenant]).await;
        };
        let tail = self
            .int(
                sql::AUDIT_COUNT_AFTER,
                &args![tenant, head.max_id, i64::MAX],
            )
            .await?;
        let gaps: Vec<i64> = head.gaps.iter().map(|(id, _)| *id).collect();
        let late = self
            .audit_by_ids(&gaps)
            .await?
            .iter()
            .filter(|r| r.tenant == tenant)
            .count();
        Ok(head.seq + tail + late as i64)
    }

    /// The audit event `atoken`, written at about `around` (Unix seconds; event
    /// tokens are UUIDv7 and carry their time).
    ///
    /// The log has no index by event token (it would cost every audited request a
    /// page write); ids grow with time instead, so the rows written within
    /// [`AUDIT_TIME_WINDOW`] seconds of `around` are found by bisecting the primary key
    /// and only they are scanned.
    pub async fn audit_event(
        &self,
        tenant: &str,
        atoken: &str,
        around: i64,
    ) -> Result<Option<AuditRow>> {
        let Some((min, max)) = self.audit_id_range().await? else {
            return Ok(None);
        };
        let lo = self
            .first_audit_id_at(min, max, around - AUDIT_TIME_WINDOW)
            .await?;
        let hi = self
            .first_audit_id_at(lo, max, around + AUDIT_TIME_WINDOW + 1)
            .await?;
        self.one(
            sql::AUDIT_IN_RANGE,
            &args![lo, hi, atoken, tenant],
            rows::audit,
        )
        .await
    }

    async fn audit_id_range(&self) -> Result<Option<(i64, i64)>> {
        Ok(self
            .one(sql::AUDIT_ID_RANGE, &[], rows::opt_int_pair)
            .await?
            .flatten())
    }

    /// The smallest id in `[lo, hi + 1]` from which on events are at least `at` old.
    async fn first_audit_id_at(&self, mut lo: i64, hi: i64, at: i64) -> Result<i64> {
        let mut end = hi + 1;
        while lo < end {
            let mid = lo + (end - lo) / 2;
            let next = self
                .one(sql::AUDIT_AT_FROM, &args![mid], rows::int_pair)
                .await?;
            match next {
                Some((_, t)) if t >= at => end = mid,
                Some((id, _)) => lo = id.max(mid) + 1,
                None => end = mid,
            }
        }
        Ok(lo)
    }

    /// Up to `limit` audit rows of every tenant with ids above `after`, by id.
    pub async fn audit_after(&self, after: i64, limit: usize) -> Result<Vec<AuditRow>> {
        let limit = limit as i64;
        self.all(sql::AUDIT_AFTER, &args![after, limit], rows::audit)
            .await
    }

    /// The audit row `id`, if it exists (yet).
    pub async fn audit_by_id(&self, id: i64) -> Result<Option<AuditRow>> {
        Ok(self.audit_by_ids(&[id]).await?.into_iter().next())
    }

    /// Those of the audit rows `ids` that exist (yet), by id: one query per
    /// [`sql::MAX_IDS_PER_STATEMENT`] ids.
    pub async fn audit_by_ids(&self, ids: &[i64]) -> Result<Vec<AuditRow>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(sql::MAX_IDS_PER_STATEMENT) {
            // A few list lengths only (the last id repeated), so that the drivers'
            // per-connection statement caches hold a few statements, not hundreds.
            let width = sql::ID_LIST_WIDTHS
                .iter()
                .copied()
                .find(|w| *w >= chunk.len())
                .unwrap_or(sql::MAX_IDS_PER_STATEMENT);
            let mut padded: Vec<Arg<'_>> = chunk.iter().map(|id| Arg::Int(Some(*id))).collect();
            padded.resize(width, Arg::Int(Some(chunk[chunk.len() - 1])));
            out.extend(
                self.run(sql::audit_by_ids(width).into(), &padded, rows::audit)
                    .await?,
            );
        }
        out.sort_by_key(|r| r.id);
        out.dedup_by_key(|r| r.id);
        Ok(out)
    }

    /// Where the sealer of `tenant`'s audit chain stands (`None` before the first seal).
    pub async fn audit_head(&self, tenant: &str) -> Result<Option<AuditHead>> {
        self.one(sql::HEAD_GET, &args![tenant], rows::head).await
    }

    /// Up to `limit` links of `tenant`'s chain after position `after`, in order.
    pub async fn audit_seals(
        &self,
        tenant: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<SealRow>> {
        let limit = limit as i64;
        self.all(sql::SEALS_AFTER, &args![tenant, after, limit], rows::seal)
            .await
    }

    /// The link of event row `audit_id`, looked for after position `after` only.
    pub async fn audit_seal_of(
        &self,
        tenant: &str,
        after: i64,
        audit_id: i64,
    ) -> Result<Option<SealRow>> {
        self.one(sql::SEAL_OF, &args![tenant, after, audit_id], rows::seal)
            .await
    }

    /// `tenant`'s signed checkpoints, oldest first.
    pub async fn audit_checkpoints(&self, tenant: &str) -> Result<Vec<CheckpointRow>> {
        self.all(sql::CHECKPOINTS, &args![tenant], rows::checkpoint)
            .await
    }

    /// Users whose DEK is wrapped by a KEK older than `below`, after token `after`.
    pub async fn users_to_rewrap(
        &self,
        tenant: &str,
        below: i64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<WrappedDek>> {
        let limit = limit as i64;
        self.all(
            sql::USERS_KEK_BELOW,
            &args![tenant, below, after, limit],
            rows::user_dek,
        )
        .await
    }

    /// Records with their own DEK wrapped by a KEK older than `below`, after
    /// (`kind`, `id`) `after`.
    pub async fn records_to_rewrap(
        &self,
        tenant: &str,
        below: i64,
        after: (&str, &str),
        limit: usize,
    ) -> Result<Vec<WrappedDek>> {
        let limit = limit as i64;
        self.all(
            sql::RECORDS_KEK_BELOW,
            &args![tenant, below, after.0, after.0, after.1, limit],
            rows::record_dek,
        )
        .await
    }

    /// How many DEKs (users' and records' own) are wrapped by KEK versions in
    /// `from..below`.
    pub async fn count_wrapped(&self, tenant: &str, from: i64, below: i64) -> Result<i64> {
        let mut n = 0;
        for statement in [sql::USERS_KEK_COUNT, sql::RECORDS_KEK_COUNT] {
            n += self.int(statement, &args![tenant, from, below]).await?;
        }
        Ok(n)
    }

    /// Users with index entries under key version `old` that have no entry under
    /// `new` for the same name, among the next `limit` users (by token, after
    /// `after`) with entries under `old`. Returns them and where the next batch
    /// starts (`None`: this was the last one).
    pub async fn users_to_reindex(
        &self,
        tenant: &str,
        (old, new): (i64, i64),
        after: &str,
        limit: usize,
    ) -> Result<(Vec<UserRow>, Option<String>)> {
        let tokens = self
            .tokens_with_old_index(tenant, old + 1, after, limit)
            .await?;
        let Some(upto) = tokens.last() else {
            return Ok((Vec::new(), None));
        };
        let users = self
            .all(
                sql::USERS_TO_REINDEX,
                &args![tenant, old, new, after, upto, old, tenant],
                rows::user,
            )
            .await?;
        Ok((users, (tokens.len() == limit).then(|| upto.clone())))
    }

    /// The holders of index `name`'s entries with digests in `lo..=hi`, at most
    /// `limit` of them.
    pub async fn index_range_tokens(
        &self,
        tenant: &str,
        name: &str,
        (lo, hi): (&[u8], &[u8]),
        limit: usize,
    ) -> Result<Vec<String>> {
        let started = Instant::now();
        let r = self
            .all(
                sql::INDEX_RANGE_TOKENS,
                &args![tenant, name, lo, hi, limit as i64],
                rows::text,
            )
            .await;
        metrics::STORE_READS.observe(started.elapsed());
        r
    }

    /// The next `limit` users by token after `after` (erased and hidden ones too).
    pub async fn users_after(
        &self,
        tenant: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<UserRow>> {
        self.all(
            sql::USERS_AFTER,
            &args![tenant, after, limit as i64],
            rows::user,
        )
        .await
    }

    /// Index entries under `old`: how many have no counterpart under `new` yet, and
    /// how many there are.
    pub async fn count_reindex(&self, tenant: &str, old: i64, new: i64) -> Result<(i64, i64)> {
        let behind = self
            .int(sql::INDEX_BEHIND_COUNT, &args![tenant, old, new, old])
            .await?;
        let all = self
            .int(sql::INDEX_VERSION_COUNT, &args![tenant, old])
            .await?;
        Ok((behind, all))
    }

    /// Tokens holding index entries under versions below `below`, after `after`.
    pub async fn tokens_with_old_index(
        &self,
        tenant: &str,
        below: i64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        let limit = limit as i64;
        self.all(
            sql::INDEX_OLD_TOKENS,
            &args![tenant, after, below, limit],
            rows::text,
        )
        .await
    }

    /// A value of the `meta` table.
    pub async fn meta_value(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.one(sql::META_GET, &args![name], rows::bytes).await
    }

    /// Commits `op` durably (with its audit event) before returning.
    pub async fn write(&self, op: WriteOp) -> Result<()> {
        let started = Instant::now();
        let r = match &self.backend {
            Backend::Sqlite(s) => s.write(op).await,
            Backend::Sqlx(s) => s.write(op).await,
        };
        metrics::STORE_WRITES.observe(started.elapsed());
        match &r {
            Err(StoreError::Backend(_) | StoreError::CommitUnknown(_)) => {
                metrics::WRITE_HEALTH.failed()
            }
            _ => metrics::WRITE_HEALTH.succeeded(),
        }
        r
    }

    /// Commits many independent ops (bulk import): each succeeds or fails on its own,
    /// all are durable when this returns. Results are in the order of `ops`.
    pub async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<Result<()>>> {
        match &self.backend {
            Backend::Sqlite(s) => s.write_batch(ops).await,
            Backend::Sqlx(s) => s.write_batch(ops).await,
        }
    }

    /// Streams every row of every backed-up table from one consistent snapshot into
    /// `out`, table after table in [`backup::TABLES`] order.
    pub async fn export(&self, out: tokio::sync::mpsc::Sender<backup::ExportedRow>) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.export(out).await,
            Backend::Sqlx(s) => s.export(out).await,
        }
    }

    /// Whether the store holds nothing yet (not even an initialization).
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.int(sql::COUNT_ANY, &[]).await? == 0)
    }

    /// Whether the audit log can be read (one primary-key lookup).
    pub async fn probe_audit(&self) -> Result<()> {
        self.audit_id_range().await.map(|_| ())
    }

    /// Cheap liveness probe.
    pub async fn ping(&self) -> Result<()> {
        self.all(sql::PING, &[], rows::int).await.map(|_| ())
    }
}

/// Whether two lists of key-ring (kind, version) pairs hold the same entries.
pub(crate) fn same_versions(mut a: Vec<(String, i64)>, mut b: Vec<(String, i64)>) -> bool {
    a.sort();
    b.sort();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_backends() {
        assert!(
            matches!(Location::from_url("sqlite:///tmp/x.db"), Ok(Location::Sqlite(p)) if p == std::path::Path::new("/tmp/x.db"))
        );
        assert!(matches!(
            Location::from_url("postgres://u@h/db"),
            Ok(Location::Server { .. })
        ));
        assert!(
            matches!(Location::from_url("mariadb://u@h/db"), Ok(Location::Server { url, .. }) if url == "mysql://u@h/db")
        );
        assert!(Location::from_url("redis://h").is_err());
        assert!(Location::from_url("sqlite://").is_err());
    }

    #[test]
    fn describe_hides_password() {
        let l = Location::from_url("postgres://user:s3cret@db.example:5432/vault").unwrap();
        assert_eq!(l.describe(), "postgres://db.example:5432/vault");
    }
}
