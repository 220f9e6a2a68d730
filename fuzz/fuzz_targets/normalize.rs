//! Index normalisation (email, phone, login, custom): any text is normalised or
//! not indexable, and normalising twice gives the same value (a lookup finds what
//! a create stored).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongbox_core::Normalizer;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let n = Normalizer::default();
    for index in ["email", "phone", "login", "custom"] {
        if let Some(once) = n.normalize(index, text) {
            assert!(!once.is_empty(), "{index}");
            assert_eq!(
                n.normalize(index, &once).as_deref(),
                Some(once.as_str()),
                "{index}"
            );
        }
    }
});
