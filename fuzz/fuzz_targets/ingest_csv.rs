//! CSV bytes (plain or compressed) through the flight pipeline's schema and contracts:
//! any input is rows, quarantined rows or an error, never a panic or an internal error,
//! every row is accounted for, and a plain input reads like its CRLF twin (the prescan's
//! fast and careful paths and Polars agree; crates/transform/tests/twins).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;
#[path = "../../crates/transform/tests/twins/mod.rs"]
mod twins;

fuzz_target!(|data: &[u8]| {
    twins::assert_reads_like_its_crlf_twin(data, &common::SPEC);
});
