//! CSV bytes -> a typed frame, with bad rows set aside rather than lost.
//!
//! Two passes, both linear:
//! 1. The `csv` crate checks the record structure (field count, quoting, UTF-8) and keeps
//!    the line number of every record; malformed records go to the quarantine.
//! 2. Polars parses the well-formed records as strings, then every declared column is cast to
//!    its type with one vectorized expression. (The usual, clean case reads the numbers as
//!    such at once: through `plain_csv` where the CSV is plain enough, else Polars' reader.)
//!    A value that was present but did not parse marks its row bad, and so does a broken
//!    contract ([`crate::contracts`]); the first failure names the column, value, rule and
//!    reason.
//!
//! Compressed objects (gzip, zstd) are decompressed first, recognised by content
//! ([`crate::decode`]). The first pass, and how it stays in step with Polars whatever the
//! line ends, is [`crate::prescan`].
//!
//! The result: `frame` (typed rows), and `quarantine` (one row per bad input row with
//! `file`, `line`, `column`, `value`, `rule`, `reason`), so rows read = frame rows +
//! quarantined rows. The frame keeps each row's line in `__sluice_line`.

use std::io::Cursor;

use polars::prelude::*;

use crate::contracts::{Contracts, Violation};
use crate::decode::decode;
use crate::error::Context;
use crate::plain_csv;
use crate::prescan::{prescan, strip_bom, Prescan};
use crate::steps::OBJECT;
use crate::types::parse_datetime;
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

/// One CSV object parsed but not yet typed: every well-formed record as strings (with
/// `__sluice_line`), and the malformed ones as quarantine rows.
#[derive(Debug, Clone)]
pub struct RawCsv {
    pub frame: DataFrame,
    /// Quarantine rows (rule `structure`), in the [`QUARANTINE_COLUMNS`] layout.
    pub structural: DataFrame,
}

impl RawCsv {
    /// Data records in the object (header and blank lines excluded).
    pub fn records(&self) -> usize {
        self.frame.height() + self.structural.height()
    }
}

/// Parse one CSV object (plain, gzip or zstd) into strings; [`type_rows`] types them.
/// `file` names it in errors and in the quarantine.
pub fn parse_csv(file: &str, bytes: &[u8], spec: &CsvSpec) -> Result<RawCsv, TransformError> {
    let decoded = decode(file, bytes, "CSV")?;
    let bytes = strip_bom(&decoded);
    let scan = prescan(file, bytes, spec.separator, &spec.columns)?;
    let mut frame = strings(file, scan.cleaned.as_deref().unwrap_or(bytes), scan.lines.len(), spec, false)?;
    frame.with_column(Column::new(LINE.into(), scan.lines.as_slice())).ctx(|| format!("{file}: adding line numbers"))?;
    Ok(RawCsv { frame, structural: structural(file, scan)? })
}

/// Parse several CSV objects with the same header line as one CSV (one engine call instead
/// of one per object): their records as strings with `__sluice_line` and `__sluice_obj`
/// (the object's index), and their malformed records (with `__sluice_obj`). `None` when
/// the headers differ: parse them one by one.
pub fn parse_csvs(objects: &[(&str, &[u8])], spec: &CsvSpec) -> Result<Option<RawCsv>, TransformError> {
    let t0 = std::time::Instant::now();
    // sized once (compressed objects grow it): growing it copied a block's bytes again and again
    let mut combined: Vec<u8> = Vec::with_capacity(objects.iter().map(|(_, b)| b.len() + 1).sum());
    let (mut lines, mut objs, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    let mut header: Option<Vec<u8>> = None;
    for (i, (file, bytes)) in objects.iter().enumerate() {
        let decoded = decode(file, bytes, "CSV")?;
        let bytes = strip_bom(&decoded);
        let mut scan = prescan(file, bytes, spec.separator, &spec.columns)?;
        let cleaned = scan.cleaned.take();
        let (head, body) = cleaned.as_deref().unwrap_or(bytes).split_at(scan.header_end);
        match &header {
            None => {
                header = Some(head.trim_ascii_end().to_vec());
                combined.extend_from_slice(head.trim_ascii_end());
                combined.push(b'\n');
            }
            Some(h) if h[..] == *head.trim_ascii_end() => {}
            Some(_) => return Ok(None),
        }
        combined.extend_from_slice(body);
        if !body.is_empty() && !body.ends_with(b"\n") {
            combined.push(b'\n');
        }
        objs.extend(std::iter::repeat_n(i as u32, scan.lines.len()));
        lines.append(&mut scan.lines);
        bad.push(with_object(file, structural(file, scan)?, i as u32)?);
    }
    let names: Vec<&str> = objects.iter().map(|(f, _)| *f).collect();
    let what = names.first().map(|f| f.to_string()).unwrap_or_default();
    let prescan_s = t0.elapsed().as_secs_f64();
    // numbers parsed as such at once (the usual, clean case); as text if any does not parse,
    // to find the rows that do not
    let mut frame = match strings(&what, &combined, lines.len(), spec, true) {
        Ok(frame) => frame,
        Err(e) => {
            tracing::debug!(file = what, error = %e, "a number did not parse: reading as text");
            strings(&what, &combined, lines.len(), spec, false)?
        }
    };
    frame.with_column(Column::new(LINE.into(), lines)).ctx(|| format!("{what}: adding line numbers"))?;
    frame.with_column(Column::new(OBJECT.into(), objs)).ctx(|| format!("{what}: numbering objects"))?;
    // stacked through a query only when two objects have bad lines (usually none has)
    let structural = match bad.iter().filter(|b| b.height() > 0).count() {
        0 | 1 if !bad.is_empty() => {
            let i = bad.iter().position(|b| b.height() > 0).unwrap_or(0);
            bad.swap_remove(i)
        }
        _ => concat(bad.into_iter().map(IntoLazy::lazy).collect::<Vec<_>>(), UnionArgs::default())
            .and_then(|lf| lf.collect())
            .ctx(|| format!("{what}: quarantine"))?,
    };
    tracing::debug!(prescan_s, parse_s = t0.elapsed().as_secs_f64() - prescan_s, "parsed");
    Ok(Some(RawCsv { frame, structural }))
}

/// Well-formed CSV records as strings (`numbers`: the declared numeric columns as their
/// type, failing if a value does not parse); `records` of them are expected.
fn strings(file: &str, data: &[u8], records: usize, spec: &CsvSpec, numbers: bool) -> Result<DataFrame, TransformError> {
    // an empty field is null without being listed (the reader's missing_is_null); listing ""
    // only matters for a quoted "", and costs a second comparison for every field
    let quoted = memchr::memchr(b'"', data).is_some();
    let mut listed: Vec<PlSmallStr> = spec.null_values.iter().filter(|v| quoted || !v.is_empty()).map(|s| s.as_str().into()).collect();
    let null_values = match listed.len() {
        0 => None,
        1 => listed.pop().map(NullValues::AllColumnsSingle),
        _ => Some(NullValues::AllColumns(listed)),
    };
    let numeric: Schema = spec
        .columns
        .iter()
        .filter(|(_, ty)| numbers && matches!(ty, ColumnType::I32 | ColumnType::I64 | ColumnType::F32 | ColumnType::F64))
        .map(|(name, ty)| Field::new(name.as_str().into(), ty.dtype()))
        .collect();
    if numbers && !quoted {
        let types: Vec<(&str, DataType)> = numeric.iter().map(|(name, dtype)| (name.as_str(), dtype.clone())).collect();
        let nulls: Vec<&str> = spec.null_values.iter().map(String::as_str).filter(|v| !v.is_empty()).collect();
        if let Some(frame) = plain_csv::read(data, spec.separator, &types, &nulls, records) {
            return same_records(file, frame, records);
        }
    }
    let raw = CsvReadOptions::default()
        .with_has_header(true)
        .with_schema_overwrite((!numeric.is_empty()).then(|| Arc::new(numeric)))
        .with_infer_schema_length(Some(0)) // everything as String; types come from the spec
        .with_parse_options(
            CsvParseOptions::default().with_separator(spec.separator).with_null_values(null_values),
        )
        .into_reader_with_file_handle(Cursor::new(data))
        .finish()
        .map_err(|source| TransformError::Parse { file: file.to_string(), format: "CSV", source })?;
    same_records(file, raw, records)
}

/// `frame`, if it has the `records` rows the prescan found.
fn same_records(file: &str, frame: DataFrame, records: usize) -> Result<DataFrame, TransformError> {
    if frame.height() != records {
        // the prescan and the parse disagree on the records: sluice's fault, not the data's
        return Err(TransformError::Internal {
            file: file.to_string(),
            detail: format!("the parse found {} rows where the prescan found {records} records", frame.height()),
        });
    }
    Ok(frame)
}

/// The malformed records a prescan found, as quarantine rows (rule `structure`).
fn structural(file: &str, scan: Prescan) -> Result<DataFrame, TransformError> {
    df!(
        "file" => vec![file; scan.bad_lines.len()],
        "line" => scan.bad_lines,
        "column" => vec![None::<&str>; scan.bad_raw.len()],
        "value" => scan.bad_raw,
        "rule" => vec!["structure"; scan.bad_reasons.len()],
        "reason" => scan.bad_reasons,
    )
    .ctx(|| format!("{file}: quarantine"))
}

/// Read one CSV object (plain, gzip or zstd). `file` names it in errors and in the
/// quarantine.
pub fn read_csv(file: &str, bytes: &[u8], spec: &CsvSpec) -> Result<Ingested, TransformError> {
    let raw = parse_csv(file, bytes, spec)?;
    let (frame, value_errors) = type_rows(with_object(file, raw.frame, 0)?, &[file], spec)?;
    let quarantine = concat([raw.structural.lazy(), value_errors.drop(OBJECT).ctx(|| file.to_string())?.lazy()], UnionArgs::default())
        .and_then(|lf| lf.sort(["line"], Default::default()).collect())
        .ctx(|| format!("{file}: quarantine"))?;
    let frame = frame.drop(OBJECT).ctx(|| file.to_string())?;
    Ok(Ingested { rows_read: frame.height() + quarantine.height(), frame, quarantine })
}

/// `frame` with the object index `i` in `__sluice_obj`.
pub fn with_object(file: &str, mut frame: DataFrame, i: u32) -> Result<DataFrame, TransformError> {
    let n = frame.height();
    frame.with_column(Column::new_scalar(OBJECT.into(), Scalar::from(i), n)).ctx(|| format!("{file}: numbering objects"))?;
    Ok(frame)
}

/// Type the declared columns of raw rows (strings) from one or more objects, and check the
/// contracts, in one vectorized pass. `raw` has `__sluice_line` and `__sluice_obj` (an index
/// into `files`). Returns the good rows (typed columns in place of the raw ones, both
/// bookkeeping columns kept) and the quarantine rows ([`QUARANTINE_COLUMNS`] plus
/// `__sluice_obj`).
pub fn type_rows(raw: DataFrame, files: &[&str], spec: &CsvSpec) -> Result<(DataFrame, DataFrame), TransformError> {
    // columns the reader typed already need no conversion (and cannot fail one)
    let mut raw = raw;
    let mut typed = Vec::new();
    for (name, ty) in &spec.columns {
        let expr = match raw.column(name) {
            Ok(c) if c.dtype() == &ty.dtype() => continue,
            // parsed here, whole-column (see `parse_datetime`), and picked up by name
            Ok(c) if *ty == ColumnType::Datetime && c.dtype() == &DataType::String => {
                let parsed_name = format!("__parsed_{name}");
                let parsed = parse_datetime(c).ctx(|| format!("{}: typing column {name}", files.join(", ")))?;
                raw.with_column(parsed.with_name(parsed_name.as_str().into())).ctx(|| files.join(", "))?;
                col(parsed_name)
            }
            _ => ty.parse_expr(name),
        };
        typed.push((name.clone(), *ty, expr));
    }
    split_bad_rows(files, raw.lazy(), typed, &spec.contracts)
}

/// Type the declared columns of `raw` (each `(name, type, expression)`) and check the
/// contracts. A row is bad at the first failure, in order: a present value that does not
/// convert, then each contract rule. The good rows keep the file's column order.
fn split_bad_rows(
    files: &[&str],
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

    // first whether any row breaks anything (cheap: or-ed booleans) ...
    let any_broken = checks.iter().map(|c| c.broken.clone()).reduce(|a, b| a.or(b)).unwrap_or(lit(false));
    let marked = raw
        .with_columns(typed.iter().map(|(name, _, e)| e.clone().alias(t(name))).collect::<Vec<_>>())
        .with_column(any_broken.alias(BAD))
        .collect()
        .ctx(|| format!("{}: typing columns", files.join(", ")))?;
    let kept: Vec<(PlSmallStr, PlSmallStr)> = marked
        .get_column_names()
        .into_iter()
        .filter(|n| !n.starts_with("__") || n.as_str() == LINE || n.as_str() == OBJECT)
        .map(|n| (if typed.iter().any(|(c, _, _)| c == n.as_str()) { t(n).into() } else { n.clone() }, n.clone()))
        .collect();
    let context = || files.join(", ");
    if !marked.column(BAD).and_then(|c| c.bool().map(|b| b.any())).ctx(context)? {
        // every row good (the usual case): no filtering, no quarantine rows; the typed
        // columns taken under their names, without a query
        let columns = kept.iter().map(|(from, to)| marked.column(from).map(|c| c.clone().with_name(to.clone()))).collect::<PolarsResult<Vec<_>>>();
        let frame = columns.and_then(DataFrame::new_infer_height).ctx(|| format!("{}: selecting typed columns", context()))?;
        let quarantine = no_quarantine().hstack(&[Column::new_empty(OBJECT.into(), &DataType::UInt32)]).ctx(context)?;
        return Ok((frame, quarantine));
    }
    // ... then, only if some do, the index of the first broken check (null: a good row),
    // and what it names
    let keep: Vec<Expr> = kept.iter().map(|(from, to)| col(from.clone()).alias(to.clone())).collect();
    let null_str = || lit(NULL).cast(DataType::String);
    let mut first = lit(NULL).cast(DataType::Int32);
    for (i, c) in checks.iter().enumerate().rev() {
        first = when(c.broken.clone()).then(lit(i as i32)).otherwise(first);
    }
    let pick = |f: &dyn Fn(&Violation) -> Expr| {
        checks.iter().enumerate().rev().fold(null_str(), |acc, (i, c)| when(col(BAD).eq(lit(i as i32))).then(f(c)).otherwise(acc))
    };
    let marked = marked.lazy().with_column(first.alias(BAD)).collect().ctx(|| format!("{}: finding bad rows", context()))?;
    let quarantine = marked
        .clone()
        .lazy()
        .filter(col(BAD).is_not_null())
        .select([
            lit(NULL).cast(DataType::String).alias("file"),
            col(LINE).alias("line"),
            pick(&|c| lit(c.column.as_str())).alias("column"),
            pick(&|c| c.value.clone()).alias("value"),
            pick(&|c| lit(c.rule)).alias("rule"),
            pick(&|c| lit(c.reason.as_str())).alias("reason"),
            col(OBJECT),
        ])
        .collect()
        .ctx(|| format!("{}: quarantine", context()))?;
    let quarantine = with_file_names(quarantine, files)?;
    // good rows: typed columns replace their raw strings, in the file's column order
    let frame = marked
        .lazy()
        .filter(col(BAD).is_null())
        .select(keep)
        .collect()
        .ctx(|| format!("{}: selecting typed columns", context()))?;
    Ok((frame, quarantine))
}

/// Fill a quarantine's `file` column from its `__sluice_obj` indices (few rows: in Rust).
fn with_file_names(mut q: DataFrame, files: &[&str]) -> Result<DataFrame, TransformError> {
    if q.height() == 0 {
        return Ok(q);
    }
    let objects = q.column(OBJECT).and_then(|c| c.u32().cloned()).ctx(|| "quarantine".to_string())?;
    let names: Vec<Option<&str>> = objects.iter().map(|o| o.and_then(|o| files.get(o as usize).copied())).collect();
    q.with_column(Column::new("file".into(), names)).ctx(|| "quarantine".to_string())?;
    Ok(q)
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
    let frame = with_object(file, frame.hstack(&[lines]).ctx(|| format!("{file}: adding line numbers"))?, 0)?;
    let (frame, quarantine) = split_bad_rows(&[file], frame.lazy(), typed, &spec.contracts)?;
    let (frame, quarantine) = (frame.drop(OBJECT).ctx(|| file.to_string())?, quarantine.drop(OBJECT).ctx(|| file.to_string())?);
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

    /// A file and its CRLF twin, with or without a final line end or a byte order mark, and
    /// with a lone `\r` inside a quoted field, give the same rows and quarantine.
    #[test]
    fn line_ends_and_a_byte_order_mark_give_the_same_rows() {
        let lf = "a,b,t,extra\n1,2.5,2013-01-01T10:00:00Z,x\nzz,1,2013-01-01T11:00:00Z,y\n3,NA,2013-01-01 12:00:00,z\n4,5\n6,7,2013-01-02T00:00:00Z,w\n";
        let quoted = lf.replace(",z\n", ",\"z\rz\"\n");
        for lf in [lf.to_string(), quoted] {
            let clean = read_csv("f.csv", lf.as_bytes(), &spec()).unwrap();
            assert_eq!((clean.frame.height(), clean.quarantine.height()), (3, 2));
            let crlf = lf.replace('\n', "\r\n");
            for twin in [crlf.clone(), crlf.trim_end().to_string(), lf.trim_end().to_string(), format!("\u{feff}{crlf}")] {
                let got = read_csv("f.csv", twin.as_bytes(), &spec()).unwrap();
                assert!(got.frame.equals_missing(&clean.frame), "{twin:?}:\n{}\n{}", got.frame, clean.frame);
                assert!(got.quarantine.equals_missing(&clean.quarantine), "{twin:?}:\n{}\n{}", got.quarantine, clean.quarantine);
            }
        }
        let got = read_csv("f.csv", lf.replace(",z\n", ",\"z\rz\"\r\n").as_bytes(), &spec()).unwrap();
        assert_eq!(got.frame.column("extra").unwrap().str().unwrap().get(1), Some("z\rz"), "a quoted \\r is data");
    }

    /// Blank lines are not records: the same rows, each with its own line.
    #[test]
    fn blank_lines_between_records_are_skipped_with_lines_kept() {
        let lf = "a,b,t,extra\n1,2.5,2013-01-01T10:00:00Z,x\n4,5\n6,7,2013-01-02T00:00:00Z,w\n";
        let clean = read_csv("f.csv", lf.as_bytes(), &spec()).unwrap();
        for blank in [lf.replace("\n4", "\n\n\n4"), lf.replace("\n4", "\r\n\r\n\r\n4").replace("\n6", "\r\n\r\n6")] {
            let got = read_csv("f.csv", blank.as_bytes(), &spec()).unwrap();
            let no_lines = |f: &DataFrame| f.drop(LINE).unwrap();
            assert!(no_lines(&got.frame).equals_missing(&no_lines(&clean.frame)), "{blank:?}");
            let bad_line = got.quarantine.column("line").unwrap().u32().unwrap().get(0);
            assert_eq!(bad_line, Some(5), "{blank:?}: '4,5' is on line 5");
            let lines: Vec<u32> = got.frame.column(LINE).unwrap().u32().unwrap().into_no_null_iter().collect();
            assert_eq!(lines.last(), Some(&if blank.contains('\r') { 7 } else { 6 }), "{blank:?}");
        }
    }

    #[test]
    fn empty_quoted_empty_and_listed_fields_are_null() {
        let spec = CsvSpec { null_values: vec!["NA".into(), "".into()], ..spec() };
        let count_nulls = |csv: &[u8]| {
            let got = read_csv("f.csv", csv, &spec).unwrap();
            assert_eq!(got.quarantine.height(), 0);
            ["b", "extra"].map(|c| got.frame.column(c).unwrap().null_count())
        };
        // no quotes anywhere (the CSV reader's fast path) and quoted fields
        assert_eq!(count_nulls(b"a,b,t,extra\n1,,2013-01-01T10:00:00Z,\n2,NA,2013-01-01T11:00:00Z,NA\n3,1,2013-01-01T12:00:00Z,x\n"), [2, 2]);
        assert_eq!(count_nulls(b"a,b,t,extra\n1,\"\",2013-01-01T10:00:00Z,\"\"\n2,NA,2013-01-01T11:00:00Z,\n3,1,2013-01-01T12:00:00Z,\"x\"\n"), [2, 2]);
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
