//! The file vault over v2, on every backend: the Java suite's file flow, the raw
//! and streamed forms, refusals that change nothing, no plaintext in the store,
//! erasure with the person, expiry, and a 100 MB file through flat memory.

use std::io::Read;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::backend_tests;
use crate::harness::{Backend, Body, Reply, Server};

backend_tests!(
    files_over_v2,
    files_are_erased_with_the_person_and_expire,
    a_100_mb_file_streams_through_flat_memory,
    files_in_a_file_store,
);

fn v2(s: &Server, method: &str, body: Value) -> Reply {
    s.call("POST", &format!("/v2/{method}"), Body::Json(body))
}

fn b64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        out.push_str(&"=".repeat(3 - chunk.len()));
    }
    out
}

fn with(base: &Value, extra: Value) -> Value {
    let mut body = base.clone();
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
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

/// A raw request with a byte body and headers, answered as bytes.
fn raw_call(s: &Server, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Vec<u8>) {
    let mut req = ureq::http::Request::builder()
        .method("POST")
        .uri(format!("{}{path}", s.base))
        .header("X-Bunker-Token", &s.token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = slow_agent().run(req.body(body).unwrap()).unwrap();
    let status = resp.status().as_u16();
    let mut out = Vec::new();
    resp.body_mut().as_reader().read_to_end(&mut out).unwrap();
    (status, out)
}

fn files_over_v2(b: &Backend) {
    let s = Server::start_with(b, &["--list-users", "true"]);
    let marker = "zq-passport-scan-7731";
    let ann = s.create_user(json!({"login": "ann", "email": "ann@example.com"}));
    let bo = s.create_user(json!({"login": "bo"}));
    let person = json!({"mode": "login", "identity": "ann"});
    let content = format!("%PDF-1.4 {marker} \u{0}\u{1}").into_bytes();
    let made = v2(
        &s,
        "FileCreate",
        with(
            &person,
            json!({"filename": "zq-ann-passport.pdf", "filedata": b64(&content), "mimetype": "application/pdf",
                "tags": ["notes", "KYC", "kyc"], "finaltime": "1d"}),
        ),
    )
    .expect(200);
    let id = made["fileuuid"].as_str().unwrap().to_string();
    assert_eq!(made["token"], ann.as_str());
    assert_eq!(
        made["tags"],
        json!(["kyc", "notes"]),
        "lower-cased, sorted, once"
    );
    assert_eq!(made["duplicate"], false);
    // By uuid and by name, in JSON and raw.
    let got = v2(&s, "FileGet", with(&person, json!({"fileuuid": id}))).expect(200);
    assert_eq!(got["filename"], "zq-ann-passport.pdf");
    assert_eq!(got["mimetype"], "application/pdf");
    assert_eq!(got["size"], content.len());
    assert_eq!(got["filedata"], b64(&content));
    let by_name = v2(
        &s,
        "FileGet",
        with(&person, json!({"filename": "zq-ann-passport.pdf"})),
    )
    .expect(200);
    assert_eq!(by_name["fileuuid"], id.as_str());
    let (status, bytes) = raw_call(
        &s,
        "/v2/FileGet",
        &[("Content-Type", "application/json")],
        serde_json::to_vec(&with(&person, json!({"fileuuid": id, "raw": true}))).unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(bytes, content);
    // Listings and tags.
    let list = |tag: Option<&str>| -> Value {
        let body = match tag {
            Some(t) => with(&person, json!({"tag": t})),
            None => person.clone(),
        };
        v2(&s, "FileListUserFiles", body).expect(200)["files"].clone()
    };
    assert_eq!(list(None).as_array().unwrap().len(), 1);
    let row = &list(None)[0];
    assert_eq!(row["doublehash"].as_str().unwrap().len(), 64, "{row}");
    assert_eq!(list(Some("kyc")).as_array().unwrap().len(), 1);
    assert_eq!(list(Some("invoice")), json!([]));
    let tags = v2(
        &s,
        "FileReplaceTags",
        with(&person, json!({"fileuuid": id, "tags": "kyc,verified"})),
    )
    .expect(200);
    assert_eq!(tags["tags"], json!(["kyc", "verified"]));
    assert_eq!(list(Some("notes")), json!([]));
    // The same content again: the same file.
    let again = v2(
        &s,
        "FileCreate",
        with(
            &person,
            json!({"filename": "copy.pdf", "filedata": b64(&content)}),
        ),
    )
    .expect(200);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["fileuuid"], id.as_str());
    // Streamed: raw content, arguments in a header; the newest of a name wins.
    let header = json!({"mode": "token", "identity": ann, "filename": "zq-ann-passport.pdf", "tags": ["kyc"]})
        .to_string();
    let streamed = b"second scan, streamed".to_vec();
    let (status, reply) = raw_call(
        &s,
        "/v2/FileCreate",
        &[
            ("Content-Type", "application/octet-stream"),
            ("X-Bunker-File", &header),
        ],
        streamed.clone(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    let second = reply["fileuuid"].as_str().unwrap().to_string();
    assert_ne!(second, id);
    let newest = v2(
        &s,
        "FileGet",
        with(&person, json!({"filename": "zq-ann-passport.pdf"})),
    )
    .expect(200);
    assert_eq!(newest["fileuuid"], second.as_str());
    assert_eq!(
        newest["mimetype"], "application/pdf",
        "guessed from the name"
    );
    // Across people: the tag listing behind an unlock.
    let unlock = v2(&s, "BulkListUnlock", json!({})).expect(200)["unlockuuid"].clone();
    let rows = v2(
        &s,
        "BulkListFilesByTag",
        json!({"unlockuuid": unlock, "tag": "kyc"}),
    )
    .expect(200);
    assert_eq!(rows["total"], 2, "{rows}");
    assert!(
        rows["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["token"] == ann.as_str())
    );
    assert_eq!(
        v2(&s, "BulkListFilesByTag", json!({"tag": "kyc"})).status,
        403
    );
    // Refusals: each a 4xx with a message, and nothing stored.
    let before = count(&s, "file");
    let other = json!({"mode": "token", "identity": bo});
    for (method, body, status) in [
        (
            "FileCreate",
            with(&person, json!({"filename": "x", "filedata": "not base64!"})),
            400,
        ),
        (
            "FileCreate",
            with(&person, json!({"filedata": b64(b"x")})),
            400,
        ),
        (
            "FileCreate",
            with(&person, json!({"filename": "a/b", "filedata": b64(b"x")})),
            400,
        ),
        (
            "FileCreate",
            with(
                &person,
                json!({"filename": "x", "filedata": b64(b"x"), "tags": ["Bad Tag"]}),
            ),
            400,
        ),
        (
            "FileCreate",
            with(
                &person,
                json!({"filename": "x", "filedata": b64(b"x"), "tags": 7}),
            ),
            400,
        ),
        (
            "FileCreate",
            json!({"mode": "login", "identity": "nobody", "filename": "x", "filedata": b64(b"x")}),
            404,
        ),
        ("FileGet", person.clone(), 400),
        (
            "FileGet",
            with(&person, json!({"fileuuid": "not-a-uuid"})),
            400,
        ),
        (
            "FileGet",
            with(
                &person,
                json!({"fileuuid": "00000000-0000-4000-8000-000000000000"}),
            ),
            404,
        ),
        // Another person's file is not found through this person.
        ("FileGet", with(&other, json!({"fileuuid": id})), 404),
        ("FileDelete", with(&other, json!({"fileuuid": id})), 404),
        (
            "FileReplaceTags",
            with(&person, json!({"fileuuid": id, "tags": [1]})),
            400,
        ),
    ] {
        let r = v2(&s, method, body.clone());
        assert_eq!(r.status, status, "{method} {body}: {}", r.json);
        assert_eq!(r.json["status"], "error", "{method}");
        assert!(r.json["message"].is_string(), "{method}");
    }
    let (status, _) = raw_call(
        &s,
        "/v2/FileCreate",
        &[("Content-Type", "application/octet-stream")],
        b"no arguments".to_vec(),
    );
    assert_eq!(status, 400);
    let (status, _) = raw_call(
        &s,
        "/v2/FileCreate",
        &[
            ("Content-Type", "application/octet-stream"),
            ("X-Bunker-File", "{not json"),
        ],
        b"x".to_vec(),
    );
    assert_eq!(status, 400);
    assert_eq!(
        s.call_as(
            None,
            "POST",
            "/v2/FileGet",
            Body::Json(with(&person, json!({"fileuuid": id})))
        )
        .status,
        401
    );
    assert_eq!(count(&s, "file"), before, "refusals store nothing");
    // Nothing of the name, the content or the type is in the store in the clear.
    let raw = s.store.raw_contents();
    for needle in [marker, "zq-ann-passport", "application/pdf", "second scan"] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "`{needle}` is in the store in plaintext"
        );
    }
    // Deleted: gone from every lookup, its content with it.
    let gone = v2(&s, "FileDelete", with(&person, json!({"fileuuid": id}))).expect(200);
    assert_eq!(gone["token"], ann.as_str());
    assert_eq!(
        v2(&s, "FileGet", with(&person, json!({"fileuuid": id}))).status,
        404
    );
    assert_eq!(list(None).as_array().unwrap().len(), 1);
    assert_eq!(
        count(&s, "filechunk"),
        1,
        "only the streamed file's chunk is left"
    );
    // Every file call is in the audit log.
    let log = v2(
        &s,
        "AuditListUserEvents",
        json!({"mode": "token", "identity": ann, "limit": 100}),
    )
    .expect(200);
    let names: Vec<String> = log["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.to_string())
        .collect();
    for action in [
        "store file",
        "get file",
        "list files",
        "change file tags",
        "delete file",
    ] {
        assert!(names.iter().any(|n| n.contains(action)), "{action}: {log}");
    }
}

fn files_are_erased_with_the_person_and_expire(b: &Backend) {
    let s = Server::start_with(b, &["--sweep-interval", "1"]);
    let ann = s.create_user(json!({"login": "ann"}));
    let person = json!({"mode": "token", "identity": ann});
    let short = v2(
        &s,
        "FileCreate",
        with(
            &person,
            json!({"filename": "a.txt", "filedata": b64(b"short-lived"), "finaltime": 2}),
        ),
    )
    .expect(200)["fileuuid"]
        .clone();
    // Two chunks and a bit.
    let big = vec![7u8; 2 * 1024 * 1024 + 10];
    v2(
        &s,
        "FileCreate",
        with(&person, json!({"filename": "b.bin", "filedata": b64(&big)})),
    )
    .expect(200);
    assert_eq!(count(&s, "filechunk"), 4);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // Expired on read at once, and swept with its content.
    assert_eq!(
        v2(&s, "FileGet", with(&person, json!({"fileuuid": short}))).status,
        404
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while count(&s, "filechunk") != 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired file was not swept"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let got = v2(&s, "FileGet", with(&person, json!({"filename": "b.bin"}))).expect(200);
    assert_eq!(got["size"], big.len());
    // Erasing the person erases their files.
    s.call("DELETE", &format!("/v1/user/token/{ann}"), Body::None)
        .expect(200);
    assert_eq!(count(&s, "file"), 0);
    assert_eq!(count(&s, "filechunk"), 0);
    assert_eq!(v2(&s, "FileListUserFiles", person.clone()).status, 404);
}

/// `--file-store DIR`: the sealed chunks are files there (no plaintext, no body in
/// the database), read back, deleted with the file, swept after an erasure, and a
/// backup carries them into a store without a file store.
fn files_in_a_file_store(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    let files_s = files.display().to_string();
    let s = Server::start_with(b, &["--file-store", &files_s, "--sweep-interval", "1"]);
    let ann = s.create_user(json!({"login": "ann"}));
    let person = json!({"mode": "token", "identity": ann});
    let marker = b"KYC-SCAN-OF-ANN-";
    let content: Vec<u8> = marker
        .iter()
        .copied()
        .cycle()
        .take(2 * 1024 * 1024 + 5)
        .collect();
    let uuid = v2(
        &s,
        "FileCreate",
        with(
            &person,
            json!({"filename": "scan.bin", "filedata": b64(&content)}),
        ),
    )
    .expect(200)["fileuuid"]
        .as_str()
        .unwrap()
        .to_string();
    let on_disk: Vec<std::path::PathBuf> = walk(&files);
    assert_eq!(on_disk.len(), 3, "three chunks: {on_disk:?}");
    for f in &on_disk {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker),
            "plaintext in {}",
            f.display()
        );
    }
    let in_db = s
        .store
        .sql("SELECT COUNT(*) FROM records WHERE kind = 'filechunk' AND body IS NOT NULL");
    assert_eq!(in_db.trim(), "0", "no chunk body in the database");
    let got = v2(&s, "FileGet", with(&person, json!({"fileuuid": uuid}))).expect(200);
    assert_eq!(got["filedata"], b64(&content));
    // Another file, deleted: its chunks go at once.
    let gone = v2(
        &s,
        "FileCreate",
        with(
            &person,
            json!({"filename": "gone.txt", "filedata": b64(b"to be deleted")}),
        ),
    )
    .expect(200)["fileuuid"]
        .clone();
    assert_eq!(walk(&files).len(), 4);
    v2(&s, "FileDelete", with(&person, json!({"fileuuid": gone}))).expect(200);
    assert_eq!(walk(&files).len(), 3);
    // A backup holds the content; restored without a file store, it reads the same.
    let backup = dir.path().join("files.backup");
    let backup_s = backup.display().to_string();
    let out = std::process::Command::new(crate::harness::BIN)
        .args([
            "backup", "--out", &backup_s, "--addr", &s.base, "--token", &s.token,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Erasing the person: the records go in the erasure's commit, the chunk files
    // at the next sweep.
    s.call("DELETE", &format!("/v1/user/token/{ann}"), Body::None)
        .expect(200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !walk(&files).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "an erased person's chunks were not swept"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Into an empty store of the same backend, served with the same root key.
    let store = crate::harness::StoreLoc::new(b);
    let mut args: Vec<String> = vec!["restore".into(), "--in".into(), backup_s];
    args.extend(store.args.iter().cloned());
    let out = std::process::Command::new(crate::harness::BIN)
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = Server::serve(store, s.root_key.clone(), s.token.clone(), Vec::new());
    let got = copy.call(
        "POST",
        "/v2/FileGet",
        Body::Json(with(&person, json!({"fileuuid": uuid}))),
    );
    assert_eq!(got.status, 200, "{}", got.json);
    assert_eq!(got.json["filedata"], b64(&content));
}

/// The regular files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// An agent for 100 MB each way: the harness's 30 s for a whole exchange is short
/// on a loaded two-core machine.
fn slow_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(300)))
        .build()
        .new_agent()
}

/// Deterministic content of any length, made as it is read.
struct Pattern {
    left: u64,
    state: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for b in &mut buf[..n] {
            self.state = self
                .state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (self.state >> 56) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Peak resident memory of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn a_100_mb_file_streams_through_flat_memory(b: &Backend) {
    const SIZE: u64 = 100 * 1000 * 1000;
    let s = Server::start(b);
    let ann = s.create_user(json!({"login": "ann"}));
    // Warm up the paths (connection pools, first allocations) before the baseline.
    v2(
        &s,
        "FileCreate",
        json!({"mode": "token", "identity": ann, "filename": "warm.bin", "filedata": b64(&[1u8; 3 * 1024 * 1024 / 2])}),
    )
    .expect(200);
    let baseline = peak_rss_kib(s.pid());
    let mut expected = Sha256::new();
    let mut source = Pattern {
        left: SIZE,
        state: 1,
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = source.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        expected.update(&buf[..n]);
    }
    let expected = expected.finalize();
    let header = json!({"mode": "token", "identity": ann, "filename": "big.bin"}).to_string();
    let mut resp = slow_agent()
        .post(format!("{}/v2/FileCreate", s.base))
        .header("X-Bunker-Token", &s.token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Bunker-File", &header)
        .send(ureq::SendBody::from_owned_reader(Pattern {
            left: SIZE,
            state: 1,
        }))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let made: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    let id = made["fileuuid"].as_str().unwrap().to_string();
    let mut resp = slow_agent()
        .post(format!("{}/v2/FileGet", s.base))
        .header("X-Bunker-Token", &s.token)
        .send_json(json!({"mode": "token", "identity": ann, "fileuuid": id, "raw": true}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-length"].to_str().unwrap(),
        SIZE.to_string()
    );
    let mut got = Sha256::new();
    let mut reader = resp.body_mut().as_reader();
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        got.update(&buf[..n]);
    }
    assert_eq!(total, SIZE);
    assert_eq!(
        got.finalize(),
        expected,
        "the content read back is the content stored"
    );
    let grown = peak_rss_kib(s.pid()).saturating_sub(baseline);
    // Bounded by what is fixed, not by the file: a few chunks in flight, and on
    // SQLite the writer's page cache (48 MiB), which any large write fills.
    assert!(
        grown < 64 * 1024,
        "the server's peak memory grew by {grown} KiB for a 100 MB file"
    );
    // The JSON form refuses what it cannot hold, and says how to ask.
    let r = v2(
        &s,
        "FileGet",
        json!({"mode": "token", "identity": ann, "fileuuid": id}),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json["message"].as_str().unwrap().contains("raw"),
        "{}",
        r.json
    );
}
