//! The key-less verifiers' inputs: receipts and access reports
//! (`receipt verify`), checkpoints (`audit verify --from-checkpoint`) and public
//! keys. Any document is checked or refused; a verdict needs a valid signature.
#![no_main]

use futures_util::FutureExt;
use libfuzzer_sys::fuzz_target;
use strongbox_core::verify::{Checkpoint, parse_public_key, parse_strict, verify_receipt};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (doc, key) = text.split_once('\0').unwrap_or((text, ""));
    let key = parse_public_key(key).ok();
    let Ok(doc) = parse_strict(doc) else {
        return;
    };
    let _ = Checkpoint::from_json(&doc);
    // Without a store the check awaits nothing: it is done on the first poll.
    let _ = verify_receipt(&doc, key.as_deref(), None).now_or_never();
});
