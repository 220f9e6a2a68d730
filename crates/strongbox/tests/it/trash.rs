//! Soft delete over v2, on every backend: `SystemDeleteUserProfiles` hides a
//! person's profiles across tenants from every lookup, `SystemRestoreUserProfile`
//! brings one back with its lookups and data, a taken lookup value blocks the
//! restore, and the grace period ends in an erasure with its receipt.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Reply, Server};

backend_tests!(
    soft_deleted_profiles_leave_and_come_back,
    a_soft_deleted_person_is_erased_at_once_on_request,
);

fn call(s: &Server, tenant: Option<&str>, token: &str, method: &str, body: Value) -> Reply {
    let headers: Vec<(&str, &str)> = tenant.map(|t| ("X-Bunker-Tenant", t)).into_iter().collect();
    s.call_with(
        Some(token),
        "POST",
        &format!("/v2/{method}"),
        &headers,
        Body::Json(body),
    )
}

fn count(s: &Server, kind: &str) -> i64 {
    s.store
        .sql(&format!(
            "SELECT COUNT(*) FROM records WHERE kind = '{kind}'"
        ))
        .trim()
        .parse()
        .unwrap()
}

fn soft_deleted_profiles_leave_and_come_back(b: &Backend) {
    let s = Server::start_with(b, &["--soft-delete-grace", "3", "--sweep-interval", "1"]);
    let root = s.token.clone();
    let acme = call(
        &s,
        None,
        &root,
        "TenantCreate",
        json!({"tenantname": "acme", "tenantorg": "Acme Ltd"}),
    )
    .expect(200);
    let admin = acme["xtoken"].as_str().unwrap().to_string();
    let email = json!({"mode": "email", "identity": "ann@example.com"});
    let ann = call(
        &s,
        None,
        &root,
        "UserCreate",
        json!({"profile": {"email": "ann@example.com", "name": "Ann"}}),
    )
    .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let ann_acme = call(
        &s,
        Some("acme"),
        &admin,
        "UserCreate",
        json!({"profile": {"email": "ann@example.com", "name": "Ann at Acme"}}),
    )
    .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_string();
    call(
        &s,
        None,
        &root,
        "AppdataCreate",
        json!({"mode": "token", "identity": ann, "appname": "shop", "appdata": {"plan": "gold"}}),
    )
    .expect(200);
    let unlock =
        call(&s, None, &root, "BulkListUnlock", json!({})).expect(200)["unlockuuid"].clone();
    let with_unlock = |mut body: Value| {
        body["unlockuuid"] = unlock.clone();
        body
    };
    // Refused: no unlock, a tenant's admin, a token without a tenant.
    assert_eq!(
        call(&s, None, &root, "SystemDeleteUserProfiles", email.clone()).status,
        403
    );
    assert_eq!(
        call(
            &s,
            Some("acme"),
            &admin,
            "SystemDeleteUserProfiles",
            with_unlock(email.clone())
        )
        .status,
        403
    );
    let r = call(
        &s,
        None,
        &root,
        "SystemDeleteUserProfiles",
        with_unlock(json!({"mode": "token", "identity": ann})),
    );
    assert_eq!(r.status, 400, "{}", r.json);
    // Across tenants: both profiles found, then both hidden.
    let found = call(
        &s,
        None,
        &root,
        "SystemGetUserProfiles",
        with_unlock(email.clone()),
    )
    .expect(200);
    assert_eq!(found["total"], 2, "{found}");
    let names: Vec<&str> = found["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["profile"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ann", "Ann at Acme"], "main tenant first");
    assert_eq!(found["rows"][1]["tenantname"], "acme");
    let r = call(
        &s,
        None,
        &root,
        "SystemDeleteUserProfiles",
        with_unlock(email.clone()),
    )
    .expect(200);
    assert_eq!(r["total"], 2, "{r}");
    let rows = r["rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["token"] == ann.as_str() && r["tenantid"] == 1)
    );
    assert!(
        rows.iter()
            .any(|r| r["token"] == ann_acme.as_str() && r["tenantname"] == "acme")
    );
    // Gone from every lookup, in both tenants.
    assert_eq!(call(&s, None, &root, "UserGet", email.clone()).status, 404);
    assert_eq!(
        call(&s, Some("acme"), &admin, "UserGet", email.clone()).status,
        404
    );
    let by_token = call(
        &s,
        None,
        &root,
        "UserGet",
        json!({"mode": "token", "identity": ann}),
    );
    assert!(
        by_token.status == 404 || by_token.json["profile"] == json!({}),
        "{}",
        by_token.json
    );
    let app = call(
        &s,
        None,
        &root,
        "AppdataGet",
        json!({"mode": "token", "identity": ann, "appname": "shop"}),
    );
    assert_eq!(app.status, 404, "{}", app.json);
    // Still sealed while hidden.
    let raw = s.store.raw_contents();
    assert!(!raw.windows(15).any(|w| w == b"ann@example.com"));
    // Restored in the main tenant: the profile, its lookups and its data are back.
    let r = call(
        &s,
        None,
        &root,
        "SystemRestoreUserProfile",
        with_unlock(json!({"token": ann})),
    )
    .expect(200);
    assert_eq!(r["result"], "restored");
    assert_eq!(r["profile"]["name"], "Ann");
    assert_eq!(
        call(&s, None, &root, "UserGet", email.clone()).expect(200)["token"],
        ann.as_str()
    );
    let app = call(
        &s,
        None,
        &root,
        "AppdataGet",
        json!({"mode": "token", "identity": ann, "appname": "shop"}),
    )
    .expect(200);
    assert_eq!(app["appdata"]["plan"], "gold", "{app}");
    // Restoring twice, or an unknown token: not found.
    assert_eq!(
        call(
            &s,
            None,
            &root,
            "SystemRestoreUserProfile",
            with_unlock(json!({"token": ann}))
        )
        .status,
        404
    );
    // At Acme the email was taken meanwhile: the restore is refused and changes nothing.
    call(
        &s,
        Some("acme"),
        &admin,
        "UserCreate",
        json!({"profile": {"email": "ann@example.com", "name": "Another Ann"}}),
    )
    .expect(200);
    let r = call(
        &s,
        None,
        &root,
        "SystemRestoreUserProfile",
        with_unlock(json!({"token": ann_acme, "tenantname": "acme"})),
    );
    assert_eq!(r.status, 409, "{}", r.json);
    assert_eq!(
        call(&s, Some("acme"), &admin, "UserGet", email.clone()).expect(200)["profile"]["name"],
        "Another Ann"
    );
    // The grace period ends: the hidden profile is erased, with its receipt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count(&s, "trash") != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the hidden profile was not erased"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert_eq!(
        call(
            &s,
            None,
            &root,
            "SystemRestoreUserProfile",
            with_unlock(json!({"token": ann_acme, "tenantname": "acme"}))
        )
        .status,
        404
    );
    let receipts = s.store.sql(&format!(
        "SELECT COUNT(*) FROM records WHERE kind = 'receipt' AND id = '{ann_acme}'"
    ));
    assert_eq!(receipts.trim(), "1", "the erasure left its receipt");
    let keys = s.store.sql(&format!(
        "SELECT COUNT(*) FROM users WHERE token = '{ann_acme}' AND wrapped_dek IS NULL AND erased IS NOT NULL"
    ));
    assert_eq!(keys.trim(), "1");
    // The restored person was not touched by the sweep.
    call(&s, None, &root, "UserGet", email).expect(200);
}

/// `UserDelete` does not wait for the grace period: a soft-deleted person is erased
/// at once, with a receipt, and a schema's `preserve` fields are kept from the
/// profile waiting in the trash record.
fn a_soft_deleted_person_is_erased_at_once_on_request(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("user.json");
    std::fs::write(
        &schema,
        json!({"type": "object", "properties": {
            "login": {"type": "string", "preserve": true},
            "email": {"type": "string"}}})
        .to_string(),
    )
    .unwrap();
    let schema = schema.display().to_string();
    let s = Server::start_with(b, &["--user-record-schema", &schema]);
    let root = s.token.clone();
    let carol = s.create_user(json!({"login": "carol", "email": "carol@example.com"}));
    let unlock =
        call(&s, None, &root, "BulkListUnlock", json!({})).expect(200)["unlockuuid"].clone();
    call(
        &s,
        None,
        &root,
        "SystemDeleteUserProfiles",
        json!({"mode": "login", "identity": "carol", "unlockuuid": unlock}),
    )
    .expect(200);
    assert_eq!(count(&s, "trash"), 1);
    call(
        &s,
        None,
        &root,
        "UserDelete",
        json!({"mode": "token", "identity": carol}),
    )
    .expect(200);
    assert_eq!(
        count(&s, "trash"),
        0,
        "the trash record and its key are gone"
    );
    let receipts = s.store.sql(&format!(
        "SELECT COUNT(*) FROM records WHERE kind = 'receipt' AND id = '{carol}'"
    ));
    assert_eq!(receipts.trim(), "1", "the erasure left its receipt");
    assert_eq!(
        s.get_user("token", &carol).expect(200)["data"],
        json!({"login": "carol"}),
        "the preserved field is kept"
    );
    s.get_user("email", "carol@example.com").expect(404);
    assert_eq!(
        call(
            &s,
            None,
            &root,
            "SystemRestoreUserProfile",
            json!({"token": carol, "unlockuuid": unlock}),
        )
        .status,
        404
    );
}
