//! Databunker's official Node clients (`@databunker/store`, `@databunker/session-store`)
//! run unchanged against a live server on every backend (`tests/node/clients.js`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::backend_tests;
use crate::harness::{Backend, Server};

backend_tests!(node_clients_work_unchanged);

/// `tests/node`, with its packages installed from the lock file once per test run.
fn node_dir() -> PathBuf {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let ready = READY.get_or_init(|| {
        if dir.join("node_modules/@databunker/store").exists()
            && dir.join("node_modules/@databunker/session-store").exists()
        {
            return Ok(());
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("cannot run npm (Node.js is needed for these tests): {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "npm ci failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = ready {
        panic!("{e}");
    }
    dir
}

fn node_clients_work_unchanged(b: &Backend) {
    let dir = node_dir();
    let s = Server::start(b);
    let out = Command::new("node")
        .arg("clients.js")
        .current_dir(&dir)
        .env("STRONGBOX_URL", &s.base)
        .env("STRONGBOX_TOKEN", &s.token)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "node clients failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
}
