//! The backup reader (`strongbox restore`, `audit verify --backup`): any file is
//! read whole or refused with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = strongbox_core::backup::read_backup(data);
});
