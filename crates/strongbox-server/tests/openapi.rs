//! The API document: the committed copy (`docs/openapi.json`) is what the code
//! builds, and the document is whole (every reference resolves, every operation has
//! its own id and answers with documented errors).

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly at the first surprise; unwrap is how it says so"
)]

use serde_json::Value;

const COMMITTED: &str = include_str!("../../../docs/openapi.json");

fn document() -> Value {
    serde_json::from_str(strongbox_server::openapi_document()).unwrap()
}

#[test]
fn committed_copy_matches_the_code() {
    assert!(
        COMMITTED == strongbox_server::openapi_document(),
        "docs/openapi.json differs from the document the code builds: \
         run `cargo run -p strongbox -- openapi > docs/openapi.json` and commit it"
    );
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 100, "{}", refs.len());
    for r in refs {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn operations_are_whole() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["token"]["name"],
        "X-Bunker-Token"
    );
    let mut ids = std::collections::BTreeSet::new();
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_string()), "{id} is used twice");
            assert!(
                !op["summary"].as_str().unwrap().is_empty(),
                "{method} {path}"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("200"), "{method} {path}");
            assert!(responses.contains_key("400"), "{method} {path}");
            // A path parameter is declared for every `{name}` in the path.
            let declared = op["parameters"].as_array().map_or(0, |p| {
                p.iter()
                    .filter(|p| p["$ref"].as_str().unwrap_or("").contains("/parameters/"))
                    .count()
            });
            let in_path = path.matches('{').count();
            assert!(declared >= in_path, "{method} {path}");
            if op["security"] != serde_json::json!([]) {
                assert!(responses.contains_key("401"), "{method} {path}");
            }
        }
    }
    // The routes Databunker's clients rely on are all there.
    for (method, path) in [
        ("post", "/v1/user"),
        ("get", "/v1/user/{mode}/{identity}"),
        ("put", "/v1/user/{mode}/{identity}"),
        ("delete", "/v1/user/{mode}/{identity}"),
        ("post", "/v1/userapp/{mode}/{identity}/{app}"),
        ("post", "/v1/session/{session}"),
        ("get", "/v1/get/{record}"),
        ("post", "/v1/agreement/{brief}/{mode}/{identity}"),
        ("get", "/v1/audit/admin"),
        ("get", "/v1/sys/health"),
        ("post", "/v1/sys/unseal"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(ids.len() >= 70, "{}", ids.len());
}
