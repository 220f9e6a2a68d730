//! Backup and restore: a disaster-recovery drill, backups under write load, the
//! erasure ledger applied on restore, migration between backends, and damaged files
//! refused — end to end on every backend.

use std::process::Command;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{BIN, Backend, Body, Server, StoreLoc};
use crate::tokens::issue;

backend_tests!(
    disaster_recovery_drill,
    restore_never_brings_back_the_erased,
    damaged_backups_are_refused,
    backups_of_the_previous_schema_restore,
    backup_to_stdout,
    backup_endpoint_is_root_only,
    sqlite_store_migrates_to_this_backend,
    restore_over_a_rotated_index_key,
);

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn with_store(store: &StoreLoc, args: &[&str]) -> (i32, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(store.args.iter().map(String::as_str));
    run(&all)
}

fn disaster_recovery_drill(b: &Backend) {
    let mut s = Server::start(b);
    let mut users = Vec::new();
    for i in 0..30 {
        let email = format!("dr{i}@example.com");
        let t = s.create_user(json!({"email": email, "name": format!("Person {i}")}));
        s.call(
            "POST",
            &format!("/v1/userapp/token/{t}/shop"),
            Body::Json(json!({"cart": i})),
        )
        .expect(200);
        users.push((t, email));
    }
    let file = s.store.dir.path().join("drill.backup");
    let file_s = file.display().to_string();
    // The backup is taken while another client keeps creating users.
    let during = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut made = Vec::new();
            for i in 0..40 {
                made.push(s.create_user(json!({"email": format!("load{i}@example.com")})));
            }
            made
        });
        let (code, out) = run(&[
            "backup", "--out", &file_s, "--addr", &s.base, "--token", &s.token,
        ]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("backup written"), "{out}");
        writer.join().unwrap()
    });
    let text = std::fs::read_to_string(&file).unwrap();
    for (_, email) in &users {
        assert!(!text.contains(email.as_str()), "plaintext in the backup");
    }
    assert!(
        !text.contains(&s.root_key),
        "the root key is never in a backup"
    );
    let (root_key, token) = (s.root_key.clone(), s.token.clone());
    s.stop();
    // The store is lost; a new, empty one of the same backend gets the backup.
    let fresh = StoreLoc::new(b);
    let (code, out) = with_store(&fresh, &["restore", "--in", &file_s]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = with_store(&fresh, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["audit", "verify", "--backup", &file_s]);
    assert_eq!(code, 0, "{out}");
    let r = Server::serve(fresh, root_key, token, vec![]);
    for (i, (t, email)) in users.iter().enumerate() {
        let v = r.get_user("email", email).expect(200);
        assert_eq!(v["token"], t.as_str());
        assert_eq!(v["data"]["name"], format!("Person {i}"));
        let app = r
            .call("GET", &format!("/v1/userapp/token/{t}/shop"), Body::None)
            .expect(200);
        assert_eq!(app["data"]["cart"], i);
    }
    // Whatever the load wrote before the snapshot is there whole; the rest is absent,
    // never half there.
    for t in &during {
        let v = r.get_user("token", t);
        assert!(v.status == 200 || v.status == 404, "{v:?}");
        if v.status == 200 {
            let email = v.json["data"]["email"].as_str().unwrap().to_string();
            r.get_user("email", &email).expect(200);
        }
    }
    // The restored vault works on: new users, new events, a chain that verifies.
    r.create_user(json!({"email": "after@example.com"}));
    r.call("POST", "/v1/audit/checkpoint", Body::None)
        .expect(200);
}

fn restore_never_brings_back_the_erased(b: &Backend) {
    let mut s = Server::start(b);
    let gone = s.create_user(json!({"email": "gone@example.com", "name": "Gone"}));
    let kept = s.create_user(json!({"email": "kept@example.com"}));
    s.call(
        "POST",
        &format!("/v1/userapp/token/{gone}/shop"),
        Body::Json(json!({"cart": 1})),
    )
    .expect(200);
    // Someone not in the vault yet consents by email (a pending consent).
    s.call("POST", "/v1/lbasis/promo", Body::None).expect(200);
    s.call(
        "POST",
        "/v1/agreement/promo/email/pending@example.com",
        Body::None,
    )
    .expect(200);
    let pending_rows = |s: &Server| -> String {
        s.store
            .sql("SELECT COUNT(*) FROM records WHERE kind = 'agreement' AND owner LIKE '%:%'")
            .trim()
            .to_string()
    };
    assert_eq!(pending_rows(&s), "1");
    let file = s.store.dir.path().join("yesterday.backup");
    let file_s = file.display().to_string();
    let (code, out) = run(&[
        "backup", "--out", &file_s, "--addr", &s.base, "--token", &s.token,
    ]);
    assert_eq!(code, 0, "{out}");
    // Today: the person is erased, and someone new arrives and leaves too.
    let receipt = s
        .call("DELETE", &format!("/v1/user/token/{gone}"), Body::None)
        .expect(200)["receipt"]
        .clone();
    let late = s.create_user(json!({"email": "late@example.com"}));
    s.call("DELETE", &format!("/v1/user/token/{late}"), Body::None)
        .expect(200);
    // The pending consent's person signs up (adopting it) and is erased too.
    let pending = s.create_user(json!({"email": "pending@example.com"}));
    s.call("DELETE", &format!("/v1/user/token/{pending}"), Body::None)
        .expect(200);
    s.stop();
    // Restoring yesterday's backup over today's store needs --force...
    let (code, out) = with_store(&s.store, &["restore", "--in", &file_s]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not empty"), "{out}");
    // ...and keeps today's erasures.
    let (code, out) = with_store(&s.store, &["restore", "--in", &file_s, "--force"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 subject(s) erased again, 3 receipt(s) carried over"),
        "{out}"
    );
    let s = s.restart();
    assert_eq!(s.get_user("token", &gone).expect(200)["data"], json!({}));
    s.get_user("email", "gone@example.com").expect(404);
    s.call("GET", &format!("/v1/userapp/token/{gone}/shop"), Body::None)
        .expect(404);
    s.get_user("email", "kept@example.com").expect(200);
    assert_eq!(
        s.get_user("token", &kept).expect(200)["token"],
        kept.as_str()
    );
    // The receipts survive as the ledger, and still verify against the chain.
    let again = s
        .call("GET", &format!("/v1/audit/receipt/{gone}"), Body::None)
        .expect(200);
    assert_eq!(again["receipt"], receipt);
    s.call("GET", &format!("/v1/audit/receipt/{late}"), Body::None)
        .expect(200);
    let v = s
        .call(
            "GET",
            &format!("/v1/audit/list/{gone}?limit=100"),
            Body::None,
        )
        .expect(200);
    assert!(
        v.to_string()
            .contains("erase user again from the erasure ledger (restore)"),
        "{v}"
    );
    // The audit log is history: the erasure itself is still in it, and the restore.
    let events = v.to_string();
    assert!(events.contains("delete user record by token"), "{events}");
    let admin = s
        .call("GET", "/v1/audit/admin?limit=100", Body::None)
        .expect(200)
        .to_string();
    assert!(admin.contains("restore from backup"), "{admin}");
    // The pending consent of the person erased since is not back either.
    assert_eq!(pending_rows(&s), "0");
    s.call("POST", "/v1/audit/checkpoint", Body::None)
        .expect(200);
    let (code, out) = with_store(&s.store, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    // The carried receipt still verifies against the chain it names.
    let f = s.store.dir.path().join("receipt.json");
    std::fs::write(&f, receipt.to_string()).unwrap();
    let (code, out) = with_store(&s.store, &["receipt", "verify", &f.display().to_string()]);
    assert_eq!(code, 0, "{out}");
    // The raw store holds nothing of the erased person's profile.
    let raw = String::from_utf8_lossy(&s.store.raw_contents()).into_owned();
    assert!(!raw.contains("gone@example.com"));
}

fn damaged_backups_are_refused(b: &Backend) {
    let s = Server::start(b);
    s.create_user(json!({"email": "x@example.com"}));
    let dir = s.store.dir.path();
    let file = dir.join("good.backup");
    let (code, out) = with_store(&s.store, &["backup", "--out", &file.display().to_string()]);
    assert_eq!(code, 0, "{out}");
    let good = std::fs::read_to_string(&file).unwrap();
    // One changed byte inside a row, a row removed, a truncated file.
    let flipped = good.replacen("\"t\":\"users\"", "\"t\":\"userz\"", 1);
    let lines: Vec<&str> = good.lines().collect();
    let dropped = [&lines[..2], &lines[3..]].concat().join("\n") + "\n";
    let truncated = good[..good.len() / 2].to_string();
    for (name, text, expected) in [
        ("flipped", flipped, "checksum mismatch"),
        ("dropped", dropped, "checksum mismatch"),
        ("truncated", truncated, "the backup is incomplete"),
    ] {
        let f = dir.join(name);
        std::fs::write(&f, text).unwrap();
        let target = StoreLoc::new(b);
        let (code, out) = with_store(&target, &["restore", "--in", &f.display().to_string()]);
        assert_eq!(code, 2, "{name}: {out}");
        assert!(out.contains(expected), "{name}: {out}");
        // Nothing was written: the target can still take the good backup.
        let (code, out) = with_store(&target, &["restore", "--in", &file.display().to_string()]);
        assert_eq!(code, 0, "{name}: {out}");
    }
}

/// `text` as a Strongbox of schema `schema` (4 or older) would have written it: that
/// version in the header, audit rows without the `name` that version 5 added, and a
/// manifest whose checksum matches again.
fn with_schema(text: &str, schema: i64) -> String {
    use sha2::Digest;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut header: Value = serde_json::from_str(&lines[0]).unwrap();
    header["schema"] = Value::from(schema);
    lines[0] = header.to_string();
    let last = lines.len() - 1;
    for line in &mut lines[1..last] {
        let mut row: Value = serde_json::from_str(line).unwrap();
        if row["t"] == "audit" {
            row["r"].as_array_mut().unwrap().pop();
            *line = row.to_string();
        }
    }
    let mut manifest: Value = serde_json::from_str(&lines[last]).unwrap();
    let mut hash = sha2::Sha256::new();
    for l in &lines[..last] {
        hash.update(l.as_bytes());
        hash.update(b"\n");
    }
    manifest["manifest"]["sha256"] = Value::from(hex::encode(hash.finalize()));
    lines[last] = manifest.to_string();
    lines.join("\n") + "\n"
}

/// Schema 5 only widened a column: a backup written at schema 4 restores; older
/// ones are refused, naming both versions.
fn backups_of_the_previous_schema_restore(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"email": "old@example.com"}));
    let dir = s.store.dir.path();
    let file = dir.join("now.backup");
    let (code, out) = with_store(&s.store, &["backup", "--out", &file.display().to_string()]);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.lines().next().unwrap().contains("\"schema\":5"));
    let v4 = dir.join("v4.backup");
    std::fs::write(&v4, with_schema(&text, 4)).unwrap();
    let target = StoreLoc::new(b);
    let (code, out) = with_store(&target, &["restore", "--in", &v4.display().to_string()]);
    assert_eq!(code, 0, "{out}");
    let restored = Server::serve(target, s.root_key.clone(), s.token.clone(), vec![]);
    let v = restored.get_user("email", "old@example.com").expect(200);
    assert_eq!(v["token"], t);
    // Its events came back with their titles and, as version 4 had them, no names.
    let v = restored
        .call("GET", &format!("/v1/audit/list/{t}?limit=10"), Body::None)
        .expect(200);
    let created = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["title"] == "create user record")
        .expect("the creation event");
    assert!(created.get("action").is_none(), "{created}");
    let v3 = dir.join("v3.backup");
    std::fs::write(&v3, with_schema(&text, 3)).unwrap();
    let (code, out) = with_store(
        &StoreLoc::new(b),
        &["restore", "--in", &v3.display().to_string()],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("the backup has schema version 3, this Strongbox restores 4 to 5"),
        "{out}"
    );
}

fn backup_endpoint_is_root_only(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"email": "u@example.com"}));
    let xt = issue(&s, "token", &t, Body::None);
    s.call_as(Some(&xt), "GET", "/v1/sys/backup", Body::None)
        .expect(403);
    s.call_as(None, "GET", "/v1/sys/backup", Body::None)
        .expect(401);
    let r = s.call("GET", "/v1/sys/backup", Body::None);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/x-ndjson");
    let file = s.store.dir.path().join("wrong-token.backup");
    let (code, out) = run(&[
        "backup",
        "--out",
        &file.display().to_string(),
        "--addr",
        &s.base,
        "--token",
        &xt,
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("403"), "{out}");
    assert!(!file.exists());
    let v = s
        .call("GET", "/v1/audit/admin?limit=5", Body::None)
        .expect(200);
    assert!(
        v.to_string().contains("\"backup\""),
        "the backup is audited: {v}"
    );
}

fn sqlite_store_migrates_to_this_backend(b: &Backend) {
    if matches!(b, Backend::Sqlite) {
        return;
    }
    let mut s = Server::start(&Backend::Sqlite);
    let t = s.create_user(json!({"email": "moved@example.com", "login": "moved"}));
    s.stop();
    let file = s.store.dir.path().join("move.backup");
    let (code, out) = with_store(&s.store, &["backup", "--out", &file.display().to_string()]);
    assert_eq!(code, 0, "{out}");
    let target = StoreLoc::new(b);
    let (code, out) = with_store(&target, &["restore", "--in", &file.display().to_string()]);
    assert_eq!(code, 0, "{out}");
    let r = Server::serve(target, s.root_key.clone(), s.token.clone(), vec![]);
    assert_eq!(
        r.get_user("login", "moved").expect(200)["token"],
        t.as_str()
    );
    // New events continue after the restored ones, and the chain verifies.
    r.create_user(json!({"email": "new@example.com"}));
    r.call("POST", "/v1/audit/checkpoint", Body::None)
        .expect(200);
    let (code, out) = with_store(&r.store, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
}

/// A backup from before a blind-index key rotation, restored over the store after
/// it: the store's newer index key comes along (the backfill then brings the backup's
/// entries under it), so do the pending consents it re-keyed, and an erasure since
/// still holds.
fn restore_over_a_rotated_index_key(b: &Backend) {
    let mut s = Server::start(b);
    let kept = s.create_user(json!({"email": "kept@example.com", "login": "kept"}));
    let gone = s.create_user(json!({"email": "gone@example.com"}));
    s.call("POST", "/v1/lbasis/promo", Body::None).expect(200);
    s.call(
        "POST",
        "/v1/agreement/promo/email/pending@example.com",
        Body::None,
    )
    .expect(200);
    let file = s.store.dir.path().join("before.backup");
    let file_s = file.display().to_string();
    let (code, out) = run(&[
        "backup", "--out", &file_s, "--addr", &s.base, "--token", &s.token,
    ]);
    assert_eq!(code, 0, "{out}");
    s.call("POST", "/v1/sys/rotate/index", Body::None)
        .expect(200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s
        .call("GET", "/v1/sys/rotate/index", Body::None)
        .expect(200)["versions"]
        != json!([2])
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the rotation did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    s.call("DELETE", &format!("/v1/user/token/{gone}"), Body::None)
        .expect(200);
    s.stop();
    let (code, out) = with_store(&s.store, &["restore", "--in", &file_s, "--force"]);
    assert_eq!(code, 0, "{out}");
    let s = s.restart();
    // Both index versions are in use again until the backfill cuts over.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        assert_eq!(
            s.get_user("email", "kept@example.com").expect(200)["token"],
            kept.as_str()
        );
        s.call("GET", "/v1/user/login/kept", Body::None).expect(200);
        s.get_user("email", "gone@example.com").expect(404);
        let v = s
            .call("GET", "/v1/sys/rotate/index", Body::None)
            .expect(200);
        if v["versions"] == json!([2]) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no cut-over: {v}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    s.get_user("email", "kept@example.com").expect(200);
    // The pending consent is there once, under the new key, and is adopted.
    let owners = s
        .store
        .sql("SELECT owner FROM records WHERE kind = 'agreement' AND owner LIKE 'email:%'");
    assert_eq!(owners.lines().count(), 1, "{owners}");
    assert!(owners.starts_with("email:2:"), "{owners}");
    let later = s.create_user(json!({"email": "pending@example.com"}));
    let v = s
        .call("GET", &format!("/v1/agreements/token/{later}"), Body::None)
        .expect(200);
    assert_eq!(v["total"], 1, "{v}");
}

/// `backup --out -` writes the checked backup to stdout (the summary to stderr), and
/// it restores.
fn backup_to_stdout(b: &Backend) {
    let s = Server::start(b);
    s.create_user(json!({"email": "stdout@example.com"}));
    let out = Command::new(BIN)
        .args(["backup", "--out", "-"])
        .args(&s.store.args)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("backup written: stdout"), "{stderr}");
    assert!(
        stdout.lines().last().unwrap_or("").contains("\"manifest\""),
        "{stdout}"
    );
    assert!(
        !std::path::Path::new("-").exists(),
        "a file named - was written"
    );
    let file = s.store.dir.path().join("from-stdout.backup");
    std::fs::write(&file, stdout).unwrap();
    let target = StoreLoc::new(b);
    let (code, out) = with_store(&target, &["restore", "--in", &file.display().to_string()]);
    assert_eq!(code, 0, "{out}");
}
