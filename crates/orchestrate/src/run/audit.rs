//! Write-audit-publish: a pipeline's `[[checks]]` run on each staged version (its Parquet
//! files as written, read as a reader would read them) and, where a check compares, on the
//! partition's current version, before the commit.
//!
//! A run measures each partition as soon as its last file is encoded, while later
//! partitions are still in the stages ([`run_on_files`], from the write stage); a shard's
//! share is measured at `sluice publish`, its files read back from the store ([`run`]).
//!
//! A failed `error` check stops the publication (exit 3); the run's files stay, with a
//! staging record, until `sluice publish --run ID --override-checks "reason"` publishes them
//! anyway or gc collects them. A failed `warn` check is published and recorded. Results go
//! into the manifest, the summary line and (counted) the commit, where `sluice versions`
//! shows them.

use std::io::Cursor;

use bytes::Bytes;
use polars::prelude::*;
use sluice_extract::{ExtractError, Storage};
use sluice_transform::checks;

use crate::store::PartitionVersion;
use crate::types::{CheckKind, CheckResult, CheckSpec, CheckStatus, StagedPartition};
use crate::error::SluiceError;

/// Read Parquet files of the dataset into one frame (only `columns`, if given). A file that
/// is gone was collected by gc while the run was long (or the version is being removed): a
/// conflict, as the commit would find.
fn read_files(storage: &Storage, files: &[String], columns: Option<Vec<String>>) -> Result<DataFrame, SluiceError> {
    let bytes = files
        .iter()
        .map(|f| {
            storage.get(f).map_err(|e| match e {
                ExtractError::NotFound { .. } => SluiceError::Conflict {
                    dataset: storage.uri().to_string(),
                    reason: format!("{} is gone before the checks could read it (collected by gc?); re-run", storage.uri_of(f)),
                },
                e => e.into(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = files.iter().map(|f| storage.uri_of(f)).collect();
    parse_files(&bytes, &names, columns)
}

/// Parquet files' bytes (named `names`) as one frame (only `columns`, if given).
fn parse_files(files: &[Bytes], names: &[String], columns: Option<Vec<String>>) -> Result<DataFrame, SluiceError> {
    let mut out: Option<DataFrame> = None;
    for (bytes, name) in files.iter().zip(names) {
        let df = ParquetReader::new(Cursor::new(bytes))
            .with_columns(columns.clone())
            .finish()
            .map_err(|e| SluiceError::other(format!("reading back {name}"), e))?;
        out = Some(match out {
            None => df,
            Some(acc) => acc.vstack(&df).map_err(|e| SluiceError::other("stacking files", e))?,
        });
    }
    Ok(out.unwrap_or_default())
}

/// Run every check on one partition's staged version, its files read back from `storage`.
pub(crate) fn run(
    specs: &[CheckSpec],
    storage: &Storage,
    staged: &StagedPartition,
    current: Option<&PartitionVersion>,
) -> Result<Vec<CheckResult>, SluiceError> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let output = read_files(storage, &staged.files, columns_read(specs, &staged.schema))?;
    measure(specs, storage, &output, current)
}

/// Run every check on one partition's new version from the bytes of its files (`names`:
/// where they are written), as the run wrote them.
pub(crate) fn run_on_files(
    specs: &[CheckSpec],
    storage: &Storage,
    files: &[Bytes],
    names: &[String],
    schema: &[(String, String)],
    current: Option<&PartitionVersion>,
) -> Result<Vec<CheckResult>, SluiceError> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let output = parse_files(files, names, columns_read(specs, schema))?;
    measure(specs, storage, &output, current)
}

/// The checks on a new version's rows (`output`), and the current version's where a check
/// compares.
fn measure(specs: &[CheckSpec], storage: &Storage, output: &DataFrame, current: Option<&PartitionVersion>) -> Result<Vec<CheckResult>, SluiceError> {
    let drift_columns: Vec<String> =
        specs.iter().filter_map(|s| if let CheckKind::Drift { column, .. } = &s.kind { Some(column.clone()) } else { None }).collect();
    let current_frame = match current {
        Some(v) if !drift_columns.is_empty() => Some(read_files(storage, &v.files, Some(drift_columns))?),
        _ => None,
    };
    specs.iter().map(|s| one(s, output, current, current_frame.as_ref())).collect()
}

/// The columns of the new version the checks need: those a check names, or whose name
/// appears in a check's SQL (a textual, generous match: reading one column too many costs
/// little). `None` (all of them) when a SQL check has a `*` other than `COUNT(*)`, or the
/// schema is unknown. At least one column, for the row count.
fn columns_read(specs: &[CheckSpec], schema: &[(String, String)]) -> Option<Vec<String>> {
    if schema.is_empty() {
        return None;
    }
    let mut texts = Vec::new();
    for s in specs {
        match &s.kind {
            CheckKind::Sql(sql) => {
                let sql = sql.to_lowercase();
                // a `*` but in `COUNT(*)` (spaced any way): the words joined, the counts taken out
                let joined: String = sql.split_whitespace().collect();
                if joined.replace("count(*)", "").contains('*') {
                    return None;
                }
                texts.push(sql);
            }
            CheckKind::NullFraction(column) | CheckKind::Drift { column, .. } => texts.push(column.to_lowercase()),
            CheckKind::RowCountChange => {}
        }
    }
    let named = |n: &String| texts.iter().any(|t| t.contains(&n.to_lowercase()));
    let mut columns: Vec<String> = schema.iter().map(|(n, _)| n).filter(|n| named(n)).cloned().collect();
    if columns.is_empty() {
        columns.extend(schema.first().map(|(n, _)| n.clone()));
    }
    Some(columns)
}

fn one(s: &CheckSpec, output: &DataFrame, current: Option<&PartitionVersion>, current_frame: Option<&DataFrame>) -> Result<CheckResult, SluiceError> {
    let measured: Option<f64> = match &s.kind {
        CheckKind::Sql(sql) => checks::sql_value(&s.name, output, sql)?,
        CheckKind::RowCountChange => current
            .filter(|v| v.rows > 0)
            .map(|v| (output.height() as f64 - v.rows as f64).abs() / v.rows as f64),
        CheckKind::NullFraction(column) => Some(checks::null_fraction(&s.name, output, column)?),
        CheckKind::Drift { column, bins } => match current_frame {
            Some(cur) => checks::psi(&s.name, cur, output, column, *bins)?,
            None => None,
        },
    };
    let (min, max) = (s.min, s.max);
    let expected = match (min, max) {
        (Some(a), Some(b)) => format!("between {a} and {b}"),
        (Some(a), None) => format!(">= {a}"),
        (None, Some(b)) => format!("<= {b}"),
        (None, None) => "any".into(),
    };
    let (status, detail) = match measured {
        None if matches!(s.kind, CheckKind::Sql(_)) => (CheckStatus::Fail, Some("the query returned no value".to_string())),
        None => (CheckStatus::Skipped, Some("no current version (or no values) to compare with".to_string())),
        Some(v) if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) || v.is_nan() => (CheckStatus::Fail, None),
        Some(_) => (CheckStatus::Pass, None),
    };
    Ok(CheckResult { name: s.name.clone(), kind: s.kind.code().to_string(), severity: s.severity, status, value: measured, expected, detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Severity;

    fn spec(kind: CheckKind) -> CheckSpec {
        CheckSpec { name: "c".into(), severity: Severity::Error, kind, min: None, max: None }
    }

    #[test]
    fn checks_read_only_the_columns_they_name() {
        let schema: Vec<(String, String)> =
            ["date", "temp", "delay_prob", "carrier"].iter().map(|n| (n.to_string(), "f64".to_string())).collect();
        let sql = |q: &str| spec(CheckKind::Sql(q.into()));
        let read = |specs: &[CheckSpec]| columns_read(specs, &schema);
        let count = sql("SELECT COUNT( * ) FROM output WHERE Delay_Prob NOT BETWEEN 0 AND 1");
        assert_eq!(read(&[count.clone(), spec(CheckKind::NullFraction("temp".into()))]), Some(vec!["temp".into(), "delay_prob".into()]));
        assert_eq!(read(&[spec(CheckKind::Drift { column: "delay_prob".into(), bins: 10 })]), Some(vec!["delay_prob".into()]));
        // a row count needs one column; a star (other than COUNT(*)) needs them all
        assert_eq!(read(&[sql("SELECT COUNT(*) FROM output"), spec(CheckKind::RowCountChange)]), Some(vec!["date".into()]));
        assert_eq!(read(&[count.clone(), sql("SELECT MAX(temp * 2) FROM output")]), None);
        assert_eq!(read(&[sql("SELECT * FROM output")]), None);
        assert_eq!(columns_read(&[count], &[]), None);
    }
}
