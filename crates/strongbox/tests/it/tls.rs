//! TLS on the listener, end to end with the machine's `openssl` and `curl` as the
//! clients: HTTPS only, TLS 1.2 and 1.3 only, HSTS, the certificate reloaded on SIGHUP
//! (a bad file refused, the old one kept), mTLS, and HTTP/2 through ALPN. The listener does not depend on
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

pub(crate) fn sh_ok(dir: &Path, cmd: &str) -> String {
    let (ok, text) = sh(dir, cmd);
    assert!(ok, "{cmd}: {text}");
    text
}

/// A CA, a server certificate for 127.0.0.1 named `cn`, and a client certificate.
pub(crate) fn certificates(dir: &Path) {
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
            "curl -sS -i --http1.1 --cacert ca.pem https://{}/v1/sys/health",
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

/// HTTP/2 when the client offers it: the same answers and headers, connections
/// reused, the header-count cap, and an idle connection closed with GOAWAY after
/// the header timeout.
#[test]
fn http2_through_alpn_under_the_same_limits() {
    let (_d, dir) = scratch();
    let s = tls_server(&dir, &["--header-read-timeout", "2"]);
    let url = format!("https://{}", host(&s));
    let out = sh_ok(
        &dir,
        &format!("curl -sS -i --http2 --cacert ca.pem {url}/v1/sys/health"),
    );
    assert!(out.starts_with("HTTP/2 200"), "{out}");
    assert!(
        out.contains("strict-transport-security: max-age=31536000"),
        "{out}"
    );
    // A change and a read over HTTP/2, on one connection.
    let out = sh_ok(
        &dir,
        &format!(
            "curl -sS --http2 --cacert ca.pem -H 'X-Bunker-Token: {}' \
             -H 'Content-Type: application/json' -d '{{\"login\":\"zq-h2\"}}' {url}/v1/user \
             -w '\n%{{http_version}} %{{num_connects}}\n' \
             --next --cacert ca.pem -H 'X-Bunker-Token: {}' {url}/v1/user/login/zq-h2 \
             -w '\n%{{http_version}} %{{num_connects}}\n'",
            s.token, s.token
        ),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("\"token\""), "{out}");
    assert_eq!(lines[1], "2 1", "{out}");
    assert!(lines[2].contains("zq-h2"), "{out}");
    assert_eq!(lines[3], "2 0", "a second connection was opened: {out}");
    // HTTP/2 has no header-count limit of its own: the server applies its own.
    let many: String = (0..101).map(|i| format!(" -H 'x-n{i}: v'")).collect();
    let out = sh_ok(
        &dir,
        &format!("curl -sS --http2 --cacert ca.pem{many} -w ' %{{http_code}}' {url}/v1/status"),
    );
    assert!(
        out.ends_with(" 431") && out.contains("too many header fields"),
        "{out}"
    );
    // A client that opens an HTTP/2 connection and sends nothing more is sent
    // GOAWAY once the header timeout (2 s) passes, then dropped.
    let mut client = Command::new("openssl")
        .args([
            "s_client", "-alpn", "h2", "-quiet", "-CAfile", "ca.pem", "-connect",
        ])
        .arg(host(&s))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS
    std::io::Write::write_all(&mut stdin, &hello).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut stdout = client.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::Read::read_to_end(&mut stdout, &mut got).unwrap();
        got
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reader.is_finished() {
        assert!(
            Instant::now() < deadline,
            "an idle HTTP/2 connection stayed open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    let got = reader.join().unwrap();
    let _ = client.kill();
    drop(stdin);
    let _ = client.wait();
    assert!(
        took >= Duration::from_millis(1500),
        "closed too early: {took:?}"
    );
    // A GOAWAY frame: 8 bytes long, type 7, stream 0.
    assert!(
        got.windows(9).any(|w| w == [0, 0, 8, 7, 0, 0, 0, 0, 0]),
        "no GOAWAY in {got:?}"
    );
    // The server still serves.
    let out = sh_ok(
        &dir,
        &format!("curl -sS --http2 --cacert ca.pem {url}/v1/sys/health"),
    );
    assert!(out.contains("\"ok\""), "{out}");
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

/// An HTTPS receiver (Python's `http.server` with the `first` certificate) that writes
/// each body it gets as a line of `got.txt`; killed when dropped.
struct HttpsReceiver {
    child: std::process::Child,
    url: String,
}

impl Drop for HttpsReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn https_receiver(dir: &Path) -> HttpsReceiver {
    use std::io::BufRead;
    let script = r#"
import http.server, ssl
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with open('got.txt', 'ab') as f:
            f.write(body + b'\n')
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(('127.0.0.1', 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain('first.pem', 'first.key')
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    HttpsReceiver {
        child,
        url: format!("https://127.0.0.1:{}/hook", line.trim()),
    }
}

#[test]
fn webhooks_reach_https_receivers_whose_certificate_chains_to_the_ca() {
    let (_d, dir) = scratch();
    let receiver = https_receiver(&dir);
    let got = || std::fs::read_to_string(dir.join("got.txt")).unwrap_or_default();
    // Trusting the test CA: delivered.
    let ca = dir.join("ca.pem").display().to_string();
    let s = Server::start_with(
        &Backend::Sqlite,
        &[
            "--notification-url",
            &receiver.url,
            "--notification-ca",
            &ca,
        ],
    );
    let t = s.create_user(serde_json::json!({"email": "tls-hook@example.com"}));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !got().contains(&t) {
        assert!(Instant::now() < deadline, "not delivered: {}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(got().contains("profilenew"), "{}", got());
    // Trusting only the system's CAs, which do not know the test CA: not delivered,
    // and the failure is logged (the outbox keeps it for a retry).
    let s = Server::start_with(&Backend::Sqlite, &["--notification-url", &receiver.url]);
    let t = s.create_user(serde_json::json!({"email": "tls-hook2@example.com"}));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !s.log().contains("webhook delivery failed") {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!got().contains(&t), "{}", got());
}
