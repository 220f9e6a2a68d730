//! Expiry strings (`"10m"`, `"1d"`, seconds) and paging values: parsed or refused,
//! never negative, never a panic on overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use strongbox_core::Page;
use strongbox_core::expiry::{parse_duration, requested_seconds};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(secs) = parse_duration(text) {
        assert!(secs >= 0, "{secs}");
    }
    let now = 1_800_000_000;
    let _ = requested_seconds(Some(&Value::from(text)), now);
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        let _ = requested_seconds(Some(&v), now);
    }
    let (a, b) = text.split_once('&').unwrap_or((text, ""));
    if let Ok(page) = Page::parse(Some(a), Some(b)) {
        let rows = page.apply((0..20).collect::<Vec<u8>>());
        assert!(rows.len() <= 20);
    }
});
