//! The store's contract, the same cases on every backend, without a server: SQLite
//! always, PostgreSQL and MariaDB when STRONGBOX_TEST_POSTGRES_URL /
//! STRONGBOX_TEST_MYSQL_URL are set (a fresh database each). The safety net for
//! changes inside the store: both implementations must answer alike.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly at the first surprise; unwrap is how it says so"
)]

use sqlx::Connection;
use strongbox_store::backup::Cell;
use strongbox_store::{
    AuditEvent, AuditHead, CheckpointRow, Durability, Guard, IndexEntry, InitData, KeyRow,
    Location, OpenOptions, RecordRow, Reindexed, SealRow, Store, StoreError, UserRow, WriteOp,
};

const TENANT: &str = "default";

/// The server databases a test made, dropped by [`cleanup`].
type Made = Vec<(&'static str, String, String)>;

/// A fresh, initialized store on each configured backend, with its name, and the
/// server databases made for them.
async fn stores(dir: &std::path::Path) -> (Vec<(&'static str, Store)>, Made) {
    let mut out = Vec::new();
    let mut made: Made = Vec::new();
    let mut locations = vec![("sqlite", Location::data_dir(dir.join("data")))];
    let unique = format!(
        "sbs_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    if let Ok(admin) = std::env::var("STRONGBOX_TEST_POSTGRES_URL") {
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {unique}")))
            .execute(&mut c)
            .await
            .unwrap();
        let url = format!("{}/{unique}", admin.rsplit_once('/').unwrap().0);
        locations.push(("postgres", Location::from_url(&url).unwrap()));
        made.push(("postgres", admin.clone(), unique.clone()));
    }
    if let Ok(admin) = std::env::var("STRONGBOX_TEST_MYSQL_URL") {
        let mut c = sqlx::MySqlConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {unique}")))
            .execute(&mut c)
            .await
            .unwrap();
        let url = format!("{}/{unique}", admin.rsplit_once('/').unwrap().0);
        locations.push(("mysql", Location::from_url(&url).unwrap()));
        made.push(("mysql", admin.clone(), unique.clone()));
    }
    for (name, location) in locations {
        let opts = OpenOptions {
            create: true,
            read_only: false,
            durability: Durability::Normal,
        };
        let store = Store::open(&location, &opts).await.unwrap();
        store
            .initialize(InitData {
                tenant: TENANT.into(),
                canary: vec![1, 2, 3],
                root_token_hash: vec![7; 32],
                keys: vec![KeyRow {
                    kind: "kek".into(),
                    version: 1,
                    wrapped: vec![9; 40],
                    created: 1,
                }],
                meta: Vec::new(),
            })
            .await
            .unwrap();
        out.push((name, store));
    }
    (out, made)
}

/// Drops the server databases a test made (after its stores are dropped).
async fn cleanup(made: Made) {
    for (kind, admin, db) in made {
        let drop = match kind {
            "postgres" => format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            _ => format!("DROP DATABASE IF EXISTS {db}"),
        };
        let done = match kind {
            "postgres" => match sqlx::PgConnection::connect(&admin).await {
                Ok(mut c) => sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                    .execute(&mut c)
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            },
            _ => match sqlx::MySqlConnection::connect(&admin).await {
                Ok(mut c) => sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                    .execute(&mut c)
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            },
        };
        if let Err(e) = done {
            eprintln!("could not drop test database {db}: {e}");
        }
    }
}

fn audit(action: &str) -> AuditEvent {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    AuditEvent {
        atoken: format!("00000000-0000-7000-8000-{n:012}"),
        at: 1,
        actor: "system".into(),
        action: action.into(),
        record: None,
        status: "ok".into(),
        app: None,
        detail: None,
        classes: None,
        name: Some("test.event".into()),
    }
}

fn record(id: &str) -> RecordRow {
    RecordRow {
        kind: "app".into(),
        id: id.into(),
        owner: Some("owner-1".into()),
        created: 1,
        updated: 1,
        version: 1,
        meta: Some(b"{}".to_vec()),
        ..RecordRow::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_insert_once_and_update_by_version() {
    let dir = tempfile::tempdir().unwrap();
    let (all, made) = stores(dir.path()).await;
    for (name, s) in all {
        let put = |r: RecordRow, expected: Option<i64>| WriteOp::PutRecord {
            tenant: TENANT.into(),
            record: r,
            expected_version: expected,
        };
        s.write(put(record("r1"), None)).await.unwrap();
        // A second insert of the same key is a duplicate, on every backend.
        let again = s.write(put(record("r1"), None)).await;
        assert!(
            matches!(again, Err(StoreError::Duplicate("record"))),
            "{name}: {again:?}"
        );
        // An update applies only at the version read.
        let mut changed = record("r1");
        changed.label = Some("new".into());
        s.write(put(changed.clone(), Some(1))).await.unwrap();
        let stale = s.write(put(changed, Some(1))).await;
        assert!(matches!(stale, Err(StoreError::Stale)), "{name}: {stale:?}");
        let got = s.record(TENANT, "app", "r1").await.unwrap().unwrap();
        assert_eq!(
            (got.version, got.label.as_deref()),
            (2, Some("new")),
            "{name}"
        );
        // An atomic list commits all or nothing.
        let both = WriteOp::Atomic(vec![put(record("r2"), None), put(record("r1"), None)]);
        assert!(s.write(both).await.is_err(), "{name}");
        assert!(
            s.record(TENANT, "app", "r2").await.unwrap().is_none(),
            "{name}"
        );
    }
    cleanup(made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_token_swap_is_compare_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let (all, made) = stores(dir.path()).await;
    for (name, s) in all {
        let swap = |expected: Vec<u8>, value: Vec<u8>| {
            WriteOp::Atomic(vec![
                WriteOp::SwapRootToken { expected, value },
                WriteOp::Audit {
                    tenant: TENANT.into(),
                    audit: audit("rotate root token"),
                },
            ])
        };
        s.write(swap(vec![7; 32], vec![8; 32])).await.unwrap();
        assert_eq!(
            s.meta().await.unwrap().root_token_hash,
            vec![8; 32],
            "{name}"
        );
        // The loser of two rotations is refused and changes nothing.
        let lost = s.write(swap(vec![7; 32], vec![9; 32])).await;
        assert!(matches!(lost, Err(StoreError::Stale)), "{name}: {lost:?}");
        assert_eq!(
            s.meta().await.unwrap().root_token_hash,
            vec![8; 32],
            "{name}"
        );
    }
    cleanup(made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kek_in_use_is_not_retired() {
    let dir = tempfile::tempdir().unwrap();
    let (all, made) = stores(dir.path()).await;
    for (name, s) in all {
        let add = WriteOp::AddKey {
            tenant: TENANT.into(),
            key: KeyRow {
                kind: "kek".into(),
                version: 2,
                wrapped: vec![5; 40],
                created: 2,
            },
            meta: Vec::new(),
        };
        s.write(add).await.unwrap();
        // A record's DEK under version 1 keeps version 1 in the ring.
        let mut r = record("own-dek");
        r.owner = None;
        r.kek_version = Some(1);
        r.wrapped_dek = Some(vec![3; 40]);
        s.write(WriteOp::PutRecord {
            tenant: TENANT.into(),
            record: r,
            expected_version: None,
        })
        .await
        .unwrap();
        let retire = || WriteOp::RetireKek {
            tenant: TENANT.into(),
            version: 1,
            audit: audit("retire KEK version 1"),
        };
        let refused = s.write(retire()).await;
        assert!(
            matches!(refused, Err(StoreError::Stale)),
            "{name}: {refused:?}"
        );
        s.write(WriteOp::DeleteRecord {
            tenant: TENANT.into(),
            kind: "app".into(),
            id: "own-dek".into(),
        })
        .await
        .unwrap();
        s.write(retire()).await.unwrap();
        let versions: Vec<i64> = s
            .keys(TENANT)
            .await
            .unwrap()
            .iter()
            .filter(|k| k.kind == "kek")
            .map(|k| k.version)
            .collect();
        assert_eq!(versions, vec![2], "{name}");
    }
    cleanup(made).await;
}

fn user(token: &str) -> UserRow {
    UserRow {
        token: token.into(),
        kek_version: Some(1),
        wrapped_dek: Some(vec![4; 40]),
        data: Some(b"ciphertext".to_vec()),
        version: 1,
        created: 1,
        updated: 1,
        erased: None,
    }
}

fn entry(name: &'static str, digest: u8, key_version: i64) -> IndexEntry {
    IndexEntry {
        name,
        digest: vec![digest; 32],
        key_version,
    }
}

fn create(token: &str, indexes: Vec<IndexEntry>, guard: Option<Guard>) -> WriteOp {
    WriteOp::CreateUser {
        tenant: TENANT.into(),
        user: user(token),
        indexes,
        audit: audit("create user"),
        guard,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_keep_their_indexes_unique_and_versions_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (all, made) = stores(dir.path()).await;
    for (name, s) in all {
        s.write(create(
            "u1",
            vec![entry("email", 1, 1), entry("phone", 2, 1)],
            None,
        ))
        .await
        .unwrap();
        // The second holder of a digest is refused, naming the index; nothing of it stays.
        let taken = s
            .write(create(
                "u2",
                vec![entry("login", 3, 1), entry("phone", 2, 1)],
                None,
            ))
            .await;
        assert!(
            matches!(taken, Err(StoreError::Duplicate("phone"))),
            "{name}: {taken:?}"
        );
        assert!(s.user(TENANT, "u2").await.unwrap().is_none(), "{name}");
        let login = s
            .user_by_index(TENANT, "login", &[vec![3; 32]])
            .await
            .unwrap();
        assert!(login.is_none(), "{name}");
        // Found by either of two digests (a rotation's backfill).
        let found = s
            .user_by_index(TENANT, "email", &[vec![9; 32], vec![1; 32]])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.token, "u1", "{name}");
        // An update moves an index at the version read, once.
        let update = || WriteOp::UpdateUser {
            tenant: TENANT.into(),
            token: "u1".into(),
            expected_version: 1,
            data: b"new".to_vec(),
            drop_indexes: vec!["email"],
            add_indexes: vec![entry("email", 5, 1)],
            audit: audit("change profile"),
        };
        s.write(update()).await.unwrap();
        let stale = s.write(update()).await;
        assert!(matches!(stale, Err(StoreError::Stale)), "{name}: {stale:?}");
        let u = s.user(TENANT, "u1").await.unwrap().unwrap();
        assert_eq!(
            (u.version, u.data.as_deref()),
            (2, Some(&b"new"[..])),
            "{name}"
        );
        let old = s
            .user_by_index(TENANT, "email", &[vec![1; 32]])
            .await
            .unwrap();
        assert!(old.is_none(), "{name}");
        // A guard refuses a create while records of the guarded kind exist.
        let mut held = record("held");
        held.kind = "pending".into();
        held.owner = Some("someone@example.com".into());
        s.write(WriteOp::PutRecord {
            tenant: TENANT.into(),
            record: held,
            expected_version: None,
        })
        .await
        .unwrap();
        let guard = Guard {
            kind: "pending".into(),
            owners: vec!["someone@example.com".into()],
        };
        let guarded = s.write(create("u3", Vec::new(), Some(guard))).await;
        assert!(
            matches!(guarded, Err(StoreError::Guarded)),
            "{name}: {guarded:?}"
        );
        assert!(s.user(TENANT, "u3").await.unwrap().is_none(), "{name}");
        // Listing sees live users only; erasing drops the profile, the indexes and
        // the records the person owns.
        s.write(WriteOp::PutRecord {
            tenant: TENANT.into(),
            record: RecordRow {
                owner: Some("u1".into()),
                ..record("owned")
            },
            expected_version: None,
        })
        .await
        .unwrap();
        s.write(WriteOp::EraseUser {
            tenant: TENANT.into(),
            token: "u1".into(),
            preserve: None,
            keep_kind: "none".into(),
            audit: audit("forget user"),
        })
        .await
        .unwrap();
        let gone = s.user(TENANT, "u1").await.unwrap().unwrap();
        assert!(
            gone.erased.is_some() && gone.data.is_none() && gone.wrapped_dek.is_none(),
            "{name}"
        );
        let phone = s
            .user_by_index(TENANT, "phone", &[vec![2; 32]])
            .await
            .unwrap();
        assert!(phone.is_none(), "{name}");
        assert!(
            s.records_of(TENANT, "u1", "app").await.unwrap().is_empty(),
            "{name}"
        );
        let (total, page) = s.users_page(TENANT, 0, 10).await.unwrap();
        assert_eq!((total, page.len()), (0, 0), "{name}");
    }
    cleanup(made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_are_found_by_token_page_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let (all, made) = stores(dir.path()).await;
    for (name, s) in all {
        // Lone events arrive concurrently (the server backends batch them).
        let mut tokens = Vec::new();
        let mut writes = Vec::new();
        for i in 0..20 {
            let mut a = audit("get user");
            a.at = 1_000 + i;
            a.record = Some(if i % 2 == 0 { "even" } else { "odd" }.into());
            tokens.push((a.atoken.clone(), a.at));
            let s = s.clone();
            writes.push(tokio::spawn(async move {
                s.write(WriteOp::Audit {
                    tenant: TENANT.into(),
                    audit: a,
                })
                .await
            }));
        }
        for w in writes {
            w.await.unwrap().unwrap();
        }
        let (total, page) = s.audit_page(TENANT, Some("even"), 0, 4).await.unwrap();
        assert_eq!((total, page.len()), (10, 4), "{name}");
        let (total, _) = s.audit_page(TENANT, None, 0, 4).await.unwrap();
        assert_eq!(total, 20, "{name}");
        let (atoken, at) = &tokens[7];
        let hit = s.audit_event(TENANT, atoken, *at).await.unwrap().unwrap();
        assert_eq!(&hit.event.atoken, atoken, "{name}");
        assert_eq!(hit.event.name.as_deref(), Some("test.event"), "{name}");
        // Another tenant's view does not see it.
        assert!(
            s.audit_event("other", atoken, *at).await.unwrap().is_none(),
            "{name}"
        );
        // By ids, padded lists included; missing ids are skipped.
        let ids: Vec<i64> = s
            .audit_after(0, 100)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids.len(), 20, "{name}");
        let picked = [ids[3], ids[1], ids[3], ids[19] + 1000];
        let rows = s.audit_by_ids(&picked).await.unwrap();
        let got: Vec<i64> = rows.iter().map(|r| r.id).collect();
        assert_eq!(got, vec![ids[1], ids[3]], "{name}");
        s.probe_audit().await.unwrap();
    }
    cleanup(made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_head_moves_by_version_and_checkpoints_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (all, made) = stores(dir.path()).await;
    for (name, s) in all {
        for _ in 0..3 {
            s.write(WriteOp::Audit {
                tenant: TENANT.into(),
                audit: audit("get user"),
            })
            .await
            .unwrap();
        }
        let ids: Vec<i64> = s
            .audit_after(0, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        let seals: Vec<SealRow> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| SealRow {
                seq: i as i64 + 1,
                audit_id: *id,
                hash: vec![i as u8; 32],
            })
            .collect();
        let head = |seq: i64, version: i64| AuditHead {
            seq,
            hash: vec![seq as u8; 32],
            max_id: ids[seq as usize - 1],
            gaps: vec![(ids[0] - 1, 5)],
            version,
        };
        let first = || WriteOp::Seal {
            tenant: TENANT.into(),
            expected_version: None,
            seals: seals[..2].to_vec(),
            head: head(2, 1),
        };
        s.write(first()).await.unwrap();
        // A second "first" seal (another node) loses.
        let lost = s.write(first()).await;
        assert!(matches!(lost, Err(StoreError::Stale)), "{name}: {lost:?}");
        s.write(WriteOp::Seal {
            tenant: TENANT.into(),
            expected_version: Some(1),
            seals: seals[2..].to_vec(),
            head: head(3, 2),
        })
        .await
        .unwrap();
        assert_eq!(
            s.audit_head(TENANT).await.unwrap(),
            Some(head(3, 2)),
            "{name}"
        );
        assert_eq!(s.audit_seals(TENANT, 0, 10).await.unwrap(), seals, "{name}");
        let of = s.audit_seal_of(TENANT, 1, ids[2]).await.unwrap();
        assert_eq!(of, Some(seals[2].clone()), "{name}");
        // A checkpoint written twice (two sealers) is kept once.
        let cp = CheckpointRow {
            seq: 3,
            hash: vec![3; 32],
            at: 9,
            signature: vec![1; 64],
        };
        for _ in 0..2 {
            s.write(WriteOp::Checkpoint {
                tenant: TENANT.into(),
                checkpoint: cp.clone(),
            })
            .await
            .unwrap();
        }
        assert_eq!(
            s.audit_checkpoints(TENANT).await.unwrap(),
            vec![cp],
            "{name}"
        );
    }
    cleanup(made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_writes_only_current_users_and_gates_retirement() {
    let dir = tempfile::tempdir().unwrap();
    let (all, made) = stores(dir.path()).await;
    for (name, s) in all {
        for (t, d) in [("a", 1), ("b", 2), ("c", 3)] {
            s.write(create(t, vec![entry("email", d, 1)], None))
                .await
                .unwrap();
        }
        let (todo, next) = s.users_to_reindex(TENANT, (1, 2), "", 2).await.unwrap();
        let tokens: Vec<&str> = todo.iter().map(|u| u.token.as_str()).collect();
        assert_eq!(
            (tokens, next.as_deref()),
            (vec!["a", "b"], Some("b")),
            "{name}"
        );
        assert_eq!(
            s.count_reindex(TENANT, 1, 2).await.unwrap(),
            (3, 3),
            "{name}"
        );
        // The index secret cannot go while entries lack a successor.
        let retire = || WriteOp::RetireIndexKey {
            tenant: TENANT.into(),
            version: 1,
            successor: 2,
            audit: audit("retire index key 1"),
        };
        s.write(WriteOp::AddKey {
            tenant: TENANT.into(),
            key: KeyRow {
                kind: "index".into(),
                version: 1,
                wrapped: vec![1; 40],
                created: 1,
            },
            meta: vec![("note".into(), b"x".to_vec())],
        })
        .await
        .unwrap();
        let early = s.write(retire()).await;
        assert!(matches!(early, Err(StoreError::Stale)), "{name}: {early:?}");
        // "c" changed since it was read (version 1 != 7): skipped. Written twice: once.
        let rows = ["a", "b", "c"]
            .iter()
            .zip([11u8, 12, 13])
            .map(|(t, d)| Reindexed {
                token: t.to_string(),
                version: if *t == "c" { 7 } else { 1 },
                entries: vec![entry("email", d, 2)],
            })
            .collect::<Vec<_>>();
        for _ in 0..2 {
            s.write(WriteOp::Reindex {
                tenant: TENANT.into(),
                rows: rows.clone(),
                audit: audit("backfill"),
            })
            .await
            .unwrap();
        }
        assert_eq!(
            s.count_reindex(TENANT, 1, 2).await.unwrap(),
            (1, 3),
            "{name}"
        );
        let c = s
            .user_by_index(TENANT, "email", &[vec![13; 32]])
            .await
            .unwrap();
        assert!(c.is_none(), "{name}");
        s.write(WriteOp::Reindex {
            tenant: TENANT.into(),
            rows: vec![Reindexed {
                token: "c".into(),
                version: 1,
                entries: vec![entry("email", 13, 2)],
            }],
            audit: audit("backfill"),
        })
        .await
        .unwrap();
        s.write(retire()).await.unwrap();
        assert_eq!(
            s.tokens_with_old_index(TENANT, 2, "", 10).await.unwrap(),
            vec!["a", "b", "c"],
            "{name}"
        );
        s.write(WriteOp::PurgeIndex {
            tenant: TENANT.into(),
            below: 2,
            from: "a".into(),
            to: "c".into(),
        })
        .await
        .unwrap();
        assert!(
            s.tokens_with_old_index(TENANT, 2, "", 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert_eq!(
            s.meta_value("note").await.unwrap(),
            Some(b"x".to_vec()),
            "{name}"
        );
    }
    cleanup(made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_restores_every_row_and_batches_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (all, made) = stores(dir.path()).await;
    for (name, s) in all {
        assert!(!s.is_empty().await.unwrap(), "{name}");
        let again = s
            .initialize(InitData {
                tenant: TENANT.into(),
                canary: vec![1],
                root_token_hash: vec![1],
                keys: Vec::new(),
                meta: Vec::new(),
            })
            .await;
        assert!(
            matches!(again, Err(StoreError::AlreadyInitialized)),
            "{name}: {again:?}"
        );
        // Independent ops in one batch: the duplicate fails, the others commit.
        let results = s
            .write_batch(vec![
                create("x", vec![entry("email", 1, 1)], None),
                create("y", vec![entry("email", 1, 1)], None),
                create("z", vec![entry("email", 2, 1)], None),
            ])
            .await
            .unwrap();
        let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(ok, vec![true, false, true], "{name}");
        // Everything exported, wiped and imported again reads back the same.
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let exporter = {
            let s = s.clone();
            tokio::spawn(async move { s.export(tx).await })
        };
        let mut rows: Vec<(&'static strongbox_store::backup::Table, Vec<Cell>)> = Vec::new();
        while let Some(r) = rx.recv().await {
            rows.push(r);
        }
        exporter.await.unwrap().unwrap();
        let before = s.user(TENANT, "z").await.unwrap().unwrap();
        let audit_before = s.audit_after(0, 100).await.unwrap().len();
        let tables: Vec<_> = strongbox_store::backup::TABLES.iter().collect();
        let mut ops = vec![WriteOp::Wipe(tables.clone())];
        for table in &tables {
            let of: Vec<Vec<Cell>> = rows
                .iter()
                .filter(|(t, _)| t.name == table.name)
                .map(|(_, c)| c.clone())
                .collect();
            if !of.is_empty() {
                ops.push(WriteOp::ImportRows { table, rows: of });
            }
        }
        s.write(WriteOp::Atomic(ops)).await.unwrap();
        let after = s.user(TENANT, "z").await.unwrap().unwrap();
        assert_eq!(
            (after.data, after.version, after.wrapped_dek),
            (before.data, before.version, before.wrapped_dek),
            "{name}"
        );
        assert_eq!(
            s.audit_after(0, 100).await.unwrap().len(),
            audit_before,
            "{name}"
        );
        // New events still get new ids after a restore (PostgreSQL's sequence).
        s.write(WriteOp::Audit {
            tenant: TENANT.into(),
            audit: audit("after restore"),
        })
        .await
        .unwrap();
        assert_eq!(
            s.audit_after(0, 100).await.unwrap().len(),
            audit_before + 1,
            "{name}"
        );
        s.ping().await.unwrap();
    }
    cleanup(made).await;
}
