//! The listener's limits, end to end against a real server: a client that trickles
//! its headers (slowloris) or its body, idle connections, too many connections, too
//! many or too large headers. None of them may delay other clients; each is cut off
//! when its time is up. And a stop (SIGTERM) lets the request in flight finish. The listener is the same whatever the backend, so these run
//! on SQLite.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Backend, Body, Server};

fn connect(s: &Server) -> TcpStream {
    let addr = s.base.trim_start_matches("http://");
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    c
}

/// Reads until the server closes the connection; how long that took, and what came.
fn until_closed(c: &mut TcpStream) -> (Duration, String) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&got).into_owned(),
    )
}

/// A request from another client answers at once.
fn others_are_served(s: &Server) {
    let started = Instant::now();
    s.call_as(None, "GET", "/v1/status", Body::None).expect(200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn slow_headers_are_cut_off_without_delaying_others() {
    let s = Server::start_with(&Backend::Sqlite, &["--header-read-timeout", "2"]);
    let mut slow = connect(&s);
    let started = Instant::now();
    // One byte every 300 ms: the headers would take far longer than 2 s.
    let head =
        b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut cut = false;
    for b in head {
        if slow.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        others_are_served(&s);
        std::thread::sleep(Duration::from_millis(300));
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    let (_, got) = until_closed(&mut slow);
    let total = started.elapsed();
    assert!(
        cut || total < Duration::from_secs(8),
        "the slow client was not cut off ({total:?})"
    );
    assert!(!got.contains("200 OK"), "{got}");
    others_are_served(&s);
}

#[test]
fn idle_connections_are_closed() {
    let s = Server::start_with(&Backend::Sqlite, &["--header-read-timeout", "2"]);
    // Connected, nothing sent.
    let mut silent = connect(&s);
    // One request answered, then idle on a kept-alive connection.
    let mut kept = connect(&s);
    kept.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    for c in [&mut silent, &mut kept] {
        let (waited, _) = until_closed(c);
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }
}

#[test]
fn connections_beyond_the_cap_are_closed_at_once() {
    let s = Server::start_with(
        &Backend::Sqlite,
        &["--max-connections", "3", "--header-read-timeout", "3"],
    );
    let held: Vec<TcpStream> = (0..3).map(|_| connect(&s)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = connect(&s);
    let (waited, got) = until_closed(&mut extra);
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    assert!(got.is_empty(), "{got}");
    // The held ones time out; then there is room again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(r) = s.try_call_as(None, "GET", "/v1/status", Body::None)
            && r.status == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "no room after the cap was freed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The refusal shows in the metrics.
    let metrics = s.call("GET", "/v1/metrics", Body::None).expect(200);
    let text = metrics.as_str().unwrap_or_default();
    let refused = text
        .lines()
        .find_map(|l| l.strip_prefix("strongbox_http_connections_refused_total "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(refused.is_some_and(|n| n >= 1), "{text}");
}

#[test]
fn a_body_that_never_finishes_gets_408() {
    let s = Server::start_with(&Backend::Sqlite, &["--body-read-timeout", "1"]);
    let mut c = connect(&s);
    let started = Instant::now();
    let head = format!(
        "POST /v1/user HTTP/1.1\r\nHost: x\r\nX-Bunker-Token: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\":",
        s.token
    );
    c.write_all(head.as_bytes()).unwrap();
    let (waited, got) = until_closed(&mut c);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    let body = got.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["status"], "error");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{waited:?} {:?}",
        started.elapsed()
    );
    others_are_served(&s);
}

#[test]
fn too_many_or_too_large_headers_get_431() {
    let s = Server::start_with(
        &Backend::Sqlite,
        &["--max-headers", "20", "--max-header-bytes", "4096"],
    );
    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let large = format!("X-Big: {}\r\n", "a".repeat(8000));
    for extra in [many, large] {
        let mut c = connect(&s);
        c.write_all(format!("GET /v1/status HTTP/1.1\r\nHost: x\r\n{extra}\r\n").as_bytes())
            .unwrap();
        let (_, got) = until_closed(&mut c);
        assert!(got.starts_with("HTTP/1.1 431"), "{got}");
    }
    others_are_served(&s);
}

#[test]
fn a_stop_lets_the_request_in_flight_finish() {
    let mut s = Server::start(&Backend::Sqlite);
    let mut c = connect(&s);
    let body = br#"{"email":"inflight@example.com"}"#;
    let head = format!(
        "POST /v1/user HTTP/1.1\r\nHost: x\r\nX-Bunker-Token: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        s.token,
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.sigterm();
    std::thread::sleep(Duration::from_millis(300));
    // New connections are no longer taken.
    assert!(
        s.try_call_as(None, "GET", "/v1/status", Body::None)
            .is_none_or(|r| r.status != 200)
    );
    c.write_all(&body[10..]).unwrap();
    let (_, got) = until_closed(&mut c);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    let status = s
        .exited(Duration::from_secs(10))
        .expect("the server exited");
    assert!(status.success(), "{status:?}");
    // Acknowledged, so kept.
    let s = s.restart();
    s.get_user("email", "inflight@example.com").expect(200);
}

/// Failed attempts from one address: a burst, then 429 with `Retry-After`; the same
/// address's valid token is never slowed.
#[test]
fn guessing_tokens_is_limited_but_valid_tokens_are_not() {
    let s = Server::start_with(
        &Backend::Sqlite,
        &[
            "--failed-attempts-burst",
            "5",
            "--failed-attempts-per-minute",
            "1",
        ],
    );
    let wrong = "3f1a9c44-8a6e-4d2b-9b1e-7c2d4e5f6a7b";
    for _ in 0..5 {
        let r = s.call_as(
            Some(wrong),
            "GET",
            "/v1/user/token/3f1a9c44-8a6e-4d2b-9b1e-7c2d4e5f6a70",
            Body::None,
        );
        assert_eq!(r.status, 403, "{:?}", r.json);
    }
    let r = s.call_as(
        Some(wrong),
        "GET",
        "/v1/userapp/token/3f1a9c44-8a6e-4d2b-9b1e-7c2d4e5f6a70/x",
        Body::None,
    );
    assert_eq!(r.status, 429, "{:?}", r.json);
    assert_eq!(r.json["status"], "error");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // No token at all is a failed attempt too.
    assert_eq!(
        s.call_as(None, "GET", "/v1/audit/admin", Body::None).status,
        429
    );
    // The root token from the same address works, again and again.
    for _ in 0..30 {
        s.call("GET", "/v1/lbasis", Body::None).expect(200);
    }
    // The episode is in the audit log once, without the token or the address.
    let v = s
        .call("GET", "/v1/audit/admin?limit=100", Body::None)
        .expect(200);
    let refusals: Vec<&Value> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "edge.rate-limit")
        .collect();
    assert_eq!(refusals.len(), 1, "{v}");
    assert!(!v.to_string().contains(wrong));
    assert!(!v.to_string().contains("127.0.0.1"));
    let metrics = s.call("GET", "/v1/metrics", Body::None).expect(200);
    let text = metrics.as_str().unwrap_or_default();
    let limited = text
        .lines()
        .find_map(|l| l.strip_prefix("strongbox_http_rate_limited_total "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(limited.is_some_and(|n| n >= 2), "{text}");
}

/// Capability links (a shared record, a retention link) that name nothing count as
/// failed attempts; once over the limit, misses from that address answer 429.
#[test]
fn guessing_capability_links_is_limited() {
    let s = Server::start_with(
        &Backend::Sqlite,
        &[
            "--failed-attempts-burst",
            "4",
            "--failed-attempts-per-minute",
            "1",
        ],
    );
    for i in 0..2 {
        let r = s.call_as(
            None,
            "GET",
            &format!("/v1/get/9d0e8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6{i}"),
            Body::None,
        );
        assert_eq!(r.status, 404, "{:?}", r.json);
    }
    for i in 0..2 {
        let r = s.call_as(
            None,
            "POST",
            &format!("/v1/exp/retain/9d0e8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c7{i}"),
            Body::None,
        );
        assert_eq!(r.status, 404, "{:?}", r.json);
    }
    let r = s.call_as(
        None,
        "GET",
        "/v1/get/9d0e8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c69",
        Body::None,
    );
    assert_eq!(r.status, 429, "{:?}", r.json);
    assert!(r.headers.contains_key("retry-after"));
}

/// Only a trusted proxy may name the client: then each forwarded address has its own
/// bucket; from anyone else the header is ignored.
#[test]
fn forwarded_addresses_count_only_from_trusted_proxies() {
    let wrong = Some("3f1a9c44-8a6e-4d2b-9b1e-7c2d4e5f6a7b");
    let limited = &[
        "--failed-attempts-burst",
        "2",
        "--failed-attempts-per-minute",
        "1",
    ];
    let behind = Server::start_with(
        &Backend::Sqlite,
        &[limited, &["--trusted-proxies", "127.0.0.0/8,::1"][..]].concat(),
    );
    let from = |s: &Server, ip: &str| {
        s.call_with(
            wrong,
            "GET",
            "/v1/lbasis",
            &[("X-Forwarded-For", ip)],
            Body::None,
        )
        .status
    };
    assert_eq!(
        [from(&behind, "203.0.113.1"), from(&behind, "203.0.113.1")],
        [403, 403]
    );
    assert_eq!(from(&behind, "203.0.113.1"), 429);
    assert_eq!(from(&behind, "203.0.113.2"), 403);
    let direct = Server::start_with(&Backend::Sqlite, limited);
    let got: Vec<u16> = (1..=3)
        .map(|i| from(&direct, &format!("203.0.113.{i}")))
        .collect();
    assert_eq!(got, [403, 403, 429]);
}

/// The optional per-token limit: a valid token over its own bucket gets 429 with
/// `Retry-After` (audited once, as its caller, without the token); another valid
/// token from the same address is not slowed; the token is served again once its
/// bucket refills. Off by default (the test above makes 30 root requests in a row).
#[test]
fn a_token_over_its_own_limit_gets_429_and_others_do_not() {
    let s = Server::start_with(
        &Backend::Sqlite,
        &["--token-requests-per-second", "1", "--token-burst", "6"],
    );
    // Two requests of the root token's six: a person and their access token.
    let t = s.create_user(serde_json::json!({"login": "zq-limited"}));
    let x = crate::tokens::issue(&s, "token", &t, Body::None);
    for _ in 0..4 {
        s.call("GET", "/v1/lbasis", Body::None).expect(200);
    }
    let r = s.call("GET", "/v1/lbasis", Body::None);
    assert_eq!(r.status, 429, "{:?}", r.json);
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("this access token"),
        "{:?}",
        r.json
    );
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(wait, 1);
    assert_eq!(s.call("GET", "/v1/lbasis", Body::None).status, 429);
    // The user's own token has its own bucket.
    for _ in 0..5 {
        s.call_as(Some(&x), "GET", &format!("/v1/user/token/{t}"), Body::None)
            .expect(200);
    }
    // A refill later the root token is served again; the episode was audited once,
    // as root, and neither token is in the log.
    std::thread::sleep(Duration::from_millis(2100));
    let v = s
        .call("GET", "/v1/audit/admin?limit=100", Body::None)
        .expect(200);
    let refusals: Vec<&Value> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "edge.rate-limit")
        .collect();
    assert_eq!(refusals.len(), 1, "{v}");
    assert_eq!(refusals[0]["identity"], "root", "{v}");
    assert!(!v.to_string().contains(&s.token) && !v.to_string().contains(&x));
    std::thread::sleep(Duration::from_millis(1100));
    let metrics = s.call("GET", "/v1/metrics", Body::None).expect(200);
    let text = metrics.as_str().unwrap_or_default();
    let limited = text
        .lines()
        .find_map(|l| l.strip_prefix("strongbox_http_token_rate_limited_total "))
        .and_then(|n| n.parse::<u64>().ok());
    assert_eq!(limited, Some(2), "{text}");
}
