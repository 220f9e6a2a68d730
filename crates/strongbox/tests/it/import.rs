//! `strongbox import`: the bulk path, on every backend.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::backend_tests;
use crate::harness::{BIN, Backend, Server, StoreLoc, init};

backend_tests!(import_creates_users_and_reports_each_line);

fn import_creates_users_and_reports_each_line(b: &Backend) {
    let store = StoreLoc::new(b);
    let keys = init(&store);
    let mut input = String::new();
    for i in 0..250 {
        input.push_str(
            &json!({"login": format!("imp{i}"), "email": format!("imp{i}@example.com"), "n": i})
                .to_string(),
        );
        input.push('\n');
    }
    input.push_str("{\"login\":\"imp7\"}\n"); // duplicate login
    input.push_str("not json\n");
    input.push_str("{\"name\":\"no index\"}\n");
    let mut child = Command::new(BIN)
        .args(["import", "--batch-size", "40", "--jobs", "3"])
        .args(&store.args)
        .env("STRONGBOX_ROOT_KEY", &keys.root_key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "refused lines make the exit code non-zero"
    );
    assert!(stderr.contains("imported 250 users"), "{stderr}");
    assert!(stderr.contains("3 refused"), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 253, "{stdout}");
    assert_eq!(lines[250], "error: duplicate index: login");
    assert!(
        lines[251].starts_with("error: invalid JSON"),
        "{}",
        lines[251]
    );
    assert_eq!(
        lines[252],
        "error: failed to create user, all user lookup fields are missing"
    );
    let s = Server::serve(store, keys.root_key, keys.root_token, vec![]);
    for i in [0usize, 77, 249] {
        let v = s
            .get_user("email", &format!("IMP{i}@example.com"))
            .expect(200);
        assert_eq!(v["token"], lines[i], "line {i} names the token of user {i}");
        assert_eq!(v["data"]["n"], json!(i));
    }
    assert_eq!(s.store.sql("SELECT COUNT(*) FROM users").trim(), "250");
    assert_eq!(s.store.sql("SELECT COUNT(*) FROM user_index").trim(), "500");
}
