//! Login codes leave the vault by email (SMTP: plain, STARTTLS, implicit TLS, with
//! AUTH) and by SMS (an HTTP gateway with Databunker's templates), from a durable
//! outbox with retries. The mail server is aiosmtpd (`tests/mail_sink.py`), a real
//! SMTP implementation that is not ours.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Server, run_bin};

backend_tests!(
    a_code_is_mailed_and_logs_in,
    a_mail_server_that_is_down_gets_retries,
    a_code_is_sent_by_sms_through_the_gateway,
    consent_is_recorded_only_once_the_code_is_verified,
);

const EMAIL: &str = "ann@example.com";
const SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mail_sink.py");

/// A running aiosmtpd that appends every message it takes to a file.
pub(crate) struct MailSink {
    child: Child,
    pub(crate) out: PathBuf,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl MailSink {
    /// `mode`: plain, starttls or tls; `tls`: the directory with server.pem/.key.
    pub(crate) fn start(port: u16, mode: &str, tls: Option<&Path>, auth: Option<&str>) -> MailSink {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mail.jsonl");
        let mut cmd = Command::new("python3");
        cmd.arg(SINK)
            .args(["--out", out.to_str().unwrap()])
            .args(["--port", &port.to_string(), "--mode", mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(t) = tls {
            cmd.arg("--cert").arg(t.join("server.pem"));
            cmd.arg("--key").arg(t.join("server.key"));
        }
        if let Some(a) = auth {
            cmd.args(["--auth", a]);
        }
        let mut child = cmd
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd; .ci/run does)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!("the mail sink did not start (is aiosmtpd installed?): {line:?}")
            });
        MailSink {
            child,
            out,
            port,
            _dir: dir,
        }
    }

    pub(crate) fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `n` messages arrived.
    pub(crate) fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} mails arrived",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl MailSink {
    /// Stops taking connections until [`MailSink::resume`] (SIGSTOP).
    pub(crate) fn pause(&self) {
        signal(self.child.id(), "STOP");
    }

    pub(crate) fn resume(&self) {
        signal(self.child.id(), "CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

impl Drop for MailSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The 6-digit code in a message's text.
pub(crate) fn code_in(text: &str) -> String {
    let at = text.find("access code is ").expect("a code in the message") + 15;
    let code = &text[at..at + 6];
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{text}");
    code.to_string()
}

fn get(s: &Server, path: &str) -> crate::harness::Reply {
    s.call_as(None, "GET", path, Body::None)
}

fn mail_server(b: &Backend, sink: &MailSink, extra: &[&str]) -> Server {
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let mut args = vec![
        "--login-captcha",
        "false",
        "--smtp-url",
        url.as_str(),
        "--smtp-from",
        "Vault <vault@example.com>",
    ];
    args.extend_from_slice(extra);
    Server::start_with(b, &args)
}

fn a_code_is_mailed_and_logs_in(b: &Backend) {
    let sink = MailSink::start(0, "plain", None, None);
    let s = mail_server(b, &sink, &[]);
    let token = s.create_user(json!({"email": EMAIL}));
    // Stopped, the mail server cannot take the code yet: it waits in the outbox.
    sink.pause();
    get(&s, "/v1/prelogin/email/Ann@Example.com/0/0").expect(200);
    std::thread::sleep(Duration::from_millis(500));
    // The queued code's address is sealed like the profile: not in the store in the
    // clear, on any backend (the code itself is checked below, once known).
    let raw = s.store.raw_contents();
    assert!(
        !String::from_utf8_lossy(&raw).contains(EMAIL),
        "the address is in the store in the clear"
    );
    sink.resume();
    let mail = &sink.wait_for(1, Duration::from_secs(40))[0];
    assert_eq!(mail["from"], "vault@example.com");
    assert_eq!(mail["to"], json!([EMAIL]));
    let data = mail["data"].as_str().unwrap();
    assert!(data.contains("Subject: Your access code"), "{data}");
    assert!(
        data.contains("From: \"Vault\" <vault@example.com>"),
        "{data}"
    );
    let code = code_in(data);
    let r = get(&s, &format!("/v1/login/email/{EMAIL}/{code}")).expect(200);
    assert_eq!(r["token"], token.as_str());
    // The code was sealed in the outbox and is gone with it; an unknown address
    // gets the same answer and no mail.
    get(&s, "/v1/prelogin/email/nobody@example.com/0/0").expect(200);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(sink.messages().len(), 1);
    let metrics = s.call("GET", "/v1/metrics", Body::None).expect(200);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("\nstrongbox_login_code_sent_total 1\n"),
        "{text}"
    );
    assert!(!s.log().contains(&code), "the code reached the log");
    for written in [EMAIL, "Ann@Example.com"] {
        assert!(!s.log().contains(written), "the address reached the log");
    }
    if matches!(b, Backend::Sqlite) {
        // (SQLite's file only: a dump's text holds too many digits to look for six.)
        let raw = s.store.raw_contents();
        assert!(
            !raw.windows(code.len()).any(|w| w == code.as_bytes()),
            "the code is in the store in the clear"
        );
    }
}

fn a_mail_server_that_is_down_gets_retries(b: &Backend) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("smtp://127.0.0.1:{port}");
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
    s.create_user(json!({"email": EMAIL}));
    // Acknowledged while the mail server is down: the code waits in the outbox.
    get(&s, &format!("/v1/prelogin/email/{EMAIL}/0/0")).expect(200);
    std::thread::sleep(Duration::from_secs(3));
    // Asked again meanwhile: only the newer code (the one that works) is sent.
    get(&s, &format!("/v1/prelogin/email/{EMAIL}/0/0")).expect(200);
    let sink = MailSink::start(port, "plain", None, None);
    let mail = &sink.wait_for(1, Duration::from_secs(40))[0];
    let code = code_in(mail["data"].as_str().unwrap());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.messages().len(), 1, "a superseded code was sent");
    get(&s, &format!("/v1/login/email/{EMAIL}/{code}")).expect(200);
    assert!(s.log().contains("login code not sent; will retry"));
}

fn a_code_is_sent_by_sms_through_the_gateway(b: &Backend) {
    let gw = crate::webhooks::receiver(0);
    let url = format!("{}?to=_PHONE_&from=_FROM_", gw.url);
    let s = Server::start_with(
        b,
        &[
            "--login-captcha",
            "false",
            "--sms-url",
            &url,
            "--sms-method",
            "POST",
            "--sms-content-type",
            "json",
            "--sms-body",
            r#"{"to":"_PHONE_","body":"_MSG_","key":"_TOKEN_"}"#,
            "--sms-from",
            "Vault & Co",
            "--sms-header",
            "X-Api-Key: k1",
            "env:STRONGBOX_SMS_TOKEN=tok-secret",
            "env:STRONGBOX_SMS_BASIC_AUTH=gwuser:gwpass",
        ],
    );
    let token = s.create_user(json!({"phone": "+447911123456"}));
    // Written another way, the number normalizes to the same one.
    get(&s, "/v1/prelogin/phone/07911%20123456/0/0").expect(200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while gw.got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no SMS reached the gateway");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (headers, body) = gw.got.lock().unwrap()[0].clone();
    assert_eq!(headers[":method"], "POST");
    assert_eq!(
        headers[":path"],
        "/hook?to=%2B447911123456&from=Vault+%26+Co"
    );
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-api-key"], "k1");
    // gwuser:gwpass
    assert_eq!(headers["authorization"], "Basic Z3d1c2VyOmd3cGFzcw==");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["to"], "+447911123456");
    assert_eq!(body["key"], "tok-secret");
    let code = code_in(body["body"].as_str().unwrap());
    let r = get(&s, &format!("/v1/login/phone/+447911123456/{code}")).expect(200);
    assert_eq!(r["token"], token.as_str());
    assert!(!s.log().contains("tok-secret"));
}

fn consent_is_recorded_only_once_the_code_is_verified(b: &Backend) {
    let sink = MailSink::start(0, "plain", None, None);
    let s = mail_server(b, &sink, &[]);
    let token = s.create_user(json!({"email": EMAIL}));
    s.call(
        "POST",
        "/v1/lbasis/marketing",
        Body::Json(json!({"shortdesc": "Marketing", "usercontrol": true, "module": "login"})),
    )
    .expect(200);
    let agreement = format!("/v1/agreement/marketing/token/{token}");
    // Anonymous consent for a typed address stays refused.
    let r = s.call_as(
        None,
        "POST",
        &format!("/v1/agreement/marketing/email/{EMAIL}"),
        Body::Json(json!({})),
    );
    assert!((400..500).contains(&r.status), "{}", r.json);
    get(&s, &format!("/v1/prelogin/email/{EMAIL}/0/0")).expect(200);
    let code = code_in(
        sink.wait_for(1, Duration::from_secs(20))[0]["data"]
            .as_str()
            .unwrap(),
    );
    let wrong = if code == "999999" { "999998" } else { "999999" };
    // A wrong code records nothing; an unknown brief is refused and spends nothing.
    get(
        &s,
        &format!("/v1/login/email/{EMAIL}/{wrong}?consent=marketing"),
    )
    .expect(403);
    s.call("GET", &agreement, Body::None).expect(404);
    get(
        &s,
        &format!("/v1/login/email/{EMAIL}/{code}?consent=nosuch"),
    )
    .expect(404);
    s.call("GET", &agreement, Body::None).expect(404);
    let r = get(
        &s,
        &format!("/v1/login/email/{EMAIL}/{code}?consent=marketing"),
    )
    .expect(200);
    assert_eq!(r["token"], token.as_str());
    let a = s.call("GET", &agreement, Body::None).expect(200);
    assert_eq!(a["data"]["status"], "yes", "{a}");
    assert_eq!(a["data"]["agreementmethod"], "login", "{a}");
    assert!(
        a["data"]["starttime"].as_i64().unwrap() > 1_700_000_000,
        "{a}"
    );
    // Recorded as the person, with their new token, not as root or anonymous.
    let audit = s
        .call("GET", "/v1/audit/admin?offset=0&limit=50", Body::None)
        .expect(200);
    let accept = audit["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "agreement.accept")
        .unwrap_or_else(|| panic!("{audit}"))
        .clone();
    assert!(
        accept["identity"].as_str().unwrap().starts_with("xtoken:"),
        "{accept}"
    );
}

/// STARTTLS and implicit TLS, each with AUTH PLAIN, against a server whose
/// certificate chains to a private CA given with `--smtp-ca`; a server without
/// STARTTLS is not used when it is required.
#[test]
fn smtp_over_starttls_and_tls_with_auth() {
    let tls = tempfile::tempdir().unwrap();
    crate::tls::certificates(tls.path());
    let ca = tls.path().join("ca.pem").display().to_string();
    for (mode, scheme, query) in [("starttls", "smtp", "?tls=required"), ("tls", "smtps", "")] {
        let sink = MailSink::start(0, mode, Some(tls.path()), Some("mailer:s3cret"));
        let url = format!("{scheme}://mailer@127.0.0.1:{}{query}", sink.port);
        let s = Server::start_with(
            &Backend::Sqlite,
            &[
                "--login-captcha",
                "false",
                "--smtp-url",
                &url,
                "--smtp-from",
                "vault@example.com",
                "--smtp-ca",
                &ca,
                "env:STRONGBOX_SMTP_PASSWORD=s3cret",
            ],
        );
        s.create_user(json!({"email": EMAIL}));
        get(&s, &format!("/v1/prelogin/email/{EMAIL}/0/0")).expect(200);
        let mail = &sink.wait_for(1, Duration::from_secs(20))[0];
        assert_eq!(mail["tls"], true, "{mode}");
        assert_eq!(mail["auth"], "mailer", "{mode}");
        let code = code_in(mail["data"].as_str().unwrap());
        get(&s, &format!("/v1/login/email/{EMAIL}/{code}")).expect(200);
    }
    // STARTTLS required, a server that offers none: nothing is sent in the clear.
    let plain = MailSink::start(0, "plain", None, None);
    let url = format!("smtp://127.0.0.1:{}?tls=required", plain.port);
    let s = Server::start_with(
        &Backend::Sqlite,
        &[
            "--login-captcha",
            "false",
            "--smtp-url",
            &url,
            "--smtp-from",
            "vault@example.com",
            "--smtp-ca",
            &ca,
        ],
    );
    s.create_user(json!({"email": EMAIL}));
    get(&s, &format!("/v1/prelogin/email/{EMAIL}/0/0")).expect(200);
    std::thread::sleep(Duration::from_secs(3));
    assert!(plain.messages().is_empty());
    assert!(s.log().contains("does not offer STARTTLS"), "{}", s.log());
}

/// Wrong delivery settings stop the server at start, with a message that never
/// repeats a password.
#[test]
fn bad_delivery_settings_are_refused_at_start() {
    for (args, says) in [
        (
            vec![
                "--smtp-url",
                "smtp://u:hunter2@mail.example.com",
                "--smtp-from",
                "v@example.com",
            ],
            "unencrypted",
        ),
        (vec!["--smtp-url", "smtp://127.0.0.1:25"], "smtp_from"),
        (
            vec!["--smtp-url", "imap://x", "--smtp-from", "v@example.com"],
            "smtp://",
        ),
        (vec!["--sms-url", "ftp://gw"], "sms_url"),
        (
            vec!["--sms-url", "http://gw", "--sms-method", "POST"],
            "sms_body",
        ),
    ] {
        let mut all = vec!["demo", "--listen", "127.0.0.1:0"];
        all.extend(args.iter().copied());
        let (code, out) = run_bin(&all, &[("STRONGBOX_ROOT_KEY", None)], "");
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(out.contains(says), "{args:?}: {out}");
        assert!(!out.contains("hunter2"), "{out}");
    }
    // The SMTP password, a key in the SMS URL and the gateway's header are secrets:
    // neither `--help` nor `--print-config` shows them.
    let env = [
        (
            "STRONGBOX_SMTP_URL",
            Some("smtp://u:hunter2@mail.example.com:587?tls=required"),
        ),
        (
            "STRONGBOX_SMS_URL",
            Some("https://gw.example.com/send?key=sekrit1"),
        ),
        ("STRONGBOX_SMS_HEADER", Some("X-Api-Key: sekrit2")),
    ];
    for args in [["serve", "--help"], ["serve", "--print-config"]] {
        let (_, out) = run_bin(&args, &env, "");
        assert!(
            out.contains("smtp_url") || out.contains("--smtp-url"),
            "{out}"
        );
        for secret in ["hunter2", "sekrit1", "sekrit2"] {
            assert!(!out.contains(secret), "{args:?} shows {secret}: {out}");
        }
    }
}

/// A server (or someone on the path) that answers STARTTLS with more bytes than its
/// `220` would have them read as if they came over TLS (the STARTTLS injection
/// attacks): the client refuses, and sends nothing.
#[test]
fn bytes_sent_before_the_tls_handshake_are_refused() {
    use std::io::Write;
    let tls = tempfile::tempdir().unwrap();
    crate::tls::certificates(tls.path());
    let ca = tls.path().join("ca.pem").display().to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = stream.write_all(b"220 fake ESMTP\r\n");
            let _ = reader.read_line(&mut line); // EHLO
            let _ = stream.write_all(b"250-fake\r\n250 STARTTLS\r\n");
            line.clear();
            let _ = reader.read_line(&mut line); // STARTTLS
            let _ = stream.write_all(b"220 go ahead\r\n250 injected\r\n");
            line.clear();
            let _ = reader.read_line(&mut line);
        }
    });
    let url = format!("smtp://127.0.0.1:{port}?tls=required");
    let s = Server::start_with(
        &Backend::Sqlite,
        &[
            "--login-captcha",
            "false",
            "--smtp-url",
            &url,
            "--smtp-from",
            "vault@example.com",
            "--smtp-ca",
            &ca,
        ],
    );
    s.create_user(json!({"email": EMAIL}));
    get(&s, &format!("/v1/prelogin/email/{EMAIL}/0/0")).expect(200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !s.log().contains("sent data before the TLS handshake") {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}
