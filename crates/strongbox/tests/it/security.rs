//! Security properties: nothing readable at rest or in logs, ciphertext bound to its
//! row, keys checked at start, durability across restarts and SIGKILL.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::json;

use crate::backend_tests;
use crate::harness::{BIN, Backend, Body, Server, StoreLoc, init};

backend_tests!(
    no_plaintext_in_store_or_log,
    ciphertext_moved_to_another_row_fails,
    restart_and_sigkill_keep_acknowledged_writes,
    sigkill_under_create_load_loses_nothing_acknowledged,
    wrong_or_missing_root_key_is_refused,
    init_refuses_to_run_twice,
    init_takes_key_and_token_from_environment,
);

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn no_plaintext_in_store_or_log(b: &Backend) {
    let s = Server::start(b);
    let seeds = [
        "zq-login-7781",
        "zq.person.7781@example.org",
        "Zebulon Quixote-Sevenseventy",
        "77 Quarry Lane Zedtown",
        "+447700900781",
        "zq-custom-7781",
        "zq-diagnosis-hypertension",
        "zq-passport-X77810",
    ];
    let t = s.create_user(json!({
        "login": seeds[0], "email": seeds[1], "name": seeds[2], "address": seeds[3],
        "phone": seeds[4], "custom": seeds[5], "health": {"diagnosis": seeds[6]}
    }));
    s.call(
        "PUT",
        &format!("/v1/user/token/{t}"),
        Body::Json(json!({"kyc": seeds[7]})),
    )
    .expect(200);
    for (mode, id) in [
        ("login", seeds[0]),
        ("email", seeds[1]),
        ("phone", seeds[4]),
        ("custom", seeds[5]),
    ] {
        s.get_user(mode, id).expect(200);
    }
    // A lookup of an unknown value is not logged either.
    s.get_user("email", "zq.nobody.7781@example.org")
        .expect(404);
    let raw = s.store.raw_contents();
    assert!(raw.len() > 1000, "the scan must see the store's bytes");
    let log = s.log();
    assert!(
        log.contains("strongbox::access"),
        "the log must have request lines"
    );
    for seed in seeds
        .iter()
        .chain(["zq.nobody.7781@example.org", "Quixote"].iter())
    {
        for variant in [seed.to_string(), seed.to_lowercase(), seed.to_uppercase()] {
            assert!(
                !contains(&raw, &variant),
                "plaintext `{variant}` found in the store"
            );
            assert!(
                !log.contains(&variant),
                "plaintext `{variant}` found in the log"
            );
        }
    }
    // Neither the root token nor the root key reaches the log or the store.
    assert!(!log.contains(&s.token) && !contains(&raw, &s.token));
    assert!(!log.contains(&s.root_key) && !contains(&raw, &s.root_key));
}

fn ciphertext_moved_to_another_row_fails(b: &Backend) {
    let s = Server::start(b);
    let alice = s.create_user(json!({"login": "alice", "secret": "alice-secret"}));
    let bob = s.create_user(json!({"login": "bob", "secret": "bob-secret"}));
    // Give bob alice's ciphertext (keeping bob's own wrapped DEK), then alice's whole
    // key and ciphertext: neither opens in bob's row.
    s.store.sql(&format!(
        "UPDATE users SET data = (SELECT data FROM (SELECT data FROM users WHERE token = '{alice}') AS a) WHERE token = '{bob}'"
    ));
    let r = s.get_user("token", &bob);
    assert_eq!(r.status, 500, "{}", r.json);
    assert_eq!(
        r.json,
        json!({"status": "error", "message": "internal error"})
    );
    s.store.sql(&format!(
        "UPDATE users SET wrapped_dek = (SELECT w FROM (SELECT wrapped_dek AS w FROM users WHERE token = '{alice}') AS a) WHERE token = '{bob}'"
    ));
    assert_eq!(s.get_user("token", &bob).status, 500);
    // Alice is untouched, and the error told nobody anything.
    assert_eq!(
        s.get_user("token", &alice).expect(200)["data"]["secret"],
        "alice-secret"
    );
    assert!(!s.log().contains("alice-secret"));
}

fn restart_and_sigkill_keep_acknowledged_writes(b: &Backend) {
    let s = Server::start(b);
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push((i, s.create_user(json!({"login": format!("p{i}"), "n": i}))));
    }
    s.call(
        "PUT",
        "/v1/user/login/p0",
        Body::Json(json!({"changed": true})),
    )
    .expect(200);
    let s = s.restart();
    for (i, t) in &tokens {
        let v = s.get_user("login", &format!("p{i}")).expect(200);
        assert_eq!(v["token"], t.as_str());
        assert_eq!(v["data"]["n"], json!(i));
    }
    assert_eq!(
        s.get_user("token", &tokens[0].1).expect(200)["data"]["changed"],
        true
    );
    // Acknowledged writes from many threads, then SIGKILL with no warning.
    let acked: Vec<(String, String)> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..4)
            .map(|w| {
                let s = &s;
                scope.spawn(move || {
                    (0..25)
                        .map(|i| {
                            let login = format!("k{w}-{i}");
                            let t = s.create_user(json!({"login": login, "w": w}));
                            (login, t)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let s = s.crash_and_restart();
    for (login, t) in &acked {
        assert_eq!(
            s.get_user("login", login).expect(200)["token"],
            t.as_str(),
            "{login} lost"
        );
    }
    let s = s.crash_and_restart();
    assert_eq!(s.get_user("login", "k3-24").status, 200);
}

fn wrong_or_missing_root_key_is_refused(b: &Backend) {
    let store = StoreLoc::new(b);
    let init = init(&store);
    let serve = |key: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(&store.args);
        cmd.env_remove("STRONGBOX_ROOT_KEY");
        if let Some(k) = key {
            cmd.env("STRONGBOX_ROOT_KEY", k);
        }
        cmd.output().unwrap()
    };
    let other = "ab".repeat(32);
    let out = serve(Some(&other));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the root key does not match this store"),
        "{err}"
    );
    assert!(!err.contains(&other));
    let out = serve(None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no root key"));
    let out = serve(Some("not-hex"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid root key"));
    // The right key from a file works, once the file is private.
    let key_file = store.dir.path().join("root.key");
    std::fs::write(&key_file, format!("{}\n", init.root_key)).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--root-key-file"])
        .arg(&key_file)
        .args(&store.args)
        .env_remove("STRONGBOX_ROOT_KEY");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // (An empty STRONGBOX_ROOT_KEY counts as unset, so the file is what opens it.)
    let s = Server::serve(
        store,
        String::new(),
        init.root_token.clone(),
        vec!["--root-key-file".into(), key_file.display().to_string()],
    );
    assert_eq!(s.call("GET", "/v1/status", Body::None).status, 200);
}

fn init_refuses_to_run_twice(b: &Backend) {
    let store = StoreLoc::new(b);
    let first = init(&store);
    assert_eq!(first.root_key.len(), 64);
    assert!(first.root_key.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(first.root_token.len(), 36);
    let out = Command::new(BIN)
        .arg("init")
        .args(&store.args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already initialized"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Root key"));
    // The first key still opens the store.
    let s = Server::serve(store, first.root_key, first.root_token, vec![]);
    s.create_user(json!({"login": "still-works"}));
}

fn init_takes_key_and_token_from_environment(b: &Backend) {
    let store = StoreLoc::new(b);
    let key = "0f".repeat(32);
    let token = "8c1d2b9e-7f7e-4f4e-9a3a-2b1c0d9e8f7a";
    let out = Command::new(BIN)
        .arg("init")
        .args(&store.args)
        .env("STRONGBOX_ROOT_KEY", &key)
        .env("STRONGBOX_ROOT_TOKEN", token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains(&key) && !stdout.contains(token),
        "{stdout}"
    );
    let s = Server::serve(store, key, token.into(), vec![]);
    s.create_user(json!({"login": "env"}));
    assert_eq!(s.get_user("login", "env").status, 200);
}

fn sigkill_under_create_load_loses_nothing_acknowledged(b: &Backend) {
    let mut s = Server::start(b);
    let mut acked: Vec<(String, String)> = Vec::new();
    for round in 0..3 {
        let stop = std::sync::atomic::AtomicBool::new(false);
        let got: Vec<(String, String)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..6)
                .map(|w| {
                    let (s, stop) = (&s, &stop);
                    scope.spawn(move || {
                        let mut mine = Vec::new();
                        for i in 0.. {
                            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                                break;
                            }
                            let login = format!("r{round}-w{w}-{i}");
                            let body = json!({"login": login, "email": format!("{login}@example.com"), "i": i});
                            match s.try_call_as(Some(&s.token), "POST", "/v1/user", Body::Json(body)) {
                                Some(r) if r.status == 200 => {
                                    mine.push((login, r.json["token"].as_str().unwrap().to_string()));
                                }
                                Some(r) => panic!("unexpected answer under load: {} {}", r.status, r.json),
                                // The server died under us: this request was never acknowledged.
                                None => break,
                            }
                        }
                        mine
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(700));
            s.sigkill();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            workers
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert!(!got.is_empty(), "round {round} acknowledged nothing");
        acked.extend(got);
        s = s.crash_and_restart();
        for (login, token) in &acked {
            let v = s.get_user("login", login).expect(200);
            assert_eq!(v["token"], token.as_str(), "{login} lost after SIGKILL");
            assert_eq!(v["data"]["login"], login.as_str());
            let v = s
                .get_user("email", &format!("{login}@example.com"))
                .expect(200);
            assert_eq!(
                v["token"],
                token.as_str(),
                "email index disagrees for {login}"
            );
        }
    }
    // Indexes agree with records: every index row points at a live user, and every
    // live user has exactly its login and email entries.
    let orphans = s.store.sql(
        "SELECT COUNT(*) FROM user_index i LEFT JOIN users u ON u.tenant = i.tenant AND u.token = i.token \
         WHERE u.token IS NULL OR u.erased IS NOT NULL",
    );
    assert_eq!(orphans.trim(), "0");
    let users: usize = s
        .store
        .sql("SELECT COUNT(*) FROM users")
        .trim()
        .parse()
        .unwrap();
    let entries: usize = s
        .store
        .sql("SELECT COUNT(*) FROM user_index")
        .trim()
        .parse()
        .unwrap();
    assert!(
        users >= acked.len(),
        "{users} rows for {} acknowledged creates",
        acked.len()
    );
    assert_eq!(
        entries,
        2 * users,
        "each user has a login and an email entry"
    );
}
