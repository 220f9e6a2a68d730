//! Shared records (`/v1/sharedrecord`, `/v1/get`), end to end on every backend.

use std::time::Duration;

use serde_json::json;

use crate::backend_tests;
use crate::harness::{Backend, Body, Server};
use crate::tokens::issue;

backend_tests!(
    shared_record_views,
    shared_record_errors_and_expiry,
    shared_session_reassigned_is_gone,
);

const SID: &str = "672dab2d-f758-4b1f-ae57-77c15b5a8558";

fn share(s: &Server, path: &str, body: serde_json::Value) -> String {
    let v = s.call("POST", path, Body::Json(body)).expect(200);
    v["record"].as_str().unwrap().to_string()
}

fn shared_record_views(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(
        json!({"login": "john1", "name": "John", "email": "john1@example.com",
                                 "k2": {"f3": 5}, "devices": [{"name": "phone"}]}),
    );
    // Profile fields, as in Databunker's test (missing ones read as null).
    let r = share(
        &s,
        "/v1/sharedrecord/login/john1",
        json!({"fields": "name,email,pass,k2.f3,devices.0.name,token", "partner": "acme", "expiration": "1h"}),
    );
    assert_eq!(
        s.call_as(None, "GET", &format!("/v1/get/{r}"), Body::None)
            .expect(200),
        json!({"status": "ok", "data": {"name": "John", "email": "john1@example.com", "pass": null,
               "k2.f3": 5, "devices.0.name": "phone", "token": t}})
    );
    // The view is cut from current data.
    s.call(
        "PUT",
        "/v1/user/login/john1",
        Body::Json(json!({"name": "Johnny"})),
    )
    .expect(200);
    assert_eq!(
        s.call_as(None, "GET", &format!("/v1/get/{r}"), Body::None)
            .expect(200)["data"]["name"],
        "Johnny"
    );
    // Whole profile without `fields`.
    let all = share(&s, &format!("/v1/sharedrecord/token/{t}"), json!({}));
    assert_eq!(
        s.call_as(None, "GET", &format!("/v1/get/{all}"), Body::None)
            .expect(200)["data"]["login"],
        "john1"
    );
    // An app document, a session.
    s.call(
        "POST",
        &format!("/v1/userapp/token/{t}/shipping"),
        Body::Json(json!({"city": "Leeds", "zip": "LS1"})),
    )
    .expect(200);
    let a = share(
        &s,
        "/v1/sharedrecord/login/john1",
        json!({"app": "Shipping", "fields": "city"}),
    );
    assert_eq!(
        s.call_as(None, "GET", &format!("/v1/get/{a}"), Body::None)
            .expect(200),
        json!({"status": "ok", "app": "shipping", "data": {"city": "Leeds"}})
    );
    s.call(
        "POST",
        &format!("/v1/session/{SID}"),
        Body::Json(json!({"login": "john1", "cookie": "c1"})),
    )
    .expect(200);
    let ss = share(
        &s,
        "/v1/sharedrecord/login/john1",
        json!({"session": SID, "fields": "cookie,missing"}),
    );
    assert_eq!(
        s.call_as(None, "GET", &format!("/v1/get/{ss}"), Body::None)
            .expect(200),
        json!({"status": "ok", "session": SID, "data": {"cookie": "c1", "missing": null}})
    );
    // A user may share their own record.
    let x = issue(&s, "login", "john1", Body::None);
    let v = s
        .call_as(
            Some(&x),
            "POST",
            "/v1/sharedrecord/login/john1",
            Body::Json(json!({"fields": "name"})),
        )
        .expect(200);
    assert_eq!(v["status"], "ok");
    // Erasure ends every share.
    s.call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    for rec in [&r, &all, &a, &ss] {
        assert_eq!(
            s.call_as(None, "GET", &format!("/v1/get/{rec}"), Body::None)
                .expect(404)["message"],
            "not found"
        );
    }
}

fn shared_record_errors_and_expiry(b: &Backend) {
    let s = Server::start_with(b, &["--max-shareable-record-retention", "2"]);
    let t = s.create_user(json!({"login": "john1", "name": "John"}));
    let other = s.create_user(json!({"login": "jane"}));
    let path = "/v1/sharedrecord/login/john1";
    let msg =
        |status, body| s.call("POST", path, Body::Json(body)).expect(status)["message"].clone();
    assert_eq!(msg(400, json!({"app": "bad!app"})), "unknown app name");
    assert_eq!(msg(404, json!({"app": "shipping"})), "app not found");
    assert_eq!(msg(400, json!({"session": "nope"})), "bad session");
    assert_eq!(msg(404, json!({"session": SID})), "session not found");
    assert_eq!(
        msg(400, json!({"fields": 5})),
        "bad fields: expected a string"
    );
    assert!(
        msg(400, json!({"expiration": "later"}))
            .as_str()
            .unwrap()
            .starts_with("bad expiration")
    );
    // Someone else's session cannot be shared through this user.
    s.call(
        "POST",
        &format!("/v1/session/{SID}"),
        Body::Json(json!({"login": "jane"})),
    )
    .expect(200);
    assert_eq!(msg(404, json!({"session": SID})), "session not found");
    assert_eq!(
        s.call(
            "POST",
            "/v1/sharedrecord/login/nobody",
            Body::Json(json!({}))
        )
        .expect(404)["message"],
        "not found"
    );
    assert_eq!(
        s.call_as(None, "POST", path, Body::Json(json!({}))).status,
        401
    );
    let xo = issue(&s, "token", &other, Body::None);
    assert_eq!(
        s.call_as(Some(&xo), "POST", path, Body::Json(json!({})))
            .status,
        403
    );
    assert_eq!(
        s.call_as(None, "GET", "/v1/get/not-a-uuid", Body::None)
            .expect(400)["message"],
        "bad uuid"
    );
    assert_eq!(
        s.call_as(
            None,
            "GET",
            "/v1/get/00000000-0000-4000-8000-000000000000",
            Body::None
        )
        .expect(404)["message"],
        "not found"
    );
    // Asks for an hour, gets the 2 s maximum.
    let r = share(
        &s,
        &format!("/v1/sharedrecord/token/{t}"),
        json!({"fields": "name", "expiration": "1h"}),
    );
    s.call_as(None, "GET", &format!("/v1/get/{r}"), Body::None)
        .expect(200);
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(
        s.call_as(None, "GET", &format!("/v1/get/{r}"), Body::None)
            .expect(404)["message"],
        "not found"
    );
}

/// A shared record of a session that is later written again for another person
/// answers 404 (no longer this person's), not a 500 with a false tampering alarm.
fn shared_session_reassigned_is_gone(b: &Backend) {
    let s = Server::start(b);
    let a = s.create_user(json!({"login": "sess-a"}));
    let other = s.create_user(json!({"login": "sess-b"}));
    s.call(
        "POST",
        &format!("/v1/session/{SID}"),
        Body::Json(json!({"token": a, "cart": 1})),
    )
    .expect(200);
    let r = share(
        &s,
        &format!("/v1/sharedrecord/token/{a}"),
        json!({"session": SID}),
    );
    s.call_as(None, "GET", &format!("/v1/get/{r}"), Body::None)
        .expect(200);
    s.call(
        "POST",
        &format!("/v1/session/{SID}"),
        Body::Json(json!({"token": other, "cart": 2})),
    )
    .expect(200);
    let got = s.call_as(None, "GET", &format!("/v1/get/{r}"), Body::None);
    assert_eq!(got.status, 404, "{}", got.json);
    let log = s.log();
    assert!(!log.to_lowercase().contains("tamper"), "false alarm: {log}");
    assert!(!log.contains("internal"), "{log}");
}
