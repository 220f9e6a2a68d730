//! The program contract: `demo`, `--help`, the config file and environment variables.

use std::process::{Command, Stdio};

use serde_json::json;

use crate::harness::{BIN, Backend, Body, Server, StoreLoc, agent, init, wait_listening};

#[test]
fn demo_serves_with_token_demo_and_warns() {
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = wait_listening(&mut child);
    let agent = agent();
    let mut resp = agent
        .post(format!("{base}/v1/user"))
        .header("X-Bunker-Token", "DEMO")
        .header("Content-Type", "application/json")
        .send(r#"{"login":"demo-user"}"#)
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["status"], "ok");
    let resp = agent
        .get(format!("{base}/v1/user/login/demo-user"))
        .header("X-Bunker-Token", "WRONG")
        .call()
        .unwrap();
    assert_eq!(resp.status(), 403);
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("WARNING: demo mode"), "{stderr}");
    assert!(stderr.contains("deleted on exit"), "{stderr}");
}

#[test]
fn help_documents_every_setting() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--listen",
        "STRONGBOX_LISTEN",
        "--data-dir",
        "STRONGBOX_DATA_DIR",
        "--database-url",
        "STRONGBOX_DATABASE_URL",
        "--root-key-file",
        "STRONGBOX_ROOT_KEY_FILE",
        "STRONGBOX_ROOT_KEY",
        "--max-body-bytes",
        "STRONGBOX_MAX_BODY_BYTES",
        "--default-country",
        "STRONGBOX_DEFAULT_COUNTRY",
        "--create-user-without-access-token",
        "STRONGBOX_CREATE_USER_WITHOUT_ACCESS_TOKEN",
        "--sqlite-durability",
        "STRONGBOX_SQLITE_DURABILITY",
        "--config",
        "STRONGBOX_CONFIG",
        "--log",
        "STRONGBOX_LOG",
        "File key",
    ] {
        assert!(
            help.contains(needle),
            "serve --help lacks {needle}:\n{help}"
        );
    }
    let out = Command::new(BIN).args(["init", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("STRONGBOX_ROOT_TOKEN") && help.contains("--database-url"),
        "{help}"
    );
}

#[test]
fn config_file_and_environment_layer_under_flags() {
    let store = StoreLoc::new(&Backend::Sqlite);
    let init = init(&store);
    let data_dir = &store.args[1];
    let cfg = store.dir.path().join("strongbox.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = \"{data_dir}\"\ndefault_country = \"US\"\nmax_body_bytes = 100\n"),
    )
    .unwrap();
    // Config file sets the store and the phone region; the environment overrides the
    // body cap from the file.
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .env("STRONGBOX_ROOT_KEY", &init.root_key)
        .env("STRONGBOX_MAX_BODY_BYTES", "2000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = wait_listening(&mut child);
    let agent = agent();
    let body = json!({"phone": "(415) 555-2671", "pad": "p".repeat(500)}).to_string();
    let resp = agent
        .post(format!("{base}/v1/user"))
        .header("X-Bunker-Token", &init.root_token)
        .header("Content-Type", "application/json")
        .send(body.as_str())
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "env's 2000-byte cap wins over the file's 100"
    );
    let resp = agent
        .get(format!("{base}/v1/user/phone/%2B14155552671"))
        .header("X-Bunker-Token", &init.root_token)
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200, "default_country = US from the file");
    let _ = child.kill();
    let _ = child.wait();

    // Unknown keys in the file are an error, not silently ignored.
    std::fs::write(&cfg, "data_dri = \"/tmp/x\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("STRONGBOX_ROOT_KEY", &init.root_key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field"));
}

#[test]
fn both_data_dir_and_url_is_an_error() {
    let out = Command::new(BIN)
        .args([
            "init",
            "--data-dir",
            "/tmp/x",
            "--database-url",
            "sqlite:///tmp/y.db",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not both"));
    let out = Command::new(BIN)
        .args(["init", "--database-url", "redis://localhost"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}

#[test]
fn sqlite_url_selects_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/vault.db", dir.path().display());
    let store = StoreLoc {
        backend: Backend::Sqlite,
        args: vec!["--database-url".into(), url],
        dir,
        db: None,
        url: None,
    };
    let init = init(&store);
    let s = Server::serve(store, init.root_key, init.root_token, vec![]);
    s.create_user(json!({"login": "on-url"}));
    assert!(s.store.dir.path().join("vault.db").exists());
    assert_eq!(
        s.call("GET", "/v1/user/login/on-url", Body::None).status,
        200
    );
}

/// `init` makes the data directory private to the vault's user (0700) and its
/// database files 0600, WAL included.
#[test]
fn init_creates_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let store = StoreLoc::new(&Backend::Sqlite);
    init(&store);
    let data = store.dir.path().join("data");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    assert!(files >= 1);
}
