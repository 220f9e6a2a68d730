//! Root-key rotation, on every backend: data, the root token and user access tokens
//! survive; the old key no longer opens the store; rotating into and out of shares.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::backend_tests;
use crate::harness::{BIN, Backend, Body, Server, StoreLoc};
use crate::tokens::issue;

backend_tests!(root_key_rotation_keeps_data_and_tokens);

/// Runs `strongbox rotate root-key` with `env` and `stdin`; returns (code, stdout).
fn rotate(store: &StoreLoc, root_key: Option<&str>, extra: &[&str], stdin: &str) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["rotate", "root-key"])
        .args(&store.args)
        .args(extra)
        .env_remove("STRONGBOX_ROOT_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = root_key {
        cmd.env("STRONGBOX_ROOT_KEY", k);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
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
    s.stop();
    // Without the current key nothing happens.
    let (code, out) = rotate(&s.store, Some(&"00".repeat(32)), &[], "");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("does not match"), "{out}");
    let (code, out) = rotate(&s.store, Some(&old), &[], "");
    assert_eq!(code, 0, "{out}");
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
