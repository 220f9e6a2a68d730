//! The profile schema (`--user-schema`): any document is compiled or refused with
//! a message, and a compiled one checks any profile without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use strongbox_core::UserSchema;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The schema, then an optional profile after a NUL.
    let (schema, profile) = text.split_once('\0').unwrap_or((text, "{}"));
    let Ok(schema) = UserSchema::parse(schema) else {
        return;
    };
    if let Ok(doc) = serde_json::from_str::<Value>(profile) {
        let _ = schema.check(&doc);
        let _ = schema.classes_in(&doc);
        let _ = schema.preserved(&doc);
        let _ = schema.locked_change(&doc, &Value::Object(Default::default()));
    }
});
