//! Databunker Pro's official Python client (`databunkerpro` on PyPI) runs its own
//! test suite unchanged against a live Strongbox, in a fresh tenant made with
//! `strongbox tenant create`, on every backend — as the reference's §3 says a
//! compatible server must allow (`DATABUNKER_API_URL`, `DATABUNKER_API_TOKEN`,
//! `DATABUNKER_TENANT_NAME`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::backend_tests;
use crate::harness::{Backend, Server, run_bin};

backend_tests!(
    the_python_client_suite_passes_unchanged,
    every_method_through_the_python_client,
);

/// The pinned client release; its sdist carries the suite.
const CLIENT: &str = "databunkerpro==0.1.7";
const CLIENT_DIR: &str = "databunkerpro-0.1.7";

/// The suite's files: all of it.
const SUITE: &[&str] = &[
    "tests/test_api.py",
    "tests/test_bulk_list_users.py",
    "tests/test_field_tokenization.py",
];

/// The unpacked client (downloaded from PyPI once per machine; `.ci/run` does it
/// first so a registry problem shows there).
fn client_dir() -> PathBuf {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/client");
    let ready = READY.get_or_init(|| {
        let dir = base.join(CLIENT_DIR);
        if dir.join("tests/test_api.py").exists() {
            return Ok(dir);
        }
        std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
        let out = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
            ])
            .arg("-d")
            .arg(&base)
            .arg(CLIENT)
            .output()
            .map_err(|e| format!("cannot run pip: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "pip download {CLIENT} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let out = Command::new("tar")
            .args(["xzf", &format!("{CLIENT_DIR}.tar.gz")])
            .current_dir(&base)
            .output()
            .map_err(|e| format!("cannot run tar: {e}"))?;
        if !out.status.success() || !dir.join("tests/test_api.py").exists() {
            return Err(format!(
                "unpacking {CLIENT_DIR}.tar.gz failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(dir)
    });
    match ready {
        Ok(dir) => dir.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn the_python_client_suite_passes_unchanged(b: &Backend) {
    let dir = client_dir();
    let s = Server::start_with(b, &["--list-users", "true"]);
    let (code, out) = run_bin(
        &[
            "tenant",
            "create",
            "pysuite",
            "--org",
            "Python suite",
            "--addr",
            &s.base,
        ],
        &[("STRONGBOX_TOKEN", Some(&s.token))],
        "",
    );
    assert_eq!(code, 0, "{out}");
    let admin = out
        .lines()
        .find_map(|l| l.strip_prefix("Admin token:"))
        .unwrap()
        .trim()
        .to_string();
    let run = Command::new("python3")
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-rfs", "-q"])
        .args(SUITE)
        .current_dir(&dir)
        .env("PYTHONPATH", &dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("DATABUNKER_API_URL", &s.base)
        .env("DATABUNKER_API_TOKEN", &admin)
        .env("DATABUNKER_TENANT_NAME", "pysuite")
        .output()
        .expect("run pytest (python3 with pytest and requests is needed)");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success(),
        "the Python client suite failed:\n{text}"
    );
    // Every test ran: none skipped (a skip there means a feature was refused).
    let summary = text
        .lines()
        .rev()
        .find(|l| l.contains(" passed"))
        .unwrap_or_else(|| panic!("no pytest summary in:\n{text}"));
    assert!(
        !summary.contains("skipped") && !summary.contains("failed"),
        "{summary}\n{text}"
    );
    // The tenant's people stayed in the tenant.
    let stats = s
        .call(
            "POST",
            "/v2/SystemGetSystemStats",
            crate::harness::Body::None,
        )
        .expect(200);
    assert_eq!(stats["stats"]["numusers"], 0, "{stats}");
    assert_eq!(stats["stats"]["numtenants"], 2, "{stats}");
}

/// Every v2 method Strongbox serves, through the same client, with the error cases
/// the reference names (`tests/python/every_method.py`). `/metrics` is public here
/// because the client reads it without a token, as Databunker Pro serves it.
fn every_method_through_the_python_client(b: &Backend) {
    let dir = client_dir();
    let s = Server::start_with(
        b,
        &[
            "--list-users",
            "true",
            "--metrics-public",
            "true",
            "--search",
            "true",
        ],
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/every_method.py");
    let run = Command::new("python3")
        .arg(&script)
        .env("PYTHONPATH", &dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("STRONGBOX_URL", &s.base)
        .env("STRONGBOX_TOKEN", &s.token)
        .output()
        .expect("run python3");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{text}");
    assert!(text.contains("all checks passed"), "{text}");
}
