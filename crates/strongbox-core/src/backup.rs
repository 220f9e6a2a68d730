//! Backup files, restores, and the erasure ledger that restores apply.
//!
//! A backup is one file of JSON lines: a header, then one line per row of every table
//! (from one consistent snapshot, see `strongbox_store::backup`), then a manifest with
//! the row count of each table and the SHA-256 of every byte before it. It holds what
//! the database holds — ciphertext, wrapped keys, index digests, audit rows and links
//! — and never the root key, which the database never has. Bytes are hex; a value's
//! type comes from its column. The checksum catches damage and truncation; it is not
//! a signature (whoever can rewrite the file can recompute it).
//!
//! A restore checks the checksum, every value and the counts before it writes
//! anything, then writes in one transaction. Into an empty store it loads everything.
//! Over an existing store (`force`) it replaces the data tables, keeps the audit log
//! (history, with the events since the backup), and applies that store's **erasure
//! ledger** — who was erased there: tombstones, their kept lookups, signed receipts;
//! no personal data — so restoring yesterday's backup never brings back someone
//! erased today.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use strongbox_crypto::new_event_token;
use strongbox_store::backup::{
    Cell, ExportedRow, Kind, OLDEST_RESTORED_SCHEMA, SCHEMA_VERSION, TABLES, Table, table,
};
use strongbox_store::{AuditEvent, ChunkDir, Preserved, Store, WriteOp};

use crate::clock::{Clock, SystemClock};
use crate::kinds::{Action, AuditAction, KeyKind, RecordKind};

/// The backup file format.
pub const FORMAT: &str = "strongbox-backup";
pub const FORMAT_VERSION: i64 = 1;
/// Rows per insert op in a restore.
const IMPORT_CHUNK: usize = 512;

/// What a backup holds, per table, and its checksum.
#[derive(Debug)]
pub struct Manifest {
    pub rows: BTreeMap<String, u64>,
    pub sha256: String,
}

/// Why a backup could not be written, checked or restored. Each message is for the
/// operator's terminal and names what to do where it can.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file is not an intact, complete backup of a format this version reads.
    #[error("{0}")]
    Invalid(String),
    /// Where the backup goes failed: a file, or a download that went away or stalled.
    #[error("{0}")]
    Output(String),
    /// The store could not be read or written, or refused the restore.
    #[error("{0}")]
    Store(String),
}

type BackupResult<T> = std::result::Result<T, BackupError>;

fn cell_json(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(i) => Value::from(*i),
        Cell::Text(t) => Value::from(t.as_str()),
        Cell::Bytes(b) => Value::from(hex::encode(b)),
    }
}

fn json_cell(v: &Value, kind: Kind) -> Result<Cell, String> {
    match (v, kind) {
        (Value::Null, _) => Ok(Cell::Null),
        (Value::Number(n), Kind::Int) => n.as_i64().map(Cell::Int).ok_or("not an integer".into()),
        (Value::String(s), Kind::Text) => Ok(Cell::Text(s.clone())),
        (Value::String(s), Kind::Bytes) => hex::decode(s)
            .map(Cell::Bytes)
            .map_err(|_| "bytes that are not hex".into()),
        _ => Err("a value of the wrong type".into()),
    }
}

/// Where a backup goes: a file, or a channel of chunks (an HTTP response body,
/// which then streams: the backup is never whole in memory).
pub enum Sink<'a> {
    Writer(&'a mut (dyn Write + Send)),
    Channel {
        tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, String>>,
        buf: Vec<u8>,
    },
}

/// Bytes sent down a channel at a time.
const CHUNK: usize = 64 * 1024;

/// How long a chunk may wait for the receiver (a stalled download) before the
/// backup is abandoned: it holds a read snapshot of the store meanwhile.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

async fn send_chunk(
    tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>, String>>,
    chunk: Vec<u8>,
) -> BackupResult<()> {
    let gone = |why: &str| BackupError::Output(format!("the backup's receiver {why}"));
    match tokio::time::timeout(SEND_TIMEOUT, tx.send(Ok(chunk))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(gone("went away")),
        Err(_) => Err(gone("stalled")),
    }
}

impl Sink<'_> {
    async fn write(&mut self, bytes: &[u8]) -> BackupResult<()> {
        match self {
            Sink::Writer(out) => out
                .write_all(bytes)
                .map_err(|e| BackupError::Output(format!("cannot write the backup: {e}"))),
            Sink::Channel { tx, buf } => {
                buf.extend_from_slice(bytes);
                if buf.len() >= CHUNK {
                    let chunk = std::mem::replace(buf, Vec::with_capacity(CHUNK + 4096));
                    send_chunk(tx, chunk).await?;
                }
                Ok(())
            }
        }
    }

    async fn finish(&mut self) -> BackupResult<()> {
        match self {
            Sink::Writer(out) => out
                .flush()
                .map_err(|e| BackupError::Output(format!("cannot write the backup: {e}"))),
            Sink::Channel { tx, buf } => send_chunk(tx, std::mem::take(buf)).await,
        }
    }
}

/// Writes a backup of `store` to `out` while the store keeps serving.
pub async fn write_backup(
    store: &Store,
    chunks: Option<&ChunkDir>,
    mut out: Sink<'_>,
) -> BackupResult<Manifest> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ExportedRow>(1024);
    let reading = store.export(tx);
    let writing = async move {
        let mut hash = Sha256::new();
        let mut rows: BTreeMap<String, u64> =
            TABLES.iter().map(|t| (t.name.to_string(), 0)).collect();
        let line = |v: &Value| -> BackupResult<Vec<u8>> {
            let mut bytes =
                serde_json::to_vec(v).map_err(|e| BackupError::Output(e.to_string()))?;
            bytes.push(b'\n');
            Ok(bytes)
        };
        let header = line(&json!({
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "schema": SCHEMA_VERSION,
            "created": SystemClock.now(),
            "tables": TABLES.iter().map(|t| t.name).collect::<Vec<_>>(),
        }))?;
        hash.update(&header);
        out.write(&header).await?;
        while let Some((table, mut cells)) = rx.recv().await {
            *rows.entry(table.name.to_string()).or_default() += 1;
            if table.name == "records" {
                inline_chunk(chunks, table, &mut cells).await?;
            }
            let r: Vec<Value> = cells.iter().map(cell_json).collect();
            let bytes = line(&json!({"t": table.name, "r": r}))?;
            hash.update(&bytes);
            out.write(&bytes).await?;
        }
        let sha256 = hex::encode(hash.finalize());
        let manifest = line(&json!({"manifest": {"rows": rows, "sha256": sha256}}))?;
        Ok::<_, BackupError>((out, manifest, Manifest { rows, sha256 }))
    };
    let (read, written) = tokio::join!(reading, writing);
    let (mut out, manifest, done) = written?;
    // The manifest goes last, and only after a complete read: a backup cut short
    // has none, and no reader accepts it.
    if let Err(e) = read {
        let message = format!("reading the store failed: {e}");
        if let Sink::Channel { tx, .. } = &out {
            let _ = tx.send(Err(message.clone())).await;
        }
        return Err(BackupError::Store(message));
    }
    out.write(&manifest).await?;
    out.finish().await?;
    Ok(done)
}

/// A file chunk whose sealed bytes are in the file store goes into the backup
/// with them, as if it had been stored in the database: a backup is whole on its
/// own, and restores into a vault with or without a file store.
async fn inline_chunk(
    chunks: Option<&ChunkDir>,
    table: &Table,
    cells: &mut [Cell],
) -> BackupResult<()> {
    let col = |name: &str| table.columns.iter().position(|(n, _)| *n == name);
    let (Some(tenant), Some(kind), Some(id), Some(meta), Some(body)) = (
        col("tenant"),
        col("kind"),
        col("id"),
        col("meta"),
        col("body"),
    ) else {
        return Ok(());
    };
    let in_store = matches!(&cells[kind], Cell::Text(k) if k == RecordKind::FileChunk.name())
        && matches!(&cells[meta], Cell::Bytes(m) if m == crate::files::IN_FILE_STORE)
        && cells[body] == Cell::Null;
    if !in_store {
        return Ok(());
    }
    let (Cell::Text(tenant), Cell::Text(id)) = (cells[tenant].clone(), cells[id].clone()) else {
        return Ok(());
    };
    let missing = || BackupError::Store(format!("file chunk {id} is not in the file store"));
    let (uuid, seq) = id.split_once('/').ok_or_else(missing)?;
    let seq: u64 = seq.parse().map_err(|_| missing())?;
    let dir = chunks.ok_or_else(|| {
        BackupError::Store("file content is in a file store: give --file-store".into())
    })?;
    let bytes = dir
        .get(&tenant, uuid, seq)
        .await
        .map_err(|e| BackupError::Store(e.to_string()))?
        .ok_or_else(missing)?;
    cells[meta] = Cell::Null;
    cells[body] = Cell::Bytes(bytes);
    Ok(())
}

/// A backup read back and checked: its rows per table, in restore order.
pub struct Backup {
    pub tables: Vec<(&'static Table, Vec<Vec<Cell>>)>,
    pub manifest: Manifest,
}

impl Backup {
    fn rows_mut(&mut self, name: &str) -> Option<&mut Vec<Vec<Cell>>> {
        self.tables
            .iter_mut()
            .find(|(t, _)| t.name == name)
            .map(|(_, rows)| rows)
    }

    fn rows(&self, name: &str) -> &[Vec<Cell>] {
        self.tables
            .iter()
            .find(|(t, _)| t.name == name)
            .map(|(_, rows)| rows.as_slice())
            .unwrap_or(&[])
    }
}

/// Parses and checks a backup: the checksum over everything before the manifest,
/// the format and schema versions, every value's type, and the row counts.
pub fn read_backup(bytes: &[u8]) -> BackupResult<Backup> {
    let mut tables: Vec<(&'static Table, Vec<Vec<Cell>>)> =
        TABLES.iter().map(|t| (t, Vec::new())).collect();
    let manifest = scan_backup(bytes, |t, cells| {
        if let Some((_, rows)) = tables.iter_mut().find(|(x, _)| x.name == t.name) {
            rows.push(cells);
        }
    })
    .map_err(BackupError::Invalid)?;
    Ok(Backup { tables, manifest })
}

/// Checks a backup as [`read_backup`] does, a line at a time, without keeping it.
pub fn check_backup(input: impl std::io::BufRead) -> BackupResult<Manifest> {
    scan_backup(input, |_, _| {}).map_err(BackupError::Invalid)
}

/// Reads a backup line by line, handing each checked row to `on_row`. The last
/// line is the manifest; a damaged or cut-short file is reported as such (the
/// checksum) before any complaint about a row in it.
fn scan_backup(
    mut input: impl std::io::BufRead,
    mut on_row: impl FnMut(&'static Table, Vec<Cell>),
) -> Result<Manifest, String> {
    let mut hash = Sha256::new();
    let mut counts: BTreeMap<&'static str, u64> = TABLES.iter().map(|t| (t.name, 0)).collect();
    let mut header_seen = false;
    // The header's schema version, once read: older rows may lack newer columns.
    let mut schema: Option<i64> = None;
    let mut first_error: Option<String> = None;
    let mut row = 0usize;
    let mut last: Option<Vec<u8>> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("cannot read the backup: {e}"))?;
        if read == 0 {
            break;
        }
        let Some(prev) = last.replace(line.clone()) else {
            continue;
        };
        hash.update(&prev);
        let content = prev.strip_suffix(b"\n").unwrap_or(&prev);
        if content.is_empty() || first_error.is_some() {
            continue;
        }
        let checked = if let Some(schema) = schema {
            let r = check_row(row, content, schema);
            row += 1;
            r.map(|(t, cells)| {
                *counts.entry(t.name).or_default() += 1;
                on_row(t, cells);
            })
        } else {
            header_seen = true;
            check_header(content).map(|v| schema = Some(v))
        };
        if let Err(e) = checked {
            first_error = Some(e);
        }
    }
    let manifest_line = last.ok_or("the backup is empty")?;
    // A backup ends with its manifest line; anything else there means the file was
    // cut short (a transfer or a disk that stopped), or is not a backup at all.
    let incomplete = || {
        if header_seen {
            format!(
                "the backup is incomplete: it ends after {row} rows without its manifest \
                 (cut short while being written or copied?)"
            )
        } else {
            "not a Strongbox backup (no header and no manifest)".to_string()
        }
    };
    let manifest_line = manifest_line.strip_suffix(b"\n").unwrap_or(&manifest_line);
    let manifest: Value = serde_json::from_slice(manifest_line).map_err(|_| incomplete())?;
    let m = manifest.get("manifest").ok_or_else(incomplete)?;
    let expected = m["sha256"].as_str().unwrap_or("");
    let actual = hex::encode(hash.finalize());
    if actual != expected {
        return Err("checksum mismatch: the backup is damaged or incomplete".into());
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if !header_seen {
        return Err("the backup is empty".into());
    }
    let mut rows = BTreeMap::new();
    for (name, n) in counts {
        let declared = m["rows"][name].as_u64().unwrap_or(0);
        if declared != n {
            return Err(format!(
                "the manifest counts {declared} rows of {name} but the backup has {n}"
            ));
        }
        rows.insert(name.to_string(), declared);
    }
    Ok(Manifest {
        rows,
        sha256: actual,
    })
}

/// Checks the header; the backup's schema version.
fn check_header(line: &[u8]) -> Result<i64, String> {
    let header: Value = serde_json::from_slice(line).map_err(|_| "the header is not JSON")?;
    if header["format"] != FORMAT || header["version"] != FORMAT_VERSION {
        return Err("not a Strongbox backup of a format this version reads".into());
    }
    match header["schema"].as_i64() {
        Some(v) if (OLDEST_RESTORED_SCHEMA..=SCHEMA_VERSION).contains(&v) => Ok(v),
        _ => Err(format!(
            "the backup has schema version {}, this Strongbox restores \
             {OLDEST_RESTORED_SCHEMA} to {SCHEMA_VERSION}",
            header["schema"]
        )),
    }
}

fn check_row(n: usize, line: &[u8], schema: i64) -> Result<(&'static Table, Vec<Cell>), String> {
    let v: Value = serde_json::from_slice(line).map_err(|_| format!("row {n} is not JSON"))?;
    let name = v["t"].as_str().unwrap_or("");
    let t = table(name).ok_or(format!("row {n} names an unknown table"))?;
    let values = v["r"].as_array().ok_or(format!("row {n} has no values"))?;
    if values.len() != t.width_at(schema) {
        return Err(format!("row {n} of {name} has the wrong number of values"));
    }
    let mut cells = values
        .iter()
        .zip(t.columns)
        .map(|(v, (_, kind))| json_cell(v, *kind))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("row {n} of {name}: {e}"))?;
    // Columns added since the backup was written.
    cells.resize(t.columns.len(), Cell::Null);
    Ok((t, cells))
}

fn text(c: &Cell) -> Option<&str> {
    match c {
        Cell::Text(t) => Some(t),
        _ => None,
    }
}

fn int(c: &Cell) -> Option<i64> {
    match c {
        Cell::Int(i) => Some(*i),
        _ => None,
    }
}

fn bytes(c: &Cell) -> Option<Vec<u8>> {
    match c {
        Cell::Bytes(b) => Some(b.clone()),
        _ => None,
    }
}

/// One erased subject of the store being replaced.
struct Erased {
    tenant: String,
    token: String,
    /// The tombstone: kept fields (a schema's `preserve`) under a fresh key, if any.
    kept: Option<(Vec<u8>, i64, Vec<u8>)>,
    /// The tombstone's remaining index rows (kept lookup fields).
    indexes: Vec<Vec<Cell>>,
    receipt: Option<Vec<Cell>>,
}

/// The erasure ledger of a store being replaced.
#[derive(Default)]
struct Ledger {
    erased: Vec<Erased>,
    /// Records owned by someone not in the vault yet (a consent given by email),
    /// by (tenant, kind, id): the backup's others were withdrawn or adopted since —
    /// maybe by someone erased since — and are not restored.
    pending: HashMap<(String, String, String), Vec<Cell>>,
    /// The store's key ring and canary: KEKs newer than the backup (a tombstone's kept
    /// fields may be wrapped by one) are carried over when both share a root key.
    keys: Vec<Vec<Cell>>,
    canary: Option<Vec<u8>>,
}

fn slot<'a>(
    map: &'a mut HashMap<(String, String), Erased>,
    tenant: &str,
    token: &str,
) -> &'a mut Erased {
    map.entry((tenant.to_string(), token.to_string()))
        .or_insert_with(|| Erased {
            tenant: tenant.to_string(),
            token: token.to_string(),
            kept: None,
            indexes: Vec::new(),
            receipt: None,
        })
}

/// The erasure ledger of `store`: who was erased there (tombstones and receipts),
/// and the pending consents it still has.
async fn ledger(store: &Store) -> BackupResult<Ledger> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ExportedRow>(1024);
    let reading = store.export(tx);
    let collecting = async move {
        let mut erased: HashMap<(String, String), Erased> = HashMap::new();
        let mut pending = HashMap::new();
        let mut keys = Vec::new();
        let mut canary = None;
        while let Some((t, r)) = rx.recv().await {
            match t.name {
                "key_ring" => keys.push(r),
                // meta: name, value
                "meta" if text(&r[0]) == Some("canary") => canary = bytes(&r[1]),
                // users: tenant, token, kek_version, wrapped_dek, data, …, erased
                "users" if int(&r[8]).is_some() => {
                    let (Some(tenant), Some(token)) = (text(&r[0]), text(&r[1])) else {
                        continue;
                    };
                    let kept = match (bytes(&r[4]), int(&r[2]), bytes(&r[3])) {
                        (Some(d), Some(v), Some(w)) => Some((d, v, w)),
                        _ => None,
                    };
                    slot(&mut erased, tenant, token).kept = kept;
                }
                // user_index: tenant, name, digest, token (after users: tombstones known)
                "user_index" => {
                    let (Some(tenant), Some(token)) = (text(&r[0]), text(&r[3])) else {
                        continue;
                    };
                    if let Some(e) = erased.get_mut(&(tenant.to_string(), token.to_string())) {
                        e.indexes.push(r);
                    }
                }
                // records: tenant, kind, id, owner, …
                "records" => {
                    let (Some(tenant), Some(kind), Some(id)) =
                        (text(&r[0]), text(&r[1]), text(&r[2]))
                    else {
                        continue;
                    };
                    let key = (tenant.to_string(), kind.to_string(), id.to_string());
                    if kind == RecordKind::Receipt.name() {
                        slot(&mut erased, &key.0, &key.2).receipt = Some(r);
                    } else if text(&r[3]).is_some_and(|o| o.contains(':')) {
                        pending.insert(key, r);
                    }
                }
                _ => {}
            }
        }
        Ledger {
            erased: erased.into_values().collect(),
            pending,
            keys,
            canary,
        }
    };
    let (read, ledger) = tokio::join!(reading, collecting);
    read.map_err(|e| BackupError::Store(format!("reading the erasure ledger failed: {e}")))?;
    Ok(ledger)
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub rows: u64,
    /// Subjects of the backup erased again from the ledger.
    pub erased_again: usize,
    /// Ledger entries (receipts) carried over into the restored store.
    pub ledger: usize,
}

/// Restores `backup` into `store`: an empty one, or with `force` an existing one.
///
/// Over an existing store the data tables are replaced and the audit log is kept:
/// it is history, and it holds the events since the backup (the erasures among
/// them), its signed checkpoints and the positions receipts name. The store's erasure
/// ledger is read first and applied to the restored data — everyone erased there is
/// erased again (tombstone, kept lookups and receipt as they are there), pending
/// consents no longer there are dropped, and undelivered webhooks and login codes are
/// not restored — all in one transaction with an audit event per re-erasure and one
/// for the restore.
pub async fn restore(store: &Store, mut backup: Backup, force: bool) -> BackupResult<Restored> {
    let mut ops = Vec::new();
    let mut ledger = Ledger::default();
    let replacing = !store
        .is_empty()
        .await
        .map_err(|e| BackupError::Store(e.to_string()))?;
    if replacing {
        if !force {
            return Err(BackupError::Store(
                "the target store is not empty: give --force to replace its contents (its erasure ledger is kept and applied)"
                    .into(),
            ));
        }
        ledger = self::ledger(store).await?;
        ops.push(WriteOp::Wipe(
            TABLES.iter().filter(|t| !t.is_audit()).collect(),
        ));
        backup.tables.retain(|(t, _)| !t.is_audit());
        if let Some(outbox) = backup.rows_mut("records") {
            outbox.retain(|r| {
                let (tenant, kind, id) = (text(&r[0]), text(&r[1]), text(&r[2]));
                let placeholder = text(&r[3]).is_some_and(|o| o.contains(':'));
                kind != Some(RecordKind::Outbox.name())
                    && kind != Some(RecordKind::LoginMessage.name())
                    && (!placeholder
                        || ledger.pending.contains_key(&(
                            tenant.unwrap_or("").to_string(),
                            kind.unwrap_or("").to_string(),
                            id.unwrap_or("").to_string(),
                        )))
            });
        }
    }
    // Same root key (same canary): the store's key-ring entries the backup lacks
    // (a KEK made since) come along, so tombstones sealed under them still open.
    let same_root = ledger.canary.is_some()
        && backup
            .rows("meta")
            .iter()
            .any(|r| text(&r[0]) == Some("canary") && bytes(&r[1]) == ledger.canary);
    // Index-key versions per tenant.
    let index_versions = |ring: &[Vec<Cell>]| -> HashSet<(String, i64)> {
        ring.iter()
            .filter(|r| text(&r[1]) == Some(KeyKind::Index.name()))
            .filter_map(|r| Some((text(&r[0])?.to_string(), int(&r[2])?)))
            .collect()
    };
    let backup_index = index_versions(backup.rows("key_ring"));
    if same_root {
        let have: HashSet<(String, String, i64)> = backup
            .rows("key_ring")
            .iter()
            .filter_map(|r| {
                Some((
                    text(&r[0])?.to_string(),
                    text(&r[1])?.to_string(),
                    int(&r[2])?,
                ))
            })
            .collect();
        let mut extra: Vec<Vec<Cell>> = ledger
            .keys
            .iter()
            .filter(|r| match (text(&r[0]), text(&r[1]), int(&r[2])) {
                (Some(t), Some(k), Some(v)) => !have.contains(&(t.to_string(), k.to_string(), v)),
                _ => false,
            })
            .cloned()
            .collect();
        // Index keys: at most two versions in use per tenant (a rotation's pair).
        // The store's newest one, if newer than the backup's, comes along when
        // there is room: the backfill then brings the backup's entries under it,
        // and the store's pending consents keyed by it (re-keyed since the backup)
        // are the ones restored.
        let mut room: HashMap<String, usize> = HashMap::new();
        let mut newest: HashMap<String, i64> = HashMap::new();
        for (tenant, v) in &backup_index {
            *room.entry(tenant.clone()).or_insert(2) -= 1;
            let n = newest.entry(tenant.clone()).or_insert(*v);
            *n = (*n).max(*v);
        }
        extra.sort_by_key(|r| std::cmp::Reverse(int(&r[2])));
        extra.retain(|r| {
            if text(&r[1]) != Some(KeyKind::Index.name()) {
                return true;
            }
            let (Some(tenant), Some(v)) = (text(&r[0]), int(&r[2])) else {
                return false;
            };
            let left = room.entry(tenant.to_string()).or_insert(2);
            let keep = *left > 0 && newest.get(tenant).is_none_or(|n| v > *n);
            if keep {
                *left -= 1;
            }
            keep
        });
        if let Some(ring) = backup.rows_mut("key_ring") {
            ring.extend(extra);
        }
        let carried = index_versions(backup.rows("key_ring"));
        if let Some(records) = backup.rows_mut("records") {
            let ids: HashSet<(String, String, String)> = records
                .iter()
                .filter_map(|r| {
                    Some((
                        text(&r[0])?.to_string(),
                        text(&r[1])?.to_string(),
                        text(&r[2])?.to_string(),
                    ))
                })
                .collect();
            for (id, row) in &ledger.pending {
                let version = text(&row[3]).and_then(crate::consent::pending_owner_version);
                let key = |v: i64| (id.0.clone(), v);
                if version
                    .is_some_and(|v| carried.contains(&key(v)) && !backup_index.contains(&key(v)))
                    && !ids.contains(id)
                {
                    records.push(row.clone());
                }
            }
        }
    }
    let final_index = index_versions(backup.rows("key_ring"));
    let erased: HashSet<(String, String)> = ledger
        .erased
        .iter()
        .map(|e| (e.tenant.clone(), e.token.clone()))
        .collect();
    // Live users of the backup, and the receipts it has.
    let live: HashSet<(String, String)> = backup
        .rows("users")
        .iter()
        .filter(|r| int(&r[8]).is_none())
        .filter_map(|r| Some((text(&r[0])?.to_string(), text(&r[1])?.to_string())))
        .collect();
    let receipts: HashSet<(String, String)> = backup
        .rows("records")
        .iter()
        .filter(|r| text(&r[1]) == Some(RecordKind::Receipt.name()))
        .filter_map(|r| Some((text(&r[0])?.to_string(), text(&r[2])?.to_string())))
        .collect();
    // An erased person's lookups are the tombstone's, not the backup's.
    if let Some(index) = backup.rows_mut("user_index") {
        index.retain(|r| {
            let key = (
                text(&r[0]).unwrap_or("").to_string(),
                text(&r[3]).unwrap_or("").to_string(),
            );
            !erased.contains(&key)
        });
        for e in &ledger.erased {
            if live.contains(&(e.tenant.clone(), e.token.clone())) {
                // Under an index key that is not restored, a kept lookup would be
                // dead weight: nobody could compute it.
                index.extend(
                    e.indexes
                        .iter()
                        .filter(|r| {
                            int(&r[4]).is_some_and(|v| final_index.contains(&(e.tenant.clone(), v)))
                        })
                        .cloned(),
                );
            }
        }
    }
    let mut carried = 0;
    if let Some(records) = backup.rows_mut("records") {
        for e in &ledger.erased {
            if let Some(r) = &e.receipt
                && !receipts.contains(&(e.tenant.clone(), e.token.clone()))
            {
                records.push(r.clone());
                carried += 1;
            }
        }
    }
    let rows: u64 = backup.tables.iter().map(|(_, r)| r.len() as u64).sum();
    for (t, rows) in std::mem::take(&mut backup.tables) {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            ops.push(WriteOp::ImportRows {
                table: t,
                rows: rows.by_ref().take(IMPORT_CHUNK).collect(),
            });
        }
    }
    let event = |tenant: &str, action: Action, record: Option<&str>| WriteOp::Audit {
        tenant: tenant.to_string(),
        audit: system_event(action, record),
    };
    let mut again = 0;
    for e in &ledger.erased {
        if !live.contains(&(e.tenant.clone(), e.token.clone())) {
            continue;
        }
        again += 1;
        let preserve = e
            .kept
            .as_ref()
            .map(|(data, kek_version, wrapped)| Preserved {
                data: data.clone(),
                kek_version: *kek_version,
                wrapped_dek: wrapped.clone(),
                // The index rows are already the tombstone's.
                drop_indexes: Vec::new(),
            });
        ops.push(WriteOp::EraseUser {
            tenant: e.tenant.clone(),
            token: e.token.clone(),
            preserve,
            keep_kind: RecordKind::Request.name().to_string(),
            audit: system_event(Action::RestoreEraseAgain, Some(&e.token)),
        });
    }
    if replacing {
        let tenants: HashSet<&str> = ledger.erased.iter().map(|e| e.tenant.as_str()).collect();
        for tenant in tenants
            .into_iter()
            .chain([crate::vault::DEFAULT_TENANT])
            .collect::<HashSet<_>>()
        {
            ops.push(event(tenant, Action::Restore, None));
        }
    }
    store.write(WriteOp::Atomic(ops)).await.map_err(|e| {
        BackupError::Store(match e {
            strongbox_store::StoreError::CommitUnknown(d) => {
                format!("restoring failed while committing; check the store before retrying: {d}")
            }
            other => format!("restoring failed (nothing was written): {other}"),
        })
    })?;
    Ok(Restored {
        rows,
        erased_again: again,
        ledger: carried,
    })
}

fn system_event(action: Action, record: Option<&str>) -> AuditEvent {
    AuditEvent {
        atoken: new_event_token(),
        at: SystemClock.now(),
        actor: "system".into(),
        action: AuditAction::from(action).to_string(),
        name: Some(action.name().to_string()),
        record: record.map(str::to_string),
        status: "ok".into(),
        app: None,
        detail: None,
        classes: None,
    }
}

/// The JSON summary a backup command prints.
pub fn manifest_json(m: &Manifest) -> Value {
    let rows: Map<String, Value> = m
        .rows
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(*v)))
        .collect();
    json!({"rows": rows, "sha256": m.sha256})
}

impl crate::vault::Vault {
    /// A backup of the whole store, for `GET /v1/sys/backup` (root only). The request
    /// is audited first, so the backup holds its own event.
    pub async fn backup(
        &self,
        who: &crate::principal::Principal,
    ) -> crate::error::Result<tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>> {
        who.require_root()?;
        self.audit(self.new_event(who, Action::Backup, None, "ok"))
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let store = self.store.clone();
        let chunks = self.config.file_store.clone();
        let watcher = tx.clone();
        let writer = tokio::spawn(async move {
            let sink = Sink::Channel {
                tx,
                buf: Vec::with_capacity(CHUNK + 4096),
            };
            if let Err(e) = write_backup(&store, chunks.as_deref(), sink).await {
                tracing::warn!(error = %e, "a backup download failed");
            }
        });
        // Should the writer panic, the download ends in an error, not as if whole.
        tokio::spawn(async move {
            if writer.await.is_err() {
                let _ = watcher
                    .send(Err("the backup failed on the server".into()))
                    .await;
            }
        });
        Ok(rx)
    }
}
