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
use strongbox_store::{
    AuditEvent, Durability, InitData, KeyRow, Location, OpenOptions, RecordRow, Store, StoreError,
    WriteOp,
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
