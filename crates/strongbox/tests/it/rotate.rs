//! Root-key rotation, on every backend: data, the root token and user access tokens
//! survive; the old key no longer opens the store; rotating into and out of shares.

use std::process::Command;

use serde_json::json;

use crate::backend_tests;
use crate::harness::{BIN, Backend, Body, Server, StoreLoc, run_bin};
use crate::tokens::issue;

backend_tests!(
    root_key_rotation_keeps_data_and_tokens,
    kek_rotation_under_load_fails_nothing,
    kek_rewrap_resumes_after_a_crash,
);

/// Runs `strongbox rotate root-key` with `env` and `stdin`; returns (code, stdout).
fn rotate(store: &StoreLoc, root_key: Option<&str>, extra: &[&str], stdin: &str) -> (i32, String) {
    let mut args = vec!["rotate", "root-key"];
    args.extend(store.args.iter().map(String::as_str));
    args.extend(extra);
    run_bin(&args, &[("STRONGBOX_ROOT_KEY", root_key)], stdin)
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in {out}"))
        .trim()
}

fn serve_fails(store: &StoreLoc, key: &str) -> String {
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(&store.args)
        .env("STRONGBOX_ROOT_KEY", key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn root_key_rotation_keeps_data_and_tokens(b: &Backend) {
    let mut s = Server::start(b);
    let t = s.create_user(json!({"email": "rot@example.com", "name": "R"}));
    let xt = issue(&s, "token", &t, Body::Json(json!({"expiration": "1d"})));
    let old = s.root_key.clone();
    // Without the current key nothing happens.
    let (code, out) = rotate(&s.store, Some(&"00".repeat(32)), &[], "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("does not match"), "{out}");
    // Rotated while the server runs: it keeps serving, but refuses to add a KEK
    // wrapped with the old key until restarted with the new one.
    let (code, out) = rotate(&s.store, Some(&old), &[], "");
    assert_eq!(code, 0, "{out}");
    s.get_user("email", "rot@example.com").expect(200);
    let r = s.call("POST", "/v1/sys/rotate/kek", Body::None);
    assert_eq!(r.status, 409, "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap().contains("restart"),
        "{}",
        r.json
    );
    s.stop();
    let new = line(&out, "Root key:").to_string();
    assert_ne!(new, old);
    assert!(serve_fails(&s.store, &old).contains("does not match"));
    // The new key opens it; the root token and the user's token still work.
    let (token, store) = (
        s.token.clone(),
        std::mem::replace(&mut s.store, StoreLoc::placeholder()),
    );
    let mut s = Server::serve(store, new.clone(), token.clone(), vec![]);
    s.get_user("email", "rot@example.com").expect(200);
    s.call_as(Some(&xt), "GET", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    s.stop();
    // Into shares: the new key is printed as shares only.
    let (code, out) = rotate(
        &s.store,
        Some(&new),
        &["--shares", "3", "--threshold", "2"],
        "",
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("Root key:"), "{out}");
    let shares: Vec<String> = (1..=3)
        .map(|n| line(&out, &format!("Share {n}:")).to_string())
        .collect();
    assert!(serve_fails(&s.store, &new).contains("does not match"));
    // And out of them again: the current key given as shares on stdin.
    let (code, out) = rotate(
        &s.store,
        None,
        &[],
        &format!("{}\n{}\n", shares[2], shares[0]),
    );
    assert_eq!(code, 0, "{out}");
    let last = line(&out, "Root key:").to_string();
    let store = std::mem::replace(&mut s.store, StoreLoc::placeholder());
    let s = Server::serve(store, last, token, vec![]);
    assert_eq!(s.get_user("token", &t).expect(200)["data"]["name"], "R");
    s.call_as(Some(&xt), "GET", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    // The audit chain is untouched by all this.
    s.call("POST", "/v1/audit/checkpoint", Body::None)
        .expect(200);
    let mut args = vec!["audit", "verify"];
    args.extend(s.store.args.iter().map(String::as_str));
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn count(store: &StoreLoc, sql: &str) -> i64 {
    store.sql(sql).trim().parse().unwrap()
}

/// Users, and sessions of anonymous visitors (records with DEKs of their own).
fn populate(s: &Server, users: usize) -> (Vec<String>, Vec<String>) {
    let tokens: Vec<String> = (0..users)
        .map(|i| s.create_user(json!({"email": format!("k{i}@example.com"), "n": i})))
        .collect();
    let sessions: Vec<String> = (0..5)
        .map(|i| {
            let sid = format!("0b4ecb62-8c2e-4fa4-8a7a-f53b9e0f4b{i:02}");
            s.call(
                "POST",
                &format!("/v1/session/{sid}"),
                Body::Json(json!({"cart": i})),
            )
            .expect(200);
            sid
        })
        .collect();
    (tokens, sessions)
}

fn kek_rotation_under_load_fails_nothing(b: &Backend) {
    let s = Server::start_with(b, &["--rewrap-batch", "40", "--kek-retire-after", "1"]);
    let (tokens, sessions) = populate(&s, 150);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let failures = std::thread::scope(|scope| {
        let load: Vec<_> = (0..3)
            .map(|k| {
                let (s, tokens, stop) = (&s, &tokens, &stop);
                scope.spawn(move || {
                    let mut bad = Vec::new();
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let t = &tokens[(i * 7 + k) % tokens.len()];
                        let r = match i % 3 {
                            0 => s.call("GET", &format!("/v1/user/token/{t}"), Body::None),
                            1 => s.call(
                                "PUT",
                                &format!("/v1/user/token/{t}"),
                                Body::Json(json!({"seen": i})),
                            ),
                            _ => s.call(
                                "POST",
                                "/v1/user",
                                Body::Json(json!({"email": format!("new{k}-{i}@example.com")})),
                            ),
                        };
                        if r.status != 200 {
                            bad.push((r.status, r.json.to_string()));
                        }
                        i += 1;
                    }
                    bad
                })
            })
            .collect();
        let out = Command::new(BIN)
            .args(["rotate", "kek", "--addr", &s.base, "--token", &s.token])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("Done: every DEK is wrapped by KEK version 2"),
            "{text}"
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        load.into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(
        failures.is_empty(),
        "requests failed during the rotation: {failures:?}"
    );
    assert_eq!(
        count(&s.store, "SELECT COUNT(*) FROM users WHERE kek_version = 1"),
        0
    );
    for t in &tokens {
        s.get_user("token", t).expect(200);
    }
    for sid in &sessions {
        s.call("GET", &format!("/v1/session/{sid}"), Body::None)
            .expect(200);
    }
    // Nothing uses version 1 any more: it is retired from the key ring.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while count(
        &s.store,
        "SELECT COUNT(*) FROM key_ring WHERE kind = 'kek' AND version = 1",
    ) > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "KEK 1 was not retired"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let v = s.call("GET", "/v1/sys/rotate/kek", Body::None).expect(200);
    assert_eq!((&v["current"], &v["remaining"]), (&json!(2), &json!(0)));
}

fn kek_rewrap_resumes_after_a_crash(b: &Backend) {
    let s = Server::start_with(b, &["--rewrap-batch", "3"]);
    let (tokens, _) = populate(&s, 200);
    s.call("POST", "/v1/sys/rotate/kek", Body::None).expect(200);
    // Killed in the middle of the re-wrap (it needs ~7 s at 3 per 100 ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let done = count(&s.store, "SELECT COUNT(*) FROM users WHERE kek_version = 2");
        if done > 20 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the re-wrap did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let s = s.crash_and_restart();
    let left = count(&s.store, "SELECT COUNT(*) FROM users WHERE kek_version = 1");
    assert!(left > 0, "the crash came too late to test anything");
    // Readable throughout, and finished by the next run.
    for t in tokens.iter().take(20) {
        s.get_user("token", t).expect(200);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count(&s.store, "SELECT COUNT(*) FROM users WHERE kek_version = 1") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the re-wrap did not resume"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for t in &tokens {
        s.get_user("token", t).expect(200);
    }
}
