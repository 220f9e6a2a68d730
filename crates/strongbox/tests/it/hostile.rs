//! Authorization and bad input: every refusal is a 4xx with a JSON error, decided
//! before any lookup, and changes nothing.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Server, encode};

backend_tests!(
    authorization_comes_before_lookup,
    anonymous_create_is_opt_in,
    bad_input_gets_clear_4xx_and_changes_nothing,
);

fn assert_error(v: &Value, message: &str) {
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["message"], message, "{v}");
}

fn authorization_comes_before_lookup(b: &Backend) {
    // Many refused tokens from one address, on purpose: lift the guessing limit
    // (tests/it/limits.rs tests it).
    let s = Server::start_with(b, &["--failed-attempts-burst", "100000"]);
    let t = s.create_user(json!({"login": "known", "email": "known@example.com"}));
    let wrong = "11111111-2222-3333-4444-555555555555";
    for (mode, known, unknown) in [
        ("login", "known", "unknown"),
        ("email", "known@example.com", "unknown@example.com"),
        ("token", t.as_str(), "00000000-0000-0000-0000-000000000000"),
    ] {
        for method in ["GET", "PUT", "DELETE"] {
            let body = || {
                if method == "PUT" {
                    Body::Json(json!({"x": 1}))
                } else {
                    Body::None
                }
            };
            // Same answer whether or not the user exists: no enumeration.
            let a = s.call_as(
                None,
                method,
                &format!("/v1/user/{mode}/{}", encode(known)),
                body(),
            );
            let u = s.call_as(
                None,
                method,
                &format!("/v1/user/{mode}/{}", encode(unknown)),
                body(),
            );
            assert_eq!(
                (a.status, &a.json),
                (u.status, &u.json),
                "{method} {mode} without token"
            );
            assert_eq!(a.status, 401);
            assert_error(&a.json, "missing access token");
            for bad in [wrong, "DEMO", "", "not-a-token", &t] {
                let a = s.call_as(
                    Some(bad),
                    method,
                    &format!("/v1/user/{mode}/{}", encode(known)),
                    body(),
                );
                let u = s.call_as(
                    Some(bad),
                    method,
                    &format!("/v1/user/{mode}/{}", encode(unknown)),
                    body(),
                );
                assert_eq!(
                    (a.status, &a.json),
                    (u.status, &u.json),
                    "{method} {mode} bad token"
                );
                assert_eq!(a.status, 403);
                assert_error(&a.json, "access denied");
            }
        }
    }
    // An upper-cased root token is a different token.
    assert_eq!(
        s.call_as(
            Some(&s.token.to_uppercase()),
            "GET",
            &format!("/v1/user/token/{t}"),
            Body::None
        )
        .status,
        403
    );
    // Nothing above changed the user.
    assert_eq!(
        s.get_user("token", &t).expect(200)["data"],
        json!({"login": "known", "email": "known@example.com"})
    );
    // Creating needs the root token by default.
    let v = s
        .call_as(
            None,
            "POST",
            "/v1/user",
            Body::Json(json!({"login": "anon"})),
        )
        .expect(401);
    assert_error(&v, "missing access token");
    s.call_as(
        Some(wrong),
        "POST",
        "/v1/user",
        Body::Json(json!({"login": "anon"})),
    )
    .expect(403);
    assert_eq!(s.get_user("login", "anon").status, 404);
}

fn anonymous_create_is_opt_in(b: &Backend) {
    let s = Server::start_with(b, &["--create-user-without-access-token", "true"]);
    let v = s
        .call_as(
            None,
            "POST",
            "/v1/user",
            Body::Json(json!({"login": "anon"})),
        )
        .expect(200);
    assert_eq!(v["status"], "ok");
    // Reading still needs the token.
    s.call_as(None, "GET", "/v1/user/login/anon", Body::None)
        .expect(401);
    s.call_as(
        Some("11111111-2222-3333-4444-555555555555"),
        "POST",
        "/v1/user",
        Body::Json(json!({"login": "x"})),
    )
    .expect(403);
}

fn bad_input_gets_clear_4xx_and_changes_nothing(b: &Backend) {
    let s = Server::start_with(b, &["--max-body-bytes", "4096"]);
    let t = s.create_user(json!({"login": "target", "email": "target@example.com"}));
    let user_path = format!("/v1/user/token/{t}");
    let json_ct = "application/json";
    let cases: Vec<(&str, String, Body, u16, &str)> = vec![
        (
            "POST",
            "/v1/user".into(),
            Body::Raw(json_ct, b"{\"login\":".to_vec()),
            400,
            "failed to decode request body: invalid JSON at line 1 column 9",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Raw(json_ct, b"[1,2,3]".to_vec()),
            400,
            "failed to decode request body: expected a JSON object",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Raw(json_ct, b"\"login\"".to_vec()),
            400,
            "failed to decode request body: expected a JSON object",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Raw(json_ct, b"{}".to_vec()),
            400,
            "empty request body",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Raw(json_ct, Vec::new()),
            400,
            "empty request body",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Json(json!({"name": "no index"})),
            400,
            "failed to create user, all user lookup fields are missing",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Json(json!({"login": true, "email": {"a": 1}})),
            400,
            "failed to create user, all user lookup fields are missing",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Raw("text/plain", b"login=x".to_vec()),
            415,
            "unsupported content type: send application/json or application/x-www-form-urlencoded",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Raw("", b"{\"login\":\"x\"}".to_vec()),
            415,
            "unsupported content type: send application/json or application/x-www-form-urlencoded",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Raw(
                json_ct,
                [b"{\"login\":\"", &[0xff, 0xfe][..], b"\"}"].concat(),
            ),
            400,
            "failed to decode request body: invalid JSON at line 1 column 11",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Raw(
                "application/x-www-form-urlencoded",
                b"login=%ff%fe".to_vec(),
            ),
            400,
            "failed to decode request body: form data is not valid UTF-8",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Raw(
                json_ct,
                format!("{{\"login\":\"{}\"}}", "a".repeat(5000)).into_bytes(),
            ),
            413,
            "request body is larger than 4096 bytes",
        ),
        (
            "POST",
            "/v1/user".into(),
            Body::Raw(
                json_ct,
                format!(
                    "{{\"login\":\"deep\",\"x\":{}1{}}}",
                    "[".repeat(70),
                    "]".repeat(70)
                )
                .into_bytes(),
            ),
            400,
            "failed to decode request body: JSON nested deeper than 64 levels",
        ),
        (
            "GET",
            "/v1/user/nickname/target".into(),
            Body::None,
            400,
            "bad mode",
        ),
        (
            "GET",
            "/v1/user/token/not-a-uuid".into(),
            Body::None,
            400,
            "bad uuid",
        ),
        (
            "GET",
            "/v1/user/token/00000000-0000-0000-0000-000000000000".into(),
            Body::None,
            404,
            "not found",
        ),
        (
            "GET",
            "/v1/user/login/%27%20OR%201%3D1%20--".into(),
            Body::None,
            404,
            "not found",
        ),
        (
            "GET",
            "/v1/user/email/%00%0a%3Cscript%3E".into(),
            Body::None,
            404,
            "not found",
        ),
        (
            "GET",
            "/v1/user/login/%ff".into(),
            Body::None,
            400,
            "bad path: parameters must be valid UTF-8",
        ),
        (
            "PUT",
            user_path.clone(),
            Body::Raw(json_ct, b"{}".to_vec()),
            400,
            "empty request body",
        ),
        (
            "PUT",
            user_path.clone(),
            Body::Raw(json_ct, b"[]".to_vec()),
            400,
            "empty request body",
        ),
        (
            "PUT",
            user_path.clone(),
            Body::Raw(json_ct, b"42".to_vec()),
            400,
            "failed to decode request body: expected a JSON object or a JSON Patch array",
        ),
        (
            "PUT",
            user_path.clone(),
            Body::Raw(json_ct, b"[{\"op\":\"explode\"}]".to_vec()),
            400,
            "failed to decode request body: invalid JSON Patch",
        ),
        (
            "PUT",
            user_path.clone(),
            Body::Raw("application/xml", b"<a/>".to_vec()),
            415,
            "unsupported content type: send application/json or application/x-www-form-urlencoded",
        ),
        (
            "PUT",
            user_path.clone(),
            Body::Raw(json_ct, b"{\"login\":".to_vec()),
            400,
            "failed to decode request body: invalid JSON at line 1 column 9",
        ),
        (
            "GET",
            "/v1/nothing/here".into(),
            Body::None,
            404,
            "endpoint is missing",
        ),
        (
            "PATCH",
            user_path.clone(),
            Body::None,
            405,
            "method not allowed",
        ),
        (
            "GET",
            "/v1/user".into(),
            Body::None,
            405,
            "method not allowed",
        ),
    ];
    for (method, path, body, status, message) in cases {
        let r = s.call(method, &path, body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.json);
        assert!(
            r.content_type.starts_with("application/json"),
            "{method} {path}: {}",
            r.content_type
        );
        assert_error(&r.json, message);
    }
    // Nothing changed: the user is intact and no other user was created.
    assert_eq!(
        s.get_user("token", &t).expect(200)["data"],
        json!({"login": "target", "email": "target@example.com"})
    );
    assert_eq!(s.store.sql("SELECT COUNT(*) FROM users").trim(), "1");
    // Hostile strings are stored and found as plain data.
    let hostile = "'; DROP TABLE users; -- <script>\u{202e}\u{0}";
    let h = s.create_user(json!({"login": hostile, "note": hostile}));
    let v = s.get_user("login", hostile).expect(200);
    assert_eq!(v["token"], h.as_str());
    assert_eq!(v["data"]["note"], hostile);
    // A body just under the cap works.
    let big = "b".repeat(3000);
    s.create_user(json!({"login": "big", "blob": big}));
}
