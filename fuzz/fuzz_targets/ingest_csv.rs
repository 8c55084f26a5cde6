//! CSV bytes (plain or compressed) through the flight pipeline's schema and contracts:
//! any input is rows, quarantined rows or an error, never a panic, and every row is
//! accounted for.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(ing) = sluice_transform::read_csv("fuzz.csv", data, &common::SPEC) {
        assert_eq!(ing.rows_read, ing.frame.height() + ing.quarantine.height());
    }
});
