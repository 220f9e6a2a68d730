//! Data-subject requests and DPO approval (`/v1/request`, `/v1/requests`), end to
//! end on every backend.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Server};
use crate::tokens::issue;

backend_tests!(
    dpo_approves_profile_changes_and_erasure,
    app_data_and_consent_requests,
    request_errors_and_authorization,
    self_service_acts_directly,
    reasons_stored_in_plaintext_read_as_before,
    filing_is_atomic_and_keeps_each_change,
);

fn requested(v: &Value, result: &str) -> String {
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["result"], result, "{v}");
    v["rtoken"].as_str().unwrap().to_string()
}

fn dpo_approves_profile_changes_and_erasure(b: &Backend) {
    let s = Server::start(b);
    let alice = s.create_user(json!({"login": "alice", "name": "Alice"}));
    let x = issue(&s, "login", "alice", Body::None);
    let v = s
        .call_as(
            Some(&x),
            "PUT",
            "/v1/user/login/alice",
            Body::Json(json!({"name": "Alicia"})),
        )
        .expect(200);
    let r1 = requested(&v, "request-created");
    // The same request again is the same request.
    let v = s
        .call_as(
            Some(&x),
            "PUT",
            "/v1/user/login/alice",
            Body::Json(json!({"name": "Alicia"})),
        )
        .expect(200);
    assert_eq!(requested(&v, "request-exists"), r1);
    assert_eq!(
        s.get_user("login", "alice").expect(200)["data"]["name"],
        "Alice"
    );
    // The user and the DPO see what would change.
    let v = s
        .call_as(Some(&x), "GET", &format!("/v1/request/{r1}"), Body::None)
        .expect(200);
    assert_eq!(
        v,
        json!({"status": "ok", "original": {"login": "alice", "name": "Alice"}, "change": {"name": "Alicia"}})
    );
    let v = s.call("GET", "/v1/requests", Body::None).expect(200);
    assert_eq!(v["total"], 1);
    let row = &v["rows"][0];
    assert_eq!(
        (
            row["rtoken"].clone(),
            row["token"].clone(),
            row["action"].clone(),
            row["status"].clone(),
            row["more"].clone()
        ),
        (
            json!(r1),
            json!(alice),
            json!("change-profile"),
            json!("open"),
            json!(true)
        )
    );
    assert!(row["creationtime"].as_i64().unwrap() > 0 && row["when"].as_i64().unwrap() > 0);
    let v = s
        .call_as(Some(&x), "GET", "/v1/requests/login/alice", Body::None)
        .expect(200);
    assert_eq!(v["total"], 1);
    // Approval carries it out, once.
    assert_eq!(
        s.call(
            "POST",
            &format!("/v1/request/{r1}"),
            Body::Json(json!({"reason": "checked"}))
        )
        .expect(200),
        json!({"status": "ok", "result": "done"})
    );
    assert_eq!(
        s.get_user("login", "alice").expect(200)["data"]["name"],
        "Alicia"
    );
    assert_eq!(
        s.call("POST", &format!("/v1/request/{r1}"), Body::None)
            .expect(409)["message"],
        "wrong status: approved"
    );
    let v = s
        .call("GET", "/v1/requests?status=approved", Body::None)
        .expect(200);
    assert_eq!(v["rows"][0]["reason"], "checked");
    assert_eq!(
        s.call("GET", "/v1/requests", Body::None).expect(200)["total"],
        0
    );
    // Forget-me: the user cancels one, the DPO approves the next.
    let v = s
        .call_as(Some(&x), "DELETE", "/v1/user/login/alice", Body::None)
        .expect(200);
    let r2 = requested(&v, "request-created");
    assert_eq!(
        s.call_as(Some(&x), "DELETE", &format!("/v1/request/{r2}"), Body::None)
            .expect(200),
        json!({"status": "ok", "result": "done"})
    );
    let v = s
        .call("GET", "/v1/requests?status=canceled", Body::None)
        .expect(200);
    assert_eq!(v["rows"][0]["reason"], "user operation");
    let v = s
        .call_as(
            Some(&x),
            "DELETE",
            &format!("/v1/user/token/{alice}"),
            Body::None,
        )
        .expect(200);
    let r3 = requested(&v, "request-created");
    assert_eq!(
        s.call("GET", &format!("/v1/request/{r3}"), Body::None)
            .expect(200)["original"]["name"],
        "Alicia"
    );
    s.call("POST", &format!("/v1/request/{r3}"), Body::None)
        .expect(200);
    assert_eq!(s.get_user("token", &alice).expect(200)["data"], json!({}));
    // The approved erasure has its signed receipt.
    let receipt = s
        .call("GET", &format!("/v1/audit/receipt/{alice}"), Body::None)
        .expect(200);
    assert_eq!(
        receipt["receipt"]["receipt"]["reason"],
        "delete user record by request"
    );
    // The requests stay as a trace, without their payloads.
    let v = s
        .call("GET", "/v1/requests?status=approved", Body::None)
        .expect(200);
    assert_eq!(v["total"], 2);
    assert!(
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["more"] == false),
        "{v}"
    );
    assert_eq!(
        s.call("GET", &format!("/v1/request/{r1}"), Body::None)
            .expect(404)["message"],
        "user record not found"
    );
}

fn app_data_and_consent_requests(b: &Backend) {
    let s = Server::start_with(b, &["--self-service-app-record-change", "shop*,*prefs"]);
    let alice = s.create_user(json!({"login": "alice"}));
    let x = issue(&s, "login", "alice", Body::None);
    for app in ["billing", "shopcart", "uiprefs"] {
        s.call_as(
            Some(&x),
            "POST",
            &format!("/v1/userapp/login/alice/{app}"),
            Body::Json(json!({"v": 1})),
        )
        .expect(200);
    }
    for app in ["shopcart", "uiprefs"] {
        let v = s
            .call_as(
                Some(&x),
                "PUT",
                &format!("/v1/userapp/login/alice/{app}"),
                Body::Json(json!({"v": 2})),
            )
            .expect(200);
        assert_eq!(v, json!({"status": "ok", "token": alice}));
    }
    let v = s
        .call_as(
            Some(&x),
            "PUT",
            "/v1/userapp/login/alice/billing",
            Body::Json(json!({"v": 2})),
        )
        .expect(200);
    let r = requested(&v, "request-created");
    let v = s
        .call("GET", &format!("/v1/request/{r}"), Body::None)
        .expect(200);
    assert_eq!(
        v,
        json!({"status": "ok", "app": "billing", "original": {"v": 1}, "change": {"v": 2}})
    );
    assert_eq!(
        s.call("GET", "/v1/requests", Body::None).expect(200)["rows"][0]["app"],
        "billing"
    );
    s.call("POST", &format!("/v1/request/{r}"), Body::None)
        .expect(200);
    assert_eq!(
        s.call("GET", "/v1/userapp/login/alice/billing", Body::None)
            .expect(200)["data"],
        json!({"v": 2})
    );
    // Consent under the organisation's control needs the DPO; under the user's does not.
    s.call(
        "POST",
        "/v1/lbasis/contract1",
        Body::Json(json!({"usercontrol": false})),
    )
    .expect(200);
    s.call(
        "POST",
        "/v1/lbasis/marketing",
        Body::Json(json!({"usercontrol": true})),
    )
    .expect(200);
    for brief in ["contract1", "marketing"] {
        s.call_as(
            Some(&x),
            "POST",
            &format!("/v1/agreement/{brief}/login/alice"),
            Body::None,
        )
        .expect(200);
    }
    let v = s
        .call_as(
            Some(&x),
            "DELETE",
            "/v1/agreement/contract1/login/alice",
            Body::None,
        )
        .expect(200);
    let r = requested(&v, "request-created");
    let v = s
        .call("GET", &format!("/v1/request/{r}"), Body::None)
        .expect(200);
    assert_eq!(v["original"]["status"], "yes");
    assert_eq!(v["original"]["brief"], "contract1");
    assert_eq!(
        s.call_as(
            Some(&x),
            "DELETE",
            "/v1/agreement/marketing/login/alice",
            Body::None
        )
        .expect(200),
        json!({"status": "ok"})
    );
    assert_eq!(
        s.call("GET", "/v1/agreement/marketing/login/alice", Body::None)
            .expect(200)["data"]["status"],
        "no"
    );
    assert_eq!(
        s.call("GET", "/v1/agreement/contract1/login/alice", Body::None)
            .expect(200)["data"]["status"],
        "yes"
    );
    s.call("POST", &format!("/v1/request/{r}"), Body::None)
        .expect(200);
    let v = s
        .call("GET", "/v1/agreement/contract1/login/alice", Body::None)
        .expect(200);
    assert_eq!(
        (
            v["data"]["status"].clone(),
            v["data"]["lastmodifiedby"].clone()
        ),
        (json!("no"), json!("admin"))
    );
    // A change request for an app document that does not exist is refused.
    assert_eq!(
        s.call_as(
            Some(&x),
            "PUT",
            "/v1/userapp/login/alice/nothing",
            Body::Json(json!({"v": 1}))
        )
        .expect(404)["message"],
        "not found"
    );
}

fn request_errors_and_authorization(b: &Backend) {
    let s = Server::start(b);
    s.create_user(json!({"login": "alice"}));
    s.create_user(json!({"login": "bob"}));
    let xa = issue(&s, "login", "alice", Body::None);
    let xb = issue(&s, "login", "bob", Body::None);
    let v = s
        .call_as(
            Some(&xa),
            "PUT",
            "/v1/user/login/alice",
            Body::Json(json!({"x": 1})),
        )
        .expect(200);
    let r = requested(&v, "request-created");
    let path = format!("/v1/request/{r}");
    assert_eq!(
        s.call("GET", "/v1/request/nope", Body::None).expect(400)["message"],
        "bad uuid"
    );
    assert_eq!(
        s.call(
            "GET",
            "/v1/request/00000000-0000-4000-8000-000000000000",
            Body::None
        )
        .expect(404)["message"],
        "not found"
    );
    assert_eq!(s.call_as(None, "GET", &path, Body::None).status, 401);
    for (method, token) in [("GET", &xb), ("DELETE", &xb), ("POST", &xb), ("POST", &xa)] {
        assert_eq!(
            s.call_as(Some(token), method, &path, Body::None)
                .expect(403)["message"],
            "access denied"
        );
    }
    assert_eq!(
        s.call_as(Some(&xa), "GET", "/v1/requests", Body::None)
            .status,
        403
    );
    assert_eq!(
        s.call_as(Some(&xb), "GET", "/v1/requests/login/alice", Body::None)
            .status,
        403
    );
    assert_eq!(
        s.call("POST", &path, Body::Json(json!({"reason": 5})))
            .expect(400)["message"],
        "bad reason: expected a string"
    );
    s.call("DELETE", &path, Body::None).expect(200);
    assert_eq!(
        s.call("DELETE", &path, Body::None).expect(409)["message"],
        "wrong status: canceled"
    );
    assert_eq!(
        s.call("POST", &path, Body::None).expect(409)["message"],
        "wrong status: canceled"
    );
    assert_eq!(
        s.get_user("login", "alice").expect(200)["data"],
        json!({"login": "alice"})
    );
    assert_eq!(
        s.call("GET", "/v1/requests/login/alice", Body::None)
            .expect(200)["rows"][0]["status"],
        "canceled"
    );
}

fn self_service_acts_directly(b: &Backend) {
    let s = Server::start_with(
        b,
        &[
            "--self-service-forget-me",
            "true",
            "--self-service-user-record-change",
            "true",
        ],
    );
    let alice = s.create_user(json!({"login": "alice"}));
    let x = issue(&s, "login", "alice", Body::None);
    assert_eq!(
        s.call_as(
            Some(&x),
            "PUT",
            "/v1/user/login/alice",
            Body::Json(json!({"name": "A"}))
        )
        .expect(200),
        json!({"status": "ok", "token": alice})
    );
    assert_eq!(
        s.get_user("login", "alice").expect(200)["data"]["name"],
        "A"
    );
    let v = s
        .call_as(Some(&x), "DELETE", "/v1/user/login/alice", Body::None)
        .expect(200);
    assert_eq!((&v["status"], &v["result"]), (&json!("ok"), &json!("done")));
    assert_eq!(v["receipt"]["receipt"]["subject"], alice);
    assert_eq!(s.get_user("token", &alice).expect(200)["data"], json!({}));
    assert_eq!(
        s.call("GET", "/v1/requests", Body::None).expect(200)["total"],
        0
    );
}

/// Replaces the metadata of request `rtoken` with `f` of it, as the store holds it.
fn edit_request_meta(s: &Server, b: &Backend, rtoken: &str, f: impl FnOnce(&mut Value)) {
    let (read, write) = match b {
        Backend::Postgres(_) => ("encode(meta, 'hex')", "decode('{}', 'hex')"),
        Backend::Sqlite | Backend::Mysql(_) => ("hex(meta)", "X'{}'"),
    };
    let row = format!("WHERE kind = 'request' AND id = '{rtoken}'");
    let hex = s.store.sql(&format!("SELECT {read} FROM records {row}"));
    let bytes: Vec<u8> = (0..hex.trim().len() / 2)
        .map(|i| u8::from_str_radix(&hex.trim()[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut meta: Value = serde_json::from_slice(&bytes).unwrap();
    f(&mut meta);
    let hex: String = serde_json::to_vec(&meta)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    s.store.sql(&format!(
        "UPDATE records SET meta = {} {row}",
        write.replace("{}", &hex)
    ));
}

/// Requests decided before reasons were sealed keep theirs in the metadata, in
/// plaintext; they are listed as before.
fn reasons_stored_in_plaintext_read_as_before(b: &Backend) {
    let s = Server::start(b);
    s.create_user(json!({"login": "alice"}));
    let x = issue(&s, "login", "alice", Body::None);
    let v = s
        .call_as(
            Some(&x),
            "PUT",
            "/v1/user/login/alice",
            Body::Json(json!({"name": "A"})),
        )
        .expect(200);
    let change = requested(&v, "request-created");
    s.call("POST", &format!("/v1/request/{change}"), Body::None)
        .expect(200);
    let v = s
        .call_as(Some(&x), "DELETE", "/v1/user/login/alice", Body::None)
        .expect(200);
    let forget = requested(&v, "request-created");
    s.call("DELETE", &format!("/v1/request/{forget}"), Body::None)
        .expect(200);
    for (rtoken, reason) in [(&change, "old approval"), (&forget, "old cancel")] {
        edit_request_meta(&s, b, rtoken, |m| m["reason"] = json!(reason));
    }
    let v = s
        .call("GET", "/v1/requests/login/alice", Body::None)
        .expect(200);
    assert_eq!(v["total"], 2, "{v}");
    for r in v["rows"].as_array().unwrap() {
        let (reason, more) = if r["rtoken"] == change.as_str() {
            ("old approval", true)
        } else {
            ("old cancel", false)
        };
        assert_eq!(
            (&r["reason"], &r["more"]),
            (&json!(reason), &json!(more)),
            "{r}"
        );
    }
    let v = s
        .call("GET", "/v1/requests?status=approved", Body::None)
        .expect(200);
    assert_eq!(v["rows"][0]["reason"], "old approval");
    assert_eq!(
        s.call("GET", &format!("/v1/request/{change}"), Body::None)
            .expect(200)["change"],
        json!({"name": "A"})
    );
    // Erasing the person drops the old plaintext reasons with the rest.
    s.call("DELETE", "/v1/user/login/alice", Body::None)
        .expect(200);
    let raw = String::from_utf8_lossy(&s.store.raw_contents()).into_owned();
    for reason in ["old approval", "old cancel"] {
        let hex: String = reason.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !raw.contains(reason) && !raw.contains(&hex) && !raw.contains(&hex.to_uppercase()),
            "`{reason}` survived the erasure"
        );
    }
}

/// A second, different change is a request of its own (it used to be answered
/// `request-exists` and dropped); the same change filed by many at once makes one
/// request; once decided, the same change can be filed again.
fn filing_is_atomic_and_keeps_each_change(b: &Backend) {
    let s = Server::start(b);
    s.create_user(json!({"login": "filer", "name": "F"}));
    let x = issue(&s, "login", "filer", Body::None);
    let put = |body: Value| {
        s.call_as(Some(&x), "PUT", "/v1/user/login/filer", Body::Json(body))
            .expect(200)
    };
    let first = requested(&put(json!({"name": "One"})), "request-created");
    let second = requested(&put(json!({"name": "Two"})), "request-created");
    assert_ne!(first, second);
    assert_eq!(
        requested(&put(json!({"name": "Two"})), "request-exists"),
        second
    );
    // Eight at once, all the same change: one request.
    let rtokens: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    put(json!({"name": "Race"}))["rtoken"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(rtokens.iter().all(|r| *r == rtokens[0]), "{rtokens:?}");
    let v = s
        .call("GET", "/v1/requests/login/filer", Body::None)
        .expect(200);
    assert_eq!(v["total"], 3, "{v}");
    // Decided, the same change is a new request.
    s.call("DELETE", &format!("/v1/request/{}", rtokens[0]), Body::None)
        .expect(200);
    let again = requested(&put(json!({"name": "Race"})), "request-created");
    assert_ne!(again, rtokens[0]);
    s.call("POST", &format!("/v1/request/{first}"), Body::None)
        .expect(200);
    assert_eq!(
        s.get_user("login", "filer").expect(200)["data"]["name"],
        "One"
    );
}
