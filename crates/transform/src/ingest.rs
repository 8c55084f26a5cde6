//! CSV bytes -> a typed frame, with bad rows set aside rather than lost.
//!
//! Two passes, both linear:
//! 1. The `csv` crate checks the record structure (field count, quoting, UTF-8) and keeps
//!    the line number of every record; malformed records go to the quarantine.
//! 2. Polars parses the well-formed records as strings, then every declared column is cast to
//!    its type with one vectorized expression. A value that was present but did not parse
//!    marks its row bad; the first such column names the reason.
//!
//! The result: `frame` (typed rows), and `quarantine` (one row per bad input row with
//! `file`, `line`, `column`, `value`, `reason`), so rows read = frame rows + quarantined rows.

use std::io::Cursor;

use polars::prelude::*;

use crate::error::Context;
use crate::{ColumnType, TransformError};

/// The columns of a quarantine frame, in order.
pub const QUARANTINE_COLUMNS: [&str; 5] = ["file", "line", "column", "value", "reason"];
const LINE: &str = "__sluice_line";

/// How to read one CSV input.
#[derive(Debug, Clone)]
pub struct CsvSpec {
    /// Declared columns and their types; each must be in the header. Undeclared columns are
    /// kept as strings.
    pub columns: Vec<(String, ColumnType)>,
    /// Strings that mean null (e.g. `NA`); an empty field is null too.
    pub null_values: Vec<String>,
    pub separator: u8,
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

/// Read one CSV object. `file` names it in errors and in the quarantine.
pub fn read_csv(file: &str, bytes: &[u8], spec: &CsvSpec) -> Result<Ingested, TransformError> {
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

    // Typed columns next to their raw strings; the first column that failed names the reason.
    let typed: Vec<Expr> =
        spec.columns.iter().map(|(name, ty)| ty.parse_expr(name).alias(format!("__typed_{name}"))).collect();
    let failed = |name: &str| col(name).is_not_null().and(col(format!("__typed_{name}")).is_null());
    let mut bad_col: Option<Expr> = None;
    let mut bad_val: Option<Expr> = None;
    let mut bad_reason: Option<Expr> = None;
    for (name, ty) in spec.columns.iter().rev() {
        let cond = failed(name);
        let reason = lit(format!("cannot read value as {ty}"));
        bad_col = Some(when(cond.clone()).then(lit(name.as_str())).otherwise(bad_col.unwrap_or(lit(NULL).cast(DataType::String))));
        bad_val = Some(when(cond.clone()).then(col(name.as_str())).otherwise(bad_val.unwrap_or(lit(NULL).cast(DataType::String))));
        bad_reason = Some(when(cond).then(reason).otherwise(bad_reason.unwrap_or(lit(NULL).cast(DataType::String))));
    }
    let marked = raw
        .lazy()
        .with_columns(typed)
        .with_columns([
            bad_col.unwrap_or(lit(NULL).cast(DataType::String)).alias("__bad_column"),
            bad_val.unwrap_or(lit(NULL).cast(DataType::String)).alias("__bad_value"),
            bad_reason.unwrap_or(lit(NULL).cast(DataType::String)).alias("__bad_reason"),
        ])
        .collect()
        .ctx(|| format!("{file}: casting columns"))?;

    let value_errors = marked
        .clone()
        .lazy()
        .filter(col("__bad_column").is_not_null())
        .select([
            lit(file).alias("file"),
            col(LINE).alias("line"),
            col("__bad_column").alias("column"),
            col("__bad_value").alias("value"),
            col("__bad_reason").alias("reason"),
        ]);
    let structural = df!(
        "file" => vec![file; scan.bad_lines.len()],
        "line" => scan.bad_lines,
        "column" => vec![None::<&str>; scan.bad_raw.len()],
        "value" => scan.bad_raw,
        "reason" => scan.bad_reasons,
    )
    .ctx(|| format!("{file}: quarantine"))?;
    let quarantine = concat([structural.lazy(), value_errors], UnionArgs::default())
        .and_then(|lf| lf.sort(["line"], Default::default()).collect())
        .ctx(|| format!("{file}: quarantine"))?;

    // Good rows: typed columns replace their raw strings, in the file's column order.
    let header: Vec<PlSmallStr> = marked.get_column_names().into_iter().cloned().collect();
    let keep: Vec<Expr> = header
        .iter()
        .filter(|n| !n.starts_with("__"))
        .map(|n| {
            if spec.columns.iter().any(|(c, _)| c == n.as_str()) {
                col(format!("__typed_{n}")).alias(n.clone())
            } else {
                col(n.clone())
            }
        })
        .collect();
    let frame = marked
        .lazy()
        .filter(col("__bad_column").is_null())
        .select(keep)
        .collect()
        .ctx(|| format!("{file}: selecting typed columns"))?;
    let rows_read = frame.height() + quarantine.height();
    Ok(Ingested { frame, quarantine, rows_read })
}

/// An empty quarantine frame (for typed formats, whose rows are never set aside).
fn no_quarantine() -> DataFrame {
    DataFrame::new_infer_height(
        QUARANTINE_COLUMNS
            .iter()
            .map(|c| Column::new_empty((*c).into(), if *c == "line" { &DataType::UInt32 } else { &DataType::String }))
            .collect(),
    )
    .unwrap_or_default()
}

/// Typed formats: declared columns must be present and are cast to their declared type
/// (a value that does not convert is an error naming file and column).
fn typed_format(file: &str, frame: DataFrame, columns: &[(String, ColumnType)]) -> Result<Ingested, TransformError> {
    let names: Vec<String> = frame.get_column_names().iter().map(|s| s.to_string()).collect();
    for (name, _) in columns {
        if !names.contains(name) {
            return Err(TransformError::MissingColumn { file: file.to_string(), column: name.clone(), header: names.join(",") });
        }
    }
    let casts: Vec<Expr> = columns.iter().map(|(n, t)| col(n.as_str()).strict_cast(t.dtype())).collect();
    let frame = frame
        .lazy()
        .with_columns(casts)
        .collect()
        .map_err(|source| TransformError::Parse { file: file.to_string(), format: "declared column types", source })?;
    Ok(Ingested { rows_read: frame.height(), frame, quarantine: no_quarantine() })
}

/// Read newline-delimited JSON (one object per line).
pub fn read_ndjson(file: &str, bytes: &[u8], columns: &[(String, ColumnType)]) -> Result<Ingested, TransformError> {
    let frame = JsonReader::new(Cursor::new(bytes))
        .with_json_format(JsonFormat::JsonLines)
        .finish()
        .map_err(|source| TransformError::Parse { file: file.to_string(), format: "NDJSON", source })?;
    typed_format(file, frame, columns)
}

/// Read a Parquet object.
pub fn read_parquet(file: &str, bytes: &[u8], columns: &[(String, ColumnType)]) -> Result<Ingested, TransformError> {
    let frame = ParquetReader::new(Cursor::new(bytes))
        .finish()
        .map_err(|source| TransformError::Parse { file: file.to_string(), format: "Parquet", source })?;
    typed_format(file, frame, columns)
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
}
