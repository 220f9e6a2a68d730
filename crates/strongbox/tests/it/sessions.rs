//! Sessions (`/v1/session`, `/v1/sessions`), end to end on every backend.

use std::time::Duration;

use serde_json::json;

use crate::backend_tests;
use crate::harness::{Backend, Body, Server};

backend_tests!(
    session_lifecycle,
    sessions_expire,
    session_errors,
    sessions_go_with_their_user,
);

const SID1: &str = "672dab2d-f758-4b1f-ae57-77c15b5a8558";
const SID2: &str = "0b7e8c9a-1f2e-4d3c-9b8a-7c6d5e4f3a2b";
const SID3: &str = "d4c3b2a1-0f9e-4d8c-8b7a-6f5e4d3c2b1a";

fn session_lifecycle(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "alex", "email": "alex@example.com"}));
    let v = s
        .call(
            "POST",
            &format!("/v1/session/{SID1}"),
            Body::Json(json!({"login": "alex", "ip": "10.0.0.1", "ua": "curl"})),
        )
        .expect(200);
    assert_eq!(v, json!({"status": "ok", "session": SID1}));
    let v = s
        .call("GET", &format!("/v1/session/{SID1}"), Body::None)
        .expect(200);
    assert_eq!(v["session"], SID1);
    assert_eq!(
        v["data"],
        json!({"login": "alex", "ip": "10.0.0.1", "ua": "curl"})
    );
    assert!(v["when"].as_i64().unwrap() > 1_700_000_000);
    // Upper-case ids name the same session.
    s.call(
        "GET",
        &format!("/v1/session/{}", SID1.to_uppercase()),
        Body::None,
    )
    .expect(200);
    // A second session linked by email; a third one anonymous.
    s.call(
        "POST",
        &format!("/v1/session/{SID2}"),
        Body::Json(json!({"email": "ALEX@example.com", "cart": 3})),
    )
    .expect(200);
    s.call(
        "POST",
        &format!("/v1/session/{SID3}"),
        Body::Json(json!({"visitor": true})),
    )
    .expect(200);
    assert_eq!(
        s.call("GET", &format!("/v1/session/{SID3}"), Body::None)
            .expect(200)["data"],
        json!({"visitor": true})
    );
    let v = s
        .call("GET", "/v1/sessions/login/alex", Body::None)
        .expect(200);
    assert_eq!(v["total"], 2);
    let sids: Vec<_> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["session"].clone())
        .collect();
    assert!(
        sids.contains(&json!(SID1)) && sids.contains(&json!(SID2)),
        "{v}"
    );
    let v = s
        .call(
            "GET",
            &format!("/v1/sessions/token/{t}?offset=1&limit=1"),
            Body::None,
        )
        .expect(200);
    assert_eq!(v["total"], 2);
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    // Replacing a session keeps one row.
    s.call(
        "POST",
        &format!("/v1/session/{SID1}"),
        Body::Json(json!({"login": "alex", "ip": "10.0.0.2"})),
    )
    .expect(200);
    assert_eq!(
        s.call("GET", &format!("/v1/session/{SID1}"), Body::None)
            .expect(200)["data"]["ip"],
        "10.0.0.2"
    );
    assert_eq!(
        s.call("DELETE", &format!("/v1/session/{SID1}"), Body::None)
            .expect(200),
        json!({"status": "ok"})
    );
    assert_eq!(
        s.call("GET", &format!("/v1/session/{SID1}"), Body::None)
            .expect(404),
        json!({"status": "error", "message": "not found"})
    );
    assert_eq!(
        s.call("GET", "/v1/sessions/email/alex@example.com", Body::None)
            .expect(200)["total"],
        1
    );
    // Deleting a missing session is fine.
    s.call("DELETE", &format!("/v1/session/{SID1}"), Body::None)
        .expect(200);
}

fn sessions_expire(b: &Backend) {
    let s = Server::start_with(b, &["--max-session-retention", "4"]);
    let t = s.create_user(json!({"login": "alex"}));
    // Asks for an hour, gets the 4 s maximum; the other asks for 2 s (room for a
    // loaded test machine between creating and listing them).
    s.call(
        "POST",
        &format!("/v1/session/{SID1}"),
        Body::Json(json!({"login": "alex", "expiration": "1h"})),
    )
    .expect(200);
    s.call(
        "POST",
        &format!("/v1/session/{SID2}"),
        Body::Json(json!({"token": t, "expiration": 2})),
    )
    .expect(200);
    assert_eq!(
        s.call("GET", "/v1/sessions/login/alex", Body::None)
            .expect(200)["total"],
        2
    );
    std::thread::sleep(Duration::from_millis(5100));
    assert_eq!(
        s.call("GET", &format!("/v1/session/{SID1}"), Body::None)
            .expect(404)["message"],
        "session expired"
    );
    assert_eq!(
        s.call("GET", &format!("/v1/session/{SID1}"), Body::None)
            .expect(404)["message"],
        "not found"
    );
    assert_eq!(
        s.call("GET", "/v1/sessions/login/alex", Body::None)
            .expect(200),
        json!({"status": "ok", "total": 0, "rows": []})
    );
    assert_eq!(
        s.store
            .sql("SELECT COUNT(*) FROM records WHERE kind = 'session'")
            .trim(),
        "0"
    );
    let v = s
        .call(
            "POST",
            &format!("/v1/session/{SID3}"),
            Body::Json(json!({"expiration": "soon"})),
        )
        .expect(400);
    assert!(v["message"].as_str().unwrap().starts_with("bad expiration"));
}

fn session_errors(b: &Backend) {
    let s = Server::start(b);
    s.create_user(json!({"login": "alex"}));
    let path = format!("/v1/session/{SID1}");
    let msg = |status, method, path: &str, body| {
        s.call(method, path, body).expect(status)["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        msg(
            400,
            "POST",
            "/v1/session/not-a-uuid",
            Body::Json(json!({"a": 1}))
        ),
        "bad uuid"
    );
    assert_eq!(
        msg(400, "GET", "/v1/session/not-a-uuid", Body::None),
        "bad uuid"
    );
    assert_eq!(msg(400, "POST", &path, Body::Json(json!({}))), "empty body");
    assert_eq!(msg(400, "POST", &path, Body::None), "empty body");
    assert_eq!(msg(404, "GET", &path, Body::None), "not found");
    assert_eq!(
        msg(404, "GET", "/v1/sessions/login/nobody", Body::None),
        "not found"
    );
    assert_eq!(
        msg(400, "GET", "/v1/sessions/login/alex?limit=x", Body::None),
        "bad limit: expected a non-negative integer"
    );
    s.call("POST", &path, Body::Json(json!({"login": "alex"})))
        .expect(200);
    for (method, path) in [
        ("GET", path.clone()),
        ("POST", path.clone()),
        ("DELETE", path.clone()),
        ("GET", "/v1/sessions/login/alex".to_string()),
    ] {
        assert_eq!(
            s.call_as(None, method, &path, Body::Json(json!({"a": 1})))
                .status,
            401
        );
        assert_eq!(
            s.call_as(Some("DEMO"), method, &path, Body::Json(json!({"a": 1})))
                .status,
            403
        );
    }
    assert_eq!(
        s.call("GET", &path, Body::None).expect(200)["data"],
        json!({"login": "alex"})
    );
}

fn sessions_go_with_their_user(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "alex"}));
    let marker = "zq-session-secret-4411";
    s.call(
        "POST",
        &format!("/v1/session/{SID1}"),
        Body::Json(json!({"login": "alex", "note": marker})),
    )
    .expect(200);
    s.call(
        "POST",
        &format!("/v1/session/{SID2}"),
        Body::Json(json!({"note": marker})),
    )
    .expect(200);
    let raw = s.store.raw_contents();
    assert!(!raw.windows(marker.len()).any(|w| w == marker.as_bytes()));
    s.call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    s.call("GET", &format!("/v1/session/{SID1}"), Body::None)
        .expect(404);
    // The anonymous session is not the user's and stays.
    s.call("GET", &format!("/v1/session/{SID2}"), Body::None)
        .expect(200);
}
