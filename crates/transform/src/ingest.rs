//! CSV bytes -> a typed frame, with bad rows set aside rather than lost.
//!
//! Two passes, both linear:
//! 1. The `csv` crate checks the record structure (field count, quoting, UTF-8) and keeps
//!    the line number of every record; malformed records go to the quarantine.
//! 2. Polars parses the well-formed records as strings, then every declared column is cast to
//!    its type with one vectorized expression. A value that was present but did not parse
//!    marks its row bad, and so does a broken contract ([`crate::contracts`]); the first
//!    failure names the column, value, rule and reason.
//!
//! Compressed objects (gzip, zstd) are decompressed first, recognised by content
//! ([`crate::decode`]).
//!
//! The result: `frame` (typed rows), and `quarantine` (one row per bad input row with
//! `file`, `line`, `column`, `value`, `rule`, `reason`), so rows read = frame rows +
//! quarantined rows. The frame keeps each row's line in `__sluice_line`.

use std::io::Cursor;

use polars::prelude::*;

use crate::contracts::{Contracts, Violation};
use crate::decode::decode;
use crate::error::Context;
use crate::{ColumnType, TransformError};

/// The columns of a quarantine frame, in order. `rule` is a code: `structure` (the record
/// itself is malformed), `type` (a value does not convert), a contract rule (`not_null`,
/// `min`, `max`, `allowed`, `regex`, `valid_date`), `step` (a transform step failed on the
/// row) or `email`.
pub const QUARANTINE_COLUMNS: [&str; 6] = ["file", "line", "column", "value", "rule", "reason"];
/// The input line of each row, carried through the steps (dropped before writing) so that a
/// row a step fails on can be quarantined with its line.
pub const LINE: &str = "__sluice_line";
const BAD: &str = "__sluice_bad";

/// How to read one CSV input.
#[derive(Debug, Clone)]
pub struct CsvSpec {
    /// Declared columns and their types; each must be in the header. Undeclared columns are
    /// kept as strings.
    pub columns: Vec<(String, ColumnType)>,
    /// Strings that mean null (e.g. `NA`); an empty field is null too.
    pub null_values: Vec<String>,
    pub separator: u8,
    /// Row-level rules checked after typing; breaking one quarantines the row.
    pub contracts: Contracts,
}

/// A parsed input: good rows, typed; bad rows with their reasons.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub frame: DataFrame,
    pub quarantine: DataFrame,
    /// Data records in the file (header excluded) = frame.height() + quarantine.height().
    pub rows_read: usize,
}

struct Prescan {
    /// Well-formed records only (header included), or None when every record was fine.
    cleaned: Option<Vec<u8>>,
    lines: Vec<u32>,
    bad_lines: Vec<u32>,
    bad_raw: Vec<String>,
    bad_reasons: Vec<String>,
}

fn prescan(file: &str, bytes: &[u8], spec: &CsvSpec) -> Result<Prescan, TransformError> {
    let mut rdr = csv::ReaderBuilder::new().delimiter(spec.separator).flexible(true).has_headers(false).from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let header_len = match rdr.read_byte_record(&mut record) {
        Ok(true) => record.len(),
        Ok(false) => return Err(TransformError::EmptyFile { file: file.to_string() }),
        Err(e) => return Err(TransformError::BadRow { file: file.to_string(), line: 1, reason: e.to_string() }),
    };
    let header: Vec<String> = record.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect();
    for (name, _) in &spec.columns {
        if !header.iter().any(|h| h == name) {
            return Err(TransformError::MissingColumn {
                file: file.to_string(),
                column: name.clone(),
                header: header.join(","),
            });
        }
    }
    let mut scan = Prescan { cleaned: None, lines: Vec::new(), bad_lines: Vec::new(), bad_raw: Vec::new(), bad_reasons: Vec::new() };
    // byte offset where the current record starts; the previous record ends there
    let mut good_ranges: Vec<(usize, usize)> = Vec::new();
    let mut skipped = false;
    let mut start = rdr.position().byte() as usize;
    good_ranges.push((0, start)); // the header
    loop {
        let line = rdr.position().line() as u32;
        let res = rdr.read_byte_record(&mut record);
        let end = rdr.position().byte() as usize;
        match res {
            Ok(false) => break,
            Ok(true) if record.len() == header_len && std::str::from_utf8(record.as_slice()).is_ok() => {
                scan.lines.push(line);
                good_ranges.push((start, end));
            }
            Ok(true) => {
                let reason = if record.len() != header_len {
                    format!("expected {header_len} fields, found {}", record.len())
                } else {
                    "invalid UTF-8".to_string()
                };
                skipped = true;
                if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
                    // a blank line is not a record
                    start = end;
                    continue;
                }
                scan.bad_lines.push(line);
                scan.bad_raw.push(String::from_utf8_lossy(bytes[start..end].trim_ascii_end()).into_owned());
                scan.bad_reasons.push(reason);
            }
            Err(e) => {
                skipped = true;
                scan.bad_lines.push(line);
                scan.bad_raw.push(String::from_utf8_lossy(&bytes[start..end.max(start)]).trim_end().to_string());
                scan.bad_reasons.push(format!("malformed CSV: {e}"));
            }
        }
        start = end;
    }
    if skipped {
        let mut cleaned = Vec::with_capacity(bytes.len());
        for (s, e) in good_ranges {
            cleaned.extend_from_slice(&bytes[s..e]);
            if !cleaned.ends_with(b"\n") {
                cleaned.push(b'\n');
            }
        }
        scan.cleaned = Some(cleaned);
    }
    Ok(scan)
}

/// Read one CSV object (plain, gzip or zstd). `file` names it in errors and in the
/// quarantine.
pub fn read_csv(file: &str, bytes: &[u8], spec: &CsvSpec) -> Result<Ingested, TransformError> {
    let bytes = &decode(file, bytes, "CSV")?[..];
    let scan = prescan(file, bytes, spec)?;
    let data: &[u8] = scan.cleaned.as_deref().unwrap_or(bytes);
    let null_values = NullValues::AllColumns(spec.null_values.iter().map(|s| s.as_str().into()).collect());
    let raw = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0)) // everything as String; types come from the spec
        .with_parse_options(
            CsvParseOptions::default().with_separator(spec.separator).with_null_values(Some(null_values)),
        )
        .into_reader_with_file_handle(Cursor::new(data))
        .finish()
        .map_err(|source| TransformError::Parse { file: file.to_string(), format: "CSV", source })?;
    if raw.height() != scan.lines.len() {
        return Err(TransformError::BadRow {
            file: file.to_string(),
            line: 0,
            reason: format!("parsed {} rows but found {} records", raw.height(), scan.lines.len()),
        });
    }
    let mut raw = raw;
    raw.with_column(Column::new(LINE.into(), scan.lines))
        .ctx(|| format!("{file}: adding line numbers"))?;
    let typed = spec.columns.iter().map(|(name, ty)| (name.clone(), *ty, ty.parse_expr(name))).collect();
    let (frame, value_errors) = split_bad_rows(file, raw.lazy(), typed, &spec.contracts)?;
    let structural = df!(
        "file" => vec![file; scan.bad_lines.len()],
        "line" => scan.bad_lines,
        "column" => vec![None::<&str>; scan.bad_raw.len()],
        "value" => scan.bad_raw,
        "rule" => vec!["structure"; scan.bad_reasons.len()],
        "reason" => scan.bad_reasons,
    )
    .ctx(|| format!("{file}: quarantine"))?;
    let quarantine = concat([structural.lazy(), value_errors.lazy()], UnionArgs::default())
        .and_then(|lf| lf.sort(["line"], Default::default()).collect())
        .ctx(|| format!("{file}: quarantine"))?;
    let rows_read = frame.height() + quarantine.height();
    Ok(Ingested { frame, quarantine, rows_read })
}

/// Type the declared columns of `raw` (each `(name, type, expression)`) and check the
/// contracts, in one vectorized pass. A row is bad at the first failure, in order: a present
/// value that does not convert, then each contract rule. Returns the good rows (typed
/// columns in place of the raw ones, the file's column order, `__sluice_line` kept) and the
/// quarantine rows. `raw` must have the `__sluice_line` column.
fn split_bad_rows(
    file: &str,
    raw: LazyFrame,
    typed: Vec<(String, ColumnType, Expr)>,
    contracts: &Contracts,
) -> Result<(DataFrame, DataFrame), TransformError> {
    let t = |name: &str| format!("__typed_{name}");
    let mut checks: Vec<Violation> = typed
        .iter()
        .map(|(name, ty, _)| Violation {
            broken: col(name.as_str()).is_not_null().and(col(t(name)).is_null()),
            column: name.clone(),
            value: col(name.as_str()).cast(DataType::String),
            rule: "type",
            reason: format!("cannot read value as {ty}"),
        })
        .collect();
    let typed_col = |c: &str| if typed.iter().any(|(n, _, _)| n == c) { col(t(c)) } else { col(c) };
    let raw_col = |c: &str| col(c).cast(DataType::String);
    checks.extend(contracts.violations(&typed_col, &raw_col));

    // the index of the first broken check (null: a good row), then what it names
    let null_str = || lit(NULL).cast(DataType::String);
    let mut first = lit(NULL).cast(DataType::Int32);
    for (i, c) in checks.iter().enumerate().rev() {
        first = when(c.broken.clone()).then(lit(i as i32)).otherwise(first);
    }
    let pick = |f: &dyn Fn(&Violation) -> Expr| {
        checks.iter().enumerate().rev().fold(null_str(), |acc, (i, c)| when(col(BAD).eq(lit(i as i32))).then(f(c)).otherwise(acc))
    };
    let marked = raw
        .with_columns(typed.iter().map(|(name, _, e)| e.clone().alias(t(name))).collect::<Vec<_>>())
        .with_column(first.alias(BAD))
        .collect()
        .ctx(|| format!("{file}: typing columns"))?;
    let quarantine = marked
        .clone()
        .lazy()
        .filter(col(BAD).is_not_null())
        .select([
            lit(file).alias("file"),
            col(LINE).alias("line"),
            pick(&|c| lit(c.column.as_str())).alias("column"),
            pick(&|c| c.value.clone()).alias("value"),
            pick(&|c| lit(c.rule)).alias("rule"),
            pick(&|c| lit(c.reason.as_str())).alias("reason"),
        ])
        .collect()
        .ctx(|| format!("{file}: quarantine"))?;
    // good rows: typed columns replace their raw strings, in the file's column order
    let keep: Vec<Expr> = marked
        .get_column_names()
        .into_iter()
        .filter(|n| !n.starts_with("__") || n.as_str() == LINE)
        .map(|n| if typed.iter().any(|(c, _, _)| c == n.as_str()) { col(t(n)).alias(n.clone()) } else { col(n.clone()) })
        .collect();
    let frame = marked
        .lazy()
        .filter(col(BAD).is_null())
        .select(keep)
        .collect()
        .ctx(|| format!("{file}: selecting typed columns"))?;
    Ok((frame, quarantine))
}

/// An empty quarantine frame.
pub fn no_quarantine() -> DataFrame {
    DataFrame::new_infer_height(
        QUARANTINE_COLUMNS
            .iter()
            .map(|c| Column::new_empty((*c).into(), if *c == "line" { &DataType::UInt32 } else { &DataType::String }))
            .collect(),
    )
    .unwrap_or_default()
}

/// Typed formats: declared columns must be present; each is converted to its declared type
/// (a value that does not convert quarantines its row) and the contracts are checked. The
/// line of a row is its position (1-based).
fn typed_format(file: &str, frame: DataFrame, spec: &CsvSpec) -> Result<Ingested, TransformError> {
    let names: Vec<String> = frame.get_column_names().iter().map(|s| s.to_string()).collect();
    let mut typed = Vec::with_capacity(spec.columns.len());
    for (name, ty) in &spec.columns {
        let Some(dtype) = frame.column(name).ok().map(|c| c.dtype().clone()) else {
            return Err(TransformError::MissingColumn { file: file.to_string(), column: name.clone(), header: names.join(",") });
        };
        let e = if dtype == DataType::String { ty.parse_expr(name) } else { col(name.as_str()).cast(ty.dtype()) };
        typed.push((name.clone(), *ty, e));
    }
    let n = frame.height() as u32;
    let lines = Column::new(LINE.into(), (1..=n).collect::<Vec<u32>>());
    let frame = frame.hstack(&[lines]).ctx(|| format!("{file}: adding line numbers"))?;
    let (frame, quarantine) = split_bad_rows(file, frame.lazy(), typed, &spec.contracts)?;
    Ok(Ingested { rows_read: frame.height() + quarantine.height(), frame, quarantine })
}

/// Read newline-delimited JSON (one object per line; plain, gzip or zstd).
pub fn read_ndjson(file: &str, bytes: &[u8], spec: &CsvSpec) -> Result<Ingested, TransformError> {
    let bytes = decode(file, bytes, "NDJSON")?;
    let frame = JsonReader::new(Cursor::new(&bytes[..]))
        .with_json_format(JsonFormat::JsonLines)
        .finish()
        .map_err(|source| TransformError::Parse { file: file.to_string(), format: "NDJSON", source })?;
    typed_format(file, frame, spec)
}

/// Read a Parquet object.
pub fn read_parquet(file: &str, bytes: &[u8], spec: &CsvSpec) -> Result<Ingested, TransformError> {
    let bytes = decode(file, bytes, "Parquet")?;
    let frame = ParquetReader::new(Cursor::new(&bytes[..]))
        .finish()
        .map_err(|source| TransformError::Parse { file: file.to_string(), format: "Parquet", source })?;
    typed_format(file, frame, spec)
}

/// Turn the first quarantined row into an error (for inputs that may not quarantine).
pub fn first_bad_row(q: &DataFrame) -> Option<TransformError> {
    if q.height() == 0 {
        return None;
    }
    let s = |name: &str| -> String {
        q.column(name)
            .ok()
            .and_then(|c| c.get(0).ok())
            .map(|v| v.get_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            .unwrap_or_default()
    };
    let line = q.column("line").ok().and_then(|c| c.get(0).ok()).and_then(|v| v.extract::<u64>()).unwrap_or(0);
    let column = s("column");
    if column.is_empty() || column == "null" {
        Some(TransformError::BadRow { file: s("file"), line, reason: format!("{} ({})", s("reason"), s("value")) })
    } else {
        Some(TransformError::BadValue { file: s("file"), line, column, value: s("value"), reason: s("reason") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CsvSpec {
        CsvSpec {
            columns: vec![("a".into(), ColumnType::I32), ("b".into(), ColumnType::F64), ("t".into(), ColumnType::Datetime)],
            null_values: vec!["NA".into()],
            separator: b',',
            contracts: Contracts::default(),
        }
    }

    #[test]
    fn good_rows_are_typed_and_bad_rows_quarantined_with_line_and_column() {
        let csv = b"a,b,t,extra\n1,2.5,2013-01-01T10:00:00Z,x\nzz,1,2013-01-01T11:00:00Z,y\n3,NA,2013-01-01 12:00:00,z\n4,5\n5,6,not a time,w\n";
        let got = read_csv("f.csv", csv, &spec()).unwrap();
        assert_eq!(got.rows_read, 5);
        assert_eq!(got.frame.height(), 2);
        assert_eq!(got.frame.column("a").unwrap().dtype(), &DataType::Int32);
        assert_eq!(got.frame.column("extra").unwrap().dtype(), &DataType::String);
        assert_eq!(got.frame.column("b").unwrap().null_count(), 1, "NA is null, not bad");
        let q = &got.quarantine;
        assert_eq!(q.height(), 3);
        let lines: Vec<u32> = q.column("line").unwrap().u32().unwrap().into_no_null_iter().collect();
        assert_eq!(lines, vec![3, 5, 6]);
        let cols: Vec<Option<&str>> = q.column("column").unwrap().str().unwrap().iter().collect();
        assert_eq!(cols, vec![Some("a"), None, Some("t")]);
        let e = first_bad_row(q).unwrap().to_string();
        assert!(e.contains("f.csv") && e.contains("line 3") && e.contains("'a'") && e.contains("zz"), "{e}");
    }

    #[test]
    fn a_missing_declared_column_names_file_and_column() {
        let e = read_csv("day.csv", b"a,t\n1,2013-01-01T10:00:00Z\n", &spec()).unwrap_err().to_string();
        assert!(e.contains("day.csv") && e.contains("'b'"), "{e}");
    }

    #[test]
    fn contracts_quarantine_rows_with_column_value_and_rule() {
        use crate::contracts::{Contract, DateParts, Rule};
        let spec = CsvSpec {
            columns: vec![("y".into(), ColumnType::I32), ("m".into(), ColumnType::I32), ("d".into(), ColumnType::I32), ("c".into(), ColumnType::Str)],
            null_values: vec![],
            separator: b',',
            contracts: Contracts {
                rules: vec![
                    Contract { column: "m".into(), rule: Rule::Min(1.0) },
                    Contract { column: "m".into(), rule: Rule::Max(12.0) },
                    Contract { column: "c".into(), rule: Rule::NotNull },
                    Contract { column: "c".into(), rule: Rule::Allowed(vec!["AA".into(), "UA".into()]) },
                    Contract { column: "y".into(), rule: Rule::Regex("^20[0-9]{2}$".into()) },
                ],
                dates: vec![DateParts { year: "y".into(), month: "m".into(), day: "d".into() }],
            },
        };
        let csv = b"y,m,d,c\n2013,1,5,AA\n2013,13,1,AA\n,,,\n2013,2,30,UA\n2013,2,28,XX\n1999,2,1,AA\n2013,x,1,AA\n2012,2,29,UA\n";
        let got = read_csv("f.csv", csv, &spec).unwrap();
        assert_eq!((got.rows_read, got.frame.height()), (8, 2));
        let q = &got.quarantine;
        let strs = |c: &str| q.column(c).unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>();
        let lines: Vec<u32> = q.column("line").unwrap().u32().unwrap().into_no_null_iter().collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8]);
        let rules = strs("rule");
        let rules: Vec<&str> = rules.iter().map(|r| r.as_deref().unwrap()).collect();
        assert_eq!(rules, vec!["max", "not_null", "valid_date", "allowed", "regex", "type"]);
        assert_eq!(strs("column")[0].as_deref(), Some("m"));
        assert_eq!(strs("value")[0].as_deref(), Some("13"));
        assert_eq!(strs("value")[2].as_deref(), Some("2013-2-30"));
        assert_eq!(strs("value")[5].as_deref(), Some("x"));
        let kept: Vec<u32> = got.frame.column(LINE).unwrap().u32().unwrap().into_no_null_iter().collect();
        assert_eq!(kept, vec![2, 9], "lines travel with the good rows");
    }

    #[test]
    fn ndjson_values_that_do_not_convert_are_quarantined_by_line() {
        let spec = CsvSpec { columns: vec![("n".into(), ColumnType::I32)], null_values: vec![], separator: b',', contracts: Contracts::default() };
        let got = read_ndjson("t.ndjson", b"{\"n\": \"1\"}\n{\"n\": \"x\"}\n", &spec).unwrap();
        assert_eq!((got.frame.height(), got.quarantine.height()), (1, 1));
        assert_eq!(got.quarantine.column("line").unwrap().u32().unwrap().get(0), Some(2));
    }
}
