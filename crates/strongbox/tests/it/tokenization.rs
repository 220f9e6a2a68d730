//! Tokenization over v2 (`TokenCreate` … `BulkDeleteTokens`), on every backend:
//! format preservation, `unique`, both lookup forms, expiry checked on read, the
//! bulk gate, refusals, and that neither the value nor its `tokenbase` is stored
//! in plaintext.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Reply, Server};

backend_tests!(
    tokens_keep_the_shape_and_resolve_both_ways,
    unique_tokens_and_bad_input,
    ten_thousand_card_tokens_never_collide,
    tokens_expire_on_read_and_are_swept,
    bulk_token_methods_need_an_unlock,
);

fn v2(s: &Server, method: &str, body: Value) -> Reply {
    s.call("POST", &format!("/v2/{method}"), Body::Json(body))
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_string()
}

fn tokens_keep_the_shape_and_resolve_both_ways(b: &Backend) {
    let s = Server::start(b);
    let card = "4532015112830366";
    let t = v2(
        &s,
        "TokenCreate",
        json!({"tokentype": "creditcard", "record": card}),
    )
    .expect(200);
    let (uuid, base) = (text(&t, "tokenuuid"), text(&t, "tokenbase"));
    assert_eq!(base.len(), card.len());
    assert!(
        base.bytes().all(|c| c.is_ascii_digit()) && luhn(&base),
        "{base}"
    );
    assert_ne!(base, card);
    for key in [&uuid, &base] {
        let r = v2(&s, "TokenGet", json!({"token": key})).expect(200);
        assert_eq!(r["record"], card);
        assert_eq!(r["tokentype"], "creditcard");
        assert_eq!(r["tokenuuid"], uuid.as_str());
        assert_eq!(r["tokenbase"], base.as_str());
    }
    // Keeping the first six and the last four, separators where they were.
    let spaced = "4532 0151 1283 0366";
    let k = v2(
        &s,
        "TokenCreate",
        json!({"tokentype": "creditcard", "record": spaced, "keepfirst": 6, "keeplast": 4}),
    )
    .expect(200);
    let kb = text(&k, "tokenbase");
    assert_eq!(kb.len(), spaced.len());
    assert!(kb.starts_with("4532 01") && kb.ends_with(" 0366"), "{kb}");
    assert_eq!(kb.matches(' ').count(), 3);
    assert!(luhn(&kb.replace(' ', "")));
    // A card that fails Luhn is accepted (clients tokenize test numbers).
    let bad_luhn = v2(
        &s,
        "TokenCreate",
        json!({"tokentype": "creditcard", "record": "4716182333661234"}),
    )
    .expect(200);
    assert!(luhn(&text(&bad_luhn, "tokenbase")));
    // An address keeps the shape of one, at a domain that reaches no mailbox.
    let e = v2(
        &s,
        "TokenCreate",
        json!({"tokentype": "email", "record": "Ann.Lee@example.com"}),
    )
    .expect(200);
    let eb = text(&e, "tokenbase");
    assert!(
        eb.ends_with("@token.invalid") && eb.len() > "@token.invalid".len() + 7,
        "{eb}"
    );
    assert_eq!(
        v2(&s, "TokenGet", json!({"token": eb})).expect(200)["record"],
        "Ann.Lee@example.com"
    );
    // Text gets a uuid only.
    let x = v2(
        &s,
        "TokenCreate",
        json!({"tokentype": "text", "record": "1985-04-12"}),
    )
    .expect(200);
    assert!(x.get("tokenbase").is_none(), "{x}");
    assert_eq!(
        v2(&s, "TokenGet", json!({"token": text(&x, "tokenuuid")})).expect(200)["record"],
        "1985-04-12"
    );
    // Tokens count in the stats.
    let stats = v2(&s, "SystemGetSystemStats", json!({})).expect(200);
    assert_eq!(stats["stats"]["numtokens"], 5, "{stats}");
    // Neither the values nor the card tokens are stored in plaintext.
    let raw = String::from_utf8_lossy(&s.store.raw_contents()).into_owned();
    for secret in [
        card,
        &base,
        "4716182333661234",
        "Ann.Lee@example.com",
        "ann.lee@example.com",
        &eb,
        "1985-04-12",
    ] {
        assert!(!raw.contains(secret), "{secret} is stored in plaintext");
    }
    // Detokenization is audited, naming the token and not the value.
    let unlock = text(
        &v2(&s, "BulkListUnlock", json!({})).expect(200),
        "unlockuuid",
    );
    let events = v2(
        &s,
        "BulkListAllAuditEvents",
        json!({"unlockuuid": unlock, "limit": 100}),
    )
    .expect(200);
    let gets: Vec<&Value> = events["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e.to_string().contains("detokenize creditcard token") && e.to_string().contains(&uuid)
        })
        .collect();
    assert_eq!(gets.len(), 2, "{events}");
    assert!(!events.to_string().contains(card));
    // Deleting by either form: both stop resolving.
    v2(&s, "TokenDelete", json!({"token": base})).expect(200);
    for key in [&uuid, &base] {
        let r = v2(&s, "TokenGet", json!({"token": key}));
        assert_eq!(r.status, 404, "{}", r.json);
        assert_eq!(
            r.json,
            json!({"status": "error", "message": "Token not found"})
        );
    }
    assert_eq!(v2(&s, "TokenDelete", json!({"token": uuid})).status, 404);
    // A token of one tenant is unknown in another.
    let tenant = v2(
        &s,
        "TenantCreate",
        json!({"tenantname": "acme", "tenantorg": "Acme"}),
    )
    .expect(200);
    let admin = text(&tenant, "xtoken");
    let in_tenant = |method: &str, body: Value| {
        s.call_with(
            Some(&admin),
            "POST",
            &format!("/v2/{method}"),
            &[("X-Bunker-Tenant", "acme")],
            Body::Json(body),
        )
    };
    let kept = text(&k, "tokenuuid");
    assert_eq!(in_tenant("TokenGet", json!({"token": kept})).status, 404);
    assert_eq!(in_tenant("TokenGet", json!({"token": kb})).status, 404);
    let theirs = in_tenant("TokenCreate", json!({"tokentype": "text", "record": "x"})).expect(200);
    assert_eq!(
        v2(&s, "TokenGet", json!({"token": text(&theirs, "tokenuuid")})).status,
        404
    );
}

fn unique_tokens_and_bad_input(b: &Backend) {
    let s = Server::start(b);
    let card = "5555555555554444";
    let make = |extra: Value| {
        let mut body = json!({"tokentype": "creditcard", "record": card});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v2(&s, "TokenCreate", body)
    };
    let first = make(json!({"unique": true})).expect(200);
    // The same card, written otherwise, is the same value.
    let again = v2(
        &s,
        "TokenCreate",
        json!({"tokentype": "creditcard", "record": "5555-5555-5555-4444", "unique": true}),
    )
    .expect(200);
    assert_eq!(again["tokenuuid"], first["tokenuuid"]);
    assert_eq!(again["tokenbase"], first["tokenbase"]);
    assert_eq!(again["duplicate"], true);
    let other = make(json!({})).expect(200);
    assert_ne!(other["tokenuuid"], first["tokenuuid"]);
    // Addresses compare without case; text exactly.
    let e1 = v2(
        &s,
        "TokenCreate",
        json!({"tokentype": "email", "record": "Bo@x.org", "unique": true}),
    )
    .expect(200);
    let e2 = v2(
        &s,
        "TokenCreate",
        json!({"tokentype": "email", "record": "bo@X.org", "unique": true}),
    )
    .expect(200);
    assert_eq!(e1["tokenuuid"], e2["tokenuuid"]);
    let t1 = v2(
        &s,
        "TokenCreate",
        json!({"tokentype": "text", "record": "Bo", "unique": true}),
    )
    .expect(200);
    let t2 = v2(
        &s,
        "TokenCreate",
        json!({"tokentype": "text", "record": "bo", "unique": true}),
    )
    .expect(200);
    assert_ne!(t1["tokenuuid"], t2["tokenuuid"]);
    // The same value under another type is another token.
    let t3 = v2(
        &s,
        "TokenCreate",
        json!({"tokentype": "text", "record": card, "unique": true}),
    )
    .expect(200);
    assert_ne!(t3["tokenuuid"], first["tokenuuid"]);
    // Once deleted, `unique` makes a new one.
    v2(&s, "TokenDelete", json!({"token": first["tokenuuid"]})).expect(200);
    let fresh = make(json!({"unique": true})).expect(200);
    assert_ne!(fresh["tokenuuid"], first["tokenuuid"]);
    assert!(fresh.get("duplicate").is_none());
    // Refusals: 4xx with a clear message, nothing created.
    let before =
        v2(&s, "SystemGetSystemStats", json!({})).expect(200)["stats"]["numtokens"].clone();
    let refused: Vec<(Value, u16, &str)> = vec![
        (
            json!({"tokentype": "phone", "record": "1"}),
            400,
            "tokentype",
        ),
        (
            json!({"tokentype": "unixtime", "record": "1"}),
            400,
            "tokentype",
        ),
        (json!({"record": card}), 400, "tokentype"),
        (json!({"tokentype": "creditcard"}), 400, "record"),
        (
            json!({"tokentype": "creditcard", "record": "4532O15112830366"}),
            400,
            "12 to 19 digits",
        ),
        (
            json!({"tokentype": "creditcard", "record": "45320151128"}),
            400,
            "12 to 19 digits",
        ),
        (
            json!({"tokentype": "creditcard", "record": card, "keepfirst": 7}),
            400,
            "keepfirst",
        ),
        (
            json!({"tokentype": "creditcard", "record": card, "keeplast": -1}),
            400,
            "keeplast",
        ),
        (
            // 13 digits keeping 10 would leave 3 to draw: too few.
            json!({"tokentype": "creditcard", "record": "4222222222222", "keepfirst": 6, "keeplast": 4}),
            400,
            "keep fewer",
        ),
        (
            json!({"tokentype": "text", "record": "x", "keepfirst": 2}),
            400,
            "creditcard tokens only",
        ),
        (
            json!({"tokentype": "email", "record": "not an address"}),
            400,
            "address",
        ),
        (
            json!({"tokentype": "text", "record": "x", "unique": "yes"}),
            400,
            "unique",
        ),
        (
            json!({"tokentype": "text", "record": "x", "finaltime": "soon"}),
            400,
            "finaltime",
        ),
        (json!({"tokentype": "text", "record": ["x"]}), 400, "record"),
        (
            json!({"tokentype": "text", "record": "x".repeat(5000)}),
            413,
            "4096",
        ),
    ];
    for (body, status, says) in refused {
        let r = v2(&s, "TokenCreate", body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.json);
        assert_eq!(r.json["status"], "error");
        assert!(
            r.json["message"].as_str().unwrap().contains(says),
            "{body}: {}",
            r.json
        );
    }
    assert_eq!(v2(&s, "TokenGet", json!({})).status, 400);
    assert_eq!(
        v2(&s, "TokenGet", json!({"token": "invalid-token"})).status,
        404
    );
    assert_eq!(
        v2(
            &s,
            "TokenGet",
            json!({"token": "'; DROP TABLE records; --"})
        )
        .status,
        404
    );
    assert_eq!(
        v2(&s, "SystemGetSystemStats", json!({})).expect(200)["stats"]["numtokens"],
        before
    );
    // Only root: no token, a wrong one, a person's access token.
    let r = s.call_as(
        None,
        "POST",
        "/v2/TokenCreate",
        Body::Json(json!({"tokentype": "text", "record": "x"})),
    );
    assert_eq!(r.status, 401, "{}", r.json);
    let r = s.call_as(
        Some("7b0e5bd4-1c4f-4e57-a7c4-5d6c0a8f0001"),
        "POST",
        "/v2/TokenGet",
        Body::Json(json!({"token": t1["tokenuuid"]})),
    );
    assert_eq!(r.status, 403);
    let person = s.create_user(json!({"login": "pat"}));
    let xtoken = text(
        &s.call("POST", &format!("/v1/xtoken/token/{person}"), Body::None)
            .expect(200),
        "xtoken",
    );
    let r = s.call_as(
        Some(&xtoken),
        "POST",
        "/v2/TokenGet",
        Body::Json(json!({"token": t1["tokenuuid"]})),
    );
    assert_eq!(r.status, 403, "{}", r.json);
}

fn ten_thousand_card_tokens_never_collide(b: &Backend) {
    let s = Server::start(b);
    // 10,000 different cards in one call.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut digit = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (b'0' + (seed % 10) as u8) as char
    };
    let cards: Vec<String> = (0..10_000)
        .map(|_| {
            std::iter::once('4')
                .chain((0..15).map(|_| digit()))
                .collect()
        })
        .collect();
    let records: Vec<Value> = cards
        .iter()
        .map(|c| json!({"tokentype": "creditcard", "record": c}))
        .collect();
    let r = v2(&s, "TokenCreateBulk", json!({"records": records})).expect(200);
    assert_eq!(r["num"], 10_000);
    assert_eq!(
        r["summary"],
        json!({"created": 10_000, "duplicates": 0, "errors": 0, "total": 10_000})
    );
    let mut bases = HashSet::new();
    for (row, card) in r["created"].as_array().unwrap().iter().zip(&cards) {
        assert_eq!(row["record"], card.as_str());
        let base = text(row, "tokenbase");
        assert_eq!(base.len(), 16);
        assert!(luhn(&base), "{base}");
        assert_ne!(&base, card);
        assert!(bases.insert(base), "two cards got the same token");
    }
    // One card 2,000 times, keeping 10 of its 16 digits: five random digits and
    // a check digit leave 100,000 tokens, so draws collide and are drawn again.
    let card = "4111111111111111";
    let records: Vec<Value> = (0..2_000)
        .map(|_| json!({"tokentype": "creditcard", "record": card}))
        .collect();
    let r = v2(
        &s,
        "TokenCreateBulk",
        json!({"records": records, "keepfirst": 6, "keeplast": 4}),
    )
    .expect(200);
    assert_eq!(r["summary"]["created"], 2_000, "{}", r["summary"]);
    let mut same = HashSet::new();
    for row in r["created"].as_array().unwrap() {
        let base = text(row, "tokenbase");
        assert!(
            base.starts_with("411111") && base.ends_with("1111") && luhn(&base),
            "{base}"
        );
        assert_ne!(base, card);
        assert!(same.insert(base.clone()), "a token was handed out twice");
        assert!(!bases.contains(&base));
    }
    // Every one resolves, by its base, to its card.
    let sample: Vec<&Value> = r["created"]
        .as_array()
        .unwrap()
        .iter()
        .step_by(97)
        .collect();
    for row in sample {
        let got = v2(&s, "TokenGet", json!({"token": row["tokenbase"]})).expect(200);
        assert_eq!(got["record"], card);
        assert_eq!(got["tokenuuid"], row["tokenuuid"]);
    }
    assert_eq!(
        v2(&s, "SystemGetSystemStats", json!({})).expect(200)["stats"]["numtokens"],
        12_000
    );
}

fn tokens_expire_on_read_and_are_swept(b: &Backend) {
    let s = Server::start_with(b, &["--sweep-interval", "1"]);
    let make = |extra: Value| {
        let mut body = json!({"tokentype": "text", "record": "short-lived"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        text(&v2(&s, "TokenCreate", body).expect(200), "tokenuuid")
    };
    // Times are whole seconds: each check below keeps half a second of margin
    // whatever fraction of a second the test starts at.
    let fixed = make(json!({"finaltime": 2}));
    let sliding = make(json!({"slidingtime": "4"}));
    let lasting = make(json!({}));
    v2(&s, "TokenGet", json!({"token": fixed})).expect(200);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(v2(&s, "TokenGet", json!({"token": fixed})).status, 404);
    v2(&s, "TokenGet", json!({"token": sliding})).expect(200);
    std::thread::sleep(Duration::from_millis(2500));
    // 5 s after creation, 4 s of sliding time: alive through the read at 2.5 s.
    v2(&s, "TokenGet", json!({"token": sliding})).expect(200);
    // `unique` restarts the countdown of the token it finds.
    let again = json!({"tokentype": "text", "record": "again", "unique": true});
    let mut first = again.clone();
    first["finaltime"] = json!(3);
    let u1 = v2(&s, "TokenCreate", first).expect(200);
    std::thread::sleep(Duration::from_millis(1500));
    let mut second = again.clone();
    second["finaltime"] = json!(4);
    let u2 = v2(&s, "TokenCreate", second).expect(200);
    assert_eq!(u1["tokenuuid"], u2["tokenuuid"]);
    assert_eq!(u2["duplicate"], true);
    std::thread::sleep(Duration::from_millis(1700));
    v2(&s, "TokenGet", json!({"token": u1["tokenuuid"]})).expect(200);
    std::thread::sleep(Duration::from_millis(2300));
    // 5.5 s without a read.
    assert_eq!(v2(&s, "TokenGet", json!({"token": sliding})).status, 404);
    v2(&s, "TokenGet", json!({"token": lasting})).expect(200);
    // The sweeper deletes expired tokens nobody asks for (the restarted one ends
    // 4.5 s after its restart), with their `unique` pointers.
    make(json!({"finaltime": 1}));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let n = v2(&s, "SystemGetSystemStats", json!({})).expect(200)["stats"]["numtokens"].clone();
        if n == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {n} tokens");
        std::thread::sleep(Duration::from_millis(300));
    }
    let kinds = s
        .store
        .sql("SELECT kind, COUNT(*) FROM records WHERE kind IN ('fpt', 'fptuniq') GROUP BY kind");
    assert_eq!(kinds.trim(), "fpt|1", "a unique pointer outlived its token");
    v2(&s, "TokenGet", json!({"token": lasting})).expect(200);
}

fn bulk_token_methods_need_an_unlock(b: &Backend) {
    let s = Server::start(b);
    let records: Vec<Value> = ["4532015112830366", "5425233430109903", "4716182333661234"]
        .iter()
        .map(|c| json!({"tokentype": "creditcard", "record": c}))
        .collect();
    let r = v2(
        &s,
        "TokenCreateBulk",
        json!({"records": records, "unique": true, "slidingtime": "1d", "finaltime": "12m"}),
    )
    .expect(200);
    assert_eq!(r["num"], 3);
    assert_eq!(
        r["summary"],
        json!({"created": 3, "duplicates": 0, "errors": 0, "total": 3})
    );
    let bases: Vec<String> = r["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| text(t, "tokenbase"))
        .collect();
    // The same batch again, with one bad record and a value twice: found again.
    let mut again = records.clone();
    again.push(json!({"tokentype": "creditcard", "record": "5425233430109903"}));
    again.push(json!({"tokentype": "creditcard", "record": "12"}));
    again.push(json!({"tokentype": "hex", "record": "12"}));
    again.push(json!("not an object"));
    let r2 = v2(
        &s,
        "TokenCreateBulk",
        json!({"records": again, "unique": true}),
    )
    .expect(200);
    assert_eq!(
        r2["summary"],
        json!({"created": 0, "duplicates": 4, "errors": 3, "total": 7}),
        "{r2}"
    );
    let errs: Vec<i64> = r2["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_i64().unwrap())
        .collect();
    assert_eq!(errs, vec![4, 5, 6]);
    assert_eq!(
        v2(&s, "TokenCreateBulk", json!({"records": []})).status,
        400
    );
    assert_eq!(
        v2(&s, "TokenCreateBulk", json!({"records": "x"})).status,
        400
    );
    // Without a fresh unlock: refused.
    let r = v2(&s, "BulkListTokens", json!({"tokens": bases}));
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json["message"],
        "The unlockuuid value was not found or is not valid"
    );
    let unlock = text(
        &v2(&s, "BulkListUnlock", json!({})).expect(200),
        "unlockuuid",
    );
    let mut asked = bases.clone();
    asked.push("0000000000000000".into());
    let listed = v2(
        &s,
        "BulkListTokens",
        json!({"unlockuuid": unlock, "tokens": asked}),
    )
    .expect(200);
    assert_eq!(listed["total"], 3);
    for row in listed["rows"].as_array().unwrap() {
        assert_eq!(row["tokentype"], "creditcard");
        assert!(row["tokenuuid"].is_string() && row["record"].is_string());
    }
    assert_eq!(
        v2(
            &s,
            "BulkListTokens",
            json!({"unlockuuid": unlock, "tokens": []})
        )
        .status,
        400
    );
    assert_eq!(
        v2(
            &s,
            "BulkListTokens",
            json!({"unlockuuid": unlock, "tokens": [1]})
        )
        .status,
        400
    );
    let r = v2(
        &s,
        "BulkDeleteTokens",
        json!({"unlockuuid": "5b1fe2c4-9c35-4a56-8a3e-60d1f6b0a001", "tokens": bases}),
    );
    assert_eq!(r.status, 403);
    let d = v2(
        &s,
        "BulkDeleteTokens",
        json!({"unlockuuid": unlock, "tokens": bases}),
    )
    .expect(200);
    assert_eq!(d["deleted"], 3);
    let listed = v2(
        &s,
        "BulkListTokens",
        json!({"unlockuuid": unlock, "tokens": bases}),
    )
    .expect(200);
    assert_eq!(listed, json!({"status": "ok", "total": 0, "rows": []}));
    assert_eq!(
        v2(&s, "SystemGetSystemStats", json!({})).expect(200)["stats"]["numtokens"],
        0
    );
}
