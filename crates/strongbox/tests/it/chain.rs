//! The tamper-evident audit chain, checkpoints, erasure receipts, access reports and
//! failing closed without the audit log — end to end on every backend. Tampering is
//! done with SQL straight against the database, as an attacker with database access
//! would; the verifier must name each change.

use std::process::Command;

use serde_json::json;

use crate::backend_tests;
use crate::harness::{BIN, Backend, Body, Server, StoreLoc};
use crate::tokens::issue;

backend_tests!(
    verifier_names_every_kind_of_tampering,
    external_checkpoint_catches_a_rewritten_tail,
    erasure_receipts_verify_and_forgeries_fail,
    access_report_is_signed_and_only_for_the_subject,
    audit_outage_fails_closed,
    concurrent_servers_build_one_verifiable_chain,
    a_replaced_public_key_is_caught,
    a_crash_under_load_leaves_a_verifiable_chain,
    the_live_check_reports_a_modified_event,
);

/// Runs the binary; returns (exit code, stdout).
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

fn verify(store: &StoreLoc, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["audit", "verify"];
    args.extend(store.args.iter().map(String::as_str));
    args.extend(extra);
    run(&args)
}

/// The row id of the event at chain position `seq`.
fn row_at(store: &StoreLoc, seq: i64) -> i64 {
    store
        .sql(&format!(
            "SELECT audit_id FROM audit_seal WHERE tenant = 'default' AND seq = {seq}"
        ))
        .trim()
        .parse()
        .unwrap()
}

fn sealed(store: &StoreLoc) -> i64 {
    store
        .sql("SELECT COALESCE(MAX(seq), 0) FROM audit_seal")
        .trim()
        .parse()
        .unwrap()
}

/// Some traffic: users created, read, changed, given app data, one erased.
fn traffic(s: &Server, n: usize) {
    for i in 0..n {
        let t = s.create_user(json!({"email": format!("u{i}@example.com"), "name": "n"}));
        s.get_user("token", &t).expect(200);
        s.call(
            "POST",
            &format!("/v1/userapp/token/{t}/shop"),
            Body::Json(json!({"cart": i})),
        )
        .expect(200);
        if i % 3 == 0 {
            s.call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
                .expect(200);
        }
    }
}

fn verifier_names_every_kind_of_tampering(b: &Backend) {
    let mut s = Server::start(b);
    traffic(&s, 6);
    s.stop(); // a clean stop seals everything
    let store = &s.store;
    let (code, out) = verify(store, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: the audit chain is intact"), "{out}");
    let n = sealed(store);
    assert!(n >= 20, "{out}");

    // Modify one event, delete another, swap two (they exchange row ids, so each
    // link now points at the other's event), slip one in below the sealed range,
    // and cut off the tail.
    let modified = row_at(store, 3);
    store.sql(&format!(
        "UPDATE audit SET actor = 'mallory' WHERE id = {modified}"
    ));
    let deleted = row_at(store, 5);
    store.sql(&format!("DELETE FROM audit WHERE id = {deleted}"));
    let (a, c) = (row_at(store, 8), row_at(store, 9));
    store.sql(&format!("UPDATE audit SET id = -100 WHERE id = {a}"));
    store.sql(&format!("UPDATE audit SET id = {a} WHERE id = {c}"));
    store.sql(&format!("UPDATE audit SET id = {c} WHERE id = -100"));
    store.sql(
        "INSERT INTO audit (id, atoken, tenant, at, actor, action, record, status) \
         VALUES (-7, 'forged-event', 'default', 1, 'root', 'get user record', NULL, 'ok')",
    );
    let (t1, t2) = (row_at(store, n - 1), row_at(store, n));
    store.sql(&format!("DELETE FROM audit WHERE id IN ({t1}, {t2})"));

    let (code, out) = verify(store, &[]);
    assert_eq!(code, 1, "{out}");
    for expected in [
        "MODIFIED: the event at seq 3 ".to_string(),
        "DELETED: the event at seq 5 ".to_string(),
        "REORDERED: the events at seq 8 and seq 9 are swapped".to_string(),
        "INSERTED: row -7 (event forged-event)".to_string(),
        format!("TRUNCATED: the chain ends at seq {}", n - 2),
    ] {
        assert!(out.contains(&expected), "missing `{expected}` in:\n{out}");
    }
    assert!(out.contains("FAILED: 5 problem(s) found"), "{out}");
}

fn external_checkpoint_catches_a_rewritten_tail(b: &Backend) {
    let mut s = Server::start(b);
    traffic(&s, 3);
    let cp = s
        .call("POST", "/v1/audit/checkpoint", Body::None)
        .expect(200);
    let latest = s
        .call("GET", "/v1/audit/checkpoint", Body::None)
        .expect(200);
    assert_eq!(latest["checkpoint"], cp["checkpoint"]);
    let seq = cp["checkpoint"]["seq"].as_i64().unwrap();
    assert!(seq > 5);
    // The sealer's progress is in the metrics.
    let metrics = s.call("GET", "/v1/metrics", Body::None);
    let text = metrics.json.as_str().unwrap().to_string();
    let sealed: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("strongbox_audit_sealed_events "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(sealed >= seq, "{text}");
    // Not for users or anonymous callers.
    assert_eq!(
        s.call_as(None, "GET", "/v1/audit/checkpoint", Body::None)
            .status,
        401
    );
    let file = s.store.dir.path().join("checkpoint.json");
    std::fs::write(&file, cp.to_string()).unwrap();
    let file = file.display().to_string();
    s.stop();
    let store = &s.store;
    let (code, out) = verify(store, &["--from-checkpoint", &file]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("up to seq {seq}")), "{out}");

    // An attacker who also removes the links, moves the head back and deletes the
    // stored checkpoints leaves a chain that is consistent in itself...
    let keep = seq - 3;
    let cut = row_at(store, keep);
    store.sql(&format!("DELETE FROM audit WHERE id > {cut}"));
    store.sql(&format!("DELETE FROM audit_seal WHERE seq > {keep}"));
    let hash = store.sql(&format!("SELECT seq FROM audit_seal WHERE seq = {keep}"));
    assert_eq!(hash.trim(), keep.to_string());
    store.sql(&format!(
        "UPDATE audit_head SET seq = {keep}, max_id = {cut}, \
         hash = (SELECT hash FROM audit_seal WHERE tenant = 'default' AND seq = {keep})"
    ));
    store.sql("DELETE FROM audit_checkpoint");
    let (code, out) = verify(store, &[]);
    assert_eq!(code, 0, "{out}");
    // ...but not with the checkpoint kept elsewhere.
    let (code, out) = verify(store, &["--from-checkpoint", &file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "TRUNCATED: the chain ends at seq {keep}, but the external checkpoint shows it reached seq {seq}"
        )),
        "{out}"
    );
    // A forged checkpoint is refused as such.
    let mut forged = cp.clone();
    forged["checkpoint"]["seq"] = json!(keep);
    let forged_file = s.store.dir.path().join("forged.json");
    std::fs::write(&forged_file, forged.to_string()).unwrap();
    let (code, out) = verify(
        store,
        &["--from-checkpoint", &forged_file.display().to_string()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FORGED: the signature of the external checkpoint"),
        "{out}"
    );
}

fn erasure_receipts_verify_and_forgeries_fail(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"email": "gone@example.com", "name": "Gone"}));
    for app in ["shop", "blog"] {
        s.call(
            "POST",
            &format!("/v1/userapp/token/{t}/{app}"),
            Body::Json(json!({"x": 1})),
        )
        .expect(200);
    }
    s.call(
        "POST",
        "/v1/session/0b4ecb62-8c2e-4fa4-8a7a-f53b9e0f4b32",
        Body::Json(json!({"email": "gone@example.com", "cookie": "abc"})),
    );
    let del = s
        .call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    assert_eq!(del["status"], "ok");
    assert_eq!(del["result"], "done");
    let r = &del["receipt"]["receipt"];
    assert_eq!(r["subject"], t);
    assert_eq!(r["type"], "erasure");
    assert_eq!(r["destroyed"]["app_documents"], 2);
    assert_eq!(r["destroyed"]["profile"], true);
    assert_eq!(r["destroyed"]["dek"].as_str().unwrap().len(), 32);
    assert!(r["audit"]["seq"].as_i64().unwrap() > 0);
    assert!(!del.to_string().contains("gone@example.com"));
    // The same receipt later, root only.
    let again = s
        .call("GET", &format!("/v1/audit/receipt/{t}"), Body::None)
        .expect(200);
    assert_eq!(again["receipt"], del["receipt"]);
    let other = s.create_user(json!({"email": "stays@example.com"}));
    let xt = issue(&s, "token", &other, Body::None);
    assert_eq!(
        s.call_as(
            Some(&xt),
            "GET",
            &format!("/v1/audit/receipt/{t}"),
            Body::None
        )
        .status,
        403
    );
    s.call("GET", &format!("/v1/audit/receipt/{other}"), Body::None)
        .expect(404);
    s.call("GET", "/v1/audit/receipt/not-a-token", Body::None)
        .expect(400);

    let dir = s.store.dir.path();
    let receipt = dir.join("receipt.json");
    std::fs::write(&receipt, del.to_string()).unwrap();
    let pk = s
        .call_as(None, "GET", "/v1/audit/publickey", Body::None)
        .expect(200);
    assert_eq!(pk["algorithm"], "ed25519");
    let pk_file = dir.join("pk.json");
    std::fs::write(&pk_file, pk.to_string()).unwrap();
    let (receipt, pk_file) = (receipt.display().to_string(), pk_file.display().to_string());
    let (code, out) = run(&["receipt", "verify", &receipt, "--public-key", &pk_file]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: the document is valid"), "{out}");
    // Dates for people: RFC 3339 in the receipt and in the command's output.
    let erased_at = del["receipt"]["receipt"]["erased_at"]
        .as_str()
        .unwrap_or("");
    assert!(
        erased_at.len() == 20 && erased_at.ends_with('Z') && erased_at.contains('T'),
        "{del}"
    );
    assert!(out.contains(&format!("dated {erased_at}")), "{out}");
    if matches!(b, Backend::Sqlite) {
        // No key and no store named: the default data directory, as --help says.
        let cwd = dir.join("cwd");
        std::fs::create_dir_all(&cwd).unwrap();
        std::os::unix::fs::symlink(dir.join("data"), cwd.join("strongbox-data")).unwrap();
        let out = Command::new(BIN)
            .args(["receipt", "verify", &receipt])
            .current_dir(&cwd)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("chain: the audit chain holds"), "{text}");
    }
    let mut args = vec!["receipt", "verify", &receipt];
    args.extend(s.store.args.iter().map(String::as_str));
    let (code, out) = run(&args);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("chain: the audit chain holds the document's event or head at seq"),
        "{out}"
    );

    // A receipt claiming less was destroyed, or naming another subject, fails.
    for (path, value) in [
        ("/receipt/receipt/destroyed/app_documents", json!(0)),
        ("/receipt/receipt/subject", json!(other)),
    ] {
        let mut forged = del.clone();
        *forged.pointer_mut(path).unwrap() = value;
        let f = dir.join("forged.json");
        std::fs::write(&f, forged.to_string()).unwrap();
        let (code, out) = run(&[
            "receipt",
            "verify",
            &f.display().to_string(),
            "--public-key",
            &pk_file,
        ]);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("INVALID: the signature does not verify"),
            "{out}"
        );
    }
    // Another key does not verify it either.
    std::fs::write(dir.join("other.pk"), "11".repeat(32)).unwrap();
    let (code, _) = run(&[
        "receipt",
        "verify",
        &receipt,
        "--public-key",
        &dir.join("other.pk").display().to_string(),
    ]);
    assert_eq!(code, 1);
    // A document with a key given twice is refused before any signature check.
    let text = del.to_string().replacen(
        "\"type\":\"erasure\"",
        &format!("\"subject\":\"{other}\",\"type\":\"erasure\""),
        1,
    );
    let f = dir.join("dup.json");
    std::fs::write(&f, text).unwrap();
    let (code, out) = run(&[
        "receipt",
        "verify",
        &f.display().to_string(),
        "--public-key",
        &pk_file,
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("duplicate key `subject`"), "{out}");
    // Erasing the erased subject again keeps the receipt of the real erasure.
    let again = s
        .call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    assert_eq!(again["receipt"], del["receipt"]);
    // Erasure leaves the chain verifiable.
    let (code, out) = verify(&s.store, &["--public-key", &pk_file]);
    assert_eq!(code, 0, "{out}");
}

fn a_replaced_public_key_is_caught(b: &Backend) {
    let mut s = Server::start(b);
    traffic(&s, 2);
    let pk = s
        .call_as(None, "GET", "/v1/audit/publickey", Body::None)
        .expect(200);
    s.call("POST", "/v1/audit/checkpoint", Body::None)
        .expect(200);
    let pk_file = s.store.dir.path().join("pk.txt");
    std::fs::write(&pk_file, pk["publickey"].as_str().unwrap()).unwrap();
    let pk_file = pk_file.display().to_string();
    s.stop();
    let (code, out) = verify(&s.store, &["--public-key", &pk_file]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("note:"), "{out}");
    // Someone with database access swaps in a key of their own.
    let forged = "ab".repeat(32);
    let value = match b {
        Backend::Sqlite => format!("X'{forged}'"),
        Backend::Postgres(_) => format!("'\\x{forged}'::bytea"),
        Backend::Mysql(_) => format!("X'{forged}'"),
    };
    s.store.sql(&format!(
        "UPDATE meta SET value = {value} WHERE name = 'audit_public_key/default'"
    ));
    let (code, out) = verify(&s.store, &["--public-key", &pk_file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("KEY: the store's public key is not the one given"),
        "{out}"
    );
    // The vault itself refuses to start with a published key that is not its own.
    let root_key = s.root_key.clone();
    let mut args = vec!["serve".to_string(), "--listen".into(), "127.0.0.1:0".into()];
    args.extend(s.store.args.iter().cloned());
    let out = Command::new(BIN)
        .args(&args)
        .env("STRONGBOX_ROOT_KEY", root_key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("audit public key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn access_report_is_signed_and_only_for_the_subject(b: &Backend) {
    let s = Server::start(b);
    let alice = s.create_user(json!({"email": "alice@example.com"}));
    let bob = s.create_user(json!({"email": "bob@example.com"}));
    s.get_user("email", "alice@example.com").expect(200);
    s.call(
        "PUT",
        &format!("/v1/user/token/{alice}"),
        Body::Json(json!({"name": "Alice"})),
    )
    .expect(200);
    let xt = issue(&s, "token", &alice, Body::None);
    let v = s
        .call_as(
            Some(&xt),
            "GET",
            &format!("/v1/audit/report/{alice}"),
            Body::None,
        )
        .expect(200);
    let report = &v["report"]["report"];
    assert_eq!(report["subject"], alice);
    let actions: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions[0], "create user record",
        "oldest first: {actions:?}"
    );
    assert!(actions.contains(&"get user record by email"), "{actions:?}");
    assert!(
        actions.contains(&"change user record by token"),
        "{actions:?}"
    );
    assert!(report["chain"]["seq"].as_i64().unwrap() >= actions.len() as i64);
    assert_eq!(v["report"]["signature"].as_str().unwrap().len(), 128);
    assert!(!v.to_string().contains("alice@example.com"));
    // Anyone can check it with the public key; changed, it fails.
    let dir = s.store.dir.path();
    let pk = s
        .call_as(None, "GET", "/v1/audit/publickey", Body::None)
        .expect(200);
    std::fs::write(dir.join("pk.json"), pk.to_string()).unwrap();
    std::fs::write(dir.join("report.json"), v.to_string()).unwrap();
    let pk_file = dir.join("pk.json").display().to_string();
    let report_file = dir.join("report.json").display().to_string();
    let (code, out) = run(&["receipt", "verify", &report_file, "--public-key", &pk_file]);
    assert_eq!(code, 0, "{out}");
    let mut args = vec!["receipt", "verify", &report_file];
    args.extend(s.store.args.iter().map(String::as_str));
    let (code, out) = run(&args);
    assert_eq!(code, 0, "{out}");
    let mut forged = v.clone();
    forged["report"]["report"]["events"]
        .as_array_mut()
        .unwrap()
        .pop();
    std::fs::write(dir.join("forged.json"), forged.to_string()).unwrap();
    let (code, out) = run(&[
        "receipt",
        "verify",
        &dir.join("forged.json").display().to_string(),
        "--public-key",
        &pk_file,
    ]);
    assert_eq!(code, 1, "{out}");
    // Alice cannot read Bob's report; root can.
    s.call_as(
        Some(&xt),
        "GET",
        &format!("/v1/audit/report/{bob}"),
        Body::None,
    )
    .expect(403);
    s.call("GET", &format!("/v1/audit/report/{bob}"), Body::None)
        .expect(200);
    s.call_as(None, "GET", &format!("/v1/audit/report/{bob}"), Body::None)
        .expect(401);
}

fn audit_outage_fails_closed(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"email": "kept@example.com"}));
    assert_eq!(s.call_as(None, "GET", "/v1/status", Body::None).status, 200);
    s.store.sql("ALTER TABLE audit RENAME TO audit_away");
    let create = s.call(
        "POST",
        "/v1/user",
        Body::Json(json!({"email": "new@example.com"})),
    );
    assert_eq!(create.status, 503, "{}", create.json);
    assert!(
        create.json["message"]
            .as_str()
            .unwrap()
            .contains("nothing was changed")
    );
    assert_eq!(s.get_user("token", &t).status, 503, "reads fail closed");
    let put = s.call(
        "PUT",
        &format!("/v1/user/token/{t}"),
        Body::Json(json!({"name": "x"})),
    );
    assert_eq!(put.status, 503);
    let status = s.call_as(None, "GET", "/v1/status", Body::None);
    assert_eq!(status.status, 503);
    assert!(
        status.json["message"]
            .as_str()
            .unwrap()
            .starts_with("audit log unavailable"),
        "{}",
        status.json
    );
    s.store.sql("ALTER TABLE audit_away RENAME TO audit");
    assert_eq!(s.call_as(None, "GET", "/v1/status", Body::None).status, 200);
    // Nothing of the refused requests happened.
    s.get_user("email", "new@example.com").expect(404);
    let v = s.get_user("token", &t).expect(200);
    assert!(v["data"].get("name").is_none(), "{v}");

    // With fail-open reads configured, reads go on (writes still fail closed).
    let store = StoreLoc {
        backend: s.store.backend.clone(),
        args: s.store.args.clone(),
        dir: tempfile::tempdir().unwrap(),
        db: None,
        url: s.store.url.clone(),
    };
    let open = Server::serve(
        store,
        s.root_key.clone(),
        s.token.clone(),
        vec!["--audit-fail-open-reads".into(), "true".into()],
    );
    s.store.sql("ALTER TABLE audit RENAME TO audit_away");
    open.get_user("token", &t).expect(200);
    assert_eq!(
        open.call(
            "POST",
            "/v1/user",
            Body::Json(json!({"email": "new2@example.com"}))
        )
        .status,
        503
    );
    s.store.sql("ALTER TABLE audit_away RENAME TO audit");
}

fn concurrent_servers_build_one_verifiable_chain(b: &Backend) {
    if matches!(b, Backend::Sqlite) {
        // One SQLite file has one writer process; the multi-node case is a server
        // database's.
        return;
    }
    let mut one = Server::start(b);
    let store = StoreLoc {
        backend: one.store.backend.clone(),
        args: one.store.args.clone(),
        dir: tempfile::tempdir().unwrap(),
        db: None,
        url: one.store.url.clone(),
    };
    let mut two = Server::serve(store, one.root_key.clone(), one.token.clone(), vec![]);
    std::thread::scope(|scope| {
        for (k, s) in [&one, &two, &one, &two].into_iter().enumerate() {
            scope.spawn(move || {
                for i in 0..25 {
                    let t = s.create_user(json!({"email": format!("w{k}-{i}@example.com")}));
                    s.get_user("token", &t).expect(200);
                }
            });
        }
    });
    one.stop();
    two.stop();
    let events: i64 = one
        .store
        .sql("SELECT COUNT(*) FROM audit")
        .trim()
        .parse()
        .unwrap();
    assert!(events >= 200);
    assert_eq!(
        sealed(&one.store),
        events,
        "every event is in the one chain"
    );
    let (code, out) = verify(&one.store, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{events} events sealed, 0 pending")),
        "{out}"
    );
}

fn a_crash_under_load_leaves_a_verifiable_chain(b: &Backend) {
    let s = Server::start(b);
    // Writers and readers running when the process is killed: acknowledged events
    // are in the log, and the next run seals them into a chain that verifies.
    let acknowledged = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..3)
            .map(|k| {
                let s = &s;
                scope.spawn(move || {
                    let mut ok = Vec::new();
                    for i in 0..200 {
                        let r = s.try_call_as(
                            Some(&s.token),
                            "POST",
                            "/v1/user",
                            Body::Json(json!({"email": format!("c{k}-{i}@example.com")})),
                        );
                        match r {
                            Some(r) if r.status == 200 => {
                                ok.push(r.json["token"].as_str().unwrap().to_string())
                            }
                            _ => break,
                        }
                    }
                    ok
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(400));
        s.sigkill();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(!acknowledged.is_empty());
    let mut s = s.crash_and_restart();
    for t in &acknowledged {
        s.get_user("token", t).expect(200);
    }
    s.stop();
    let (code, out) = verify(&s.store, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(", 0 pending"), "{out}");
}

/// `GET /v1/audit/verify` (the console's check): intact on a fresh chain, and the
/// same finding as the CLI once an event is changed under the running vault.
fn the_live_check_reports_a_modified_event(b: &Backend) {
    let s = Server::start(b);
    traffic(&s, 3);
    s.call("POST", "/v1/audit/checkpoint", Body::None)
        .expect(200);
    let v = s.call("GET", "/v1/audit/verify", Body::None).expect(200);
    assert_eq!(v["intact"], true, "{v}");
    assert!(v["sealed"].as_i64().unwrap() >= 10, "{v}");
    assert!(v["checkpoints"].as_i64().unwrap() >= 1, "{v}");
    // Root only.
    let user = s.create_user(json!({"email": "v@example.com"}));
    let x = s
        .call(
            "POST",
            &format!("/v1/xtoken/token/{user}"),
            Body::Json(json!({})),
        )
        .expect(200)["xtoken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.call_as(Some(&x), "GET", "/v1/audit/verify", Body::None);
    assert_eq!(r.status, 403, "{}", r.json);
    let modified = row_at(&s.store, 3);
    s.store.sql(&format!(
        "UPDATE audit SET actor = 'mallory' WHERE id = {modified}"
    ));
    let v = s.call("GET", "/v1/audit/verify", Body::None).expect(200);
    assert_eq!(v["intact"], false, "{v}");
    let findings = v["findings"].to_string();
    assert!(
        findings.contains("MODIFIED: the event at seq 3"),
        "{findings}"
    );
}
