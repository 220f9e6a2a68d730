//! Fuzzy search over v2, on every backend: off by default; turned on, the index of
//! the people already stored is built in the background; typos, parts and phone
//! spellings find people, updates move them, erasure and soft delete take them out;
//! the cross-tenant search names each tenant; turned off, every trigram entry goes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Reply, Server, StoreLoc};

backend_tests!(
    search_finds_people_by_keyed_trigrams,
    search_follows_an_index_key_rotation,
    a_common_query_is_refused_and_a_rare_one_answered,
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

fn count(s: &Server, sql: &str) -> i64 {
    s.store.sql(sql).trim().parse().unwrap()
}

/// The same store served again with other flags.
fn reserve(mut s: Server, args: &[&str]) -> Server {
    s.stop();
    let store = std::mem::replace(&mut s.store, StoreLoc::placeholder());
    Server::serve(
        store,
        s.root_key.clone(),
        s.token.clone(),
        args.iter().map(|a| a.to_string()).collect(),
    )
}

/// The tokens `UserSearch` returns for `identity`, best first.
fn search(s: &Server, unlock: &Value, identity: &str) -> Vec<String> {
    let r = call(
        s,
        None,
        &s.token,
        "UserSearch",
        json!({"identity": identity, "unlockuuid": unlock}),
    )
    .expect(200);
    assert_eq!(r["total"], r["rows"].as_array().unwrap().len(), "{r}");
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["token"].as_str().unwrap().to_string())
        .collect()
}

fn create(s: &Server, tenant: Option<&str>, token: &str, profile: Value) -> String {
    call(
        s,
        tenant,
        token,
        "UserCreate",
        json!({ "profile": profile }),
    )
    .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn search_finds_people_by_keyed_trigrams(b: &Backend) {
    let s = Server::start_with(b, &[]);
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
    let ann = create(
        &s,
        None,
        &root,
        json!({"email": "ann.smith@example.com", "login": "annsmith", "phone": "+447911123456", "name": "Ann"}),
    );
    let bob = create(
        &s,
        None,
        &root,
        json!({"email": "bob.jones@example.org", "login": "bobjones", "name": "Bob"}),
    );
    let ann_acme = create(
        &s,
        Some("acme"),
        &admin,
        json!({"email": "ann.smith@acme.test", "login": "annsmith", "name": "Ann at Acme"}),
    );
    let unlock =
        call(&s, None, &root, "BulkListUnlock", json!({})).expect(200)["unlockuuid"].clone();

    // Off by default: refused, and no trigram entry exists.
    let r = call(
        &s,
        None,
        &root,
        "UserSearch",
        json!({"identity": "annsmith", "unlockuuid": unlock}),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap().contains("--search"),
        "{}",
        r.json
    );
    let grams = "SELECT COUNT(*) FROM user_index WHERE name LIKE 'g:%'";
    assert_eq!(count(&s, grams), 0);

    // Turned on: the people already stored are indexed in the background.
    let s = reserve(s, &["--search", "true"]);
    let unlock =
        call(&s, None, &root, "BulkListUnlock", json!({})).expect(200)["unlockuuid"].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = call(
            &s,
            None,
            &root,
            "UserSearch",
            json!({"identity": "annsmith", "unlockuuid": unlock}),
        );
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.json);
        assert!(Instant::now() < deadline, "the search index was not built");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(count(&s, grams) > 0);
    // Entries are digests followed by the token's bytes, never the values.
    let values = "SELECT COUNT(*) FROM user_index WHERE name LIKE 'g:%' AND LENGTH(digest) <> 32";
    assert_eq!(count(&s, values), 0);

    // A typo, a part, another spelling of a phone number.
    assert_eq!(search(&s, &unlock, "annsmth"), [ann.as_str()]);
    assert_eq!(search(&s, &unlock, "ann.smith@exmple.com"), [ann.as_str()]);
    assert_eq!(search(&s, &unlock, "07911 123456"), [ann.as_str()]);
    assert_eq!(search(&s, &unlock, "bobjone"), [bob.as_str()]);
    assert!(search(&s, &unlock, "zzqqxxvv").is_empty());
    let r = call(
        &s,
        None,
        &root,
        "UserSearch",
        json!({"identity": "an", "unlockuuid": unlock}),
    );
    assert_eq!(r.status, 400, "{}", r.json);
    let r = call(
        &s,
        None,
        &root,
        "UserSearch",
        json!({"identity": "annsmith"}),
    );
    assert_eq!(r.status, 403, "without the unlock uuid: {}", r.json);
    // The row as documented; the read is audited.
    let r = call(
        &s,
        None,
        &root,
        "UserSearch",
        json!({"identity": "annsmith", "unlockuuid": unlock, "limit": 1}),
    )
    .expect(200);
    assert_eq!(r["rows"][0]["profile"]["name"], "Ann", "{r}");
    assert_eq!(r["rows"][0]["score"], 1.0, "{r}");
    assert!(r["rows"][0]["version"].as_i64().unwrap() >= 1, "{r}");
    let audited =
        format!("SELECT COUNT(*) FROM audit WHERE name = 'user.search' AND record = '{ann}'");
    assert!(count(&s, &audited) >= 1);

    // Created and changed while search is on: the write carries the entries.
    let john = create(&s, None, &root, json!({"login": "johnny", "name": "John"}));
    assert_eq!(search(&s, &unlock, "johny"), [john.as_str()]);
    call(
        &s,
        None,
        &root,
        "UserUpdate",
        json!({"mode": "token", "identity": ann, "profile": {"login": "annawhite"}}),
    )
    .expect(200);
    assert!(
        search(&s, &unlock, "annsmth").is_empty(),
        "the old login is gone"
    );
    assert_eq!(search(&s, &unlock, "annawhite"), [ann.as_str()]);

    // Across tenants: each profile with its tenant.
    let r = call(
        &s,
        None,
        &root,
        "SystemSearchUserProfiles",
        json!({"identity": "ann.smith@", "unlockuuid": unlock}),
    )
    .expect(200);
    let found: Vec<(&str, &str)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["tenantname"].as_str().unwrap(),
                row["token"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(found.contains(&("acme", ann_acme.as_str())), "{r}");
    assert!(found.iter().any(|(_, t)| *t == ann), "{r}");
    let r = call(
        &s,
        Some("acme"),
        &admin,
        "SystemSearchUserProfiles",
        json!({"identity": "ann.smith@", "unlockuuid": unlock}),
    );
    assert!(
        r.status == 403 || r.status == 401,
        "a tenant's admin: {}",
        r.json
    );

    // Soft delete hides, restore brings back; erasure takes the entries with it.
    let hidden = call(
        &s,
        None,
        &root,
        "SystemDeleteUserProfiles",
        json!({"mode": "login", "identity": "bobjones", "unlockuuid": unlock}),
    )
    .expect(200);
    assert_eq!(hidden["total"], 1, "{hidden}");
    assert!(search(&s, &unlock, "bobjone").is_empty(), "soft-deleted");
    call(
        &s,
        None,
        &root,
        "SystemRestoreUserProfile",
        json!({"token": bob, "unlockuuid": unlock}),
    )
    .expect(200);
    assert_eq!(search(&s, &unlock, "bobjone"), [bob.as_str()], "restored");
    s.call("DELETE", &format!("/v1/user/token/{john}"), Body::None)
        .expect(200);
    assert!(search(&s, &unlock, "johny").is_empty());
    let johns = format!("SELECT COUNT(*) FROM user_index WHERE token = '{john}'");
    assert_eq!(count(&s, &johns), 0, "erasure drops every entry");

    // Turned off: every trigram entry is dropped.
    let s = reserve(s, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&s, grams) > 0 {
        assert!(
            Instant::now() < deadline,
            "trigram entries were left behind"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Exact lookups are untouched.
    s.get_user("login", "annawhite").expect(200);
}

/// The trigram entries ride on the index-key rotation: backfilled under the new
/// version, the old ones purged, and search keeps finding people throughout.
fn search_follows_an_index_key_rotation(b: &Backend) {
    let s = Server::start_with(b, &["--search", "true"]);
    let tokens: Vec<String> = (0..30)
        .map(|i| s.create_user(json!({"login": format!("member{i:02}")})))
        .collect();
    let unlock =
        call(&s, None, &s.token, "BulkListUnlock", json!({})).expect(200)["unlockuuid"].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while call(
        &s,
        None,
        &s.token,
        "UserSearch",
        json!({"identity": "member07", "unlockuuid": unlock}),
    )
    .status
        == 503
    {
        assert!(Instant::now() < deadline, "the search index was not built");
        std::thread::sleep(Duration::from_millis(100));
    }
    s.call("POST", "/v1/sys/rotate/index", Body::None)
        .expect(200);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        assert_eq!(search(&s, &unlock, "member07")[0], tokens[7]);
        let old = count(&s, "SELECT COUNT(*) FROM user_index WHERE key_version = 1");
        let keys = count(&s, "SELECT COUNT(*) FROM key_ring WHERE kind = 'index'");
        if old == 0 && keys == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the rotation did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    let grams = count(
        &s,
        "SELECT COUNT(*) FROM user_index WHERE name = 'g:login' AND key_version = 2",
    );
    // "member07": 8 characters, padded to 11, 9 trigrams.
    assert_eq!(grams, 30 * 9, "every member's trigrams under the new key");
    // A typo: the closest first (weaker matches, sharing "mem…", follow it).
    assert_eq!(search(&s, &unlock, "membr29")[0], tokens[29]);
}

/// A trigram held by more than 2,000 people finds no candidates (it counts only
/// when they are checked): a query made only of such trigrams is refused, one with
/// a rarer part finds its person first.
fn a_common_query_is_refused_and_a_rare_one_answered(b: &Backend) {
    let s = Server::start_with(b, &["--search", "true"]);
    let mut tokens = Vec::new();
    for start in (0..2100).step_by(700) {
        let records: Vec<Value> = (start..start + 700)
            .map(|i| json!({"profile": {"login": format!("crowd{i:04}")}}))
            .collect();
        let r = call(
            &s,
            None,
            &s.token,
            "UserCreateBulk",
            json!({ "records": records }),
        )
        .expect(200);
        tokens.extend(
            r["created"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["token"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(tokens.len(), 2100);
    let unlock =
        call(&s, None, &s.token, "BulkListUnlock", json!({})).expect(200)["unlockuuid"].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = call(
            &s,
            None,
            &s.token,
            "UserSearch",
            json!({"identity": "crowd", "unlockuuid": unlock}),
        );
        if r.status != 503 {
            break r;
        }
        assert!(Instant::now() < deadline, "the search index was not built");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.status, 400, "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap().contains("too common"),
        "{}",
        r.json
    );
    let found = search(&s, &unlock, "crowd1234");
    assert_eq!(found[0], tokens[1234]);
    assert!(
        search(&s, &unlock, "zzqqxxvv").is_empty(),
        "no holder: nobody"
    );
}
