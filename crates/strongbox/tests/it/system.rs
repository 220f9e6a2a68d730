//! `/v1/sys/health`, `/v1/sys/configuration`, `/v1/metrics` and the bulk listing
//! `POST /v1/users`, end to end on every backend.

use serde_json::json;
use ureq::http;

use crate::backend_tests;
use crate::harness::{Backend, Body, Server, agent, run_ok};
use crate::tokens::issue;

backend_tests!(
    health_for_load_balancers,
    configuration_is_root_only_and_keeps_secrets,
    metrics_by_route_without_personal_data,
    bulk_listing_is_opt_in
);

/// `/v1/sys/health` needs no token and says whether the database answers; on
/// PostgreSQL the test takes the database away (no new connections, the open ones
/// ended) and gives it back: health and work answer 503 with a JSON reason meanwhile,
/// promptly and writing nothing, and both are back after, without a restart.
fn health_for_load_balancers(b: &Backend) {
    let s = Server::start(b);
    let healthy = json!({"status": "ok", "sealed": false, "database": "ok"});
    for token in [None, Some("not-a-token")] {
        let r = s.call_as(token, "GET", "/v1/sys/health", Body::None);
        assert_eq!((r.status, &r.json), (200, &healthy), "{token:?}");
    }
    let Backend::Postgres(admin) = b else {
        return;
    };
    let db = s.store.db.clone().unwrap();
    let psql = |sql: &str| {
        run_ok(std::process::Command::new("psql").args([admin.as_str(), "-qAtc", sql]));
    };
    psql(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"));
    psql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
    ));
    let started = std::time::Instant::now();
    let r = s.call_as(None, "GET", "/v1/sys/health", Body::None);
    assert_eq!(r.status, 503, "{:?}", r.json);
    assert_eq!(
        (&r.json["status"], &r.json["database"], &r.json["message"]),
        (
            &json!("error"),
            &json!("unreachable"),
            &json!("the database cannot be reached")
        )
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Work is refused the same way, promptly, with a JSON error.
    let started = std::time::Instant::now();
    let r = s.call(
        "POST",
        "/v1/user",
        Body::Json(json!({"email": "gone@example.com"})),
    );
    assert_eq!(
        (r.status, &r.json["status"]),
        (503, &json!("error")),
        "{:?}",
        r.json
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    psql(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = s.call_as(None, "GET", "/v1/sys/health", Body::None);
        if r.status == 200 {
            assert_eq!(r.json, healthy);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", r.json);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Nothing of the refused request was written; work goes on.
    s.get_user("email", "gone@example.com").expect(404);
    s.create_user(json!({"email": "back@example.com"}));
}

fn configuration_is_root_only_and_keeps_secrets(b: &Backend) {
    let s = Server::start_with(
        b,
        &[
            "--self-service-app-record-change",
            "shop*",
            "--max-session-retention",
            "2h",
            "env:STRONGBOX_METRICS_TOKEN=zq-metrics-secret-99",
        ],
    );
    let v = s
        .call("GET", "/v1/sys/configuration", Body::None)
        .expect(200);
    let c = &v["configuration"];
    assert_eq!(c["Generic"]["CreateUserWithoutAccessToken"], false);
    assert_eq!(c["Generic"]["ListUsers"], false);
    assert_eq!(c["SelfService"]["AppRecordChange"], json!(["shop*"]));
    assert_eq!(c["Policy"]["MaxSessionRetentionPeriod"], "7200s");
    assert_eq!(c["Sms"]["DefaultCountry"], "GB");
    assert_eq!(c["Strongbox"]["MetricsToken"], "(set)");
    let text = v.to_string();
    assert!(
        !text.contains("zq-metrics-secret-99")
            && !text.contains(&s.token)
            && !text.contains(&s.root_key)
    );
    s.create_user(json!({"login": "alice"}));
    let x = issue(&s, "login", "alice", Body::None);
    assert_eq!(
        s.call_as(Some(&x), "GET", "/v1/sys/configuration", Body::None)
            .status,
        403
    );
    assert_eq!(
        s.call_as(None, "GET", "/v1/sys/configuration", Body::None)
            .status,
        401
    );
}

/// `GET /v1/metrics` with optional headers; (status, body).
pub fn scrape(s: &Server, headers: &[(&str, &str)]) -> (u16, String) {
    scrape_at(s, "/v1/metrics", headers)
}

/// Like [`scrape`], at `path` (`/metrics` is the same endpoint).
pub fn scrape_at(s: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = http::Request::builder()
        .method("GET")
        .uri(format!("{}{path}", s.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = agent().run(req.body(Vec::new()).unwrap()).unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    )
}

fn metrics_by_route_without_personal_data(b: &Backend) {
    let s = Server::start_with(b, &["env:STRONGBOX_METRICS_TOKEN=zq-metrics-secret-99"]);
    let marker = "zq.metrics.person@example.com";
    s.create_user(json!({"email": marker}));
    s.get_user("email", marker).expect(200);
    s.get_user("email", "zq.nobody@example.com").expect(404);
    s.call_as(None, "GET", "/v1/status", Body::None);
    let (status, text) = scrape(&s, &[("X-Bunker-Token", &s.token)]);
    assert_eq!(status, 200);
    // The status route is labelled once (it passes through the seal gate).
    assert!(
        text.contains("route=\"/v1/status\",status=\"200\""),
        "{text}"
    );
    assert!(!text.contains("/v1/status/v1/status"), "{text}");
    assert!(
        text.contains("strongbox_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/user/{mode}/{identity}\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("route=\"/v1/user/{mode}/{identity}\",status=\"404\""));
    assert!(text.contains("strongbox_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/user\",status=\"200\",le=\"+Inf\"} 1"));
    for name in [
        "strongbox_store_read_duration_seconds_count",
        "strongbox_store_write_duration_seconds_count",
        "strongbox_crypto_duration_seconds_count",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    assert!(!text.contains("example.com"), "personal data in metrics");
    // A scraper's bearer token instead of the root token; nothing else.
    assert_eq!(
        scrape(&s, &[("Authorization", "Bearer zq-metrics-secret-99")]).0,
        200
    );
    assert_eq!(scrape(&s, &[("Authorization", "Bearer wrong")]).0, 403);
    assert_eq!(scrape(&s, &[]).0, 401);
    assert_eq!(scrape(&s, &[("X-Bunker-Token", "DEMO")]).0, 403);
    let open = Server::start_with(b, &["--metrics-public", "true"]);
    assert_eq!(scrape(&open, &[]).0, 200);
}

fn bulk_listing_is_opt_in(b: &Backend) {
    let s = Server::start(b);
    s.create_user(json!({"login": "a"}));
    assert_eq!(
        s.call("POST", "/v1/users", Body::None).expect(403)["message"],
        "access denied"
    );
    let s = Server::start_with(b, &["--list-users", "true"]);
    let mut tokens: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|l| s.create_user(json!({"login": l})))
        .collect();
    s.call(
        "DELETE",
        &format!("/v1/user/token/{}", tokens[1]),
        Body::None,
    )
    .expect(200);
    let v = s.call("POST", "/v1/users", Body::None).expect(200);
    assert_eq!(v["total"], 2, "erased users are not listed");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let erased = tokens.remove(1);
    tokens.sort_unstable_by(|a, b| b.cmp(a));
    let listed: Vec<_> = rows
        .iter()
        .map(|r| r["token"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, tokens);
    assert!(!listed.contains(&erased));
    for r in rows {
        assert!(
            r["private"].as_str().unwrap().starts_with("eyJsb2dpbiI6I"),
            "{r}"
        ); // {"login":"
    }
    assert_eq!(
        s.call("POST", "/v1/users?limit=1", Body::None).expect(200)["rows"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let x = issue(&s, "token", &tokens[0], Body::None);
    assert_eq!(
        s.call_as(Some(&x), "POST", "/v1/users", Body::None).status,
        403
    );
    assert_eq!(s.call_as(None, "POST", "/v1/users", Body::None).status, 401);
}

/// `GET /openapi.json` answers the committed document without a token, sealed or not.
#[test]
fn openapi_document_is_served() {
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/openapi.json")).unwrap();
    let s = Server::start(&Backend::Sqlite);
    let r = s.call_as(None, "GET", "/openapi.json", Body::None);
    assert_eq!(r.status, 200);
    assert!(
        r.content_type.starts_with("application/json"),
        "{}",
        r.content_type
    );
    assert_eq!(r.json, committed);
}
