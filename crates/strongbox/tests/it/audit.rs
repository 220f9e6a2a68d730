//! The audit API (`/v1/audit/admin`, `/v1/audit/list/{token}`, `/v1/audit/get/{atoken}`),
//! end to end on every backend.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Server};
use crate::tokens::issue;

backend_tests!(
    audit_lists_and_opens_events,
    audit_authorization,
    erased_subjects_events_stay_but_cannot_be_opened,
    long_actions_are_kept_whole_with_their_names,
);

fn rows(v: &Value) -> &Vec<Value> {
    v["rows"].as_array().unwrap()
}

fn audit_lists_and_opens_events(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "user1", "name": "tom", "height": 100}));
    s.get_user("login", "user1").expect(200);
    s.call(
        "PUT",
        &format!("/v1/user/token/{t}"),
        Body::Json(json!({"name": "tim"})),
    )
    .expect(200);
    s.call(
        "POST",
        &format!("/v1/userapp/token/{t}/shop"),
        Body::Json(json!({"cart": 1})),
    )
    .expect(200);
    s.call(
        "PUT",
        &format!("/v1/userapp/token/{t}/shop"),
        Body::Json(json!({"cart": 2})),
    )
    .expect(200);
    let v = s
        .call("GET", &format!("/v1/audit/list/{t}?limit=100"), Body::None)
        .expect(200);
    let titles: Vec<&str> = rows(&v)
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "change user app record",
            "create user app record by token",
            "change user record by token",
            "get user record by login",
            "create user record",
        ],
        "newest first"
    );
    assert_eq!(v["total"], 5);
    for r in rows(&v) {
        assert_eq!(r["record"], json!(t));
        assert_eq!(r["status"], "ok");
        assert_eq!(r["identity"], "root");
        assert!(r["when"].as_i64().unwrap() > 1_700_000_000);
    }
    assert_eq!(rows(&v)[0]["app"], "shop");
    // Paging, as in Databunker's own test.
    let page = s
        .call(
            "GET",
            &format!("/v1/audit/list/{t}?offset=1&limit=1"),
            Body::None,
        )
        .expect(200);
    assert_eq!(page["total"], 6, "viewing the log is audited too");
    assert_eq!(rows(&page).len(), 1);
    // Every event opens; changes carry the values before and after.
    let event = |atoken: &Value| {
        s.call(
            "GET",
            &format!("/v1/audit/get/{}", atoken.as_str().unwrap()),
            Body::None,
        )
        .expect(200)["event"]
            .clone()
    };
    let r = rows(&v);
    assert_eq!(r[0]["more"], true);
    assert_eq!(
        event(&r[0]["atoken"]),
        json!({"before": {"cart": 1}, "after": {"cart": 2}})
    );
    assert_eq!(event(&r[1]["atoken"]), json!({"after": {"cart": 1}}));
    assert_eq!(
        event(&r[2]["atoken"]),
        json!({"before": {"login": "user1", "name": "tom", "height": 100},
               "after": {"login": "user1", "name": "tim", "height": 100}})
    );
    assert_eq!(r[3]["more"], false);
    assert_eq!(event(&r[3]["atoken"]), json!({}));
    assert_eq!(
        event(&r[4]["atoken"]),
        json!({"after": {"login": "user1", "name": "tom", "height": 100}})
    );
    // The whole log, for root.
    let all = s
        .call("GET", "/v1/audit/admin?limit=100", Body::None)
        .expect(200);
    assert!(all["total"].as_u64().unwrap() >= 11);
    assert_eq!(rows(&all)[0]["title"], "view audit event");
    // The total comes from the audit chain's head, not a count of every row: it
    // stays exact whether the sealer has caught up or not (the listing's own event
    // is recorded after it counts).
    for _ in 0..3 {
        let page = s
            .call("GET", "/v1/audit/admin?limit=1", Body::None)
            .expect(200);
        let rows_now: u64 = s
            .store
            .sql("SELECT COUNT(*) FROM audit")
            .trim()
            .parse()
            .unwrap();
        assert_eq!(page["total"].as_u64(), Some(rows_now - 1), "{page}");
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
    assert_eq!(
        s.call("GET", "/v1/audit/admin/", Body::None).expect(200)["rows"]
            .as_array()
            .unwrap()
            .len(),
        10,
        "default page size"
    );
    // Unknown subjects have no events; bad tokens are refused.
    assert_eq!(
        s.call(
            "GET",
            "/v1/audit/list/00000000-0000-4000-8000-000000000000",
            Body::None
        )
        .expect(200),
        json!({"status": "ok", "total": 0, "rows": []})
    );
    assert_eq!(
        s.call("GET", "/v1/audit/list/token123", Body::None)
            .expect(400)["message"],
        "bad uuid"
    );
    assert_eq!(
        s.call("GET", "/v1/audit/get/token123", Body::None)
            .expect(400)["message"],
        "bad uuid"
    );
    assert_eq!(
        s.call(
            "GET",
            "/v1/audit/get/00000000-0000-4000-8000-000000000000",
            Body::None
        )
        .expect(404)["message"],
        "not found"
    );
}

fn audit_authorization(b: &Backend) {
    let s = Server::start(b);
    let alice = s.create_user(json!({"login": "alice"}));
    let bob = s.create_user(json!({"login": "bob"}));
    let x = issue(&s, "login", "alice", Body::None);
    let own = s
        .call_as(
            Some(&x),
            "GET",
            &format!("/v1/audit/list/{alice}"),
            Body::None,
        )
        .expect(200);
    let atoken = rows(&own).last().unwrap()["atoken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.call_as(
            Some(&x),
            "GET",
            &format!("/v1/audit/get/{atoken}"),
            Body::None
        )
        .expect(200)["event"],
        json!({"after": {"login": "alice"}})
    );
    let theirs = s
        .call("GET", &format!("/v1/audit/list/{bob}"), Body::None)
        .expect(200);
    let bob_event = rows(&theirs)[0]["atoken"].as_str().unwrap().to_string();
    for path in [
        format!("/v1/audit/list/{bob}"),
        format!("/v1/audit/get/{bob_event}"),
        "/v1/audit/admin".to_string(),
    ] {
        assert_eq!(
            s.call_as(Some(&x), "GET", &path, Body::None).expect(403)["message"],
            "access denied",
            "{path}"
        );
        assert_eq!(
            s.call_as(None, "GET", &path, Body::None).status,
            401,
            "{path}"
        );
        assert_eq!(
            s.call_as(Some("DEMO"), "GET", &path, Body::None).status,
            403,
            "{path}"
        );
    }
}

fn erased_subjects_events_stay_but_cannot_be_opened(b: &Backend) {
    let s = Server::start(b);
    let marker = "zq-audit-before-value-8812";
    let t = s.create_user(json!({"login": "gone", "note": marker}));
    s.call(
        "PUT",
        &format!("/v1/user/token/{t}"),
        Body::Json(json!({"note": "changed"})),
    )
    .expect(200);
    let raw = s.store.raw_contents();
    assert!(
        !raw.windows(marker.len()).any(|w| w == marker.as_bytes()),
        "audit detail stored in plaintext"
    );
    s.call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    let v = s
        .call("GET", &format!("/v1/audit/list/{t}"), Body::None)
        .expect(200);
    assert_eq!(rows(&v)[0]["title"], "delete user record by token");
    for r in rows(&v) {
        let e = s
            .call(
                "GET",
                &format!("/v1/audit/get/{}", r["atoken"].as_str().unwrap()),
                Body::None,
            )
            .expect(200);
        assert_eq!(e["event"], json!({}), "{r}");
    }
}

/// An action with the longest brief a legal basis may have is stored and shown whole
/// (the column held 64 characters before schema version 5), with its stable name.
fn long_actions_are_kept_whole_with_their_names(b: &Backend) {
    let s = Server::start(b);
    let brief = format!("m{}", "x".repeat(64));
    s.call(
        "POST",
        &format!("/v1/lbasis/{brief}"),
        Body::Json(json!({"basistype": "consent", "usercontrol": true})),
    )
    .expect(200);
    let t = s.create_user(json!({"login": "long1"}));
    s.call(
        "POST",
        &format!("/v1/agreement/{brief}/token/{t}"),
        Body::Json(json!({"agreementmethod": "api"})),
    )
    .expect(200);
    s.call(
        "DELETE",
        &format!("/v1/agreement/{brief}/token/{t}"),
        Body::None,
    )
    .expect(200);
    let v = s
        .call("GET", &format!("/v1/audit/list/{t}?limit=10"), Body::None)
        .expect(200);
    let pairs: Vec<(&str, &str)> = rows(&v)
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["title"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [
            (
                "agreement.withdraw",
                format!("withdraw agreement for {brief}").as_str()
            ),
            (
                "agreement.accept",
                format!("accept agreement for {brief}").as_str()
            ),
            ("user.create", "create user record"),
        ],
        "newest first"
    );
}
