//! Consent (`/v1/lbasis`, `/v1/agreement(s)`, `/v1/pactivity`, cookie settings), end
//! to end on every backend.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Server};

backend_tests!(
    legal_bases_and_activities,
    agreement_lifecycle,
    consent_before_the_user_exists,
    consent_errors_and_authorization,
    erasure_removes_consents,
    long_briefs_fit_the_audit_log,
);

fn msg(v: Value) -> String {
    v["message"].as_str().unwrap().to_string()
}

fn lbasis(s: &Server) -> Vec<Value> {
    let v = s.call("GET", "/v1/lbasis", Body::None).expect(200);
    assert_eq!(
        v["total"].as_u64().unwrap() as usize,
        v["rows"].as_array().unwrap().len()
    );
    v["rows"].as_array().unwrap().clone()
}

fn find<'a>(rows: &'a [Value], key: &str, value: &str) -> &'a Value {
    rows.iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no row with {key}={value} in {rows:?}"))
}

fn legal_bases_and_activities(b: &Backend) {
    let s = Server::start(b);
    let rows = lbasis(&s);
    assert_eq!(rows.len(), 2);
    let core = find(&rows, "brief", "core-send-email-on-login");
    assert_eq!(core["module"], "login");
    assert_eq!(core["requiredflag"], true);
    assert_eq!(core["usercontrol"], true);
    assert_eq!(core["basistype"], "consent");
    assert_eq!(
        core["requiredmsg"],
        "This consent is required to give you our service."
    );
    assert!(core["creationtime"].as_i64().unwrap() > 1_700_000_000);

    s.call(
        "POST",
        "/v1/lbasis/Marketing-1",
        Body::Json(
            json!({"fulldesc": "Marketing emails", "shortdesc": "Marketing",
                          "basistype": "consent", "usercontrol": true, "requiredflag": false,
                          "requiredmsg": "ignored unless required", "module": "signup-page"}),
        ),
    )
    .expect(200);
    let rows = lbasis(&s);
    let m = find(&rows, "brief", "marketing-1").clone();
    assert_eq!(
        (
            m["shortdesc"].clone(),
            m["usercontrol"].clone(),
            m["requiredflag"].clone(),
            m["requiredmsg"].clone(),
            m["status"].clone()
        ),
        (
            json!("Marketing"),
            json!(true),
            json!(false),
            json!(""),
            json!("active")
        )
    );
    // A partial change keeps the other fields; form bodies carry booleans as text.
    s.call(
        "POST",
        "/v1/lbasis/marketing-1",
        Body::Raw(
            "application/x-www-form-urlencoded",
            b"status=disabled&requiredflag=true&requiredmsg=needed".to_vec(),
        ),
    )
    .expect(200);
    let m2 = find(&lbasis(&s), "brief", "marketing-1").clone();
    assert_eq!(m2["status"], "disabled");
    assert_eq!(m2["requiredflag"], true);
    assert_eq!(m2["requiredmsg"], "needed");
    assert_eq!(m2["shortdesc"], "Marketing");
    assert_eq!(m2["creationtime"], m["creationtime"]);
    // Rename.
    s.call(
        "POST",
        "/v1/lbasis/marketing-1",
        Body::Json(json!({"brief": "marketing-2"})),
    )
    .expect(200);
    let rows = lbasis(&s);
    assert!(rows.iter().all(|r| r["brief"] != "marketing-1"));
    find(&rows, "brief", "marketing-2");
    assert_eq!(
        msg(s
            .call(
                "POST",
                "/v1/lbasis/marketing-2",
                Body::Json(json!({"brief": "core-send-sms-on-login"}))
            )
            .expect(409)),
        "a legal basis with that brief exists"
    );

    // Processing activities and the cookie banner feed.
    s.call(
        "POST",
        "/v1/lbasis/cookie-analytics",
        Body::Json(
            json!({"module": "cookie-popup", "shortdesc": "Analytics", "requiredflag": false}),
        ),
    )
    .expect(200);
    s.call(
        "POST",
        "/v1/lbasis/cookie-required",
        Body::Json(json!({"module": "cookie-popup", "shortdesc": "Needed", "requiredflag": true})),
    )
    .expect(200);
    s.call(
        "POST",
        "/v1/pactivity/web-analytics",
        Body::Json(json!({"script": "<script>track()</script>", "fulldesc": "Counting visits"})),
    )
    .expect(200);
    assert_eq!(
        s.call(
            "POST",
            "/v1/pactivity/web-analytics/cookie-analytics",
            Body::None
        )
        .expect(200),
        json!({"status": "ok"})
    );
    // Linking twice is idempotent.
    s.call(
        "POST",
        "/v1/pactivity/web-analytics/cookie-analytics",
        Body::None,
    )
    .expect(200);
    s.call(
        "POST",
        "/v1/pactivity/web-analytics/marketing-2",
        Body::None,
    )
    .expect(200);
    let v = s.call("GET", "/v1/pactivity", Body::None).expect(200);
    assert_eq!(v["total"], 1);
    let a = &v["rows"][0];
    assert_eq!(a["activity"], "web-analytics");
    assert_eq!(a["title"], "web-analytics");
    assert_eq!(a["legalbasis"], "cookie-analytics,marketing-2");
    assert_eq!(a["briefs"].as_array().unwrap().len(), 2);
    assert_eq!(
        msg(s
            .call(
                "POST",
                "/v1/pactivity/web-analytics/no-such-brief",
                Body::None
            )
            .expect(404)),
        "not found"
    );
    assert_eq!(
        msg(s
            .call(
                "POST",
                "/v1/pactivity/no-such-activity/marketing-2",
                Body::None
            )
            .expect(404)),
        "not found"
    );
    assert_eq!(
        msg(s
            .call("POST", "/v1/pactivity/bad$name", Body::None)
            .expect(400)),
        "bad activity format"
    );

    let v = s
        .call_as(None, "GET", "/v1/sys/cookiesettings", Body::None)
        .expect(200);
    let briefs: Vec<_> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["brief"].clone())
        .collect();
    assert_eq!(
        briefs,
        vec![json!("cookie-required"), json!("cookie-analytics")]
    );
    assert_eq!(
        v["scripts"],
        json!([{"briefs": ["cookie-analytics"], "script": "<script>track()</script>"}])
    );
    assert_eq!(v["ui"]["CompanyTitle"], "");
    assert_eq!(v["ui"]["MagicLookup"], false);
    let v = s
        .call_as(None, "GET", "/v1/sys/uiconfiguration", Body::None)
        .expect(200);
    assert!(
        v["ui"]
            .as_object()
            .unwrap()
            .contains_key("PrivacyPolicyLink")
    );

    // Deleting a legal basis unlinks it; an unused one is gone.
    s.call("DELETE", "/v1/lbasis/marketing-2", Body::None)
        .expect(200);
    assert!(lbasis(&s).iter().all(|r| r["brief"] != "marketing-2"));
    let v = s.call("GET", "/v1/pactivity", Body::None).expect(200);
    assert_eq!(v["rows"][0]["legalbasis"], "cookie-analytics");
    s.call(
        "DELETE",
        "/v1/pactivity/web-analytics/cookie-analytics",
        Body::None,
    )
    .expect(200);
    assert_eq!(
        s.call("GET", "/v1/pactivity", Body::None).expect(200)["rows"][0]["briefs"],
        json!([])
    );
    s.call("DELETE", "/v1/pactivity/web-analytics", Body::None)
        .expect(200);
    assert_eq!(
        s.call("GET", "/v1/pactivity", Body::None).expect(200),
        json!({"status": "ok", "total": 0, "rows": []})
    );
}

fn agreement_lifecycle(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "john1", "email": "john1@example.com"}));
    s.call(
        "POST",
        "/v1/lbasis/marketing-1",
        Body::Json(json!({"shortdesc": "Marketing", "usercontrol": true})),
    )
    .expect(200);
    let path = format!("/v1/agreement/marketing-1/token/{t}");
    assert_eq!(
        s.call(
            "POST",
            &path,
            Body::Json(json!({"agreementmethod": "api", "referencecode": "ref-1"}))
        )
        .expect(200),
        json!({"status": "ok"})
    );
    let v = s.call("GET", &path, Body::None).expect(200);
    let d = v["data"].as_object().unwrap();
    let mut keys: Vec<_> = d.keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "agreementmethod",
            "brief",
            "creationtime",
            "endtime",
            "lastmodifiedby",
            "mode",
            "referencecode",
            "starttime",
            "status",
            "token",
            "when",
            "who"
        ]
    );
    assert_eq!(d["status"], "yes");
    assert_eq!(d["token"], json!(t));
    assert_eq!(d["who"], json!(t));
    assert_eq!(d["mode"], "token");
    assert_eq!(d["referencecode"], "ref-1");
    assert_eq!(d["endtime"], 0);
    // The same agreement by email; expiry and start as durations.
    s.call(
        "POST",
        "/v1/agreement/marketing-1/email/john1@example.com",
        Body::Json(json!({"expiration": "10d", "starttime": 0, "status": "no"})),
    )
    .expect(200);
    let v = s
        .call("GET", "/v1/agreement/marketing-1/login/john1", Body::None)
        .expect(200);
    assert_eq!(v["data"]["status"], "no");
    assert_eq!(v["data"]["who"], "john1@example.com");
    assert_eq!(v["data"]["mode"], "email");
    assert_eq!(v["data"]["creationtime"], d["creationtime"]);
    assert!(v["data"]["endtime"].as_i64().unwrap() > d["when"].as_i64().unwrap() + 9 * 86400);
    s.call("POST", &path, Body::Json(json!({"status": "agree"})))
        .expect(200);
    let list = s
        .call("GET", &format!("/v1/agreements/token/{t}"), Body::None)
        .expect(200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["rows"][0]["status"], "yes");
    // Withdraw.
    s.call(
        "DELETE",
        &path,
        Body::Json(json!({"lastmodifiedby": "support"})),
    )
    .expect(200);
    let v = s.call("GET", &path, Body::None).expect(200);
    assert_eq!(v["data"]["status"], "no");
    assert_eq!(v["data"]["lastmodifiedby"], "support");
    // Revoke for everyone: only given consents become revoked.
    let other = s.create_user(json!({"login": "jane"}));
    s.call(
        "POST",
        &format!("/v1/agreement/marketing-1/token/{other}"),
        Body::None,
    )
    .expect(200);
    s.call("DELETE", "/v1/agreement/marketing-1", Body::None)
        .expect(200);
    assert_eq!(
        s.call(
            "GET",
            &format!("/v1/agreement/marketing-1/token/{other}"),
            Body::None
        )
        .expect(200)["data"]["status"],
        "revoked"
    );
    assert_eq!(
        s.call("GET", &path, Body::None).expect(200)["data"]["status"],
        "no"
    );
    // A legal basis in use is kept as `deleted`.
    s.call(
        "POST",
        &format!("/v1/agreement/marketing-1/token/{other}"),
        Body::None,
    )
    .expect(200);
    s.call("DELETE", "/v1/lbasis/marketing-1", Body::None)
        .expect(200);
    assert_eq!(
        find(&lbasis(&s), "brief", "marketing-1")["status"],
        "deleted"
    );
    assert_eq!(
        s.call(
            "GET",
            &format!("/v1/agreement/marketing-1/token/{other}"),
            Body::None
        )
        .expect(200)["data"]["status"],
        "revoked"
    );
}

fn consent_before_the_user_exists(b: &Backend) {
    let s = Server::start(b);
    for brief in ["test0", "test1"] {
        s.call(
            "POST",
            &format!("/v1/lbasis/{brief}"),
            Body::Json(json!({"usercontrol": true})),
        )
        .expect(200);
    }
    let email = "zq.early.bird@example.com";
    s.call(
        "POST",
        &format!("/v1/agreement/test0/email/{email}"),
        Body::Json(json!({"expiration": "10m", "starttime": 0})),
    )
    .expect(200);
    s.call(
        "POST",
        "/v1/agreement/test0/phone/07911 123456"
            .replace(' ', "%20")
            .as_str(),
        Body::None,
    )
    .expect(200);
    s.call(
        "POST",
        "/v1/agreement/core-send-email-on-login/email/zq.nobody@example.com",
        Body::None,
    )
    .expect(200);
    // Withdrawing a pending consent works too.
    s.call(
        "DELETE",
        "/v1/agreement/core-send-email-on-login/email/zq.nobody@example.com",
        Body::None,
    )
    .expect(200);
    let raw = s.store.raw_contents();
    assert!(
        !raw.windows(email.len()).any(|w| w == email.as_bytes()),
        "pending consent identity stored in plaintext"
    );
    let t = s.create_user(json!({"login": "moshe", "email": email, "phone": "+447911123456"}));
    // Linked and de-duplicated: one agreement for test0.
    let v = s
        .call("GET", &format!("/v1/agreements/email/{email}"), Body::None)
        .expect(200);
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["rows"][0]["brief"], "test0");
    assert_eq!(v["rows"][0]["token"], json!(t));
    assert_eq!(v["rows"][0]["who"], email);
    assert_eq!(v["rows"][0]["mode"], "email");
    s.call(
        "POST",
        &format!("/v1/agreement/test1/token/{t}"),
        Body::None,
    )
    .expect(200);
    assert_eq!(
        s.call("GET", "/v1/agreement/test1/login/moshe", Body::None)
            .expect(200)["data"]["brief"],
        "test1"
    );
    assert_eq!(
        s.call("GET", "/v1/agreements/login/moshe", Body::None)
            .expect(200)["total"],
        2
    );
    // No pending rows are left for this person.
    assert_eq!(
        s.store.sql("SELECT COUNT(*) FROM records WHERE kind = 'agreement' AND owner LIKE 'email:%' OR owner LIKE 'phone:%'").trim(),
        "1"
    );
}

fn consent_errors_and_authorization(b: &Backend) {
    // Many refused tokens from one address, on purpose: lift the guessing limit
    // (tests/it/limits.rs tests it).
    let s = Server::start_with(b, &["--failed-attempts-burst", "100000"]);
    let t = s.create_user(json!({"login": "john1"}));
    s.call("POST", "/v1/lbasis/test0", Body::None).expect(200);
    let path = format!("/v1/agreement/test0/token/{t}");
    assert_eq!(
        msg(s
            .call(
                "POST",
                &format!("/v1/agreement/ali$baba/token/{t}"),
                Body::None
            )
            .expect(400)),
        "incorrect brief format"
    );
    assert_eq!(
        msg(s
            .call(
                "GET",
                &format!("/v1/agreement/ali$baba/token/{t}"),
                Body::None
            )
            .expect(400)),
        "bad brief format"
    );
    assert_eq!(
        msg(s
            .call(
                "POST",
                &format!("/v1/agreement/unknown/token/{t}"),
                Body::None
            )
            .expect(404)),
        "not found"
    );
    assert_eq!(
        msg(s
            .call("POST", "/v1/agreement/test0/nomode/x", Body::None)
            .expect(400)),
        "bad mode"
    );
    assert_eq!(
        msg(s
            .call("POST", "/v1/agreement/test0/login/nobody", Body::None)
            .expect(404)),
        "not found"
    );
    assert_eq!(
        msg(s
            .call("POST", "/v1/agreement/test0/phone/not-a-phone", Body::None)
            .expect(400)),
        "bad phone"
    );
    assert_eq!(
        msg(s.call("GET", &path, Body::None).expect(404)),
        "not found"
    );
    assert_eq!(
        msg(s
            .call("POST", &path, Body::Json(json!({"expiration": "later"})))
            .expect(400)),
        "bad expiration: use a duration like 30d or a Unix time"
    );
    // Withdrawing what was never given changes nothing.
    s.call("DELETE", &path, Body::None).expect(200);
    assert_eq!(
        msg(s.call("GET", &path, Body::None).expect(404)),
        "not found"
    );
    assert_eq!(
        msg(s.call("POST", "/v1/lbasis/x", Body::None).expect(400)),
        "bad brief format"
    );
    assert_eq!(
        msg(s
            .call(
                "POST",
                "/v1/lbasis/test0",
                Body::Json(json!({"usercontrol": "perhaps"}))
            )
            .expect(400)),
        "bad usercontrol: expected true or false"
    );
    assert_eq!(
        msg(s
            .call("DELETE", "/v1/agreement/unknown", Body::None)
            .expect(404)),
        "not found"
    );
    s.call("POST", &path, Body::None).expect(200);
    for (method, p) in [
        ("GET", "/v1/lbasis".to_string()),
        ("POST", "/v1/lbasis/test9".to_string()),
        ("DELETE", "/v1/lbasis/test0".to_string()),
        ("GET", path.clone()),
        ("POST", path.clone()),
        ("DELETE", path.clone()),
        (
            "POST",
            "/v1/agreement/test0/email/new@example.com".to_string(),
        ),
        ("DELETE", "/v1/agreement/test0".to_string()),
        ("GET", format!("/v1/agreements/token/{t}")),
        ("GET", "/v1/pactivity".to_string()),
        ("POST", "/v1/pactivity/act1".to_string()),
        ("DELETE", "/v1/pactivity/act1".to_string()),
        ("POST", "/v1/pactivity/act1/test0".to_string()),
    ] {
        assert_eq!(
            s.call_as(None, method, &p, Body::None).status,
            401,
            "{method} {p}"
        );
        assert_eq!(
            s.call_as(
                Some("00000000-0000-4000-8000-000000000000"),
                method,
                &p,
                Body::None
            )
            .status,
            403,
            "{method} {p}"
        );
    }
    // Nothing changed.
    assert_eq!(lbasis(&s).len(), 3);
    assert_eq!(
        s.call("GET", &path, Body::None).expect(200)["data"]["status"],
        "yes"
    );
}

fn erasure_removes_consents(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "john1", "email": "john1@example.com"}));
    s.call("POST", "/v1/lbasis/test0", Body::None).expect(200);
    s.call(
        "POST",
        &format!("/v1/agreement/test0/token/{t}"),
        Body::Json(json!({"referencecode": "zq-ref-5512"})),
    )
    .expect(200);
    s.call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    assert_eq!(
        s.store
            .sql(&format!("SELECT COUNT(*) FROM records WHERE owner = '{t}'"))
            .trim(),
        "0"
    );
    assert_eq!(
        msg(s
            .call("GET", &format!("/v1/agreements/token/{t}"), Body::None)
            .expect(404)),
        "user record not found"
    );
    // The legal basis itself stays.
    assert_eq!(lbasis(&s).len(), 3);
}

/// A brief of the longest accepted length makes audit actions longer than the audit
/// log's column: they are cut, not refused (PostgreSQL and MariaDB enforce widths).
fn long_briefs_fit_the_audit_log(b: &Backend) {
    let s = Server::start(b);
    let brief = format!("b{}", "x".repeat(64));
    s.call("POST", &format!("/v1/lbasis/{brief}"), Body::None)
        .expect(200);
    let t = s.create_user(json!({"email": "long@example.com"}));
    let path = format!("/v1/agreement/{brief}/token/{t}");
    s.call("POST", &path, Body::None).expect(200);
    s.call("DELETE", &path, Body::None).expect(200);
    let v = s
        .call("GET", &format!("/v1/agreements/token/{t}"), Body::None)
        .expect(200);
    assert_eq!(v["rows"][0]["status"], "no", "{v}");
}
