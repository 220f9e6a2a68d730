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
);

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
    // Another tenant than this vault's is refused (tenants come with their methods).
    let r = s.call_with(
        Some(&s.token),
        "POST",
        "/v2/UserGet",
        &[("X-Bunker-Tenant", "acme")],
        Body::Json(json!({"mode": "token", "identity": t})),
    );
    assert_eq!(r.status, 404, "{}", r.json);
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
