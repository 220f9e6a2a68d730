//! When a dependency fails (issue 15, item 7): SQLite on a full disk. The store's
//! data directory is a small tmpfs (where the machine lets the test mount one; it
//! says so and passes otherwise); the disk is filled, writes are refused with a JSON
//! 5xx and change nothing, reads fail closed (their audit event cannot be written),
//! and both resume when space returns — no restart. (A database that stops is tested in system.rs, health_for_load_balancers.)

use std::io::Write;
use std::process::Command;

use serde_json::json;

use crate::harness::{Backend, Body, Server, StoreLoc, init};

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn sqlite_on_a_full_disk_refuses_writes_and_recovers() {
    let store = StoreLoc::new(&Backend::Sqlite);
    let data = store.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs"])
        .arg(&data)
        .output();
    if !mounted.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: this machine does not let the test mount a small filesystem");
        return;
    }
    let _mount = Mount(data.clone());
    let keys = init(&store);
    let s = Server::serve(store, keys.root_key, keys.root_token, vec![]);
    let before = s.create_user(json!({"email": "before@example.com"}));
    // Fill the disk.
    let mut filler = std::fs::File::create(data.join("filler")).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while filler.write_all(&chunk).is_ok() {}
    let _ = filler.sync_all();
    let mut refused = 0;
    for i in 0..5 {
        let r = s.call(
            "POST",
            "/v1/user",
            Body::Json(json!({"email": format!("full{i}@example.com")})),
        );
        if r.status != 200 {
            assert!(
                r.status == 503 || r.status == 507,
                "{} {:?}",
                r.status,
                r.json
            );
            assert_eq!(r.json["status"], "error");
            refused += 1;
        }
    }
    assert!(refused > 0, "the full disk never refused a write");
    // Reads of personal data need their audit event written first: they fail closed
    // too, with the reason (no read goes unaudited).
    let r = s.get_user("email", "before@example.com");
    assert_eq!(
        (r.status, &r.json["status"]),
        (503, &json!("error")),
        "{:?}",
        r.json
    );
    // Space returns: writes resume without a restart, and nothing refused was kept
    // half-written.
    drop(filler);
    std::fs::remove_file(data.join("filler")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let after = loop {
        let r = s.call(
            "POST",
            "/v1/user",
            Body::Json(json!({"email": "after@example.com"})),
        );
        if r.status == 200 {
            break r.json["token"].as_str().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", r.json);
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    s.get_user("token", &after).expect(200);
    s.get_user("token", &before).expect(200);
    // The store is intact: the audit chain still verifies after a clean restart.
    let s2 = s.restart();
    s2.get_user("email", "after@example.com").expect(200);
    s2.call("POST", "/v1/audit/checkpoint", Body::None)
        .expect(200);
    drop(s2);
}
