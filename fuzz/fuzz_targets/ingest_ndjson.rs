//! NDJSON bytes through the flight pipeline's schema and contracts: never a panic, and
//! every row accounted for.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(ing) = sluice_transform::read_ndjson("fuzz.ndjson", data, &common::SPEC) {
        assert_eq!(ing.rows_read, ing.frame.height() + ing.quarantine.height());
    }
});
