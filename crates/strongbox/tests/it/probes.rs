//! What an adversarial review of the vault found, each kept closed: JSON Patch
//! amplification, an `admin` field slipped past self service by a race, probing
//! who is in the vault through a user token, and app documents written around the
//! self-service setting, a shared record's partner and a request's reason stored in
//! plaintext. On every backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Server};
use crate::tokens::issue;

backend_tests!(
    patch_amplification_is_refused,
    self_service_cannot_slip_an_admin_field,
    user_tokens_cannot_probe_who_is_in_the_vault,
    app_writes_follow_self_service,
    list_parameters_out_of_range_are_refused,
    identities_follow_one_normalization_rule,
    secrets_leave_the_process_environment,
    partner_and_reason_are_sealed_under_the_person,
);

/// `n` operations that each copy the whole document into a new key: each doubles it.
fn doubling_patch(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"op": "copy", "from": "", "path": format!("/c{i}")}))
            .collect(),
    )
}

fn patch_amplification_is_refused(b: &Backend) {
    let s = Server::start(b);
    let profile = json!({"login": "amp", "pad": "x".repeat(100)});
    let t = s.create_user(profile.clone());
    // 24 doublings would make 2^24 copies; refused at once, nothing stored.
    let started = Instant::now();
    let v = s
        .call("PUT", "/v1/user/login/amp", Body::Json(doubling_patch(24)))
        .expect(413);
    assert!(
        v["message"].as_str().unwrap().contains("larger than"),
        "{v}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(s.get_user("token", &t).expect(200)["data"], profile);
    // The same for app documents.
    s.call(
        "POST",
        "/v1/userapp/login/amp/shop",
        Body::Json(json!({"cart": "y".repeat(100)})),
    )
    .expect(200);
    s.call(
        "PUT",
        "/v1/userapp/login/amp/shop",
        Body::Json(doubling_patch(24)),
    )
    .expect(413);
    // A patch with too many operations is refused as such.
    let many: Vec<Value> = (0..257)
        .map(|_| json!({"op": "test", "path": "/login", "value": "amp"}))
        .collect();
    s.call("PUT", "/v1/user/login/amp", Body::Json(Value::Array(many)))
        .expect(400);
    // A user cannot file such a change for the DPO either: it is tried first.
    let x = issue(&s, "login", "amp", Body::None);
    s.call_as(
        Some(&x),
        "PUT",
        "/v1/user/login/amp",
        Body::Json(doubling_patch(24)),
    )
    .expect(413);
    assert_eq!(
        s.call("GET", "/v1/requests", Body::None).expect(200)["total"],
        0
    );
    // A change that fitted when it was filed but no longer does is refused on
    // approval, with a clear error, and the vault stays up.
    let v = s
        .call_as(
            Some(&x),
            "PUT",
            "/v1/user/login/amp",
            Body::Json(doubling_patch(10)),
        )
        .expect(200);
    assert_eq!(v["result"], "request-created", "{v}");
    let rtoken = v["rtoken"].as_str().unwrap().to_string();
    s.call(
        "PUT",
        "/v1/user/login/amp",
        Body::Json(json!({"pad": "z".repeat(8000)})),
    )
    .expect(200);
    let v = s
        .call("POST", &format!("/v1/request/{rtoken}"), Body::None)
        .expect(413);
    assert!(
        v["message"].as_str().unwrap().contains("larger than"),
        "{v}"
    );
    let data = s.get_user("token", &t).expect(200)["data"].clone();
    assert_eq!(data["pad"], json!("z".repeat(8000)));
    assert!(data.get("c0").is_none());
    // Within the limit, copies work as before.
    s.call(
        "PUT",
        "/v1/user/login/amp",
        Body::Json(json!([{"op": "copy", "from": "/login", "path": "/nick"}])),
    )
    .expect(200);
    assert_eq!(s.get_user("token", &t).expect(200)["data"]["nick"], "amp");
}

fn self_service_cannot_slip_an_admin_field(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("user.json");
    let schema = json!({
        "type": "object",
        "properties": {
            "login": {"type": "string"},
            "age": {"type": "integer"},
            "scratch": {"type": "object"},
            "kyc": {"type": "object", "admin": true}
        }
    });
    std::fs::write(&path, schema.to_string()).unwrap();
    let s = Arc::new(Server::start_with(
        b,
        &[
            "--user-record-schema",
            path.to_str().unwrap(),
            "--self-service-user-record-change",
            "true",
        ],
    ));
    let t = s.create_user(json!({"login": "racer", "age": 1, "scratch": {"ok": true}}));
    let x = Arc::new(issue(&s, "login", "racer", Body::None));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..4 {
        let (s, x, stop) = (s.clone(), x.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = if i < 2 {
                    json!({"age": n % 7})
                } else {
                    json!([{"op": "copy", "from": "/scratch", "path": "/kyc"}])
                };
                let r = s.call_as(Some(&x), "PUT", "/v1/user/login/racer", Body::Json(body));
                assert_eq!(r.status, 200, "{}", r.json);
                if i >= 2 {
                    let result = r.json["result"].as_str().unwrap_or_default();
                    assert!(result.starts_with("request-"), "{}", r.json);
                }
                n += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let data = s.get_user("token", &t).expect(200)["data"].clone();
    assert!(data.get("kyc").is_none(), "an admin field changed: {data}");
    // Every attempt went to the DPO instead. (Two racing identical requests can
    // both be filed: the check for an open one is not atomic with the filing.)
    let filed = s.call("GET", "/v1/requests", Body::None).expect(200)["total"]
        .as_u64()
        .unwrap();
    assert!(filed >= 1, "no request was filed");
}

fn admin_events(s: &Server) -> u64 {
    s.call("GET", "/v1/audit/admin?limit=1", Body::None)
        .expect(200)["total"]
        .as_u64()
        .unwrap()
}

fn user_tokens_cannot_probe_who_is_in_the_vault(b: &Backend) {
    let s = Server::start_with(b, &["--self-service-user-record-change", "true"]);
    s.create_user(json!({"login": "alice", "email": "alice@example.com"}));
    s.create_user(json!({"login": "bob", "email": "bob@example.com"}));
    let x = issue(&s, "login", "alice", Body::None);
    // Consent routes: the same answer for someone else and for nobody, and both
    // refusals are audited (the same work either way).
    for method in ["POST", "DELETE"] {
        for who in ["bob@example.com", "nobody@example.com"] {
            let before = admin_events(&s);
            let r = s.call_as(
                Some(&x),
                method,
                &format!("/v1/agreement/core-send-email-on-login/email/{who}"),
                Body::Json(json!({})),
            );
            assert_eq!(
                (r.status, r.json.clone()),
                (403, json!({"status": "error", "message": "access denied"})),
                "{method} {who}"
            );
            // The probe's event, and the listing's own.
            assert_eq!(admin_events(&s), before + 2, "{method} {who} not audited");
        }
    }
    // Taking someone else's email on one's own profile does not answer "duplicate":
    // a change of a lookup field goes to the DPO whether or not it is taken.
    for email in ["bob@example.com", "free@example.com"] {
        let v = s
            .call_as(
                Some(&x),
                "PUT",
                "/v1/user/login/alice",
                Body::Json(json!({"email": email})),
            )
            .expect(200);
        assert_eq!(v["result"], "request-created", "{email}: {v}");
        let rtoken = v["rtoken"].as_str().unwrap();
        s.call("DELETE", &format!("/v1/request/{rtoken}"), Body::None)
            .expect(200);
    }
    assert_eq!(
        s.get_user("login", "alice").expect(200)["data"]["email"],
        "alice@example.com"
    );
    // Other fields still change directly under self service.
    let v = s
        .call_as(
            Some(&x),
            "PUT",
            "/v1/user/login/alice",
            Body::Json(json!({"name": "Alice"})),
        )
        .expect(200);
    assert_eq!(v["status"], "ok");
    assert!(v.get("result").is_none(), "{v}");
}

fn app_writes_follow_self_service(b: &Backend) {
    let s = Server::start_with(b, &["--self-service-app-record-change", "prefs"]);
    s.create_user(json!({"login": "alice"}));
    let x = issue(&s, "login", "alice", Body::None);
    let post = |app: &str, v: i64| {
        s.call_as(
            Some(&x),
            "POST",
            &format!("/v1/userapp/login/alice/{app}"),
            Body::Json(json!({"v": v})),
        )
        .expect(200)
    };
    // A user may create their document; replacing it is a change for the DPO.
    assert_eq!(post("billing", 1)["status"], "ok");
    let v = post("billing", 2);
    assert_eq!(v["result"], "request-created", "{v}");
    assert_eq!(
        s.call("GET", "/v1/userapp/login/alice/billing", Body::None)
            .expect(200)["data"],
        json!({"v": 1})
    );
    s.call(
        "POST",
        &format!("/v1/request/{}", v["rtoken"].as_str().unwrap()),
        Body::None,
    )
    .expect(200);
    assert_eq!(
        s.call("GET", "/v1/userapp/login/alice/billing", Body::None)
            .expect(200)["data"],
        json!({"v": 2})
    );
    // Deleting is refused to the user; the DPO (root) may.
    let r = s.call_as(
        Some(&x),
        "DELETE",
        "/v1/userapp/login/alice/billing",
        Body::None,
    );
    assert_eq!(r.status, 403, "{}", r.json);
    s.call("GET", "/v1/userapp/login/alice/billing", Body::None)
        .expect(200);
    // A self-service app is the user's to write.
    post("prefs", 1);
    assert!(post("prefs", 2).get("result").is_none());
    s.call_as(
        Some(&x),
        "DELETE",
        "/v1/userapp/login/alice/prefs",
        Body::None,
    )
    .expect(200);
    s.call("DELETE", "/v1/userapp/login/alice/billing", Body::None)
        .expect(200);
}

/// Bytes from hex text.
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// On SQLite an acknowledged erasure leaves neither the person's wrapped key nor
/// their ciphertext in the database file or its WAL: a copy of the data directory
/// taken right after the answer holds nothing to open, even with the root key.
#[test]
fn sqlite_erasure_is_physical_when_acknowledged() {
    let s = Server::start(&Backend::Sqlite);
    let t = s.create_user(json!({"login": "gone", "note": "n".repeat(3000)}));
    // Some unrelated traffic, so the person's pages are not the last ones written.
    for i in 0..20 {
        s.create_user(json!({"login": format!("other{i}")}));
    }
    let row = s.store.sql(&format!(
        "SELECT hex(wrapped_dek), hex(data) FROM users WHERE token = '{t}'"
    ));
    let (dek, data) = row.trim().split_once('|').unwrap();
    let (dek, data) = (unhex(dek), unhex(data));
    assert!(dek.len() >= 32 && data.len() > 3000);
    let raw = s.store.raw_contents();
    let holds = |raw: &[u8], needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
    assert!(
        holds(&raw, &dek),
        "the test cannot see the key before erasure"
    );
    s.call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    let raw = s.store.raw_contents();
    assert!(!holds(&raw, &dek), "the wrapped DEK is still on disk");
    assert!(!holds(&raw, &data[..64]), "the ciphertext is still on disk");
    assert!(
        !holds(&raw, &data[data.len() - 64..]),
        "the ciphertext is still on disk"
    );
}

/// Query values the backends cannot bind or that name nothing are refused with 400
/// on every backend (PostgreSQL answered 503, SQLite the first page).
fn list_parameters_out_of_range_are_refused(b: &Backend) {
    let s = Server::start(b);
    for path in [
        "/v1/audit/admin?offset=9223372036854775808",
        "/v1/audit/admin?limit=99999999999999999999",
        "/v1/requests?status=%00",
        "/v1/requests?status=nonsense",
    ] {
        let v = s.call("GET", path, Body::None).expect(400);
        assert!(
            v["message"].as_str().unwrap().starts_with("bad "),
            "{path}: {v}"
        );
    }
    s.call(
        "GET",
        "/v1/audit/admin?offset=9223372036854775807",
        Body::None,
    )
    .expect(200);
    s.call("GET", "/v1/requests?status=canceled", Body::None)
        .expect(200);
}

/// One rule on create and lookup: NFC, then lower case for emails; numbers indexed
/// by their exact integer part, so big logins do not collide.
fn identities_follow_one_normalization_rule(b: &Backend) {
    let s = Server::start(b);
    let t = s.create_user(json!({"email": "Jose\u{301}@Example.com", "login": "Rene\u{301}"}));
    for email in ["jos\u{e9}@example.com", "JOSE\u{301}@EXAMPLE.COM"] {
        assert_eq!(
            s.get_user("email", email).expect(200)["token"],
            t.as_str(),
            "{email}"
        );
    }
    assert_eq!(
        s.get_user("login", "Ren\u{e9}").expect(200)["token"],
        t.as_str()
    );
    // The Kelvin sign is K under NFC: one person, whichever way it is typed.
    let k = s.create_user(json!({"email": "kelly@example.com"}));
    assert_eq!(
        s.get_user("email", "\u{212A}elly@example.com").expect(200)["token"],
        k.as_str()
    );
    let r = s.call(
        "POST",
        "/v1/user",
        Body::Json(json!({"email": "\u{212A}ELLY@example.com"})),
    );
    assert_eq!(r.status, 409, "{}", r.json);
    // Numeric logins beyond the i64 range are distinct people.
    let mut tokens = Vec::new();
    for login in [json!(1e308), json!(1e19), json!(i64::MAX)] {
        let r = s.call("POST", "/v1/user", Body::Json(json!({"login": login})));
        tokens.push(r.expect(200)["token"].as_str().unwrap().to_string());
    }
    assert_eq!(
        s.get_user("login", "10000000000000000000").expect(200)["token"],
        tokens[1].as_str()
    );
    assert_eq!(
        s.get_user("login", &i64::MAX.to_string()).expect(200)["token"],
        tokens[2].as_str()
    );
}

/// The root key and the metrics token given in the environment are not left in
/// `/proc/PID/environ` (readable by the same user and root for the process's life);
/// other variables are untouched, and the secrets still work.
fn secrets_leave_the_process_environment(b: &Backend) {
    let metrics = "d0c4e7aa-metrics-secret-5b1f";
    let s = Server::start_with(b, &[&format!("env:STRONGBOX_METRICS_TOKEN={metrics}")]);
    let environ = std::fs::read(format!("/proc/{}/environ", s.pid())).unwrap();
    let text = String::from_utf8_lossy(&environ);
    assert!(
        !text.contains(&s.root_key),
        "the root key is in the environment"
    );
    assert!(
        !text.contains(metrics),
        "the metrics token is in the environment"
    );
    assert!(
        text.contains("STRONGBOX_LOG=debug"),
        "other variables must stay"
    );
    // Both were read before they were cleared.
    s.create_user(json!({"login": "env-probe"}));
    let auth = format!("Bearer {metrics}");
    let (status, _) = crate::system::scrape(&s, &[("Authorization", &auth)]);
    assert_eq!(status, 200);
}

/// Whether the store's bytes hold `text`, as it is or hex-encoded (PostgreSQL's dump
/// writes binary columns as `\x…` lower-case hex, MariaDB's `--hex-blob` as `0x…`
/// upper case).
fn store_holds(raw: &[u8], text: &str) -> bool {
    let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
    [text.to_string(), hex.clone(), hex.to_uppercase()]
        .iter()
        .any(|n| raw.windows(n.len()).any(|w| w == n.as_bytes()))
}

/// A shared record's partner and the reasons given when requests are decided are
/// about the person: sealed under their key, shown as before, gone with them.
fn partner_and_reason_are_sealed_under_the_person(b: &Backend) {
    let s = Server::start(b);
    let partner = "zq-partner-Quarry-Insurance-4471";
    let canceled = "zq-reason-duplicate-of-ticket-5582";
    let approved = "zq-reason-identity-checked-6693";
    let t = s.create_user(json!({"login": "zq-sealed", "name": "Zed"}));
    let record = s
        .call(
            "POST",
            &format!("/v1/sharedrecord/token/{t}"),
            Body::Json(json!({"fields": "name", "partner": partner})),
        )
        .expect(200)["record"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.call_as(None, "GET", &format!("/v1/get/{record}"), Body::None)
            .expect(200),
        json!({"status": "ok", "data": {"name": "Zed"}})
    );
    // A forget-me request the DPO cancels, a change the DPO approves.
    let x = issue(&s, "token", &t, Body::None);
    let forget = s
        .call_as(
            Some(&x),
            "DELETE",
            &format!("/v1/user/token/{t}"),
            Body::None,
        )
        .expect(200)["rtoken"]
        .as_str()
        .unwrap()
        .to_string();
    s.call(
        "DELETE",
        &format!("/v1/request/{forget}"),
        Body::Json(json!({"reason": canceled})),
    )
    .expect(200);
    let change = s
        .call_as(
            Some(&x),
            "PUT",
            &format!("/v1/user/token/{t}"),
            Body::Json(json!({"name": "Zeb"})),
        )
        .expect(200)["rtoken"]
        .as_str()
        .unwrap()
        .to_string();
    s.call(
        "POST",
        &format!("/v1/request/{change}"),
        Body::Json(json!({"reason": approved})),
    )
    .expect(200);
    // Listed as before, by the DPO and by the user.
    let row = |v: &Value, rtoken: &str| {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rtoken"] == rtoken)
            .cloned()
            .unwrap_or_else(|| panic!("{rtoken} not listed: {v}"))
    };
    let v = s
        .call("GET", "/v1/requests?status=canceled", Body::None)
        .expect(200);
    let r = row(&v, &forget);
    assert_eq!(
        (&r["reason"], &r["more"]),
        (&json!(canceled), &json!(false))
    );
    let v = s
        .call("GET", "/v1/requests?status=approved", Body::None)
        .expect(200);
    let r = row(&v, &change);
    assert_eq!((&r["reason"], &r["more"]), (&json!(approved), &json!(true)));
    let mine = s
        .call_as(
            Some(&x),
            "GET",
            &format!("/v1/requests/token/{t}"),
            Body::None,
        )
        .expect(200);
    assert_eq!(row(&mine, &forget)["reason"], canceled);
    assert_eq!(row(&mine, &change)["reason"], approved);
    assert_eq!(
        s.call("GET", &format!("/v1/request/{change}"), Body::None)
            .expect(200),
        json!({"status": "ok", "original": {"login": "zq-sealed", "name": "Zeb"}, "change": {"name": "Zeb"}})
    );
    let raw = s.store.raw_contents();
    assert!(raw.len() > 1000, "the scan must see the store's bytes");
    for text in [partner, canceled, approved] {
        assert!(
            !store_holds(&raw, text),
            "`{text}` is in the store in plaintext"
        );
    }
    // Erased: the requests stay as a trace, their reasons are gone.
    s.call("DELETE", &format!("/v1/user/token/{t}"), Body::None)
        .expect(200);
    for (status, rtoken) in [("canceled", &forget), ("approved", &change)] {
        let v = s
            .call("GET", &format!("/v1/requests?status={status}"), Body::None)
            .expect(200);
        let r = row(&v, rtoken);
        assert!(r.get("reason").is_none(), "{r}");
        assert_eq!(r["more"], false);
    }
    let raw = s.store.raw_contents();
    for text in [partner, canceled, approved] {
        assert!(
            !store_holds(&raw, text),
            "`{text}` is in the store in plaintext"
        );
    }
}
