//! User app data (`/v1/userapp`, `/v1/userapps`), end to end on every backend.

use serde_json::json;

use crate::backend_tests;
use crate::harness::{Backend, Body, Server};

backend_tests!(
    app_data_lifecycle,
    app_data_errors,
    app_data_is_sealed_and_erased_with_its_user,
);

fn app_data_lifecycle(b: &Backend) {
    let s = Server::start(b);
    // A fresh vault has no app names yet: an empty list, not null.
    assert_eq!(
        s.call("GET", "/v1/userapps", Body::None).expect(200),
        json!({"status": "ok", "apps": []})
    );
    let t = s.create_user(json!({"login": "john1", "name": "John Doe"}));
    let shop = format!("/v1/userapp/token/{t}/shop");
    let v = s
        .call(
            "POST",
            &shop,
            Body::Json(json!({"cart": ["apple", "pear"], "tier": "gold"})),
        )
        .expect(200);
    assert_eq!(v, json!({"status": "ok", "token": t}));
    assert_eq!(
        s.call("GET", &shop, Body::None).expect(200),
        json!({"status": "ok", "token": t, "data": {"cart": ["apple", "pear"], "tier": "gold"}})
    );
    // Merge patch, by another mode, app name case-insensitive.
    s.call(
        "PUT",
        "/v1/userapp/login/john1/SHOP",
        Body::Json(json!({"tier": "platinum"})),
    )
    .expect(200);
    assert_eq!(
        s.call("GET", &shop, Body::None).expect(200)["data"],
        json!({"cart": ["apple", "pear"], "tier": "platinum"})
    );
    // JSON Patch, as in Databunker's own test.
    s.call(
        "POST",
        &format!("/v1/userapp/token/{t}/testapp"),
        Body::Json(json!({"devices": [{"name": "dev1", "val": 1}, {"name": "dev2", "val": 2}], "shipping": "done"})),
    )
    .expect(200);
    s.call(
        "PUT",
        &format!("/v1/userapp/token/{t}/testapp"),
        Body::Json(json!([
            {"op": "replace", "path": "/devices/1/name", "value": "updated"},
            {"op": "add", "path": "/devices/0", "value": {"name": "dev3"}},
            {"op": "add", "path": "/like", "value": "yes"}
        ])),
    )
    .expect(200);
    assert_eq!(
        s.call("GET", &format!("/v1/userapp/token/{t}/testapp"), Body::None)
            .expect(200)["data"],
        json!({"devices": [{"name": "dev3"}, {"name": "dev1", "val": 1}, {"name": "updated", "val": 2}],
               "like": "yes", "shipping": "done"})
    );
    // POST replaces the whole document.
    s.call(
        "POST",
        &format!("/v1/userapp/token/{t}/testapp"),
        Body::Json(json!({"shipping": "pending"})),
    )
    .expect(200);
    assert_eq!(
        s.call("GET", &format!("/v1/userapp/token/{t}/testapp"), Body::None)
            .expect(200)["data"],
        json!({"shipping": "pending"})
    );
    // Removing the last key leaves an empty document.
    s.call(
        "PUT",
        &format!("/v1/userapp/token/{t}/testapp"),
        Body::Json(json!({"shipping": null})),
    )
    .expect(200);
    assert_eq!(
        s.call("GET", &format!("/v1/userapp/token/{t}/testapp"), Body::None)
            .expect(200)["data"],
        json!({})
    );
    // Lists: a user's apps newest name first, all names in alphabetical order.
    let other = s.create_user(json!({"login": "jane"}));
    s.call(
        "POST",
        &format!("/v1/userapp/token/{other}/billing"),
        Body::Json(json!({"iban": "x"})),
    )
    .expect(200);
    assert_eq!(
        s.call("GET", &format!("/v1/userapp/token/{t}"), Body::None)
            .expect(200),
        json!({"status": "ok", "token": t, "apps": ["testapp", "shop"]})
    );
    assert_eq!(
        s.call("GET", "/v1/userapps", Body::None).expect(200)["apps"],
        json!(["billing", "shop", "testapp"])
    );
    // Delete, idempotent.
    for _ in 0..2 {
        assert_eq!(
            s.call("DELETE", &shop, Body::None).expect(200),
            json!({"status": "ok", "token": t})
        );
    }
    assert_eq!(
        s.call("GET", &shop, Body::None).expect(404),
        json!({"status": "error", "message": "not found"})
    );
    assert_eq!(
        s.call("GET", "/v1/userapp/login/john1", Body::None)
            .expect(200)["apps"],
        json!(["testapp"])
    );
}

fn app_data_errors(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "john1"}));
    let shop = format!("/v1/userapp/token/{t}/shop");
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
            &format!("/v1/userapp/token/{t}/app!123"),
            Body::Json(json!({"a": 1}))
        ),
        "bad appname"
    );
    assert_eq!(
        msg(
            400,
            "POST",
            &format!("/v1/userapp/token/{t}/a"),
            Body::Json(json!({"a": 1}))
        ),
        "bad appname"
    );
    assert_eq!(msg(400, "POST", &shop, Body::Json(json!({}))), "empty body");
    assert_eq!(msg(400, "POST", &shop, Body::None), "empty body");
    assert!(msg(400, "POST", &shop, Body::Json(json!([1, 2]))).contains("expected a JSON object"));
    assert!(
        msg(
            400,
            "POST",
            &shop,
            Body::Raw("application/json", b"a:b".to_vec())
        )
        .contains("decode")
    );
    assert_eq!(
        msg(404, "PUT", &shop, Body::Json(json!({"a": 1}))),
        "not found"
    );
    assert_eq!(
        msg(400, "PUT", &shop, Body::Json(json!({}))),
        "empty request body"
    );
    assert_eq!(
        msg(400, "GET", "/v1/userapp/token/not-a-uuid/shop", Body::None),
        "bad uuid"
    );
    assert_eq!(
        msg(400, "GET", "/v1/userapp/nomode/x/shop", Body::None),
        "bad mode"
    );
    assert_eq!(
        msg(404, "GET", "/v1/userapp/login/nobody/shop", Body::None),
        "not found"
    );
    assert_eq!(
        msg(
            404,
            "POST",
            "/v1/userapp/token/00000000-0000-4000-8000-000000000000/shop",
            Body::Json(json!({"a": 1}))
        ),
        "not found"
    );
    // A bad JSON Patch changes nothing.
    s.call("POST", &shop, Body::Json(json!({"a": 1})))
        .expect(200);
    msg(
        400,
        "PUT",
        &shop,
        Body::Json(json!([{"op": "remove", "path": "/missing"}])),
    );
    assert_eq!(
        s.call("GET", &shop, Body::None).expect(200)["data"],
        json!({"a": 1})
    );
    // Authorization on every route.
    for (method, path) in [
        ("GET", shop.clone()),
        ("POST", shop.clone()),
        ("PUT", shop.clone()),
        ("DELETE", shop.clone()),
        ("GET", format!("/v1/userapp/token/{t}")),
        ("GET", "/v1/userapps".to_string()),
    ] {
        assert_eq!(
            s.call_as(None, method, &path, Body::Json(json!({"a": 2})))
                .status,
            401,
            "{method} {path}"
        );
        assert_eq!(
            s.call_as(
                Some("00000000-0000-4000-8000-000000000000"),
                method,
                &path,
                Body::Json(json!({"a": 2}))
            )
            .expect(403),
            json!({"status": "error", "message": "access denied"}),
            "{method} {path}"
        );
    }
    assert_eq!(
        s.call("GET", &shop, Body::None).expect(200)["data"],
        json!({"a": 1})
    );
}

fn app_data_is_sealed_and_erased_with_its_user(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "zq-app-owner"}));
    let marker = "zq-shipping-77-quarry-lane";
    s.call(
        "POST",
        &format!("/v1/userapp/token/{t}/shipping"),
        Body::Json(json!({"address": marker})),
    )
    .expect(200);
    let raw = s.store.raw_contents();
    assert!(
        !raw.windows(marker.len()).any(|w| w == marker.as_bytes()),
        "app data found in plaintext in the store"
    );
    s.call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    assert_eq!(
        s.call(
            "GET",
            &format!("/v1/userapp/token/{t}/shipping"),
            Body::None
        )
        .expect(404)["message"],
        "user record not found"
    );
    assert_eq!(
        s.store
            .sql(&format!("SELECT COUNT(*) FROM records WHERE owner = '{t}'"))
            .trim(),
        "0"
    );
}
