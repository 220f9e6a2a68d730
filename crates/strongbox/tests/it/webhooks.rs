//! Webhooks (`--notification-url`): Databunker's payloads, signed, delivered from a
//! durable outbox with retries, never in the way of the API. On every backend.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Server};

backend_tests!(
    webhooks_carry_databunker_payloads_signed,
    a_failing_receiver_gets_retries_and_nothing_is_lost,
    one_persons_webhooks_arrive_in_order,
    a_dead_receivers_outbox_is_bounded_and_counted,
);

const SECRET: &str = "zq-webhook-secret";

/// The requests a receiver got: lower-cased headers (and `:method`, `:path`) and the
/// body.
pub(crate) type Received = Arc<Mutex<Vec<(HashMap<String, String>, Vec<u8>)>>>;

/// A minimal HTTP receiver: records each request, or answers 503 while `fail` > 0.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) got: Received,
    fail: Arc<AtomicUsize>,
}

pub(crate) fn receiver(fail: usize) -> Receiver {
    receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), fail)
}

fn receiver_on(listener: TcpListener, fail: usize) -> Receiver {
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Received = Arc::new(Mutex::new(Vec::new()));
    let fail = Arc::new(AtomicUsize::new(fail));
    let (g, f) = (got.clone(), fail.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = HashMap::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut request = line.split_ascii_whitespace();
            headers.insert(":method".into(), request.next().unwrap_or("").to_string());
            headers.insert(":path".into(), request.next().unwrap_or("").to_string());
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let status = if f.load(Ordering::SeqCst) > 0 {
                f.fetch_sub(1, Ordering::SeqCst);
                "503 Service Unavailable"
            } else {
                g.lock().unwrap().push((headers, body));
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    Receiver { url, got, fail }
}

impl Receiver {
    /// Waits until `n` notifications arrived; their bodies as JSON.
    fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.got.lock().unwrap();
            if got.len() >= n {
                return got
                    .iter()
                    .map(|(_, b)| serde_json::from_slice(b).unwrap())
                    .collect();
            }
            drop(got);
            assert!(
                Instant::now() < deadline,
                "only {} of {n} webhooks arrived",
                self.got.lock().unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn server(b: &Backend, r: &Receiver) -> Server {
    Server::start_with(
        b,
        &[
            "--notification-url",
            &r.url,
            &format!("env:STRONGBOX_NOTIFICATION_SECRET={SECRET}"),
        ],
    )
}

fn webhooks_carry_databunker_payloads_signed(b: &Backend) {
    let r = receiver(0);
    let s = server(b, &r);
    let t = s.create_user(json!({"login": "john1", "name": "John"}));
    s.call(
        "PUT",
        &format!("/v1/user/token/{t}"),
        Body::Json(json!({"name": "Johnny"})),
    )
    .expect(200);
    s.call(
        "POST",
        "/v1/lbasis/promo",
        Body::Json(json!({"usercontrol": true})),
    )
    .expect(200);
    s.call(
        "POST",
        &format!("/v1/agreement/promo/token/{t}"),
        Body::None,
    )
    .expect(200);
    s.call(
        "DELETE",
        &format!("/v1/agreement/promo/token/{t}"),
        Body::None,
    )
    .expect(200);
    s.call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    let got = r.wait_for(4, Duration::from_secs(15));
    assert_eq!(
        got,
        vec![
            json!({"action": "profilenew", "identity": t, "mode": "token", "profile": {"login": "john1", "name": "John"}}),
            json!({"action": "profilechange", "identity": t, "mode": "token",
                   "old": {"login": "john1", "name": "John"}, "profile": {"login": "john1", "name": "Johnny"}}),
            json!({"action": "consentchange", "brief": "promo", "identity": t, "mode": "token", "status": "no"}),
            json!({"action": "forgetme", "identity": t, "mode": "token", "profile": {"login": "john1", "name": "Johnny"}}),
        ]
    );
    // Each is signed over "<t>.<body>" with the operator's secret.
    for (headers, body) in r.got.lock().unwrap().iter() {
        assert_eq!(
            headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        let sig = headers
            .get("x-strongbox-signature")
            .expect("signature header");
        let (ts, mac) = sig.split_once(",v1=").unwrap();
        let ts = ts.strip_prefix("t=").unwrap();
        let mut signed = format!("{ts}.").into_bytes();
        signed.extend_from_slice(body);
        let expected: String = strongbox_crypto::hmac_sha256(SECRET.as_bytes(), &signed)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(mac, expected);
    }
    // Delivered notifications leave nothing behind (the erased profile included).
    let deadline = Instant::now() + Duration::from_secs(5);
    while s
        .store
        .sql("SELECT COUNT(*) FROM records WHERE kind = 'outbox'")
        .trim()
        != "0"
    {
        assert!(Instant::now() < deadline, "outbox not emptied");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn a_failing_receiver_gets_retries_and_nothing_is_lost(b: &Backend) {
    // The receiver refuses everything for now.
    let r = receiver(usize::MAX);
    let mut s = server(b, &r);
    let started = Instant::now();
    let t = s.create_user(json!({"login": "zq-retry"}));
    for i in 0..5 {
        s.call(
            "PUT",
            &format!("/v1/user/token/{t}"),
            Body::Json(json!({"n": i})),
        )
        .expect(200);
    }
    // Six deliveries waited on would take 30 s (5 s timeout each); the bound leaves
    // room for a loaded test machine.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "a dead receiver slowed the API"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(r.got.lock().unwrap().is_empty());
    // A crash loses nothing: the notifications wait in the outbox.
    s = s.crash_and_restart();
    r.fail.store(0, Ordering::SeqCst);
    let got = r.wait_for(6, Duration::from_secs(30));
    assert_eq!(got[0]["action"], "profilenew");
    assert_eq!(
        got.iter()
            .filter(|g| g["action"] == "profilechange")
            .count(),
        5
    );
    // In the order they were made.
    for (i, g) in got[1..].iter().enumerate() {
        assert_eq!(g["profile"]["n"], i, "{got:?}");
    }
    s.get_user("token", &t).expect(200);
}

/// A notification that failed holds back the later ones about the same person
/// until it is delivered: `profilenew` never arrives after its `profilechange`.
/// Other people's notifications are not held back.
fn one_persons_webhooks_arrive_in_order(b: &Backend) {
    // The first delivery fails; it is tried again after a backoff.
    let r = receiver(1);
    let s = server(b, &r);
    let t = s.create_user(json!({"login": "zq-order"}));
    s.call(
        "PUT",
        &format!("/v1/user/token/{t}"),
        Body::Json(json!({"step": 2})),
    )
    .expect(200);
    let got = r.wait_for(2, Duration::from_secs(30));
    assert_eq!(got[0]["action"], "profilenew", "{got:?}");
    assert_eq!(got[1]["action"], "profilechange", "{got:?}");
    assert_eq!(got[1]["profile"]["step"], 2);
}

/// A metric's value in a `/v1/metrics` scrape (0 when absent).
fn metric(s: &Server, name: &str) -> u64 {
    let (status, text) = crate::system::scrape(s, &[("X-Bunker-Token", &s.token)]);
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// A receiver that is down for long: the API goes on answering, the outbox keeps
/// no more than `--notification-outbox-max`, the rest is dropped and counted, the
/// failures show in the metrics, and what was kept arrives once it is back.
fn a_dead_receivers_outbox_is_bounded_and_counted(b: &Backend) {
    // A port nobody listens on: every delivery is refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let s = Server::start_with(
        b,
        &["--notification-url", &url, "--notification-outbox-max", "5"],
    );
    let started = Instant::now();
    let tokens: Vec<String> = (0..8)
        .map(|i| s.create_user(json!({"login": format!("zq-dead-{i}")})))
        .collect();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the API slowed"
    );
    let outbox = || {
        s.store
            .sql("SELECT COUNT(*) FROM records WHERE kind = 'outbox'")
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    // The bound is checked against the worker's last count plus what was queued
    // since; a recount that lands while one create is between queueing and its
    // commit misses that one, so one sequential client can pass the bound by one.
    let kept = outbox();
    assert!(
        (5..=6).contains(&kept),
        "the outbox passed its bound: {kept}"
    );
    assert_eq!(
        metric(&s, "strongbox_webhook_dropped_total"),
        8 - kept,
        "each notification was either kept or dropped and counted"
    );
    // Every change committed all the same.
    for t in &tokens {
        s.get_user("token", t).expect(200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&s, "strongbox_webhook_failures_total") == 0 {
        assert!(Instant::now() < deadline, "no failed delivery counted");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(metric(&s, "strongbox_webhook_delivered_total"), 0);
    assert!(s.log().contains("the webhook outbox is full"));
    // The receiver comes back on its port: those kept arrive (the backoff
    // after one or two failures is a few seconds).
    let r = receiver_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), 0);
    let got = r.wait_for(kept as usize, Duration::from_secs(40));
    assert!(got.iter().all(|g| g["action"] == "profilenew"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while outbox() != 0 || metric(&s, "strongbox_webhook_outbox_queued") != 0 {
        assert!(Instant::now() < deadline, "the outbox did not empty");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(metric(&s, "strongbox_webhook_delivered_total"), kept);
}
