//! JSON Patch and merge patch bodies applied to a document: any body is refused or
//! applied, and an applied change leaves a JSON object within the size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use strongbox_core::Change;

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(change) = Change::from_json(body) else {
        return;
    };
    let doc = json!({"login": "alice", "email": "a@example.com", "tags": ["x", {"y": [1, 2]}]});
    let Value::Object(doc) = doc else { return };
    if let Ok(new) = change.apply_to(doc, "fuzz", LIMIT) {
        let len = serde_json::to_vec(&Value::Object(new.clone())).map_or(0, |v| v.len());
        assert!(len <= LIMIT, "{len} bytes");
        let _: Map<String, Value> = new;
    }
});
