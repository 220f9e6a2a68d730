//! The v1 user API, end to end, on every backend.

use serde_json::json;

use crate::backend_tests;
use crate::harness::{Backend, Body, Server};

backend_tests!(
    lifecycle_matches_databunker,
    lookups_normalize_email_and_phone,
    duplicates_are_refused,
    indexes_follow_updates,
    json_patch_updates,
    form_bodies_and_trailing_slash,
    erased_user_is_a_tombstone,
    concurrent_creates_of_one_login,
    concurrent_updates_lose_nothing,
    every_access_is_audited_before_the_answer,
);

fn lifecycle_matches_databunker(b: &Backend) {
    let s = Server::start(b);
    let token = s.create_user(json!({
        "login": "john1", "name": "John Doe", "email": "john1@example.com",
        "phone": "+44 7700 900111", "address": {"city": "London"}
    }));
    assert_eq!(token.len(), 36);
    let expected = json!({
        "status": "ok", "token": token,
        "data": {"address": {"city": "London"}, "email": "john1@example.com", "login": "john1",
                 "name": "John Doe", "phone": "+44 7700 900111"}
    });
    for (mode, id) in [
        ("login", "john1"),
        ("email", "john1@example.com"),
        ("phone", "+44 7700 900111"),
        ("token", token.as_str()),
    ] {
        let r = s.get_user(mode, id);
        assert!(
            r.content_type.starts_with("application/json"),
            "{}",
            r.content_type
        );
        assert_eq!(r.expect(200), expected, "lookup by {mode}");
    }
    let v = s
        .call(
            "PUT",
            "/v1/user/login/john1",
            Body::Json(json!({"name": "John Smith", "address": {"city": "Paris", "zip": "75001"}})),
        )
        .expect(200);
    assert_eq!(v, json!({"status": "ok", "token": token}));
    let v = s.get_user("token", &token).expect(200);
    assert_eq!(
        v["data"],
        json!({"address": {"city": "Paris", "zip": "75001"}, "email": "john1@example.com",
               "login": "john1", "name": "John Smith", "phone": "+44 7700 900111"})
    );
    let v = s
        .call("DELETE", &format!("/v1/user/token/{token}"), Body::None)
        .expect(200);
    // Databunker's answer, plus the signed erasure receipt.
    assert_eq!((&v["status"], &v["result"]), (&json!("ok"), &json!("done")));
    assert_eq!(v["receipt"]["receipt"]["subject"], token);
    assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
    assert_eq!(
        s.get_user("token", &token).expect(200),
        json!({"status": "ok", "token": token, "data": {}})
    );
    assert_eq!(
        s.get_user("login", "john1").expect(404),
        json!({"status": "error", "message": "not found"})
    );
    assert_eq!(s.call("GET", "/v1/status", Body::None).status, 200);
}

fn lookups_normalize_email_and_phone(b: &Backend) {
    let s = Server::start(b);
    let token =
        s.create_user(json!({"email": "  Mixed.Case+tag@Example.COM ", "phone": "07911 123456"}));
    for email in [
        "mixed.case+tag@example.com",
        "MIXED.CASE+TAG@EXAMPLE.COM",
        " mixed.case+tag@example.com ",
    ] {
        let v = s.get_user("email", email).expect(200);
        assert_eq!(v["token"], token.as_str(), "{email}");
        // The profile keeps the value as submitted.
        assert_eq!(v["data"]["email"], "  Mixed.Case+tag@Example.COM ");
    }
    // `+` is a plus, not a space (Databunker URL-unescapes it into a space).
    assert_eq!(
        s.get_user("email", "mixed.case tag@example.com").status,
        404
    );
    for phone in [
        "07911 123456",
        "07911123456",
        "+447911123456",
        "+44 7911 123456",
    ] {
        assert_eq!(
            s.get_user("phone", phone).expect(200)["token"],
            token.as_str(),
            "{phone}"
        );
    }
    assert_eq!(s.get_user("phone", "07911 123457").status, 404);
    // Mode names are case-insensitive; token case does not matter.
    assert_eq!(
        s.get_user("EMAIL", "mixed.case+tag@example.com").status,
        200
    );
    assert_eq!(
        s.get_user("token", &token.to_uppercase()).expect(200)["token"],
        token.as_str()
    );
}

fn duplicates_are_refused(b: &Backend) {
    let s = Server::start(b);
    let a = s.create_user(json!({"login": "alice", "email": "alice@example.com", "phone": "+447911000001", "custom": "c-1"}));
    for (body, index) in [
        (
            json!({"login": "alice", "email": "other@example.com"}),
            "login",
        ),
        (json!({"email": "ALICE@example.com "}), "email"),
        (json!({"phone": "07911 000001"}), "phone"),
        (json!({"custom": "c-1"}), "custom"),
        // Checked in Databunker's order: login before email.
        (
            json!({"email": "alice@example.com", "login": "alice"}),
            "login",
        ),
    ] {
        let v = s.call("POST", "/v1/user", Body::Json(body)).expect(409);
        assert_eq!(
            v,
            json!({"status": "error", "message": format!("duplicate index: {index}")})
        );
    }
    // A refused create leaves nothing behind: its other values stay free.
    s.create_user(json!({"login": "bob", "email": "other@example.com"}));
    // An update may not take another user's index.
    let b_tok = s.create_user(json!({"login": "carol"}));
    let v = s
        .call(
            "PUT",
            &format!("/v1/user/token/{b_tok}"),
            Body::Json(json!({"email": "Alice@Example.com", "name": "C"})),
        )
        .expect(409);
    assert_eq!(v["message"], "duplicate index: email");
    let v = s.get_user("token", &b_tok).expect(200);
    assert_eq!(
        v["data"],
        json!({"login": "carol"}),
        "a refused update changes nothing"
    );
    assert_eq!(
        s.get_user("email", "alice@example.com").expect(200)["token"],
        a.as_str()
    );
}

fn indexes_follow_updates(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "dave", "email": "dave@old.example"}));
    s.call(
        "PUT",
        "/v1/user/login/dave",
        Body::Json(json!({"email": "dave@new.example", "login": null, "phone": "07911 222333"})),
    )
    .expect(200);
    assert_eq!(s.get_user("email", "dave@old.example").status, 404);
    assert_eq!(s.get_user("login", "dave").status, 404);
    assert_eq!(
        s.get_user("email", "dave@new.example").expect(200)["token"],
        t.as_str()
    );
    assert_eq!(
        s.get_user("phone", "+447911222333").expect(200)["token"],
        t.as_str()
    );
    let v = s.get_user("token", &t).expect(200);
    assert_eq!(
        v["data"],
        json!({"email": "dave@new.example", "phone": "07911 222333"})
    );
    // The old values are free for someone else now.
    s.create_user(json!({"login": "dave", "email": "dave@old.example"}));
}

fn json_patch_updates(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "erin", "tags": ["a"], "name": "Erin"}));
    s.call(
        "PUT",
        &format!("/v1/user/token/{t}"),
        Body::Json(json!([
            {"op": "replace", "path": "/login", "value": "erin2"},
            {"op": "add", "path": "/tags/-", "value": "b"},
            {"op": "remove", "path": "/name"}
        ])),
    )
    .expect(200);
    let v = s.get_user("login", "erin2").expect(200);
    assert_eq!(v["data"], json!({"login": "erin2", "tags": ["a", "b"]}));
    assert_eq!(s.get_user("login", "erin").status, 404);
    // A failing operation rolls the whole patch back.
    let v = s
        .call(
            "PUT",
            &format!("/v1/user/token/{t}"),
            Body::Json(json!([
                {"op": "replace", "path": "/login", "value": "erin3"},
                {"op": "test", "path": "/tags/0", "value": "zzz"}
            ])),
        )
        .expect(400);
    assert_eq!(v["status"], "error");
    assert_eq!(
        s.get_user("token", &t).expect(200)["data"]["login"],
        "erin2"
    );
    // Patching the profile into a non-object is refused.
    s.call(
        "PUT",
        &format!("/v1/user/token/{t}"),
        Body::Json(json!([{"op": "replace", "path": "", "value": 5}])),
    )
    .expect(400);
    assert_eq!(s.get_user("login", "erin2").status, 200);
}

fn form_bodies_and_trailing_slash(b: &Backend) {
    let s = Server::start(b);
    let v = s
        .call(
            "POST",
            "/v1/user/",
            Body::Raw(
                "application/x-www-form-urlencoded",
                b"login=frank&email=frank%40example.com&age=42&login=ignored".to_vec(),
            ),
        )
        .expect(200);
    let t = v["token"].as_str().unwrap().to_string();
    let v = s.get_user("email", "frank@example.com").expect(200);
    assert_eq!(v["token"], t.as_str());
    assert_eq!(
        v["data"],
        json!({"age": "42", "email": "frank@example.com", "login": "frank"})
    );
    s.call(
        "PUT",
        "/v1/user/login/frank",
        Body::Raw("application/x-www-form-urlencoded", b"city=Paris".to_vec()),
    )
    .expect(200);
    assert_eq!(
        s.get_user("login", "frank").expect(200)["data"]["city"],
        "Paris"
    );
    // Numbers in lookup fields index as integer text.
    s.create_user(json!({"login": 12345, "custom": 7.9}));
    assert_eq!(s.get_user("login", "12345").status, 200);
    assert_eq!(s.get_user("custom", "7").status, 200);
}

fn erased_user_is_a_tombstone(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "gina", "email": "gina@example.com", "secret": "x"}));
    s.call("DELETE", "/v1/user/email/gina@example.com", Body::None)
        .expect(200);
    assert_eq!(s.get_user("token", &t).expect(200)["data"], json!({}));
    assert_eq!(s.get_user("email", "gina@example.com").status, 404);
    // Deleting again is idempotent; updating an erased user is refused.
    s.call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    let v = s
        .call(
            "PUT",
            &format!("/v1/user/token/{t}"),
            Body::Json(json!({"a": 1})),
        )
        .expect(404);
    assert_eq!(v["message"], "user record not found");
    // The erased user's values can be used again.
    s.create_user(json!({"login": "gina", "email": "gina@example.com"}));
    // The DEK and ciphertext are really gone from the row.
    let row = s
        .store
        .sql(&format!("SELECT COUNT(*) FROM users WHERE token = '{t}' AND data IS NULL AND wrapped_dek IS NULL AND erased IS NOT NULL"));
    assert_eq!(row.trim(), "1");
    let idx = s.store.sql(&format!(
        "SELECT COUNT(*) FROM user_index WHERE token = '{t}'"
    ));
    assert_eq!(idx.trim(), "0");
}

fn concurrent_creates_of_one_login(b: &Backend) {
    let s = Server::start(b);
    let results: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let s = &s;
                scope.spawn(move || {
                    s.call(
                        "POST",
                        "/v1/user",
                        Body::Json(json!({"login": "race", "n": i})),
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|&&c| c == 200).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|&&c| c == 409).count(),
        15,
        "{results:?}"
    );
    let rows = s.store.sql("SELECT COUNT(*) FROM users");
    assert_eq!(rows.trim(), "1", "refused creates leave no rows");
}

fn concurrent_updates_lose_nothing(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "henry"}));
    std::thread::scope(|scope| {
        for i in 0..12 {
            let (s, t) = (&s, &t);
            scope.spawn(move || {
                s.call(
                    "PUT",
                    &format!("/v1/user/token/{t}"),
                    Body::Json(json!({format!("k{i}"): i})),
                )
                .expect(200);
            });
        }
    });
    let data = s.get_user("token", &t).expect(200)["data"].clone();
    for i in 0..12 {
        assert_eq!(data[format!("k{i}")], json!(i), "update {i} lost: {data}");
    }
    assert_eq!(data["login"], "henry");
}

fn every_access_is_audited_before_the_answer(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "ivy", "email": "ivy@example.com"}));
    std::thread::scope(|scope| {
        for i in 0..24 {
            let (s, t) = (&s, &t);
            scope.spawn(move || {
                let (mode, id) = if i % 2 == 0 {
                    ("token", t.as_str())
                } else {
                    ("email", "ivy@example.com")
                };
                s.get_user(mode, id).expect(200);
            });
        }
    });
    s.get_user("login", "nobody").expect(404);
    s.call("PUT", "/v1/user/login/ivy", Body::Json(json!({"x": 1})))
        .expect(200);
    s.call("DELETE", "/v1/user/login/ivy", Body::None)
        .expect(200);
    // Every acknowledged request is already in the audit table: no waiting, no flush.
    let count = |cond: &str| {
        s.store
            .sql(&format!("SELECT COUNT(*) FROM audit WHERE {cond}"))
            .trim()
            .to_string()
    };
    assert_eq!(
        count(&format!(
            "action = 'create user record' AND record = '{t}' AND actor = 'root'"
        )),
        "1"
    );
    for mode in ["token", "email"] {
        assert_eq!(
            count(&format!(
                "action = 'get user record by {mode}' AND record = '{t}' AND status = 'ok'"
            )),
            "12"
        );
    }
    assert_eq!(
        count("action = 'get user record by login' AND record IS NULL AND status = 'not-found'"),
        "1"
    );
    assert_eq!(
        count(&format!(
            "action = 'change user record by login' AND record = '{t}'"
        )),
        "1"
    );
    assert_eq!(
        count(&format!(
            "action = 'delete user record by login' AND record = '{t}'"
        )),
        "1"
    );
    // Refused requests never reach the vault, so they leave no event.
    s.call_as(None, "GET", &format!("/v1/user/token/{t}"), Body::None)
        .expect(401);
    assert_eq!(count("1 = 1"), "28");
}
