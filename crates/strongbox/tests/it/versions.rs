//! Record versions over v2, on every backend: off by default; kept, listed, read
//! and pruned when on; sealed in the store; gone with the person, and not brought
//! back by restoring a backup taken before the erasure.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{BIN, Backend, Body, Reply, Server};

backend_tests!(versions_are_off_by_default, versions_are_kept_and_erased,);

fn v2(s: &Server, method: &str, body: Value) -> Reply {
    s.call("POST", &format!("/v2/{method}"), Body::Json(body))
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

fn update(s: &Server, who: &Value, profile: Value) {
    let mut body = who.clone();
    body["profile"] = profile;
    v2(s, "UserUpdate", body).expect(200);
}

fn with_version(who: &Value, n: i64) -> Value {
    let mut body = who.clone();
    body["version"] = json!(n);
    body
}

fn versions_are_off_by_default(b: &Backend) {
    let s = Server::start(b);
    let ann = s.create_user(json!({"login": "ann", "city": "Leeds"}));
    let who = json!({"mode": "token", "identity": ann});
    let first = v2(&s, "UserGet", who.clone()).expect(200);
    update(&s, &who, json!({"city": "York"}));
    let now = v2(&s, "UserGet", who.clone()).expect(200);
    assert!(now["version"].as_i64().unwrap() > first["version"].as_i64().unwrap());
    let list = v2(&s, "UserListVersions", who.clone()).expect(200);
    let versions = list["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "only the current one: {list}");
    assert_eq!(versions[0]["current"], true);
    assert_eq!(versions[0]["version"], now["version"]);
    let old = v2(
        &s,
        "UserGet",
        with_version(&who, first["version"].as_i64().unwrap()),
    );
    assert_eq!(old.status, 404, "{}", old.json);
    assert_eq!(count(&s, "version"), 0);
}

fn versions_are_kept_and_erased(b: &Backend) {
    let mut s = Server::start_with(
        b,
        &["--versioning", "true", "--versioning-max-versions", "2"],
    );
    let ann = s.create_user(json!({"login": "ann", "city": "zq-city-0"}));
    let bo = s.create_user(json!({"login": "bo"}));
    let who = json!({"mode": "login", "identity": "ann"});
    let v1 = v2(&s, "UserGet", who.clone()).expect(200)["version"]
        .as_i64()
        .unwrap();
    for i in 1..=3 {
        update(&s, &who, json!({"city": format!("zq-city-{i}")}));
    }
    let current = v2(&s, "UserGet", who.clone()).expect(200);
    assert_eq!(current["profile"]["city"], "zq-city-3");
    let list = v2(&s, "UserListVersions", who.clone()).expect(200);
    let versions = list["versions"].as_array().unwrap();
    // Two earlier ones kept (the oldest dropped), then the current one.
    assert_eq!(versions.len(), 3, "{list}");
    assert_eq!(versions[2]["version"], current["version"]);
    assert_eq!(versions[2]["current"], true);
    let numbers: Vec<i64> = versions
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert!(
        !numbers.contains(&v1),
        "the oldest is dropped past the limit"
    );
    for v in versions {
        assert_eq!(v["md5"].as_str().unwrap().len(), 32, "{v}");
        assert!(v["optime"].as_i64().unwrap() > 0, "{v}");
    }
    // Each earlier version reads back as it was.
    let older = v2(&s, "UserGet", with_version(&who, numbers[0])).expect(200);
    assert_eq!(older["profile"]["city"], "zq-city-1");
    assert_eq!(older["version"], numbers[0]);
    let newer = v2(&s, "UserGet", with_version(&who, numbers[1])).expect(200);
    assert_eq!(newer["profile"]["city"], "zq-city-2");
    assert_ne!(older["profile"], newer["profile"]);
    // Unknown, pruned, another person's and malformed versions are refused.
    assert_eq!(v2(&s, "UserGet", with_version(&who, v1)).status, 404);
    assert_eq!(v2(&s, "UserGet", with_version(&who, 999)).status, 404);
    let bo_who = json!({"mode": "token", "identity": bo});
    assert_eq!(
        v2(&s, "UserGet", with_version(&bo_who, numbers[0])).status,
        404
    );
    let mut bad = who.clone();
    bad["version"] = json!("two");
    assert_eq!(v2(&s, "UserGet", bad).status, 400);
    // Earlier profiles are sealed like the current one.
    let raw = s.store.raw_contents();
    for needle in ["zq-city-1", "zq-city-2"] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "`{needle}` is in the store in plaintext"
        );
    }
    assert_eq!(count(&s, "version"), 2);
    // A backup while the versions exist; then the person is erased.
    let file = s.store.dir.path().join("versions.backup");
    let file_s = file.display().to_string();
    let out = std::process::Command::new(BIN)
        .args([
            "backup", "--out", &file_s, "--addr", &s.base, "--token", &s.token,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v2(&s, "UserDelete", who.clone()).expect(200);
    assert_eq!(count(&s, "version"), 0, "erasure takes the history with it");
    let token_who = json!({"mode": "token", "identity": ann});
    assert_eq!(
        v2(&s, "UserGet", with_version(&token_who, numbers[0])).status,
        404
    );
    // Restoring the older backup does not bring any version back.
    s.stop();
    let mut args: Vec<String> = vec![
        "restore".into(),
        "--in".into(),
        file_s.clone(),
        "--force".into(),
    ];
    args.extend(s.store.args.iter().cloned());
    let out = std::process::Command::new(BIN)
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = s.restart();
    assert_eq!(
        count(&s, "version"),
        0,
        "the erasure ledger erased the history again"
    );
    assert_eq!(
        v2(&s, "UserGet", with_version(&token_who, numbers[0])).status,
        404
    );
    v2(&s, "UserGet", bo_who).expect(200);
}
