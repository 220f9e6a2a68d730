//! Databunker Pro's v2 API (`POST /v2/{Method}`): the transport rules over raw HTTP,
//! and the user methods, on every backend.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Server};

backend_tests!(
    the_transport_follows_the_v2_conventions,
    users_over_v2,
    app_data_over_v2,
    consent_over_v2,
    sessions_and_shared_records_over_v2,
    user_requests_over_v2,
    audit_over_v2,
    bulk_listings_need_a_fresh_unlock,
    stats_and_a_persons_export,
    bulk_create_and_delete,
    processing_activities_over_v2,
    request_metadata_is_sealed_into_the_audit,
);

/// `{mode, identity}` of `login` with `extra`'s fields.
fn person(login: &str, extra: Value) -> Value {
    let mut v = json!({"mode": "login", "identity": login});
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}

/// The `requestuuid` a `*Request` method answered, checked to be new.
fn filed(r: crate::harness::Reply) -> String {
    let r = r.expect(200);
    assert_eq!(r["result"], "request-created", "{r}");
    let id = r["requestuuid"].as_str().unwrap().to_string();
    assert_eq!(r["rtoken"], id.as_str());
    id
}

fn v2(s: &Server, method: &str, body: Value) -> crate::harness::Reply {
    s.call("POST", &format!("/v2/{method}"), Body::Json(body))
}

fn the_transport_follows_the_v2_conventions(b: &Backend) {
    let s = Server::start(b);
    // An unknown method: a JSON 404.
    let r = v2(&s, "NoSuchMethod", json!({}));
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json,
        json!({"status": "error", "message": "The API request was not found"})
    );
    // Another HTTP method than POST: a JSON 405.
    let r = s.call("GET", "/v2/UserGet", Body::None);
    assert_eq!(r.status, 405);
    assert_eq!(r.json["status"], "error");
    // No body at all is `{}`: the missing argument is named.
    let r = s.call("POST", "/v2/UserGet", Body::None);
    assert_eq!(r.status, 400, "{}", r.json);
    assert_eq!(r.json["message"], "Missing API request parameters: mode");
    // Malformed JSON, a body that is not an object, a bad mode, a bad type.
    let r = s.call(
        "POST",
        "/v2/UserGet",
        Body::Raw("application/json", b"{nope".to_vec()),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json["status"], "error");
    assert_eq!(v2(&s, "UserGet", json!([1, 2])).status, 400);
    let r = v2(&s, "UserGet", json!({"mode": "nickname", "identity": "x"}));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json["message"],
        "The mode parameter has an incorrect format"
    );
    assert_eq!(v2(&s, "UserCreate", json!({"profile": "text"})).status, 400);
    // `null` is an absent field; `request_metadata` is accepted everywhere, and
    // must be an object when given.
    let r = v2(&s, "UserCreate", json!({"profile": null}));
    assert_eq!(r.json["message"], "Missing API request parameters: profile");
    let t = v2(
        &s,
        "UserCreate",
        json!({"profile": {"login": "ann"}, "request_metadata": {"purpose": "signup"}}),
    )
    .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = v2(
        &s,
        "UserGet",
        json!({"mode": "login", "identity": "ann", "request_metadata": 5}),
    );
    assert_eq!(r.status, 400);
    // A numeric identity is taken as its text (clients send numbers).
    v2(
        &s,
        "UserCreate",
        json!({"profile": {"phone": 447911123456_i64}}),
    )
    .expect(200);
    v2(
        &s,
        "UserGet",
        json!({"mode": "phone", "identity": 447911123456_i64}),
    )
    .expect(200);
    // No token, a wrong token: refused with JSON.
    let r = s.call_as(
        None,
        "POST",
        "/v2/UserGet",
        Body::Json(json!({"mode": "token", "identity": t})),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json["status"], "error");
    let r = s.call_as(
        Some("00000000-0000-4000-8000-000000000000"),
        "POST",
        "/v2/UserGet",
        Body::Json(json!({"mode": "token", "identity": t})),
    );
    assert_eq!(r.status, 403);
    // Refusals in Databunker Pro's words (the v1 routes keep Databunker's).
    let r = v2(
        &s,
        "UserGet",
        json!({"mode": "login", "identity": "nobody"}),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json["message"], "The user record was not found");
    let r = v2(
        &s,
        "LegalBasisUpdate",
        json!({"brief": "nosuch", "fulldesc": "x"}),
    );
    assert_eq!(
        r.json["message"], "The legal basis record was not found",
        "{}",
        r.json
    );
    let r = v2(&s, "UserCreate", json!({"profile": {"login": "ann"}}));
    assert_eq!(r.status, 409);
    assert_eq!(r.json["message"], "Duplicate index: login");
    let r = v2(&s, "UserRequestGet", json!({"requestuuid": "x"}));
    assert_eq!(r.json["message"], "Bad UUID");
    assert_eq!(
        s.get_user("login", "nobody").json["message"],
        "not found",
        "v1 keeps its wording"
    );
    // A tenant that does not exist is named as such.
    let r = s.call_with(
        Some(&s.token),
        "POST",
        "/v2/UserGet",
        &[("X-Bunker-Tenant", "acme")],
        Body::Json(json!({"mode": "token", "identity": t})),
    );
    assert_eq!(r.status, 404, "{}", r.json);
    assert_eq!(r.json["message"], "The tenant was not found");
    // `GET /status` and `GET /metrics` where the clients look: requests counted by
    // method, route template and status under Pro's metric name; never without a
    // token (unless `--metrics-public`).
    assert_eq!(s.call_as(None, "GET", "/status", Body::None).status, 200);
    let (status, _) = crate::system::scrape_at(&s, "/metrics", &[]);
    assert_eq!(status, 401);
    let (status, text) = crate::system::scrape_at(&s, "/metrics", &[("X-Bunker-Token", &s.token)]);
    assert_eq!(status, 200);
    let created = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                r#"http_requests_total{method="POST",path="/v2/UserCreate",status="200"} "#,
            )
        })
        .unwrap_or_else(|| panic!("no UserCreate count in {text}"));
    assert_eq!(created, "2");
}

fn users_over_v2(b: &Backend) {
    let s = Server::start(b);
    let t = v2(
        &s,
        "UserCreate",
        json!({"profile": {"email": "Ann@Example.com", "name": "Ann", "phone": "07911 123456"}}),
    )
    .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Duplicate index.
    let r = v2(
        &s,
        "UserCreate",
        json!({"profile": {"email": "ann@example.com"}}),
    );
    assert_eq!(r.status, 409, "{}", r.json);
    // The same person through v1 and v2.
    let got = v2(
        &s,
        "UserGet",
        json!({"mode": "email", "identity": "ANN@example.com"}),
    )
    .expect(200);
    assert_eq!(got["token"], t.as_str());
    assert_eq!(got["profile"]["name"], "Ann");
    assert_eq!(s.get_user("token", &t).expect(200)["data"], got["profile"]);
    // UserUpdate is a merge patch, and the indexes follow: found by the new phone,
    // not by the removed email.
    v2(
        &s,
        "UserUpdate",
        json!({"mode": "token", "identity": t, "profile": {"name": "Anna", "email": null, "phone": "+447700900123"}}),
    )
    .expect(200);
    let got = v2(
        &s,
        "UserGet",
        json!({"mode": "phone", "identity": "07700 900123"}),
    )
    .expect(200);
    assert_eq!(
        got["profile"],
        json!({"name": "Anna", "phone": "+447700900123"})
    );
    assert_eq!(
        v2(
            &s,
            "UserGet",
            json!({"mode": "email", "identity": "ann@example.com"})
        )
        .status,
        404
    );
    // UserPatch is a JSON Patch; a failing `test` changes nothing.
    v2(
        &s,
        "UserPatch",
        json!({"mode": "token", "identity": t, "patch": [{"op": "add", "path": "/city", "value": "Leeds"}]}),
    )
    .expect(200);
    let r = v2(
        &s,
        "UserPatch",
        json!({"mode": "token", "identity": t, "patch": [{"op": "test", "path": "/city", "value": "York"}, {"op": "remove", "path": "/name"}]}),
    );
    assert!((400..500).contains(&r.status), "{}", r.json);
    let got = v2(&s, "UserGet", json!({"mode": "token", "identity": t})).expect(200);
    assert_eq!(got["profile"]["city"], "Leeds");
    assert_eq!(got["profile"]["name"], "Anna");
    assert_eq!(
        v2(
            &s,
            "UserPatch",
            json!({"mode": "token", "identity": t, "patch": {}})
        )
        .status,
        400
    );
    // UserDelete erases: by its indexes the person is gone, by token a tombstone with
    // no data (as in v1), and the erasure has its signed receipt.
    v2(&s, "UserDelete", json!({"mode": "token", "identity": t})).expect(200);
    let r = v2(
        &s,
        "UserGet",
        json!({"mode": "phone", "identity": "+447700900123"}),
    );
    assert_eq!(r.status, 404);
    let got = v2(&s, "UserGet", json!({"mode": "token", "identity": t})).expect(200);
    assert_eq!(got["profile"], json!({}));
    assert_eq!(s.get_user("token", &t).expect(200)["data"], json!({}));
    let receipt = s
        .call("GET", &format!("/v1/audit/receipt/{t}"), Body::None)
        .expect(200);
    assert!(receipt["receipt"].is_object(), "{receipt}");
}

fn app_data_over_v2(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "ann"}));
    let who = json!({"mode": "login", "identity": "ann"});
    let with = |extra: Value| {
        let mut v = who.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    v2(
        &s,
        "AppdataCreate",
        with(json!({"appname": "shop", "appdata": {"plan": "gold", "n": 1}})),
    )
    .expect(200);
    // The same document through v1.
    let v1 = s
        .call("GET", &format!("/v1/userapp/token/{t}/shop"), Body::None)
        .expect(200);
    assert_eq!(v1["data"], json!({"plan": "gold", "n": 1}));
    let got = v2(&s, "AppdataGet", with(json!({"appname": "shop"}))).expect(200);
    assert_eq!(
        got,
        json!({"status": "ok", "appdata": {"plan": "gold", "n": 1}})
    );
    // AppdataUpdate merges; null removes.
    v2(
        &s,
        "AppdataUpdate",
        with(json!({"appname": "shop", "appdata": {"n": null, "seat": "3A"}})),
    )
    .expect(200);
    let got = v2(&s, "AppdataGet", with(json!({"appname": "shop"}))).expect(200);
    assert_eq!(got["appdata"], json!({"plan": "gold", "seat": "3A"}));
    v2(
        &s,
        "AppdataCreate",
        with(json!({"appname": "crm", "appdata": {"x": 1}})),
    )
    .expect(200);
    let mine = v2(&s, "AppdataListUserAppNames", who.clone()).expect(200);
    let mut names: Vec<&str> = mine["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["crm", "shop"]);
    // No body at all: the root-only list of every application name.
    let all = s
        .call("POST", "/v2/AppdataListAppNames", Body::None)
        .expect(200);
    assert_eq!(all["apps"], json!(["crm", "shop"]));
    // Bad names and missing arguments are 400; an unknown person 404.
    assert_eq!(
        v2(&s, "AppdataGet", with(json!({"appname": "Bad Name"}))).status,
        400
    );
    let r = v2(&s, "AppdataCreate", with(json!({"appname": "shop"})));
    assert_eq!(r.json["message"], "Missing API request parameters: appdata");
    let r = v2(
        &s,
        "AppdataGet",
        json!({"mode": "login", "identity": "nobody", "appname": "shop"}),
    );
    assert_eq!(r.status, 404, "{}", r.json);
    v2(&s, "AppdataDelete", with(json!({"appname": "shop"}))).expect(200);
    assert_eq!(
        v2(&s, "AppdataGet", with(json!({"appname": "shop"}))).status,
        404
    );
    // A user's own token reaches only their documents.
    let x = s
        .call("POST", "/v1/xtoken/login/ann", Body::Json(json!({})))
        .expect(200)["xtoken"]
        .as_str()
        .unwrap()
        .to_string();
    s.create_user(json!({"login": "bob"}));
    let r = s.call_as(
        Some(&x),
        "POST",
        "/v2/AppdataListUserAppNames",
        Body::Json(json!({"mode": "login", "identity": "bob"})),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    let r = s.call_as(Some(&x), "POST", "/v2/AppdataListAppNames", Body::None);
    assert_eq!(r.status, 403, "{}", r.json);
}

fn consent_over_v2(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"email": "ann@example.com"}));
    v2(
        &s,
        "LegalBasisCreate",
        json!({"brief": "Marketing", "shortdesc": "Mail", "basistype": "consent", "usercontrol": true, "requiredflag": null}),
    )
    .expect(200);
    // Renamed by LegalBasisUpdate's `newbrief` (a null one changes nothing).
    v2(
        &s,
        "LegalBasisUpdate",
        json!({"brief": "marketing", "newbrief": null, "fulldesc": "Our newsletter"}),
    )
    .expect(200);
    v2(
        &s,
        "LegalBasisUpdate",
        json!({"brief": "marketing", "newbrief": "newsletter"}),
    )
    .expect(200);
    let bases = s
        .call("POST", "/v2/LegalBasisListAgreements", Body::None)
        .expect(200);
    let briefs = bases["rows"].to_string();
    assert!(
        briefs.contains("\"newsletter\"") && !briefs.contains("\"marketing\""),
        "{bases}"
    );
    assert!(bases["total"].as_u64().unwrap() >= 3, "{bases}");
    let who = json!({"mode": "email", "identity": "ann@example.com", "brief": "newsletter"});
    let with = |extra: Value| {
        let mut v = who.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    v2(
        &s,
        "AgreementAccept",
        with(json!({"agreementmethod": "form", "referencecode": "r1", "finaltime": "1y"})),
    )
    .expect(200);
    let a = v2(&s, "AgreementGet", who.clone()).expect(200);
    assert_eq!(a["agreement"]["status"], "yes", "{a}");
    assert_eq!(a["agreement"]["agreementmethod"], "form", "{a}");
    assert_eq!(a["agreement"]["referencecode"], "r1", "{a}");
    assert!(a["agreement"]["endtime"].as_i64().unwrap() > 0, "{a}");
    // The same agreement through v1.
    let v1 = s
        .call(
            "GET",
            &format!("/v1/agreement/newsletter/token/{t}"),
            Body::None,
        )
        .expect(200);
    assert_eq!(v1["data"]["status"], "yes");
    let mine = v2(
        &s,
        "AgreementListUserAgreements",
        json!({"mode": "token", "identity": t}),
    )
    .expect(200);
    assert_eq!(mine["total"], 1);
    v2(&s, "AgreementCancel", who.clone()).expect(200);
    let a = v2(&s, "AgreementGet", who.clone()).expect(200);
    assert_eq!(a["agreement"]["status"], "no", "{a}");
    v2(&s, "AgreementAccept", who.clone()).expect(200);
    v2(&s, "AgreementRevokeAll", json!({"brief": "newsletter"})).expect(200);
    let a = v2(&s, "AgreementGet", who.clone()).expect(200);
    assert_eq!(a["agreement"]["status"], "revoked", "{a}");
    // Unknown brief; bad brief; the catalogue is root's to change.
    let r = v2(&s, "AgreementGet", with(json!({"brief": "nosuch"})));
    assert_eq!(r.status, 404, "{}", r.json);
    assert_eq!(
        v2(&s, "LegalBasisCreate", json!({"brief": "a b"})).status,
        400
    );
    let x = s
        .call(
            "POST",
            &format!("/v1/xtoken/token/{t}"),
            Body::Json(json!({})),
        )
        .expect(200)["xtoken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.call_as(
        Some(&x),
        "POST",
        "/v2/LegalBasisCreate",
        Body::Json(json!({"brief": "sneaky"})),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    v2(&s, "LegalBasisDelete", json!({"brief": "newsletter"})).expect(200);
}

fn sessions_and_shared_records_over_v2(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "ann", "name": "Ann", "city": "Leeds"}));
    let sid = "7a1d2c3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";
    v2(
        &s,
        "SessionUpsert",
        json!({"sessionuuid": sid, "sessiondata": {"login": "ann", "cart": 3}, "finaltime": "1h"}),
    )
    .expect(200);
    let got = v2(&s, "SessionGet", json!({"sessionuuid": sid})).expect(200);
    assert_eq!(got["sessiondata"]["cart"], 3, "{got}");
    // Linked to the person, and listed with Pro's field names; the limit is clamped.
    let list = v2(
        &s,
        "SessionListUserSessions",
        json!({"mode": "token", "identity": t, "offset": 0, "limit": 1000}),
    )
    .expect(200);
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["rows"][0]["sessionuuid"], sid, "{list}");
    assert_eq!(
        v2(
            &s,
            "SessionListUserSessions",
            json!({"mode": "token", "identity": t, "limit": "x"})
        )
        .status,
        400
    );
    assert_eq!(
        v2(&s, "SessionGet", json!({"sessionuuid": "not-a-uuid"})).status,
        400
    );
    v2(&s, "SessionDelete", json!({"sessionuuid": sid})).expect(200);
    assert_eq!(
        v2(&s, "SessionGet", json!({"sessionuuid": sid})).status,
        404
    );

    // A shared record: only the listed fields, readable without a token.
    let r = v2(
        &s,
        "SharedRecordCreate",
        json!({"mode": "login", "identity": "ann", "fields": "name", "partner": "acme", "finaltime": "1d"}),
    )
    .expect(200);
    let record = r["recorduuid"].as_str().unwrap().to_string();
    let shared = s.call_as(
        None,
        "POST",
        "/v2/SharedRecordGet",
        Body::Json(json!({"recorduuid": record})),
    );
    assert_eq!(shared.status, 200, "{}", shared.json);
    assert_eq!(shared.json["data"], json!({"name": "Ann"}));
    // The same record through v1.
    let v1 = s
        .call_as(None, "GET", &format!("/v1/get/{record}"), Body::None)
        .expect(200);
    assert_eq!(v1["data"], shared.json["data"]);
    let r = s.call_as(
        None,
        "POST",
        "/v2/SharedRecordGet",
        Body::Json(json!({"recorduuid": "00000000-0000-4000-8000-000000000000"})),
    );
    assert_eq!(r.status, 404, "{}", r.json);
}

fn user_requests_over_v2(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "ann", "name": "Ann"}));
    s.create_user(json!({"login": "bob"}));
    // Root's UserUpdateRequest is filed, not applied; the same one again is the
    // same request.
    let change = filed(v2(
        &s,
        "UserUpdateRequest",
        person("ann", json!({"profile": {"name": "Anna"}})),
    ));
    assert_eq!(s.get_user("token", &t).expect(200)["data"]["name"], "Ann");
    let again = v2(
        &s,
        "UserUpdateRequest",
        person("ann", json!({"profile": {"name": "Anna"}})),
    )
    .expect(200);
    assert_eq!(again["result"], "request-exists");
    assert_eq!(again["requestuuid"], change.as_str());
    // A change that cannot apply is refused now, and nothing is filed.
    let r = v2(
        &s,
        "UserPatchRequest",
        person(
            "ann",
            json!({"patch": [{"op": "test", "path": "/name", "value": "Zed"}]}),
        ),
    );
    assert!((400..500).contains(&r.status), "{}", r.json);
    let r = v2(
        &s,
        "UserUpdateRequest",
        person("nobody", json!({"profile": {"a": 1}})),
    );
    assert_eq!(r.status, 404, "{}", r.json);
    let list = v2(&s, "UserRequestListUserRequests", person("ann", json!({}))).expect(200);
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["rows"][0]["requestuuid"], change.as_str());
    assert_eq!(list["rows"][0]["requesttype"], "change-profile");
    assert_eq!(list["rows"][0]["status"], "open");
    // UserRequestGet shows what it would change.
    let got = v2(&s, "UserRequestGet", json!({"requestuuid": change})).expect(200);
    assert_eq!(got["request"]["original"]["name"], "Ann", "{got}");
    assert_eq!(got["request"]["change"], json!({"name": "Anna"}));
    assert_eq!(got["request"]["requesttype"], "change-profile");
    assert_eq!(
        v2(&s, "UserRequestGet", json!({"requestuuid": "nope"})).status,
        400
    );
    let unknown = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
    assert_eq!(
        v2(&s, "UserRequestGet", json!({"requestuuid": unknown})).status,
        404
    );
    // Approved, it is carried out; approving again is refused as closed.
    v2(
        &s,
        "UserRequestApprove",
        json!({"requestuuid": change, "reason": "ok"}),
    )
    .expect(200);
    assert_eq!(s.get_user("token", &t).expect(200)["data"]["name"], "Anna");
    let r = v2(&s, "UserRequestApprove", json!({"requestuuid": change}));
    assert_eq!(r.status, 409);
    assert_eq!(r.json["message"], "This user request is closed");
    // App data: no document, no request; with one, a request that is canceled with
    // a reason and changes nothing.
    let r = v2(
        &s,
        "AppdataUpdateRequest",
        person(
            "ann",
            json!({"appname": "shop", "appdata": {"plan": "gold"}}),
        ),
    );
    assert_eq!(r.status, 404, "{}", r.json);
    v2(
        &s,
        "AppdataCreate",
        person(
            "ann",
            json!({"appname": "shop", "appdata": {"plan": "free"}}),
        ),
    )
    .expect(200);
    let app = filed(v2(
        &s,
        "AppdataUpdateRequest",
        person(
            "ann",
            json!({"appname": "shop", "appdata": {"plan": "gold"}}),
        ),
    ));
    v2(
        &s,
        "UserRequestCancel",
        json!({"requestuuid": app, "reason": "no"}),
    )
    .expect(200);
    let r = v2(&s, "UserRequestCancel", json!({"requestuuid": app}));
    assert_eq!(r.json["message"], "This user request is closed");
    let doc = v2(&s, "AppdataGet", person("ann", json!({"appname": "shop"}))).expect(200);
    assert_eq!(doc["appdata"], json!({"plan": "free"}));
    let list = v2(
        &s,
        "UserRequestListUserRequests",
        person("ann", json!({"limit": 1, "offset": 1})),
    )
    .expect(200);
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(list["rows"].as_array().unwrap().len(), 1);
    let list = v2(&s, "UserRequestListUserRequests", person("ann", json!({}))).expect(200);
    let canceled = list["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["requestuuid"] == app.as_str())
        .unwrap();
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["reason"], "no");
    // A consent: no agreement, no request; with one, approval withdraws it.
    v2(
        &s,
        "LegalBasisCreate",
        json!({"brief": "news", "basistype": "consent", "usercontrol": false}),
    )
    .expect(200);
    let r = v2(
        &s,
        "AgreementCancelRequest",
        person("ann", json!({"brief": "news"})),
    );
    assert_eq!(r.status, 404, "{}", r.json);
    v2(
        &s,
        "AgreementAccept",
        person("ann", json!({"brief": "news"})),
    )
    .expect(200);
    let withdraw = filed(v2(
        &s,
        "AgreementCancelRequest",
        person("ann", json!({"brief": "news"})),
    ));
    let got = v2(&s, "AgreementGet", person("ann", json!({"brief": "news"}))).expect(200);
    assert_eq!(got["agreement"]["status"], "yes");
    v2(&s, "UserRequestApprove", json!({"requestuuid": withdraw})).expect(200);
    let got = v2(&s, "AgreementGet", person("ann", json!({"brief": "news"}))).expect(200);
    assert_eq!(got["agreement"]["status"], "no");
    // A person's own token: their own requests only, cancel but not approve.
    let x = s
        .call("POST", "/v1/xtoken/login/ann", Body::Json(json!({})))
        .expect(200)["xtoken"]
        .as_str()
        .unwrap()
        .to_string();
    let as_ann = |method: &str, body: Value| {
        s.call_as(Some(&x), "POST", &format!("/v2/{method}"), Body::Json(body))
    };
    let forget = filed(as_ann("UserDeleteRequest", person("ann", json!({}))));
    assert_eq!(
        as_ann("UserDeleteRequest", person("bob", json!({}))).status,
        403
    );
    assert_eq!(
        as_ann("UserRequestListUserRequests", person("bob", json!({}))).status,
        403
    );
    assert_eq!(
        as_ann("UserRequestApprove", json!({"requestuuid": forget})).status,
        403
    );
    as_ann("UserRequestCancel", json!({"requestuuid": forget})).expect(200);
    // Root's UserDeleteRequest, approved, erases.
    let forget = filed(v2(&s, "UserDeleteRequest", person("ann", json!({}))));
    assert_eq!(s.get_user("token", &t).expect(200)["data"]["name"], "Anna");
    v2(&s, "UserRequestApprove", json!({"requestuuid": forget})).expect(200);
    assert_eq!(s.get_user("token", &t).expect(200)["data"], json!({}));
    assert_eq!(v2(&s, "UserGet", person("ann", json!({}))).status, 404);
}

fn audit_over_v2(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "ann", "name": "Ann"}));
    for i in 0..11 {
        v2(
            &s,
            "UserUpdate",
            person("ann", json!({"profile": {"n": i}})),
        )
        .expect(200);
    }
    // Newest first, 10 by default, `limit` and `offset` as numbers or text.
    let page = v2(&s, "AuditListUserEvents", person("ann", json!({}))).expect(200);
    let total = page["total"].as_u64().unwrap();
    assert!(total >= 12, "{page}");
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    let newest = &rows[0];
    for key in ["auditeventuuid", "eventtype", "timestamp"] {
        assert!(!newest[key].is_null(), "{key} in {newest}");
    }
    let all = v2(
        &s,
        "AuditListUserEvents",
        json!({"mode": "token", "identity": t, "limit": "0"}),
    )
    .expect(200);
    assert_eq!(
        all["rows"].as_array().unwrap().len() as u64,
        all["total"].as_u64().unwrap()
    );
    let second = v2(
        &s,
        "AuditListUserEvents",
        person("ann", json!({"limit": 1, "offset": "1"})),
    )
    .expect(200);
    // Reading the list is itself audited: the newest event now is that read, so
    // the second is what the previous read found newest.
    assert_eq!(
        second["rows"][0]["auditeventuuid"],
        all["rows"][0]["auditeventuuid"]
    );
    // The newest change with its detail: the profile before and after.
    let change = rows
        .iter()
        .find(|r| r["more"] == true)
        .expect("a change with detail");
    let e = v2(
        &s,
        "AuditGetEvent",
        json!({"auditeventuuid": change["auditeventuuid"]}),
    )
    .expect(200);
    assert_eq!(e["details"]["after"]["n"], 10, "{e}");
    assert_eq!(e["details"]["before"]["n"], 9, "{e}");
    assert_eq!(e["eventtype"], change["eventtype"]);
    assert_eq!(e["timestamp"], change["timestamp"]);
    // Bad and unknown ids, unknown people.
    assert_eq!(
        v2(&s, "AuditGetEvent", json!({"auditeventuuid": "x"})).status,
        400
    );
    assert_eq!(v2(&s, "AuditGetEvent", json!({})).status, 400);
    let unknown = "0190f1e2-d3c4-7b5a-8978-a4b3c2d1e0f9";
    assert_eq!(
        v2(&s, "AuditGetEvent", json!({"auditeventuuid": unknown})).status,
        404
    );
    assert_eq!(
        v2(&s, "AuditListUserEvents", person("nobody", json!({}))).status,
        404
    );
    // Another person's token sees neither the list nor the event.
    s.create_user(json!({"login": "bob"}));
    let x = s
        .call("POST", "/v1/xtoken/login/bob", Body::Json(json!({})))
        .expect(200)["xtoken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.call_as(
        Some(&x),
        "POST",
        "/v2/AuditListUserEvents",
        Body::Json(json!({"mode": "token", "identity": t})),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    let r = s.call_as(
        Some(&x),
        "POST",
        "/v2/AuditGetEvent",
        Body::Json(json!({"auditeventuuid": change["auditeventuuid"]})),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    // After an erasure: listed by token, the detail no longer opens.
    v2(&s, "UserDelete", person("ann", json!({}))).expect(200);
    let after = v2(
        &s,
        "AuditListUserEvents",
        json!({"mode": "token", "identity": t}),
    )
    .expect(200);
    assert!(after["total"].as_u64().unwrap() > total);
    let e = v2(
        &s,
        "AuditGetEvent",
        json!({"auditeventuuid": change["auditeventuuid"]}),
    )
    .expect(200);
    assert_eq!(e["details"], json!({}));
}

fn bulk_listings_need_a_fresh_unlock(b: &Backend) {
    // Without `--list-users`, people are not listed even when unlocked; the audit
    // log is.
    let s = Server::start(b);
    let unlock = v2(&s, "BulkListUnlock", json!({})).expect(200)["unlockuuid"]
        .as_str()
        .unwrap()
        .to_string();
    let r = v2(&s, "BulkListAllUsers", json!({"unlockuuid": unlock}));
    assert_eq!(r.status, 403);
    assert_eq!(r.json["message"], "BulkListAllUsers is disabled");
    v2(&s, "BulkListAllAuditEvents", json!({"unlockuuid": unlock})).expect(200);
    drop(s);

    let s = Server::start_with(b, &["--list-users", "true"]);
    let ann = s.create_user(json!({"login": "ann", "email": "ann@example.com"}));
    s.create_user(json!({"login": "bob"}));
    s.create_user(json!({"login": "cy"}));
    // No unlock, an unknown one, a malformed one: refused alike, and audited.
    let refused = "The unlockuuid value was not found or is not valid";
    for body in [
        json!({}),
        json!({"unlockuuid": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"}),
        json!({"unlockuuid": "x"}),
        json!({"unlockuuid": 7}),
    ] {
        let r = v2(&s, "BulkListAllUsers", body);
        assert_eq!(r.status, 403, "{}", r.json);
        assert_eq!(r.json["message"], refused);
    }
    // The user's own token may neither unlock nor use root's unlock.
    let x = s
        .call("POST", "/v1/xtoken/login/ann", Body::Json(json!({})))
        .expect(200)["xtoken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.call_as(Some(&x), "POST", "/v2/BulkListUnlock", Body::None)
            .status,
        403
    );
    let unlock = s.call("POST", "/v2/BulkListUnlock", Body::None).expect(200)["unlockuuid"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.call_as(
        Some(&x),
        "POST",
        "/v2/BulkListAllUsers",
        Body::Json(json!({"unlockuuid": unlock})),
    );
    assert_eq!(r.status, 403);
    // The unlock is not stored as itself.
    let stored = s.store.sql("SELECT id FROM records WHERE kind = 'unlock'");
    assert!(!stored.is_empty() && !stored.contains(&unlock), "{stored}");
    // Unlocked: every person, paged; the unlock works again within its minute.
    let all = v2(&s, "BulkListAllUsers", json!({"unlockuuid": unlock})).expect(200);
    assert_eq!(all["total"], 3, "{all}");
    let rows = all["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let row = rows.iter().find(|r| r["token"] == ann.as_str()).unwrap();
    assert_eq!(row["profile"]["email"], "ann@example.com");
    let page = v2(
        &s,
        "BulkListAllUsers",
        json!({"unlockuuid": unlock, "limit": 2, "offset": 2}),
    )
    .expect(200);
    assert_eq!(page["total"], 3);
    assert_eq!(page["rows"].as_array().unwrap().len(), 1);
    // BulkListUsers: the people named, misses left out; an empty list is an error.
    let r = v2(
        &s,
        "BulkListUsers",
        json!({"unlockuuid": unlock, "users": []}),
    );
    assert_eq!(r.status, 400, "{}", r.json);
    let got = v2(
        &s,
        "BulkListUsers",
        json!({"unlockuuid": unlock, "users": [
            {"mode": "email", "identity": "ANN@example.com"},
            {"mode": "login", "identity": "nobody"},
            {"mode": "login", "identity": "ann"},
        ]}),
    )
    .expect(200);
    assert_eq!(got["total"], 1, "{got}");
    assert_eq!(got["rows"][0]["token"], ann.as_str());
    let r = v2(
        &s,
        "BulkListUsers",
        json!({"unlockuuid": unlock, "users": [{"mode": "nick", "identity": "a"}]}),
    );
    assert_eq!(r.status, 400);
    // Every request, or those of one status.
    let open = v2(
        &s,
        "UserDeleteRequest",
        json!({"mode": "login", "identity": "bob"}),
    )
    .expect(200)["requestuuid"]
        .clone();
    let closed = v2(
        &s,
        "UserDeleteRequest",
        json!({"mode": "login", "identity": "cy"}),
    )
    .expect(200)["requestuuid"]
        .clone();
    v2(&s, "UserRequestCancel", json!({"requestuuid": closed})).expect(200);
    let every = v2(&s, "BulkListAllUserRequests", json!({"unlockuuid": unlock})).expect(200);
    assert_eq!(every["total"], 2, "{every}");
    let only_open = v2(
        &s,
        "BulkListAllUserRequests",
        json!({"unlockuuid": unlock, "status": "open"}),
    )
    .expect(200);
    assert_eq!(only_open["total"], 1);
    assert_eq!(only_open["rows"][0]["requestuuid"], open);
    let r = v2(
        &s,
        "BulkListAllUserRequests",
        json!({"unlockuuid": unlock, "status": "bogus"}),
    );
    assert_eq!(r.status, 400);
    // The audit log, newest first, with the refusals and the unlocks in it.
    let log = v2(
        &s,
        "BulkListAllAuditEvents",
        json!({"unlockuuid": unlock, "limit": 100}),
    )
    .expect(200);
    let actions: Vec<&str> = log["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(actions.contains(&"bulk.refused"), "{actions:?}");
    assert!(actions.contains(&"bulk.unlock"), "{actions:?}");
    assert!(log["rows"][0]["auditeventuuid"].is_string());
    // Past its minute the unlock no longer works (its expiry set back here).
    s.store
        .sql("UPDATE records SET expires = 1 WHERE kind = 'unlock'");
    let r = v2(&s, "BulkListAllAuditEvents", json!({"unlockuuid": unlock}));
    assert_eq!(r.status, 403, "{}", r.json);
    assert_eq!(r.json["message"], refused);
}

fn stats_and_a_persons_export(b: &Backend) {
    let s = Server::start(b);
    let stats = || {
        let r = s
            .call("POST", "/v2/SystemGetSystemStats", Body::None)
            .expect(200);
        r["stats"].clone()
    };
    assert_eq!(
        stats(),
        json!({"numusers": 0, "numtenants": 1, "numtokens": 0, "numsessions": 0})
    );
    let ann = s.create_user(json!({"login": "ann", "name": "Ann"}));
    let gone = s.create_user(json!({"login": "gone"}));
    s.create_user(json!({"login": "bob"}));
    s.call("DELETE", &format!("/v1/user/token/{gone}"), Body::None)
        .expect(200);
    v2(
        &s,
        "AppdataCreate",
        person(
            "ann",
            json!({"appname": "shop", "appdata": {"plan": "gold"}}),
        ),
    )
    .expect(200);
    v2(
        &s,
        "LegalBasisCreate",
        json!({"brief": "news", "basistype": "consent", "usercontrol": true}),
    )
    .expect(200);
    v2(
        &s,
        "AgreementAccept",
        person("ann", json!({"brief": "news"})),
    )
    .expect(200);
    let request = filed(v2(
        &s,
        "UserUpdateRequest",
        person("ann", json!({"profile": {"name": "Anna"}})),
    ));
    v2(
        &s,
        "SessionUpsert",
        json!({"sessionuuid": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "sessiondata": {"login": "ann", "ip": "10.0.0.1"}}),
    )
    .expect(200);
    // Erased people are not counted; sessions are.
    let now = stats();
    assert_eq!(now["numusers"], 2, "{now}");
    assert_eq!(now["numsessions"], 1, "{now}");
    // Everything about Ann in one document.
    let report =
        v2(&s, "SystemGetUserReport", person("ann", json!({}))).expect(200)["report"].clone();
    assert_eq!(report["token"], ann.as_str());
    assert_eq!(report["profile"], json!({"login": "ann", "name": "Ann"}));
    assert_eq!(report["apps"], json!({"shop": {"plan": "gold"}}));
    assert_eq!(report["agreements"][0]["brief"], "news", "{report}");
    assert_eq!(report["agreements"][0]["status"], "yes");
    assert_eq!(report["requests"][0]["rtoken"], request.as_str());
    assert_eq!(report["sessions"][0]["sessiondata"]["ip"], "10.0.0.1");
    let events = report["audit"]["events"].as_array().unwrap();
    assert!(events.len() >= 4, "{report}");
    assert_eq!(
        report["audit"]["total"].as_u64().unwrap(),
        events.len() as u64
    );
    // The same as an HTML page: every value escaped.
    v2(
        &s,
        "UserUpdate",
        person(
            "ann",
            json!({"profile": {"note": "<script>alert('x')</script>"}}),
        ),
    )
    .expect(200);
    let html = v2(&s, "SystemGetUserHTMLReport", person("ann", json!({}))).expect(200)["html"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("gold") && html.contains("news"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    // The export itself is audited.
    let trail = v2(&s, "AuditListUserEvents", person("ann", json!({}))).expect(200);
    assert_eq!(trail["rows"][0]["action"], "user.export", "{trail}");
    // Ann's own token gets her export, not Bob's; root-only counts stay root's.
    let x = s
        .call("POST", "/v1/xtoken/login/ann", Body::Json(json!({})))
        .expect(200)["xtoken"]
        .as_str()
        .unwrap()
        .to_string();
    let as_ann = |method: &str, body: Value| {
        s.call_as(Some(&x), "POST", &format!("/v2/{method}"), Body::Json(body))
    };
    as_ann("SystemGetUserReport", person("ann", json!({}))).expect(200);
    assert_eq!(
        as_ann("SystemGetUserReport", person("bob", json!({}))).status,
        403
    );
    assert_eq!(as_ann("SystemGetSystemStats", json!({})).status, 403);
    assert_eq!(
        v2(&s, "SystemGetUserReport", person("nobody", json!({}))).status,
        404
    );
}

fn bulk_create_and_delete(b: &Backend) {
    let s = Server::start(b);
    let count = || {
        s.call("POST", "/v2/SystemGetSystemStats", Body::None)
            .expect(200)["stats"]["numusers"]
            .as_u64()
            .unwrap()
    };
    // A consent given for an email before its person exists moves over to them,
    // as with UserCreate.
    v2(
        &s,
        "LegalBasisCreate",
        json!({"brief": "news", "basistype": "consent"}),
    )
    .expect(200);
    v2(
        &s,
        "AgreementAccept",
        json!({"mode": "email", "identity": "b@example.com", "brief": "news"}),
    )
    .expect(200);
    // Malformed batches change nothing.
    for body in [
        json!({}),
        json!({"records": []}),
        json!({"records": "x"}),
        json!({"records": [{"profile": {"email": "ok@example.com"}}, {"profile": 5}]}),
        json!({"records": [{"profile": {"email": "ok@example.com"}}], "finaltime": "soon"}),
    ] {
        let r = v2(&s, "UserCreateBulk", body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.json);
    }
    assert_eq!(count(), 0);
    // Each record on its own: a duplicate and a profile without lookup fields are
    // refused, the rest created, with the submitted profile echoed.
    let r = v2(
        &s,
        "UserCreateBulk",
        json!({"finaltime": "1y", "slidingtime": "30d", "records": [
            {"profile": {"email": "a@example.com", "name": "A"}},
            {"profile": {"email": "b@example.com", "name": "B"}},
            {"profile": {"email": "A@example.com", "name": "A again"}},
            {"profile": {"name": "no lookup field"}},
            {"profile": {"email": "c@example.com", "phone": 447911123456_i64}},
        ]}),
    )
    .expect(200);
    let created = r["created"].as_array().unwrap();
    assert_eq!(created.len(), 3, "{r}");
    assert_eq!(created[1]["profile"]["name"], "B");
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{r}");
    assert_eq!(errors[0]["profile"]["name"], "A again");
    assert!(
        errors[0]["reason"].as_str().unwrap().contains("email"),
        "{r}"
    );
    assert_eq!(count(), 3);
    for c in created {
        let t = c["token"].as_str().unwrap();
        let got = v2(&s, "UserGet", json!({"mode": "token", "identity": t})).expect(200);
        assert_eq!(got["profile"], c["profile"]);
        // `finaltime` started each one's retention.
        let exp = s
            .call("GET", &format!("/v1/exp/status/token/{t}"), Body::None)
            .expect(200);
        assert_eq!(exp["expstatus"], "wait", "{exp}");
        assert!(exp["exptime"].as_i64().unwrap() > 0, "{exp}");
    }
    let consents = v2(
        &s,
        "AgreementListUserAgreements",
        json!({"mode": "email", "identity": "b@example.com"}),
    )
    .expect(200);
    assert_eq!(consents["rows"][0]["brief"], "news", "{consents}");
    // A person's own token may not create in bulk.
    let x = s
        .call(
            "POST",
            "/v1/xtoken/email/a@example.com",
            Body::Json(json!({})),
        )
        .expect(200)["xtoken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.call_as(
        Some(&x),
        "POST",
        "/v2/UserCreateBulk",
        Body::Json(json!({"records": [{"profile": {"login": "z"}}]})),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    // UserDeleteBulk: a malformed entry refuses the whole call before anything is
    // erased; otherwise each is erased on its own and misses are reported by index.
    let r = v2(
        &s,
        "UserDeleteBulk",
        json!({"users": [{"mode": "email", "identity": "a@example.com"}, {"mode": "nick", "identity": "x"}]}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(v2(&s, "UserDeleteBulk", json!({"users": []})).status, 400);
    assert_eq!(count(), 3);
    let r = v2(
        &s,
        "UserDeleteBulk",
        json!({"users": [
            {"mode": "email", "identity": "a@example.com"},
            {"mode": "email", "identity": "nobody@example.com"},
            {"mode": "email", "identity": "b@example.com"},
            {"mode": "phone", "identity": "+447911123456"},
        ]}),
    )
    .expect(200);
    assert_eq!(r["deleted_count"], 3, "{r}");
    assert_eq!(r["errors"], json!([{"index": 1, "reason": "not found"}]));
    assert_eq!(count(), 0);
}

fn processing_activities_over_v2(b: &Backend) {
    let s = Server::start(b);
    let list = || {
        s.call("POST", "/v2/ProcessingActivityListActivities", Body::None)
            .expect(200)
    };
    assert_eq!(list()["total"], 0);
    v2(
        &s,
        "ProcessingActivityCreate",
        json!({"activity": "mailing", "title": "Mailing", "script": "load('mail.js')"}),
    )
    .expect(200);
    v2(
        &s,
        "LegalBasisCreate",
        json!({"brief": "news", "basistype": "consent"}),
    )
    .expect(200);
    v2(
        &s,
        "ProcessingActivityLinkLegalBasis",
        json!({"activity": "mailing", "brief": "news"}),
    )
    .expect(200);
    let rows = list();
    assert_eq!(rows["total"], 1, "{rows}");
    assert_eq!(rows["rows"][0]["title"], "Mailing");
    assert_eq!(rows["rows"][0]["briefs"][0]["brief"], "news", "{rows}");
    // Unknown legal basis or activity: 404; bad names: 400.
    let r = v2(
        &s,
        "ProcessingActivityLinkLegalBasis",
        json!({"activity": "mailing", "brief": "nope"}),
    );
    assert_eq!(r.status, 404);
    let r = v2(
        &s,
        "ProcessingActivityUpdate",
        json!({"activity": "nothing", "title": "x"}),
    );
    assert_eq!(r.status, 404, "{}", r.json);
    let r = v2(
        &s,
        "ProcessingActivityCreate",
        json!({"activity": "Bad Name"}),
    );
    assert_eq!(r.status, 400);
    // Renamed by `newactivity`, keeping its links; then unlinked and deleted.
    v2(
        &s,
        "ProcessingActivityUpdate",
        json!({"activity": "mailing", "newactivity": "newsletter", "title": "Newsletter"}),
    )
    .expect(200);
    let rows = list();
    assert_eq!(rows["rows"][0]["activity"], "newsletter", "{rows}");
    assert_eq!(rows["rows"][0]["title"], "Newsletter");
    assert_eq!(rows["rows"][0]["briefs"][0]["brief"], "news");
    assert_eq!(rows["total"], 1);
    v2(
        &s,
        "ProcessingActivityUnlinkLegalBasis",
        json!({"activity": "newsletter", "brief": "news"}),
    )
    .expect(200);
    assert_eq!(list()["rows"][0]["briefs"], json!([]));
    // A person's token may not touch the catalogue.
    s.create_user(json!({"login": "ann"}));
    let x = s
        .call("POST", "/v1/xtoken/login/ann", Body::Json(json!({})))
        .expect(200)["xtoken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.call_as(
        Some(&x),
        "POST",
        "/v2/ProcessingActivityDelete",
        Body::Json(json!({"activity": "newsletter"})),
    );
    assert_eq!(r.status, 403);
    v2(
        &s,
        "ProcessingActivityDelete",
        json!({"activity": "newsletter"}),
    )
    .expect(200);
    assert_eq!(list()["total"], 0);
}

fn request_metadata_is_sealed_into_the_audit(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"login": "ann", "name": "Ann"}));
    let md = json!({"purpose": "support", "ticket": "zq-ticket-7741"});
    // A change: the metadata rides in the event's detail with the values.
    v2(
        &s,
        "UserUpdate",
        person(
            "ann",
            json!({"profile": {"name": "Anna"}, "request_metadata": md}),
        ),
    )
    .expect(200);
    // A read: the event has no detail of its own; the metadata is its detail.
    v2(
        &s,
        "UserGet",
        person("ann", json!({"request_metadata": md})),
    )
    .expect(200);
    // Without metadata (or with an empty object) nothing is added.
    v2(
        &s,
        "UserGet",
        person("ann", json!({"request_metadata": {}})),
    )
    .expect(200);
    let rows = v2(
        &s,
        "AuditListUserEvents",
        person("ann", json!({"limit": 4})),
    )
    .expect(200)["rows"]
        .clone();
    let open = |row: &Value| {
        v2(
            &s,
            "AuditGetEvent",
            json!({"auditeventuuid": row["auditeventuuid"]}),
        )
        .expect(200)["details"]
            .clone()
    };
    // Newest first: the plain read, the read with metadata, the change.
    assert_eq!(rows[0]["more"], false, "{rows}");
    assert_eq!(open(&rows[0]), json!({}));
    assert_eq!(rows[1]["more"], true, "{rows}");
    assert_eq!(open(&rows[1]), json!({"request_metadata": md}));
    let change = open(&rows[2]);
    assert_eq!(change["request_metadata"], md, "{change}");
    assert_eq!(change["after"]["name"], "Anna");
    // Sealed: the store never holds it in plaintext.
    let raw = s.store.raw_contents();
    assert!(
        !raw.windows(b"zq-ticket-7741".len())
            .any(|w| w == b"zq-ticket-7741"),
        "request_metadata reached the store in plaintext"
    );
    // Bounded, and an object.
    let big = "x".repeat(5000);
    let r = v2(
        &s,
        "UserGet",
        person("ann", json!({"request_metadata": {"note": big}})),
    );
    assert_eq!(r.status, 400, "{}", r.json);
    // Erased with the person where it sat beside their values; a read's metadata,
    // under the tenant's key, stays readable (until that KEK is retired).
    v2(&s, "UserDelete", json!({"mode": "token", "identity": t})).expect(200);
    assert_eq!(open(&rows[2]), json!({}));
    assert_eq!(open(&rows[1]), json!({"request_metadata": md}));
}
