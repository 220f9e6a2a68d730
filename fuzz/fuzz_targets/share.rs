//! Shamir share strings (`sbx1-…`, typed at the unseal prompt or posted to
//! `/v1/sys/unseal`): parsed or refused; a parsed share prints back to text that
//! parses to the same share.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongbox_crypto::shamir::{Share, combine};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let shares: Vec<Share> = text.lines().filter_map(|l| Share::parse(l).ok()).collect();
    for s in &shares {
        let text = s.to_text();
        let again = Share::parse(&text).map(|p| p.to_text());
        assert_eq!(
            again.ok().as_deref().map(|t| t.as_str()),
            Some(text.as_str())
        );
    }
    let _ = combine(&shares);
});
