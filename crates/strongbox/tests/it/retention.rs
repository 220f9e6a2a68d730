//! Retention (`/v1/exp/…`) and the sweeper, end to end on every backend.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::backend_tests;
use crate::harness::{Backend, Body, Reply, Server};
use crate::tokens::issue;

backend_tests!(
    expiration_start_status_retain_cancel,
    delete_link_asks_then_erases_at_once,
    sweeper_erases_expired_users_and_consents,
);

fn status(s: &Server, path: &str) -> serde_json::Value {
    s.call("GET", path, Body::None).expect(200)
}

/// What a browser's form submission sends: no token, an empty urlencoded body.
fn submit(s: &Server, path: &str) -> Reply {
    s.call_as(
        None,
        "POST",
        path,
        Body::Raw("application/x-www-form-urlencoded", Vec::new()),
    )
}

/// A `GET` of an exptoken link (what a mail scanner does): the confirming page, the
/// same for every token, with a form that posts back to the link.
fn confirm_page(s: &Server, path: &str) -> String {
    let r = s.call_as(None, "GET", path, Body::None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.content_type, "text/html; charset=utf-8");
    let header = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header("x-content-type-options"), Some("nosniff"));
    assert_eq!(header("x-frame-options"), Some("DENY"));
    assert_eq!(header("cache-control"), Some("no-store"));
    assert_eq!(
        header("content-security-policy"),
        Some("default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    );
    let page = r.json.as_str().unwrap().to_string();
    assert!(page.contains("<form method=\"post\">"), "{page}");
    page
}

fn expiration_start_status_retain_cancel(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "john1"}));
    assert_eq!(
        status(&s, "/v1/exp/status/login/john1"),
        json!({"status": "ok", "exptime": 0, "expstatus": "", "exptoken": ""})
    );
    let v = s
        .call(
            "POST",
            "/v1/exp/start/login/john1",
            Body::Json(json!({"expiration": "10d"})),
        )
        .expect(200);
    let exptoken = v["exptoken"].as_str().unwrap().to_string();
    let st = status(&s, &format!("/v1/exp/status/token/{t}"));
    assert_eq!(st["expstatus"], "wait");
    assert_eq!(st["exptoken"], json!(exptoken));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let exptime = st["exptime"].as_i64().unwrap();
    assert!(
        (now + 10 * 86400 - 5..=now + 10 * 86400 + 5).contains(&exptime),
        "{st}"
    );
    // More than the policy maximum (a month) is capped.
    s.call(
        "POST",
        "/v1/exp/start/login/john1",
        Body::Json(json!({"expiration": "12m"})),
    )
    .expect(200);
    let exptime = status(&s, "/v1/exp/status/login/john1")["exptime"]
        .as_i64()
        .unwrap();
    assert!(exptime <= now + 31 * 86400 + 5, "capped at a month");
    let exptoken = status(&s, "/v1/exp/status/login/john1")["exptoken"]
        .as_str()
        .unwrap()
        .to_string();
    // Following the link changes nothing; the person keeps their data through the
    // page's button (no token).
    let retain = format!("/v1/exp/retain/{exptoken}");
    let page = confirm_page(&s, &retain);
    assert!(page.contains("Keep my data"), "{page}");
    assert_eq!(
        status(&s, "/v1/exp/status/login/john1")["expstatus"],
        "wait"
    );
    let r = submit(&s, &retain);
    assert_eq!((r.status, r.json.clone()), (200, json!("OK")));
    assert_eq!(
        status(&s, "/v1/exp/status/login/john1"),
        json!({"status": "ok", "exptime": 0, "expstatus": "retain", "exptoken": ""})
    );
    assert_eq!(submit(&s, &retain).status, 404);
    assert_eq!(confirm_page(&s, &retain), page);
    // Cancel clears everything.
    s.call("POST", "/v1/exp/start/login/john1", Body::None)
        .expect(200);
    assert_eq!(
        s.call("DELETE", "/v1/exp/cancel/login/john1", Body::None)
            .expect(200),
        json!({"status": "ok"})
    );
    assert_eq!(status(&s, "/v1/exp/status/login/john1")["expstatus"], "");
    // Authorization: start is root only; the user may read and cancel.
    let x = issue(&s, "login", "john1", Body::None);
    assert_eq!(
        s.call_as(Some(&x), "POST", "/v1/exp/start/login/john1", Body::None)
            .status,
        403
    );
    assert_eq!(
        s.call_as(Some(&x), "GET", "/v1/exp/status/login/john1", Body::None)
            .status,
        200
    );
    assert_eq!(
        s.call_as(Some(&x), "DELETE", "/v1/exp/cancel/login/john1", Body::None)
            .status,
        200
    );
    assert_eq!(
        s.call_as(None, "GET", "/v1/exp/status/login/john1", Body::None)
            .status,
        401
    );
    // Errors.
    assert_eq!(
        s.call("GET", "/v1/exp/status/login/nobody", Body::None)
            .expect(404)["message"],
        "not found"
    );
    assert_eq!(
        submit(&s, "/v1/exp/retain/nope").expect(400)["message"],
        "bad uuid"
    );
    assert_eq!(
        submit(&s, "/v1/exp/delete/00000000-0000-4000-8000-000000000000").expect(404)["message"],
        "not found"
    );
    // The pages do not tell a live token from an unknown or malformed one.
    assert_eq!(confirm_page(&s, "/v1/exp/retain/nope"), page);
    // Other methods are refused.
    assert_eq!(s.call_as(None, "DELETE", &retain, Body::None).status, 405);
    assert!(
        s.call(
            "POST",
            "/v1/exp/start/login/john1",
            Body::Json(json!({"expiration": "x"}))
        )
        .expect(400)["message"]
            .as_str()
            .unwrap()
            .starts_with("bad expiration")
    );
}

/// A `GET` of the delete link (a mail scanner following it) erases nothing; the
/// `POST` its page submits erases at once.
fn delete_link_asks_then_erases_at_once(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "john1", "name": "John"}));
    let v = s
        .call("POST", &format!("/v1/exp/start/token/{t}"), Body::None)
        .expect(200);
    let exptoken = v["exptoken"].as_str().unwrap().to_string();
    let link = format!("/v1/exp/delete/{exptoken}");
    let page = confirm_page(&s, &link);
    assert!(page.contains("Erase my data"), "{page}");
    // Twice, and with a JSON client's Accept header: still only the page.
    assert_eq!(confirm_page(&s, &link), page);
    let r = s.call_with(
        None,
        "GET",
        &link,
        &[("Accept", "application/json")],
        Body::None,
    );
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    assert_eq!(
        s.get_user("token", &t).expect(200)["data"],
        json!({"login": "john1", "name": "John"})
    );
    let st = status(&s, &format!("/v1/exp/status/token/{t}"));
    assert_eq!(
        (st["expstatus"].clone(), st["exptoken"].clone()),
        (json!("wait"), json!(exptoken))
    );
    // The same page for a token that names nobody.
    assert_eq!(
        confirm_page(&s, "/v1/exp/delete/00000000-0000-4000-8000-000000000000"),
        page
    );
    let r = submit(&s, &link);
    assert_eq!((r.status, r.json), (200, json!("OK")));
    assert_eq!(s.get_user("token", &t).expect(200)["data"], json!({}));
    assert_eq!(
        status(&s, &format!("/v1/exp/status/token/{t}"))["expstatus"],
        "expired"
    );
    // The erasure by link leaves a signed receipt like any erasure.
    let receipt = s
        .call("GET", &format!("/v1/audit/receipt/{t}"), Body::None)
        .expect(200);
    assert_eq!(
        receipt["receipt"]["receipt"]["reason"],
        "delete user data by exptoken"
    );
    assert!(receipt["receipt"]["signature"].is_string());
    // The link works once; its page still answers.
    assert_eq!(submit(&s, &link).status, 404);
    assert_eq!(confirm_page(&s, &link), page);
}

fn sweeper_erases_expired_users_and_consents(b: &Backend) {
    let s = Server::start_with(b, &["--sweep-interval", "1"]);
    let t = s.create_user(json!({"login": "john1", "name": "John"}));
    let keep = s.create_user(json!({"login": "keep"}));
    s.call("POST", "/v1/lbasis/promo", Body::None).expect(200);
    // A consent that ends in 1 s, and one for someone not in the vault yet.
    s.call(
        "POST",
        &format!("/v1/agreement/promo/token/{keep}"),
        Body::Json(json!({"expiration": "1"})),
    )
    .expect(200);
    s.call(
        "POST",
        &format!("/v1/exp/start/token/{t}"),
        Body::Json(json!({"expiration": 1})),
    )
    .expect(200);
    s.call(
        "POST",
        &format!("/v1/exp/start/token/{keep}"),
        Body::Json(json!({"expiration": "1h"})),
    )
    .expect(200);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if s.get_user("token", &t).expect(200)["data"] == json!({}) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sweeper did not erase the expired user"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        status(&s, &format!("/v1/exp/status/token/{t}"))["expstatus"],
        "expired"
    );
    assert_eq!(
        s.get_user("token", &keep).expect(200)["data"]["login"],
        "keep"
    );
    // Retention expiry leaves a signed receipt like any erasure.
    let receipt = s
        .call("GET", &format!("/v1/audit/receipt/{t}"), Body::None)
        .expect(200);
    assert_eq!(
        receipt["receipt"]["receipt"]["reason"],
        "delete user data by expiration"
    );
    assert!(receipt["receipt"]["signature"].is_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = s
            .call(
                "GET",
                &format!("/v1/agreement/promo/token/{keep}"),
                Body::None,
            )
            .expect(200);
        if v["data"]["status"] == "expired" {
            break;
        }
        assert!(Instant::now() < deadline, "the consent did not expire: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let events = s.store.sql(&format!(
        "SELECT actor, action FROM audit WHERE record = '{t}' AND actor = 'system'"
    ));
    assert!(
        events.contains("delete user data by expiration"),
        "{events}"
    );
}
