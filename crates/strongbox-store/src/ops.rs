//! Every write of the store, written once against [`Exec`]: what each [`WriteOp`]
//! does, and the checks that make it safe (a stale version, a guard, a key that is
//! still in use) are here and nowhere else. The caller provides the transaction:
//! SQLite's writer runs each op in a savepoint of its group commit, the server
//! backends each in a transaction of its own (see `sqlite.rs`, `sqlx_store.rs`).

use crate::backup::{Cell, Kind};
use crate::exec::{Arg, Exec, args};
use crate::schema::Dialect;
use crate::{AuditEvent, IndexEntry, InitData, KeyRow, Result, StoreError, WriteOp, rows, sql};

/// Rows per insert statement in a restore (a few statement sizes only).
const IMPORT_ROWS_PER_STATEMENT: usize = 64;

/// Writes the initial meta rows and key ring; refuses if already initialized.
pub(crate) async fn initialize(ex: &mut impl Exec, init: &InitData) -> Result<()> {
    let exists = ex
        .query(sql::META_GET.into(), &args![sql::META_CANARY], rows::bytes)
        .await?;
    if !exists.is_empty() {
        return Err(StoreError::AlreadyInitialized);
    }
    let fixed = [
        (sql::META_CANARY, &init.canary),
        (sql::META_ROOT_TOKEN, &init.root_token_hash),
    ];
    let extra = init.meta.iter().map(|(n, v)| (n.as_str(), v));
    for (name, value) in fixed.into_iter().chain(extra) {
        match ex.execute(sql::META_PUT.into(), &args![name, value]).await {
            Ok(_) => {}
            // Two concurrent `init`s on a server: the loser sees the winner's row.
            Err(e) if e.is_unique() => return Err(StoreError::AlreadyInitialized),
            Err(e) => return Err(e.into()),
        }
    }
    for k in &init.keys {
        ex.execute(
            sql::KEY_PUT.into(),
            &args![init.tenant, k.kind, k.version, k.wrapped, k.created],
        )
        .await?;
    }
    Ok(())
}

/// One audit event.
pub(crate) async fn audit(ex: &mut impl Exec, tenant: &str, a: &AuditEvent) -> Result<()> {
    ex.execute(sql::AUDIT_INSERT.into(), &audit_args(tenant, a))
        .await?;
    Ok(())
}

/// An audit event's parameters in the column order of `sql::AUDIT_INSERT`.
pub(crate) fn audit_args<'a>(tenant: &'a str, a: &'a AuditEvent) -> [Arg<'a>; sql::AUDIT_WIDTH] {
    args![
        a.atoken, tenant, a.at, a.actor, a.action, a.record, a.status, a.app, a.detail, a.classes,
        a.name
    ]
}

async fn insert_indexes(
    ex: &mut impl Exec,
    tenant: &str,
    token: &str,
    entries: &[IndexEntry],
) -> Result<()> {
    // Lookups one by one, to name the one another subject holds.
    for e in entries.iter().filter(|e| !e.is_gram()) {
        let r = ex
            .execute(
                sql::INDEX_INSERT.into(),
                &args![tenant, e.name, e.digest, token, e.key_version],
            )
            .await;
        match r {
            Ok(_) => {}
            Err(err) if err.is_unique() => return Err(StoreError::Duplicate(e.name)),
            Err(err) => return Err(err.into()),
        }
    }
    // Search trigrams (dozens per person, never another's) in a few statements.
    let grams: Vec<&IndexEntry> = entries.iter().filter(|e| e.is_gram()).collect();
    for chunk in grams.chunks(IMPORT_ROWS_PER_STATEMENT) {
        let values: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|e| args![tenant, e.name, e.digest, token, e.key_version])
            .collect();
        ex.execute(sql::index_insert_rows(chunk.len()).into(), &values)
            .await?;
    }
    Ok(())
}

/// Runs a statement that must change a row: none changed means someone else moved
/// first (a version, a swap, a key still in use).
/// Replaces the wrapped keys of `tenant`'s ring with `keys` (a root-key rotation),
/// once the ring is seen to hold exactly their (kind, version) pairs (`Stale`
/// otherwise: one was added or retired meanwhile).
async fn rewrap_ring(ex: &mut impl Exec, tenant: &str, keys: &[KeyRow]) -> Result<()> {
    let present = ex
        .query(sql::KEY_VERSIONS.into(), &args![tenant], rows::key_version)
        .await?;
    let expected = keys.iter().map(|k| (k.kind.clone(), k.version)).collect();
    if !crate::same_versions(present, expected) {
        return Err(StoreError::Stale);
    }
    for k in keys {
        ex.execute(
            sql::KEY_REWRAP.into(),
            &args![k.wrapped, tenant, k.kind, k.version],
        )
        .await?;
    }
    Ok(())
}

async fn changed(ex: &mut impl Exec, sql: &'static str, args: &[Arg<'_>]) -> Result<()> {
    if ex.execute(sql.into(), args).await? == 0 {
        return Err(StoreError::Stale);
    }
    Ok(())
}

/// Applies one op inside the caller's transaction. On an error the caller rolls
/// back whatever the op did.
pub(crate) async fn apply(ex: &mut impl Exec, op: &WriteOp) -> Result<()> {
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
                let n = ex
                    .query(
                        sql::GUARD_EXISTS.into(),
                        &args![tenant, g.kind, o1, o2, o3, o4],
                        rows::int,
                    )
                    .await?;
                if n.first().copied().unwrap_or(0) > 0 {
                    return Err(StoreError::Guarded);
                }
            }
            ex.execute(sql::USER_INSERT.into(), &user_args(tenant, u))
                .await?;
            insert_indexes(ex, tenant, &u.token, indexes).await?;
            audit(ex, tenant, a).await
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
            changed(
                ex,
                sql::USER_UPDATE,
                &args![data, a.at, tenant, token, expected_version],
            )
            .await?;
            for name in drop_indexes {
                ex.execute(sql::INDEX_DROP_ONE.into(), &args![tenant, token, name])
                    .await?;
            }
            insert_indexes(ex, tenant, token, add_indexes).await?;
            audit(ex, tenant, a).await
        }
        WriteOp::HideUser {
            tenant,
            token,
            expected_version,
            audit: a,
        } => {
            changed(
                ex,
                sql::USER_HIDE,
                &args![a.at, a.at, tenant, token, expected_version],
            )
            .await?;
            ex.execute(sql::INDEX_DROP_ALL.into(), &args![tenant, token])
                .await?;
            audit(ex, tenant, a).await
        }
        WriteOp::ReviveUser {
            tenant,
            token,
            data,
            kek_version,
            wrapped_dek,
            add_indexes,
            audit: a,
        } => {
            changed(
                ex,
                sql::USER_REVIVE,
                &args![data, wrapped_dek, kek_version, a.at, tenant, token],
            )
            .await?;
            insert_indexes(ex, tenant, token, add_indexes).await?;
            audit(ex, tenant, a).await
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
                    ex.execute(sql::USER_ERASE.into(), &args![a.at, a.at, tenant, token])
                        .await?;
                    ex.execute(sql::INDEX_DROP_ALL.into(), &args![tenant, token])
                        .await?;
                }
                Some(p) => {
                    let keep = args![
                        p.data,
                        p.wrapped_dek,
                        p.kek_version,
                        a.at,
                        a.at,
                        tenant,
                        token
                    ];
                    ex.execute(sql::USER_ERASE_KEEP.into(), &keep).await?;
                    for name in &p.drop_indexes {
                        ex.execute(sql::INDEX_DROP_ONE.into(), &args![tenant, token, name])
                            .await?;
                    }
                }
            }
            for statement in [sql::RECORDS_DELETE_OWNER, sql::RECORDS_STRIP_OWNER] {
                ex.execute(statement.into(), &args![tenant, token, keep_kind])
                    .await?;
            }
            audit(ex, tenant, a).await
        }
        WriteOp::Audit { tenant, audit: a } => audit(ex, tenant, a).await,
        WriteOp::PutRecord {
            tenant,
            record: r,
            expected_version: None,
        } => {
            let values = args![
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
            ];
            match ex.execute(sql::RECORD_INSERT.into(), &values).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_unique() => Err(StoreError::Duplicate("record")),
                Err(e) => Err(e.into()),
            }
        }
        WriteOp::PutRecord {
            tenant,
            record: r,
            expected_version: Some(v),
        } => {
            let values = args![
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
            ];
            changed(ex, sql::RECORD_UPDATE, &values).await
        }
        WriteOp::DeleteRecord { tenant, kind, id } => {
            ex.execute(sql::RECORD_DELETE.into(), &args![tenant, kind, id])
                .await?;
            Ok(())
        }
        WriteOp::DeleteRecordAt {
            tenant,
            kind,
            id,
            version,
        } => changed(ex, sql::RECORD_DELETE_AT, &args![tenant, kind, id, version]).await,
        WriteOp::DeleteLabelled {
            tenant,
            kind,
            label,
        } => {
            ex.execute(
                sql::RECORDS_DELETE_LABELLED.into(),
                &args![tenant, kind, label],
            )
            .await?;
            Ok(())
        }
        WriteOp::DeleteExpired { tenant, kind, now } => {
            ex.execute(
                sql::RECORDS_DELETE_EXPIRED.into(),
                &args![tenant, kind, now],
            )
            .await?;
            Ok(())
        }
        WriteOp::Seal {
            tenant,
            expected_version,
            seals,
            head,
        } => {
            let gaps = head.gaps_text();
            let moved = match expected_version {
                None => {
                    let values =
                        args![head.seq, head.hash, head.max_id, gaps, head.version, tenant];
                    match ex.execute(sql::HEAD_INSERT.into(), &values).await {
                        Ok(n) => n,
                        // Another node sealed the first link.
                        Err(e) if e.is_unique() => 0,
                        Err(e) => return Err(e.into()),
                    }
                }
                Some(v) => {
                    let values = args![
                        head.seq,
                        head.hash,
                        head.max_id,
                        gaps,
                        head.version,
                        tenant,
                        v
                    ];
                    ex.execute(sql::HEAD_UPDATE.into(), &values).await?
                }
            };
            if moved == 0 {
                return Err(StoreError::Stale);
            }
            // Statements of a few fixed sizes, so that the statement caches hold a
            // handful of them.
            let mut rest = seals.as_slice();
            while !rest.is_empty() {
                let width = sql::SEAL_INSERT_WIDTHS
                    .iter()
                    .copied()
                    .find(|w| *w <= rest.len())
                    .unwrap_or(1);
                let (chunk, tail) = rest.split_at(width);
                rest = tail;
                let values: Vec<Arg<'_>> = chunk
                    .iter()
                    .flat_map(|l| args![tenant, l.seq, l.audit_id, l.hash])
                    .collect();
                ex.execute(sql::seal_insert(chunk.len()).into(), &values)
                    .await?;
            }
            Ok(())
        }
        WriteOp::Checkpoint {
            tenant,
            checkpoint: k,
        } => {
            // An existing checkpoint at the same position is kept. Checked first: on
            // PostgreSQL a failed statement would abort the transaction.
            let exists = ex
                .query(
                    sql::CHECKPOINT_EXISTS.into(),
                    &args![tenant, k.seq],
                    rows::int,
                )
                .await?;
            if !exists.is_empty() {
                return Ok(());
            }
            let values = args![tenant, k.seq, k.hash, k.at, k.signature];
            match ex.execute(sql::CHECKPOINT_INSERT.into(), &values).await {
                Ok(_) => Ok(()),
                // Another node wrote it since.
                Err(e) if e.is_unique() => Err(StoreError::Stale),
                Err(e) => Err(e.into()),
            }
        }
        WriteOp::RewrapRing { tenant, keys } => rewrap_ring(ex, tenant, keys).await,
        WriteOp::DropTenant { tenant, meta } => {
            for statement in sql::TENANT_DROP {
                ex.execute((*statement).into(), &args![tenant]).await?;
            }
            for name in meta {
                ex.execute(sql::META_DELETE.into(), &args![name]).await?;
            }
            Ok(())
        }
        WriteOp::AddKey { tenant, key, meta } => {
            let values = args![tenant, key.kind, key.version, key.wrapped, key.created];
            match ex.execute(sql::KEY_PUT.into(), &values).await {
                Ok(_) => {}
                Err(e) if e.is_unique() => return Err(StoreError::Duplicate("key")),
                Err(e) => return Err(e.into()),
            }
            for (name, value) in meta {
                ex.execute(sql::META_PUT.into(), &args![name, value])
                    .await?;
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
                // A row whose DEK changed since it was read is left for the next pass.
                match &d.kind {
                    None => {
                        let values = args![
                            r.new_wrapped,
                            r.new_version,
                            tenant,
                            d.id,
                            d.kek_version,
                            d.wrapped
                        ];
                        ex.execute(sql::USER_REWRAP.into(), &values).await?
                    }
                    Some(kind) => {
                        let values = args![
                            r.new_wrapped,
                            r.new_version,
                            tenant,
                            kind,
                            d.id,
                            d.kek_version,
                            d.wrapped
                        ];
                        ex.execute(sql::RECORD_REWRAP.into(), &values).await?
                    }
                };
            }
            audit(ex, tenant, a).await
        }
        WriteOp::Reindex {
            tenant,
            rows,
            audit: a,
        } => {
            let dialect = ex.dialect();
            for r in rows {
                // Locked, so that a change of the profile (which rewrites its entries)
                // cannot commit between this check and the inserts.
                let version = ex
                    .query(
                        sql::user_version_locked(dialect).into(),
                        &args![tenant, r.token],
                        rows::int,
                    )
                    .await?;
                if version.first() != Some(&r.version) {
                    continue;
                }
                for e in &r.entries {
                    let values = args![tenant, e.name, e.digest, r.token, e.key_version];
                    ex.execute(sql::index_insert_if_new(dialect).into(), &values)
                        .await?;
                }
            }
            audit(ex, tenant, a).await
        }
        WriteOp::RetireIndexKey {
            tenant,
            version,
            successor,
            audit: a,
        } => {
            let values = args![tenant, version, tenant, version, successor, version];
            changed(ex, sql::INDEX_KEY_RETIRE, &values).await?;
            audit(ex, tenant, a).await
        }
        WriteOp::DropIndexes { tenant, names } => {
            for name in names {
                ex.execute(sql::INDEX_DROP_NAME.into(), &args![tenant, name])
                    .await?;
            }
            Ok(())
        }
        WriteOp::PurgeIndex {
            tenant,
            below,
            from,
            to,
        } => {
            ex.execute(sql::INDEX_PURGE.into(), &args![tenant, from, to, below])
                .await?;
            Ok(())
        }
        WriteOp::RetireKek {
            tenant,
            version,
            audit: a,
        } => {
            let values = args![tenant, version, tenant, version, tenant, version];
            changed(ex, sql::KEK_RETIRE, &values).await?;
            audit(ex, tenant, a).await
        }
        WriteOp::SwapRootToken { expected, value } => {
            let values = args![value, sql::META_ROOT_TOKEN, expected];
            changed(ex, sql::META_SWAP, &values).await
        }
        WriteOp::Rekey {
            tenant,
            expected_canary,
            canary,
            keys,
            added,
            meta,
        } => {
            let values = args![canary, sql::META_CANARY, expected_canary];
            changed(ex, sql::META_SWAP, &values).await?;
            rewrap_ring(ex, tenant, keys).await?;
            for k in added {
                let values = args![tenant, k.kind, k.version, k.wrapped, k.created];
                ex.execute(sql::KEY_PUT.into(), &values).await?;
            }
            for (name, value) in meta {
                ex.execute(sql::META_DELETE.into(), &args![name]).await?;
                if let Some(v) = value {
                    ex.execute(sql::META_PUT.into(), &args![name, v]).await?;
                }
            }
            Ok(())
        }
        WriteOp::ImportRows { table, rows } => {
            for chunk in rows.chunks(IMPORT_ROWS_PER_STATEMENT) {
                let values: Vec<Arg<'_>> = chunk
                    .iter()
                    .flat_map(|row| row.iter().zip(table.columns))
                    .map(|(cell, (_, kind))| match (cell, kind) {
                        (Cell::Int(i), _) => Arg::Int(Some(*i)),
                        (Cell::Text(t), _) => Arg::Text(Some(t)),
                        (Cell::Bytes(b), _) => Arg::Bytes(Some(b)),
                        (Cell::Null, Kind::Int) => Arg::Int(None),
                        (Cell::Null, Kind::Text) => Arg::Text(None),
                        (Cell::Null, Kind::Bytes) => Arg::Bytes(None),
                    })
                    .collect();
                ex.execute(table.insert(chunk.len()).into(), &values)
                    .await?;
            }
            if table.name == "audit" && ex.dialect() == Dialect::Postgres {
                // Explicit ids do not move the sequence; new events must come after.
                ex.execute(sql::AUDIT_SEQUENCE_RESET.into(), &[]).await?;
            }
            Ok(())
        }
        WriteOp::Wipe(tables) => {
            for table in tables.iter().rev() {
                ex.execute(format!("DELETE FROM {}", table.name).into(), &[])
                    .await?;
            }
            Ok(())
        }
        WriteOp::Atomic(ops) => {
            for op in ops {
                Box::pin(apply(ex, op)).await?;
            }
            Ok(())
        }
    }
}

/// A user row's parameters in the column order of `sql::USER_INSERT`.
pub(crate) fn user_args<'a>(tenant: &'a str, u: &'a crate::UserRow) -> [Arg<'a>; 9] {
    args![
        tenant,
        u.token,
        u.kek_version,
        u.wrapped_dek,
        u.data,
        u.version,
        u.created,
        u.updated,
        u.erased
    ]
}
