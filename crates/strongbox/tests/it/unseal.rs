//! Sealed start with Shamir shares: `init --shares/--threshold`, a vault that starts
//! sealed, unsealing over HTTP and with `strongbox unseal`, wrong and duplicate
//! shares, shares that expire, sealing again, and unsealing after a restart — on every
//! backend.

use std::process::Command;

use serde_json::json;

use crate::backend_tests;
use crate::harness::{BIN, Backend, Body, Server, StoreLoc, run_bin};
use crate::tokens::issue;

backend_tests!(sealed_start_unseal_and_seal, wrong_shares_never_unseal);

/// `strongbox init --shares 5 --threshold 3`: the shares and the root token.
fn init_with_shares(store: &StoreLoc) -> (Vec<String>, String) {
    let out = Command::new(BIN)
        .args(["init", "--shares", "5", "--threshold", "3"])
        .args(&store.args)
        .env_remove("STRONGBOX_ROOT_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert!(
        !stdout.contains("Root key:"),
        "the key itself is never shown"
    );
    let shares: Vec<String> = (1..=5)
        .map(|n| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("Share {n}: ")))
                .unwrap_or_else(|| panic!("no Share {n} line: {stdout}"))
                .to_string()
        })
        .collect();
    let token = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Root token: "))
        .unwrap()
        .to_string();
    (shares, token)
}

/// A sealed server on `store` (no root key in its environment).
fn sealed(store: StoreLoc, token: &str, extra: &[&str]) -> Server {
    Server::serve(
        store,
        String::new(),
        token.to_string(),
        extra.iter().map(|s| s.to_string()).collect(),
    )
}

fn give(s: &Server, share: &str) -> (u16, serde_json::Value) {
    let r = s.call_as(
        None,
        "POST",
        "/v1/sys/unseal",
        Body::Json(json!({"share": share})),
    );
    (r.status, r.json)
}

fn unseal_cli(s: &Server, input: &str) -> (i32, String) {
    run_bin(&["unseal", "--addr", &s.base], &[], input)
}

fn sealed_start_unseal_and_seal(b: &Backend) {
    let store = StoreLoc::new(b);
    let (shares, token) = init_with_shares(&store);
    let s = sealed(store, &token, &["--unseal-timeout", "2"]);
    // Sealed: status says so, data routes answer 503, nothing is read.
    let st = s.call_as(None, "GET", "/v1/status", Body::None);
    assert_eq!(st.status, 503);
    assert!(
        st.json["message"].as_str().unwrap().contains("sealed"),
        "{:?}",
        st.json
    );
    let r = s.call("GET", "/v1/user/email/a@example.com", Body::None);
    assert_eq!(r.status, 503);
    assert_eq!(r.json["status"], "error");
    // Load balancers see it too, without a token.
    let h = s.call_as(None, "GET", "/v1/sys/health", Body::None);
    assert_eq!(
        (h.status, &h.json["sealed"]),
        (503, &json!(true)),
        "{:?}",
        h.json
    );
    assert_eq!(h.json["status"], "error");
    // The API document is there before the vault is open.
    let doc = s.call_as(None, "GET", "/openapi.json", Body::None);
    assert_eq!((doc.status, &doc.json["openapi"]), (200, &json!("3.1.0")));
    // Progress is visible; shares given expire after the timeout.
    let (code, v) = give(&s, &shares[0]);
    assert_eq!(
        (code, &v["progress"], &v["threshold"]),
        (200, &json!(1), &json!(3))
    );
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let v = s
        .call_as(None, "GET", "/v1/sys/seal-status", Body::None)
        .expect(200);
    assert_eq!((&v["sealed"], &v["progress"]), (&json!(true), &json!(0)));
    // The CLI reads one share per line until the threshold is met.
    let (code, out) = unseal_cli(
        &s,
        &format!("{}\n{}\n{}\n", shares[4], shares[1], shares[3]),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Unseal progress: 1 of 3"), "{out}");
    assert!(out.contains("Unsealed."), "{out}");
    assert_eq!(s.call_as(None, "GET", "/v1/status", Body::None).status, 200);
    let h = s.call_as(None, "GET", "/v1/sys/health", Body::None);
    assert_eq!(
        (h.status, &h.json["sealed"]),
        (200, &json!(false)),
        "{:?}",
        h.json
    );
    let t = s.create_user(json!({"email": "sealed@example.com"}));
    // Only root may seal.
    let xt = issue(&s, "token", &t, Body::None);
    assert_eq!(
        s.call_as(Some(&xt), "POST", "/v1/sys/seal", Body::None)
            .status,
        403
    );
    let out = Command::new(BIN)
        .args(["seal", "--addr", &s.base, "--token", &token])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.get_user("token", &t).status, 503);
    // Unsealed again over HTTP, and after a restart.
    for share in &shares[1..4] {
        assert_eq!(give(&s, share).0, 200);
    }
    s.get_user("email", "sealed@example.com").expect(200);
    let s = s.restart();
    assert_eq!(s.get_user("token", &t).status, 503);
    for share in [&shares[0], &shares[2], &shares[4]] {
        assert_eq!(give(&s, share).0, 200);
    }
    assert_eq!(
        s.get_user("token", &t).expect(200)["data"]["email"],
        "sealed@example.com"
    );
}

fn wrong_shares_never_unseal(b: &Backend) {
    let store = StoreLoc::new(b);
    let (shares, token) = init_with_shares(&store);
    let other = StoreLoc::new(b);
    let (foreign, _) = init_with_shares(&other);
    let s = sealed(store, &token, &[]);
    // A mistyped share fails its checksum; a share given twice counts once.
    let mut typo = shares[0].clone().into_bytes();
    typo[10] = if typo[10] == b'0' { b'1' } else { b'0' };
    let (code, v) = give(&s, std::str::from_utf8(&typo).unwrap());
    assert_eq!(code, 400, "{v}");
    assert_eq!(give(&s, &shares[0]).0, 200);
    let (code, v) = give(&s, &shares[0]);
    assert_eq!(code, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("already"), "{v}");
    for bad in [json!({}), json!({"share": 5}), json!("x")] {
        let r = s.call_as(None, "POST", "/v1/sys/unseal", Body::Json(bad));
        assert_eq!(r.status, 400);
    }
    // Shares of another vault's key pass their checksums but are not this split's:
    // refused on arrival, without spoiling the progress of the genuine ones.
    for f in &foreign[1..4] {
        let (code, v) = give(&s, f);
        assert_eq!(code, 400, "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("not a share of this vault"),
            "{v}"
        );
    }
    let v = s
        .call_as(None, "GET", "/v1/sys/seal-status", Body::None)
        .expect(200);
    assert_eq!((&v["sealed"], &v["progress"]), (&json!(true), &json!(1)));
    let r = s.call("GET", "/v1/audit/admin", Body::None);
    assert_eq!(r.status, 503);
    // The right shares still work (share 1 is in already).
    let (code, out) = unseal_cli(&s, &format!("{}\n{}\n", shares[1], shares[2]));
    assert_eq!(code, 0, "{out}");
    s.call("GET", "/v1/audit/admin", Body::None).expect(200);
    // Each keeper may pipe in just their own share: the run succeeds and says how
    // many more are needed; a share given already does not stop a run.
    let out = Command::new(BIN)
        .args(["seal", "--addr", &s.base, "--token", &token])
        .output()
        .unwrap();
    assert!(out.status.success());
    let (code, out) = unseal_cli(&s, &format!("{}\n", shares[3]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 more share(s) needed"), "{out}");
    let (code, out) = unseal_cli(&s, &format!("{}\n{}\n", shares[3], shares[4]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("given already") && out.contains("1 more share(s)"),
        "{out}"
    );
    // An empty input is still an error.
    let (code, out) = unseal_cli(&s, "\n");
    assert_eq!(code, 2, "{out}");
    // Junk from other clients, however fast, never keeps a keeper out: every share
    // is checked against the stored hashes, so there is nothing to limit.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammers: Vec<_> = (0..6)
        .map(|_| {
            let (stop, base) = (stop.clone(), s.base.clone());
            std::thread::spawn(move || {
                let agent = crate::harness::agent();
                let mut sent = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = agent
                        .post(format!("{base}/v1/sys/unseal"))
                        .send_json(json!({"share": "sbx1-3-1-00-00000000"}));
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, out) = unseal_cli(&s, &format!("{}\n", shares[0]));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: u32 = hammers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(sent > 60, "the hammering threads sent only {sent} requests");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Unsealed"), "{out}");
    s.call("GET", "/v1/audit/admin", Body::None).expect(200);
}
