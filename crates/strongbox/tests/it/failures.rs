//! When a dependency fails (issue 15, item 7): SQLite on a full disk. The store's
//! data directory is a small tmpfs (where the machine lets the test mount one; it
//! says so and passes otherwise); the disk is filled, writes are refused with a JSON
//! 5xx and change nothing, reads fail closed (their audit event cannot be written),
//! and both resume when space returns — no restart. PostgreSQL that hangs or stops:
//! a server of the test's own, frozen with SIGSTOP and stopped, while the vault
//! answers 503 and comes back by itself. (A database that refuses connections is
//! tested in system.rs, health_for_load_balancers.)

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

/// A PostgreSQL server of the test's own (initdb in a scratch folder, its own
/// port), so it can be frozen and stopped without touching the shared one.
struct PrivatePostgres {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// `None` (and the reason on stderr) where the machine has no PostgreSQL
    /// server binaries or no `postgres` user to run them as.
    fn start() -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())?;
        let dir = tempfile::tempdir().unwrap();
        let owned = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status();
        if !owned.is_ok_and(|s| s.success()) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = PrivatePostgres { bin, dir, port };
        let data = pg.data();
        pg.as_postgres(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        pg.up();
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.as_postgres(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    fn down(&self) {
        self.as_postgres(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// SIGSTOP (`freeze`) or SIGCONT to the server and every backend: connections
    /// stay open and nothing answers, as on a host that hangs.
    fn signal(&self, signal: &str) {
        let pidfile = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"));
        let Some(pid) = pidfile
            .ok()
            .and_then(|t| t.lines().next().map(str::to_string))
        else {
            return;
        };
        let _ = Command::new("pkill").args([signal, "-P", &pid]).status();
        let _ = Command::new("kill").args([signal, &pid]).status();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}

/// The database hangs (every PostgreSQL process frozen), then stops, then comes
/// back: health answers 503 within its 2 s, work answers 503 JSON within the
/// request timeout, the process stays up, and service resumes by itself each time.
/// A create caught by the hang is carried out whole or not at all.
#[test]
fn postgres_that_hangs_or_stops_answers_503_and_recovers() {
    let Some(pg) = PrivatePostgres::start() else {
        eprintln!("skipped: no PostgreSQL server binaries or postgres user on this machine");
        return;
    };
    let backend = Backend::Postgres(pg.admin_url());
    let store = StoreLoc::new(&backend);
    let keys = init(&store);
    let mut s = Server::serve(
        store,
        keys.root_key,
        keys.root_token,
        vec!["--request-timeout".into(), "3".into()],
    );
    let before = s.create_user(json!({"email": "before@example.com"}));
    let health = |expect: u16| {
        let started = std::time::Instant::now();
        let r = s.call_as(None, "GET", "/v1/sys/health", Body::None);
        (r.status == expect, started.elapsed(), r)
    };
    let work_refused = |label: &str| {
        let started = std::time::Instant::now();
        let r = s.call(
            "POST",
            "/v1/user",
            Body::Json(json!({"email": format!("{label}@example.com")})),
        );
        let took = started.elapsed();
        assert!(r.status == 503, "{label}: {} {:?}", r.status, r.json);
        assert_eq!(r.json["status"], "error", "{label}");
        assert!(
            took < std::time::Duration::from_secs(6),
            "{label}: {took:?}"
        );
    };
    let recovered = |label: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
        loop {
            let r = s.call_as(None, "GET", "/v1/sys/health", Body::None);
            if r.status == 200 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{label}: {:?}",
                r.json
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        let t = s.create_user(json!({"email": format!("after-{label}@example.com")}));
        let r = s.call("GET", &format!("/v1/user/token/{t}"), Body::None);
        assert_eq!(r.status, 200, "{label}");
        let r = s.call("GET", &format!("/v1/user/token/{before}"), Body::None);
        assert_eq!(r.status, 200, "{label}");
    };

    // Hangs.
    pg.signal("-STOP");
    let (ok, took, r) = health(503);
    assert!(ok, "{:?}", r.json);
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");
    assert_eq!(r.json["database"], "unreachable");
    work_refused("hung");
    pg.signal("-CONT");
    recovered("hang");
    // The create the hang caught finished after the fact or not at all: its email
    // finds the whole user, or nothing.
    let r = s.call("GET", "/v1/user/email/hung@example.com", Body::None);
    assert!(
        r.status == 200 || r.status == 404,
        "{} {:?}",
        r.status,
        r.json
    );
    if r.status == 200 {
        assert_eq!(r.json["data"]["email"], "hung@example.com");
    }

    // Stops.
    pg.down();
    let (ok, took, r) = health(503);
    assert!(ok, "{:?}", r.json);
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");
    work_refused("stopped");
    pg.up();
    recovered("stop");
    let exited = s.child.as_mut().unwrap().try_wait().unwrap();
    assert!(
        exited.is_none(),
        "the vault exited while its database was away"
    );
}
