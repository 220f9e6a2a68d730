//! First run and operations: errors that say what is wrong with which path or
//! address, `init` on a database an application already uses, and read-only
//! commands that work with read rights only. On every backend.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::backend_tests;
use crate::harness::{Backend, Server, StoreLoc, init, run_bin};

backend_tests!(
    init_refuses_tables_it_does_not_own,
    read_only_commands_never_migrate,
);

/// `init` on a database that already has an application's `users` table refuses
/// before writing anything and names the table; on PostgreSQL a schema of its own
/// (`--database-schema`) keeps the two apart.
fn init_refuses_tables_it_does_not_own(b: &Backend) {
    let mut store = StoreLoc::new(b);
    if matches!(b, Backend::Sqlite) {
        std::fs::create_dir_all(store.dir.path().join("data")).unwrap();
    }
    store.sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)");
    store.sql("INSERT INTO users (id, name) VALUES (1, 'app row')");
    let mut args = vec!["init"];
    args.extend(store.args.iter().map(String::as_str));
    let (code, out) = run_bin(&args, &[("STRONGBOX_ROOT_KEY", None)], "");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("already has tables") && out.contains("(users)"),
        "{out}"
    );
    // Nothing was left behind, and the application's row is untouched.
    let tables = match b {
        Backend::Sqlite => store.sql("SELECT name FROM sqlite_master WHERE type = 'table'"),
        Backend::Postgres(_) => store
            .sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"),
        Backend::Mysql(_) => store.sql("SHOW TABLES"),
    };
    assert_eq!(tables.trim(), "users", "{tables}");
    assert_eq!(store.sql("SELECT name FROM users").trim(), "app row");
    if !matches!(b, Backend::Postgres(_)) {
        return;
    }
    store
        .args
        .extend(["--database-schema".into(), "vault_sbx".into()]);
    let keys = init(&store);
    let s = Server::serve(store, keys.root_key, keys.root_token, vec![]);
    s.create_user(json!({"login": "schema-user"}));
    s.get_user("login", "schema-user").expect(200);
    let ours = s
        .store
        .sql("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'vault_sbx'");
    assert!(ours.trim().parse::<i64>().unwrap() >= 9, "{ours}");
    assert_eq!(
        s.store.sql("SELECT name FROM public.users").trim(),
        "app row"
    );
}

/// `audit verify` and `backup` from the store work for a role that may only read;
/// when the schema is behind they refuse with a clear message instead of migrating.
fn read_only_commands_never_migrate(b: &Backend) {
    let s = Server::start(b);
    s.create_user(json!({"login": "ro-user"}));
    let (db, url) = match (&s.store.db, &s.store.url) {
        (Some(db), Some(url)) => (db.clone(), url.clone()),
        _ => return, // SQLite: file permissions, not roles
    };
    let role = format!("{db}_ro");
    let ro_url = match b {
        Backend::Postgres(_) => {
            s.store.sql(&format!("CREATE ROLE {role} LOGIN"));
            s.store
                .sql(&format!("GRANT USAGE ON SCHEMA public TO {role}"));
            s.store.sql(&format!(
                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
            ));
            url.replacen("postgres@", &format!("{role}@"), 1)
        }
        _ => {
            s.store.sql(&format!("CREATE USER '{role}'@'%'"));
            s.store
                .sql(&format!("GRANT SELECT ON {db}.* TO '{role}'@'%'"));
            s.store.sql(&format!("CREATE USER '{role}'@'localhost'"));
            s.store
                .sql(&format!("GRANT SELECT ON {db}.* TO '{role}'@'localhost'"));
            url.replacen("root@", &format!("{role}@"), 1)
        }
    };
    assert_ne!(ro_url, url);
    let out_file = s.store.dir.path().join("ro.backup");
    let verify = ["audit", "verify", "--database-url", &ro_url];
    let backup = [
        "backup",
        "--out",
        out_file.to_str().unwrap(),
        "--database-url",
        &ro_url,
    ];
    let (code, out) = run_bin(&verify, &[], "");
    assert_eq!(code, 0, "{out}");
    let (code, out) = run_bin(&backup, &[], "");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("backup written"), "{out}");
    // A schema one version behind: the read-only commands say so and change nothing.
    let newest = s.store.sql("SELECT MAX(version) FROM strongbox_migrations");
    s.store.sql(&format!(
        "DELETE FROM strongbox_migrations WHERE version = {}",
        newest.trim()
    ));
    for args in [&verify[..], &backup[..]] {
        let (code, out) = run_bin(args, &[], "");
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("does not change the schema"), "{out}");
    }
    let after = s.store.sql("SELECT COUNT(*) FROM strongbox_migrations");
    assert_eq!(
        after.trim().parse::<i64>().unwrap(),
        newest.trim().parse::<i64>().unwrap() - 1
    );
    let cleanup = match b {
        Backend::Postgres(_) => vec![
            format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"),
            format!("REVOKE ALL ON SCHEMA public FROM {role}"),
        ],
        _ => vec![
            format!("DROP USER '{role}'@'%'"),
            format!("DROP USER '{role}'@'localhost'"),
        ],
    };
    for st in cleanup {
        s.store.sql(&st);
    }
    if matches!(b, Backend::Postgres(_)) {
        // The database (and with it the grants) is dropped with the store; the role
        // is cluster-wide.
        drop(s);
        let admin = std::env::var("STRONGBOX_TEST_POSTGRES_URL").unwrap();
        let _ = std::process::Command::new("psql")
            .args([
                admin.as_str(),
                "-qc",
                &format!("DROP ROLE IF EXISTS {role}"),
            ])
            .output();
    }
}

/// Errors name the path or address and what is wrong with it, and come fast.
#[test]
fn errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let key = "11".repeat(32);
    let env = [("STRONGBOX_ROOT_KEY", Some(key.as_str()))];
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    let (code, out) = run_bin(
        &["serve", "--data-dir", f, "--listen", "127.0.0.1:0"],
        &env,
        "",
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(&format!("{f} is not a directory")), "{out}");
    let missing = dir.path().join("missing");
    let m = missing.to_str().unwrap();
    let (code, out) = run_bin(
        &["serve", "--data-dir", m, "--listen", "127.0.0.1:0"],
        &env,
        "",
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(m) && out.contains("not initialized"), "{out}");
    let (code, out) = run_bin(&["init", "--data-dir", &format!("{f}/sub")], &env, "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(f), "{out}");
    // --database-schema is PostgreSQL's.
    let (code, out) = run_bin(
        &["init", "--data-dir", m, "--database-schema", "x"],
        &env,
        "",
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("PostgreSQL"), "{out}");
    // Nothing listens on port 1: refused at once, with the address.
    let started = Instant::now();
    let (code, out) = run_bin(
        &[
            "serve",
            "--database-url",
            "postgres://strongbox:secret-pw@127.0.0.1:1/vault",
            "--listen",
            "127.0.0.1:0",
        ],
        &env,
        "",
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("cannot connect to postgres://127.0.0.1:1/vault"),
        "{out}"
    );
    assert!(!out.contains("secret-pw"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // A configuration error exits 2 like every other error.
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "no_such_key = 1\n").unwrap();
    let c = config.to_str().unwrap();
    let (code, out) = run_bin(&["--config", c, "serve"], &env, "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unknown field `no_such_key`"), "{out}");
    // `import --help` lists what import uses, not the server's settings.
    let (code, out) = run_bin(&["import", "--help"], &[], "");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("--default-country") && out.contains("--batch-size"),
        "{out}"
    );
    for server_only in [
        "--sweep-interval",
        "--self-service-forget-me",
        "--list-users",
    ] {
        assert!(!out.contains(server_only), "{server_only} in {out}");
    }
}

/// One declaration per setting: a flag beats the environment, which beats the
/// file, which beats the built-in default; `serve --print-config` shows each value
/// and its source, with secrets masked.
#[test]
fn configuration_layers_and_print_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strongbox.toml");
    std::fs::write(
        &config,
        "database_url = \"postgres://vault:hunter2-secret@db.internal/vault\"\n\
         sweep_interval = 30\n\
         rewrap_batch = 7\n\
         kek_retire_after = 9\n\
         self_service_app_record_change = [\"shop*\", \"blog\"]\n",
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let (code, out) = run_bin(
        &[
            "--config",
            c,
            "serve",
            "--print-config",
            "--kek-retire-after",
            "5",
        ],
        &[
            ("STRONGBOX_REWRAP_BATCH", Some("8")),
            ("STRONGBOX_ROOT_KEY", Some("not-shown-root-key")),
        ],
        "",
    );
    assert_eq!(code, 0, "{out}");
    for line in [
        "sweep_interval = 30  # file",
        "rewrap_batch = 8  # env",
        "kek_retire_after = 5  # flag",
        "unseal_timeout = 600  # built-in default",
        "self_service_app_record_change = [\"shop*\", \"blog\"]  # file",
        "database_url = \"postgres://vault:***@db.internal/vault\"  # file",
        "STRONGBOX_ROOT_KEY: set",
    ] {
        assert!(out.contains(line), "no `{line}` in\n{out}");
    }
    assert!(
        !out.contains("hunter2") && !out.contains("not-shown-root-key"),
        "{out}"
    );
}
