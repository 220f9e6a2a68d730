//! The web pages in a real browser: Playwright (PyPI) driving Debian's chromium
//! through `tests/browser/ui_test.py`, against a vault on every backend, with the
//! login code read from a real mail server. Also what the pages are served with.

use std::process::Command;

use crate::backend_tests;
use crate::delivery::MailSink;
use crate::harness::{Backend, Body, Server};

backend_tests!(a_person_and_a_dpo_use_the_pages_in_a_browser);

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/ui_test.py");

fn browser(args: &[&str]) {
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT).args(args);
    // `STRONGBOX_UI_SCREENSHOTS=docs/ui` refreshes the pictures in the docs.
    if let Ok(dir) = std::env::var("STRONGBOX_UI_SCREENSHOTS") {
        cmd.args(["--screenshots", &dir]);
    }
    let out = cmd
        .output()
        .expect("python3 with playwright (pip install playwright; .ci/run does)");
    assert!(
        out.status.success(),
        "the browser test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn a_person_and_a_dpo_use_the_pages_in_a_browser(b: &Backend) {
    let sink = MailSink::start(0, "plain", None, None);
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let s = Server::start_with(
        b,
        &[
            "--login-captcha",
            "false",
            "--smtp-url",
            &url,
            "--smtp-from",
            "vault@example.com",
        ],
    );
    let mail = sink.out.display().to_string();
    browser(&["--base", &s.base, "--root", &s.token, "--mail", &mail]);
}

/// A newcomer's first minute: `strongbox demo`, the login page with its captcha, the
/// code the demo prints, the portal.
#[test]
fn a_newcomer_signs_in_to_the_demo_in_a_browser() {
    let s = Server::demo(&[]);
    let log = s.log_path().display().to_string();
    browser(&["--base", &s.base, "--root", &s.token, "--demo-log", &log]);
}

/// Databunker's page paths, their types and the policy they are served with.
#[test]
fn the_pages_are_served_embedded_with_a_strict_policy() {
    let s = Server::start(&Backend::Sqlite);
    for (path, kind) in [
        ("/", "text/html"),
        ("/site/", "text/html"),
        ("/site/login.html", "text/html"),
        ("/site/portal.html", "text/html"),
        ("/site/admin.html", "text/html"),
        ("/site/shared.html", "text/html"),
        ("/site/style.css", "text/css"),
        ("/site/common.js", "text/javascript"),
        ("/site/login.js", "text/javascript"),
        ("/site/portal.js", "text/javascript"),
        ("/site/admin.js", "text/javascript"),
        ("/site/shared.js", "text/javascript"),
    ] {
        let r = s.call_as(None, "GET", path, Body::None);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.content_type.starts_with(kind),
            "{path}: {}",
            r.content_type
        );
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        let text = r.json.as_str().unwrap();
        // No inline script, no handler attributes, nothing from another origin.
        if kind == "text/html" {
            assert!(!text.contains("<script>"), "{path}");
            assert!(!text.contains(" onclick="), "{path}");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{path}"
            );
        }
        assert!(!text.contains("localStorage"), "{path}");
    }
    let r = s.call_as(None, "GET", "/site/not-found-page.html", Body::None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json, "url not found");
    // The login page is Databunker's `/`: its test looks for "login".
    let r = s.call_as(None, "GET", "/", Body::None);
    assert!(r.json.as_str().unwrap().to_lowercase().contains("login"));
}
