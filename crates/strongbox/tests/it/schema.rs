//! The user-profile schema (`--user-record-schema`): validation on create and on
//! every change, `locked`, `admin`, `preserve`, and data classification. On every
//! backend.

use std::process::Command;

use serde_json::json;

use crate::backend_tests;
use crate::harness::{BIN, Backend, Body, Server, StoreLoc, init};
use crate::tokens::issue;

backend_tests!(
    schema_validates_create_and_every_change,
    admin_locked_and_preserve
);

/// Writes `schema` to a file that lives as long as the returned guard.
fn schema_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("user.json");
    let schema = json!({
        "type": "object",
        "properties": {
            "login": {"type": "string", "locked": true, "preserve": true, "classification": "pii"},
            "email": {"type": "string", "preserve": true, "classification": "pii"},
            "phone": {"type": "string", "classification": "pii"},
            "age": {"type": "integer", "minimum": 0},
            "kyc": {"type": "object", "admin": true, "classification": "kyc"},
            "diagnosis": {"type": "string", "classification": "phi"}
        },
        "required": ["login"]
    });
    std::fs::write(&path, schema.to_string()).unwrap();
    (dir, path.display().to_string())
}

fn msg(v: serde_json::Value) -> String {
    v["message"].as_str().unwrap().to_string()
}

fn schema_validates_create_and_every_change(b: &Backend) {
    let (_dir, path) = schema_file();
    let s = Server::start_with(b, &["--user-record-schema", &path]);
    let m = msg(s
        .call(
            "POST",
            "/v1/user",
            Body::Json(json!({"login": "a", "age": -1})),
        )
        .expect(400));
    assert!(m.starts_with("user schema error: /age"), "{m}");
    let m = msg(s
        .call(
            "POST",
            "/v1/user",
            Body::Json(json!({"email": "a@example.com"})),
        )
        .expect(400));
    assert!(
        m.starts_with("user schema error:") && m.contains("login"),
        "{m}"
    );
    let t = s.create_user(json!({"login": "alice", "age": 30}));
    // The new document is checked on every change (Databunker checks the old one).
    let m = msg(s
        .call(
            "PUT",
            &format!("/v1/user/token/{t}"),
            Body::Json(json!({"age": "thirty"})),
        )
        .expect(400));
    assert!(m.starts_with("schema validation error: /age"), "{m}");
    let m = msg(s
        .call(
            "PUT",
            &format!("/v1/user/token/{t}"),
            Body::Json(json!([{"op": "remove", "path": "/login"}])),
        )
        .expect(400));
    assert_eq!(
        m,
        "schema validation error: User schema check error. Locked value changed: /login"
    );
    let m = msg(s
        .call(
            "PUT",
            &format!("/v1/user/token/{t}"),
            Body::Json(json!({"login": "mallory"})),
        )
        .expect(400));
    assert!(m.ends_with("Locked value changed: /login"), "{m}");
    s.call(
        "PUT",
        &format!("/v1/user/token/{t}"),
        Body::Json(json!({"age": 31})),
    )
    .expect(200);
    assert_eq!(
        s.get_user("login", "alice").expect(200)["data"],
        json!({"login": "alice", "age": 31})
    );
    // Audit events name the classes of data they touched (a GET: those returned).
    let rows = s
        .call("GET", &format!("/v1/audit/list/{t}"), Body::None)
        .expect(200)["rows"]
        .clone();
    let classes = |title: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["title"] == title)
            .unwrap()["classes"]
            .clone()
    };
    assert_eq!(classes("create user record"), json!(["pii"]));
    assert_eq!(classes("get user record by login"), json!(["pii"]));
    assert_eq!(
        classes("change user record by token"),
        json!(null),
        "only the unclassified age changed"
    );
    // The classification is part of the configuration.
    let c = s
        .call("GET", "/v1/sys/configuration", Body::None)
        .expect(200);
    assert_eq!(
        c["configuration"]["Strongbox"]["DataClassification"],
        json!({"/diagnosis": "phi", "/email": "pii", "/kyc": "kyc", "/login": "pii", "/phone": "pii"})
    );
    // A schema that is not one keeps the server from starting, with a clear error.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"properties": {"a": {"classification": "secret"}}}"#,
    )
    .unwrap();
    let store = StoreLoc::new(b);
    let keys = init(&store);
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--user-record-schema",
            bad.to_str().unwrap(),
        ])
        .args(&store.args)
        .env("STRONGBOX_ROOT_KEY", &keys.root_key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("classification must be one of"), "{err}");
}

fn admin_locked_and_preserve(b: &Backend) {
    let (_dir, path) = schema_file();
    let s = Server::start_with(
        b,
        &[
            "--user-record-schema",
            &path,
            "--self-service-user-record-change",
            "true",
        ],
    );
    let t = s.create_user(
        json!({"login": "alice", "email": "alice@example.com", "phone": "+447911123456",
                                 "kyc": {"passport": "P1"}, "diagnosis": "zq-flu"}),
    );
    let x = issue(&s, "login", "alice", Body::None);
    // Self service covers ordinary fields, not `admin` ones, and never `locked` ones.
    assert_eq!(
        s.call_as(
            Some(&x),
            "PUT",
            "/v1/user/login/alice",
            Body::Json(json!({"age": 5}))
        )
        .expect(200),
        json!({"status": "ok", "token": t})
    );
    let v = s
        .call_as(
            Some(&x),
            "PUT",
            "/v1/user/login/alice",
            Body::Json(json!({"kyc": {"passport": "P2"}})),
        )
        .expect(200);
    assert_eq!(v["result"], "request-created");
    assert!(
        msg(s
            .call_as(
                Some(&x),
                "PUT",
                "/v1/user/login/alice",
                Body::Json(json!({"login": "x"}))
            )
            .expect(400))
        .contains("Locked value changed")
    );
    assert_eq!(
        s.get_user("token", &t).expect(200)["data"]["kyc"],
        json!({"passport": "P1"})
    );
    // Forget-me keeps the `preserve` fields (and their lookups), nothing else.
    let first_event = s
        .call("GET", &format!("/v1/audit/list/{t}?limit=100"), Body::None)
        .expect(200)["rows"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["atoken"]
        .as_str()
        .unwrap()
        .to_string();
    s.call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    let kept = json!({"login": "alice", "email": "alice@example.com"});
    assert_eq!(s.get_user("token", &t).expect(200)["data"], kept);
    assert_eq!(s.get_user("login", "alice").expect(200)["data"], kept);
    assert_eq!(
        s.get_user("email", "alice@example.com").expect(200)["token"],
        json!(t)
    );
    assert_eq!(
        msg(s.get_user("phone", "+447911123456").expect(404)),
        "not found"
    );
    assert_eq!(
        msg(s
            .call(
                "PUT",
                &format!("/v1/user/token/{t}"),
                Body::Json(json!({"age": 1}))
            )
            .expect(404)),
        "user record not found"
    );
    // Everything sealed under the old key is gone, audit details included.
    assert_eq!(
        s.call("GET", &format!("/v1/audit/get/{first_event}"), Body::None)
            .expect(200)["event"],
        json!({})
    );
    let raw = s.store.raw_contents();
    assert!(!raw.windows(6).any(|w| w == b"zq-flu"));
}
