//! Request body decoding: any bytes, under either content type, are decoded or
//! refused with a 4xx error, never a panic; what decodes as JSON nests no deeper
//! than the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let content_type = match selector % 4 {
        0 => Some("application/json"),
        1 => Some("application/x-www-form-urlencoded"),
        2 => Some("Application/JSON; charset=utf-8"),
        _ => None,
    };
    match strongbox_server::decode_body(content_type, bytes) {
        Ok(Some(v)) => assert!(depth(&v) <= strongbox_server::MAX_JSON_DEPTH),
        Ok(None) => assert!(bytes.iter().all(u8::is_ascii_whitespace)),
        Err(e) => assert!(!e.message.is_empty()),
    }
});
