//! TLS on the listener, end to end with the machine's `openssl` and `curl` as the
//! clients: HTTPS only, TLS 1.2 and 1.3 only, HSTS, the certificate reloaded on SIGHUP
//! (a bad file refused, the old one kept), and mTLS. The listener does not depend on
//! the backend, so these run on SQLite.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Backend, Server};

/// Runs a shell command in `dir`; its stdout and stderr, and whether it succeeded.
fn sh(dir: &Path, cmd: &str) -> (bool, String) {
    let out = Command::new("bash")
        .args(["-c", cmd])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn sh_ok(dir: &Path, cmd: &str) -> String {
    let (ok, text) = sh(dir, cmd);
    assert!(ok, "{cmd}: {text}");
    text
}

/// A CA, a server certificate for 127.0.0.1 named `cn`, and a client certificate.
fn certificates(dir: &Path) {
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    sh_ok(
        dir,
        &format!(
            "openssl req -x509 {ec} -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem 2>&1"
        ),
    );
    for (name, ext) in [
        (
            "first",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
        ),
        (
            "second",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
        ),
        ("client", "extendedKeyUsage=clientAuth"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        sh_ok(
            dir,
            &format!(
                "openssl req {ec} -subj /CN={name} -keyout {name}.key -out {name}.csr 2>&1 && \
                 openssl x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                 -days 2 -extfile {name}.ext -out {name}.pem 2>&1"
            ),
        );
    }
    std::fs::copy(dir.join("first.pem"), dir.join("server.pem")).unwrap();
    std::fs::copy(dir.join("first.key"), dir.join("server.key")).unwrap();
}

fn tls_server(dir: &Path, extra: &[&str]) -> Server {
    let cert = dir.join("server.pem").display().to_string();
    let key = dir.join("server.key").display().to_string();
    let mut args = vec!["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
    args.extend_from_slice(extra);
    Server::start_with(&Backend::Sqlite, &args)
}

fn host(s: &Server) -> String {
    s.base.trim_start_matches("https://").to_string()
}

/// The subject CN of the certificate the server presents now.
fn served_cn(dir: &Path, s: &Server) -> String {
    let out = sh_ok(
        dir,
        &format!(
            "openssl s_client -connect {} -CAfile ca.pem </dev/null 2>/dev/null | \
             openssl x509 -noout -subject",
            host(s)
        ),
    );
    out.trim()
        .rsplit('=')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_path_buf();
    certificates(&p);
    (d, p)
}

#[test]
fn https_only_modern_versions_and_hsts() {
    let (_d, dir) = scratch();
    let s = tls_server(&dir, &[]);
    assert!(s.base.starts_with("https://"), "{}", s.base);
    let out = sh_ok(
        &dir,
        &format!(
            "curl -sS -i --cacert ca.pem https://{}/v1/sys/health",
            host(&s)
        ),
    );
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{out}"
    );
    // Plain HTTP on the same port gets no answer.
    let (ok, out) = sh(
        &dir,
        &format!("curl -sS -m 5 http://{}/v1/sys/health", host(&s)),
    );
    assert!(!ok && !out.contains("\"status\""), "{out}");
    // TLS 1.1 is refused (the client is let to offer it); 1.2 and 1.3 are taken.
    for (flag, taken) in [
        ("-tls1_1 -cipher DEFAULT:@SECLEVEL=0", false),
        ("-tls1_2", true),
        ("-tls1_3", true),
    ] {
        let (ok, out) = sh(
            &dir,
            &format!(
                "openssl s_client -connect {} -CAfile ca.pem {flag} </dev/null 2>&1",
                host(&s)
            ),
        );
        let verified = out.contains("Verify return code: 0 (ok)");
        assert_eq!(ok && verified, taken, "{flag}: {out}");
    }
}

#[test]
fn sighup_reloads_the_certificate_and_a_bad_one_is_refused() {
    let (_d, dir) = scratch();
    let s = tls_server(&dir, &[]);
    assert_eq!(served_cn(&dir, &s), "first");
    std::fs::copy(dir.join("second.pem"), dir.join("server.pem")).unwrap();
    std::fs::copy(dir.join("second.key"), dir.join("server.key")).unwrap();
    s.sighup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_cn(&dir, &s) != "second" {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not taken"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A damaged file: refused with a log line, the certificate in use stays.
    std::fs::write(dir.join("server.pem"), "not a certificate").unwrap();
    s.sighup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.log().contains("TLS reload refused") {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(served_cn(&dir, &s), "second");
    let out = sh_ok(
        &dir,
        &format!(
            "curl -sS --cacert ca.pem https://{}/v1/sys/health",
            host(&s)
        ),
    );
    assert!(out.contains("\"ok\""), "{out}");
}

#[test]
fn mtls_requires_a_client_certificate_from_the_ca() {
    let (_d, dir) = scratch();
    let ca = dir.join("ca.pem").display().to_string();
    let s = tls_server(&dir, &["--tls-client-ca", &ca]);
    let url = format!("https://{}/v1/sys/health", host(&s));
    let (ok, out) = sh(&dir, &format!("curl -sS -m 5 --cacert ca.pem {url}"));
    assert!(!ok && !out.contains("\"status\""), "{out}");
    // A certificate from another CA is no better than none.
    sh_ok(
        &dir,
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
         -subj /CN=stranger -keyout stranger.key -out stranger.pem 2>&1",
    );
    let (ok, out) = sh(
        &dir,
        &format!("curl -sS -m 5 --cacert ca.pem --cert stranger.pem --key stranger.key {url}"),
    );
    assert!(!ok && !out.contains("\"status\""), "{out}");
    let out = sh_ok(
        &dir,
        &format!("curl -sS --cacert ca.pem --cert client.pem --key client.key {url}"),
    );
    assert!(out.contains("\"ok\""), "{out}");
}
