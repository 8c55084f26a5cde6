//! Raw RFC 5322 messages: parsed into one row or quarantined with a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // two objects: the input, and the input split in half (a message cut short)
    let half = &data[..data.len() / 2];
    if let Ok(ing) = sluice_transform::read_emails(&[("a.eml", data), ("b.eml", half)]) {
        assert_eq!(ing.rows_read, 2);
        assert_eq!(ing.rows_read, ing.frame.height() + ing.quarantine.height());
    }
});
