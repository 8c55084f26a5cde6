//! The CRLF-twin property, shared by `tests/crlf_twins.rs` and the `ingest_csv` fuzz target
//! (fuzz/fuzz_targets/ingest_csv.rs includes this file): a CSV object and its twin with
//! `\r\n` line ends read the same, so the prescan's fast path, its careful path and Polars
//! can never silently disagree.

use sluice_transform::polars::prelude::*;
use sluice_transform::{read_csv, CsvSpec, TransformError};

/// `data` with every `\n` that ends no `\r\n` made one.
pub fn crlf_twin(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// String values and column names with `\r\n` read as `\n`: a line end inside a quoted
/// field (of a record, or of the header) is the one thing a twin changes.
fn normalized(df: &DataFrame) -> DataFrame {
    let columns = df
        .columns()
        .iter()
        .map(|c| {
            let name: PlSmallStr = c.name().replace("\r\n", "\n").into();
            match c.str() {
                Ok(s) => {
                    let v: StringChunked = s.iter().map(|v| v.map(|v| v.replace("\r\n", "\n"))).collect();
                    v.with_name(name).into_column()
                }
                Err(_) => c.clone().with_name(name),
            }
        })
        .collect();
    DataFrame::new(df.height(), columns).expect("same columns")
}

/// Read `data` and its CRLF twin: both fail alike, or both give the same rows (the same
/// lines included) and the same quarantine. Neither is ever an internal error. Compressed
/// inputs are read only once (their twin is another stream).
pub fn assert_reads_like_its_crlf_twin(data: &[u8], spec: &CsvSpec) {
    let lf = read_csv("twin.csv", data, spec);
    if let Ok(ing) = &lf {
        assert_eq!(ing.rows_read, ing.frame.height() + ing.quarantine.height(), "every row accounted for");
    }
    assert!(!matches!(lf, Err(TransformError::Internal { .. })), "{:?}", lf.err());
    if data.starts_with(&[0x1f, 0x8b]) || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return;
    }
    let crlf = read_csv("twin.csv", &crlf_twin(data), spec);
    match (lf, crlf) {
        (Ok(a), Ok(b)) => {
            let (fa, fb) = (normalized(&a.frame), normalized(&b.frame));
            assert!(fa.schema() == fb.schema() && fa.equals_missing(&fb), "rows differ:\n{fa}\n{fb}");
            let (qa, qb) = (normalized(&a.quarantine), normalized(&b.quarantine));
            assert!(qa.equals_missing(&qb), "quarantines differ:\n{qa}\n{qb}");
        }
        (Err(a), Err(b)) => assert_eq!(std::mem::discriminant(&a), std::mem::discriminant(&b), "{a} / {b}"),
        (a, b) => panic!("LF read {:?}, its CRLF twin {:?}", a.map(|i| i.rows_read), b.map(|i| i.rows_read)),
    }
}
