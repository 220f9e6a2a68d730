//! Passwordless login (`/v1/prelogin`, `/v1/login`, `/v1/captcha`), end to end: the
//! rules on every backend, and a whole login through `strongbox demo`, which shows
//! the codes it would send (the only place a code can be read until email and SMS
//! delivery land).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Server};

backend_tests!(
    no_code_works_without_a_prelogin,
    an_unknown_identity_gets_the_same_answer,
    prelogin_is_limited_per_identity_and_per_address,
    a_captcha_is_checked_and_spent_once,
);

const EMAIL: &str = "ann@example.com";

fn get(s: &Server, path: &str) -> crate::harness::Reply {
    s.call_as(None, "GET", path, Body::None)
}

fn prelogin(s: &Server, mode: &str, identity: &str) -> crate::harness::Reply {
    get(s, &format!("/v1/prelogin/{mode}/{identity}/0/0"))
}

fn no_code_works_without_a_prelogin(b: &Backend) {
    let s = Server::start_with(b, &["--login-captcha", "false"]);
    s.create_user(json!({"email": EMAIL, "phone": "4444"}));
    // Databunker once let `0` in when no code was stored, and had a fixed demo code.
    for code in ["0", "00", "4444", "000000", "123456", "%20"] {
        for (mode, identity) in [("email", EMAIL), ("phone", "4444")] {
            let r = get(&s, &format!("/v1/login/{mode}/{identity}/{code}"));
            assert_eq!(r.status, 403, "{mode} {code}: {}", r.json);
            assert!(r.json.get("xtoken").is_none());
        }
    }
    // An empty code is no route at all.
    let r = get(&s, &format!("/v1/login/email/{EMAIL}/"));
    assert!((400..500).contains(&r.status), "{}", r.json);
    // Only email and phone log in.
    let r = prelogin(&s, "login", "ann");
    assert_eq!(r.status, 400, "{}", r.json);
    assert!(r.json["message"].as_str().unwrap().contains("bad mode"));
    // After a prelogin, guesses are still refused and the fixed codes stay refused.
    prelogin(&s, "email", EMAIL).expect(200);
    for code in ["0", "4444", "000000"] {
        get(&s, &format!("/v1/login/email/{EMAIL}/{code}")).expect(403);
    }
}

fn an_unknown_identity_gets_the_same_answer(b: &Backend) {
    let s = Server::start_with(b, &["--login-captcha", "false"]);
    s.create_user(json!({"email": EMAIL}));
    let known = prelogin(&s, "email", EMAIL);
    let unknown = prelogin(&s, "email", "nobody@example.com");
    let malformed = prelogin(&s, "email", "not-an-address");
    for r in [&known, &unknown, &malformed] {
        assert_eq!(r.status, 200);
        assert_eq!(r.json, json!({"status": "ok", "result": "done"}));
    }
    assert_eq!(
        prelogin(&s, "phone", "+15550000000").json,
        known.json,
        "phones too"
    );
    // Every prelogin is audited, the unknown one as such, none with a code.
    let audit = s
        .call("GET", "/v1/audit/admin?offset=0&limit=50", Body::None)
        .expect(200);
    let rows = audit["rows"].as_array().unwrap();
    let prelogins: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            r["title"]
                .as_str()
                .unwrap_or("")
                .starts_with("user prelogin by")
        })
        .collect();
    assert_eq!(prelogins.len(), 4, "{audit}");
    assert!(prelogins.iter().any(|r| r["status"] == "not-found"));
    assert!(prelogins.iter().any(|r| r["status"] == "ok"));
}

fn prelogin_is_limited_per_identity_and_per_address(b: &Backend) {
    // Per identity, counted on the normalized value: three spellings of one phone.
    let s = Server::start_with(
        b,
        &[
            "--login-captcha",
            "false",
            "--login-prelogin-per-identity",
            "2",
        ],
    );
    prelogin(&s, "phone", "07911123456").expect(200);
    prelogin(&s, "phone", "+447911123456").expect(200);
    let r = prelogin(&s, "phone", "%2B44%207911%20123456");
    assert_eq!(r.status, 429, "{}", r.json);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert!(r.json["message"].as_str().unwrap().contains("login codes"));
    prelogin(&s, "email", EMAIL).expect(200);
    prelogin(&s, "email", "ANN@example.com").expect(200);
    prelogin(&s, "email", EMAIL).expect(429);
    // Another identity is not held up by them.
    prelogin(&s, "email", "bob@example.com").expect(200);
    let metrics = s.call("GET", "/v1/metrics", Body::None).expect(200);
    let text = metrics.as_str().unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("strongbox_login_prelogin_limited_total ") && !l.ends_with(" 0")),
        "{text}"
    );
    drop(s);

    // Per address, whatever the identity.
    let s = Server::start_with(
        b,
        &[
            "--login-captcha",
            "false",
            "--login-prelogin-per-address",
            "3",
        ],
    );
    for who in ["a@example.com", "b@example.com", "c@example.com"] {
        prelogin(&s, "email", who).expect(200);
    }
    let r = prelogin(&s, "email", "d@example.com");
    assert_eq!(r.status, 429, "{}", r.json);
    assert!(r.headers.contains_key("retry-after"));
}

fn a_captcha_is_checked_and_spent_once(b: &Backend) {
    let s = Server::start(b);
    s.create_user(json!({"email": EMAIL}));
    let fresh = || {
        let new = get(&s, "/v1/captcha").expect(200);
        let token = new["captcha"].as_str().unwrap().to_string();
        assert_eq!(new["image"], format!("/v1/captcha/{token}"));
        let digits = read_captcha(&s, &token);
        (token, digits)
    };
    let pre = |digits: &str, token: &str| {
        get(&s, &format!("/v1/prelogin/email/{EMAIL}/{digits}/{token}"))
    };

    // Wrong digits spend the token: the right ones cannot follow.
    let (token, digits) = fresh();
    let wrong = if digits == "111111" {
        "222222"
    } else {
        "111111"
    };
    let r = pre(wrong, &token);
    assert_eq!(r.status, 400, "{}", r.json);
    assert_eq!(r.json["message"], "captcha-error");
    pre(&digits, &token).expect(400);

    // The right digits work once, in any spelling of the token.
    let (token, digits) = fresh();
    pre(&digits, &token).expect(200);
    pre(&digits, &token).expect(400);
    pre(&digits, &token.to_uppercase()).expect(400);

    // A token that is not one of this vault's shows no image and passes nothing.
    let last = token.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    let forged = format!("{}{flipped}", &token[..token.len() - 1]);
    get(&s, &format!("/v1/captcha/{forged}")).expect(400);
    get(&s, "/v1/captcha/zz").expect(400);
    pre(&digits, &forged).expect(400);

    // Refused captchas are audited as refused prelogins.
    let audit = s
        .call("GET", "/v1/audit/admin?offset=0&limit=50", Body::None)
        .expect(200);
    let refused = audit["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "captcha-error")
        .count();
    assert_eq!(refused, 5, "{audit}");
}

/// A whole login in `strongbox demo`, reading the code from its output: a code is
/// single-use, five wrong tries drop it, and the access token reaches the person.
#[test]
fn a_demo_login_by_email_end_to_end() {
    let s = Server::demo(&["--login-captcha", "false"]);
    let token = s.create_user(json!({"email": EMAIL, "name": "Ann"}));

    prelogin(&s, "email", EMAIL).expect(200);
    let code = demo_code(&s, 1);
    let wrong = if code == "999999" { "999998" } else { "999999" };
    // Five wrong tries, and the right code no longer works.
    for _ in 0..5 {
        get(&s, &format!("/v1/login/email/{EMAIL}/{wrong}")).expect(403);
    }
    get(&s, &format!("/v1/login/email/{EMAIL}/{code}")).expect(403);

    // A new prelogin: the right code works once.
    prelogin(&s, "email", "Ann@Example.com").expect(200);
    let code = demo_code(&s, 2);
    let ok = get(&s, &format!("/v1/login/email/{EMAIL}/{code}")).expect(200);
    assert_eq!(ok["status"], "ok");
    assert_eq!(ok["token"], token.as_str());
    let xtoken = ok["xtoken"].as_str().unwrap().to_string();
    get(&s, &format!("/v1/login/email/{EMAIL}/{code}")).expect(403);
    let me = s
        .call_as(
            Some(&xtoken),
            "GET",
            &format!("/v1/user/token/{token}"),
            Body::None,
        )
        .expect(200);
    assert_eq!(me["data"]["name"], "Ann");

    // An unknown identity is answered alike, and nothing is shown for it.
    prelogin(&s, "email", "nobody@example.com").expect(200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(codes_in(&s.log()).len(), 2, "{}", s.log());
    // The codes reach neither the audit log nor anything but the demo's notice.
    let audit = s
        .call("GET", "/v1/audit/admin?offset=0&limit=100", Body::None)
        .expect(200)
        .to_string();
    assert!(!audit.contains(&code), "{audit}");
    assert!(audit.contains("user login by email"), "{audit}");
}

/// The codes `strongbox demo` printed, oldest first.
fn codes_in(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.starts_with("DEMO LOGIN CODE"))
        .filter_map(|l| l.rsplit("-> ").next())
        .map(|c| c.trim().to_string())
        .collect()
}

/// Waits for the demo to print its `n`th code.
fn demo_code(s: &Server, n: usize) -> String {
    let started = Instant::now();
    loop {
        if let Some(c) = codes_in(&s.log()).get(n - 1) {
            assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()), "{c}");
            return c.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no code: {}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The digits a captcha image shows, read the way a simple bot would: the PNG's
/// pixels, matched against the 5×7 digit shapes.
fn read_captcha(s: &Server, token: &str) -> String {
    let png = fetch_bytes(s, &format!("/v1/captcha/{token}"));
    let (w, h, pixels) = decode_png(&png);
    assert_eq!((w, h), (128, 64));
    // The test's own copy of the server's 5×7 digits: it reads the image as an
    // outsider would, so a change to the server's font must be made here too.
    const GLYPHS: [[u8; 7]; 10] = [
        [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
    ];
    // Only the digits' own pixels have the value 30 (noise can erase them, never add
    // them): a cell of the 5×7 grid is inked if any of its 3×3 pixels is, and a digit
    // that would need ink where there is none, or none where there is, scores low.
    let ink = |x: usize, y: usize| x < w && y < h && pixels[y * w + x] == 30;
    let cell = |x0: usize, y0: usize| (0..3).any(|dy| (0..3).any(|dx| ink(x0 + dx, y0 + dy)));
    let mut out = String::new();
    for slot in 0..6 {
        let mut best = (i64::MIN, b'?');
        for (digit, glyph) in GLYPHS.iter().enumerate() {
            for jx in 0..3 {
                for jy in 0..16 {
                    let (x0, y0) = (8 + slot * 19 + jx, 14 + jy);
                    let mut score = 0i64;
                    for (row, bits) in glyph.iter().enumerate() {
                        for col in 0..5 {
                            let on = bits & (0x10 >> col) != 0;
                            match (on, cell(x0 + col * 3, y0 + row * 3)) {
                                (true, true) => score += 1,
                                (false, true) => score -= 10,
                                _ => {}
                            }
                        }
                    }
                    if score > best.0 {
                        best = (score, b'0' + digit as u8);
                    }
                }
            }
        }
        out.push(best.1 as char);
    }
    out
}

fn fetch_bytes(s: &Server, path: &str) -> Vec<u8> {
    let addr = s.base.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&got[..split]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: image/png"), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    got[split + 4..].to_vec()
}

/// Width, height and pixels of an 8-bit grayscale PNG whose image data is in stored
/// deflate blocks (what the server writes).
fn decode_png(png: &[u8]) -> (usize, usize, Vec<u8>) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let mut at = 8;
    let (mut w, mut h, mut z) = (0, 0, Vec::new());
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(&data[8..10], &[8, 0], "8-bit grayscale");
            }
            b"IDAT" => z.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    let mut p = 2;
    loop {
        let last = z[p] & 1 == 1;
        let len = u16::from_le_bytes([z[p + 1], z[p + 2]]) as usize;
        raw.extend_from_slice(&z[p + 5..p + 5 + len]);
        p += 5 + len;
        if last {
            break;
        }
    }
    let pixels = raw
        .chunks(w + 1)
        .flat_map(|row| row[1..].to_vec())
        .collect();
    (w, h, pixels)
}
