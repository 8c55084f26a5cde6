//! Write-audit-publish: a pipeline's `[[checks]]` run on each staged version (its files read
//! back, as a reader would see them) and, where a check compares, on the partition's current
//! version, after the files are written and before the commit.
//!
//! A failed `error` check stops the publication (exit 3); the run's files stay, with a
//! staging record, until `sluice publish --run ID --override-checks "reason"` publishes them
//! anyway or gc collects them. A failed `warn` check is published and recorded. Results go
//! into the manifest, the summary line and (counted) the commit, where `sluice versions`
//! shows them.

use std::io::Cursor;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sluice_extract::ExtractError;
use sluice_transform::checks;

use crate::publish::StagedPartition;
use crate::store::{Dataset, PartitionVersion};
use crate::SluiceError;

/// What a failed check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing is published (exit 3).
    #[default]
    Error,
    /// Published; the failure is recorded.
    Warn,
}

/// What a check measures.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// The single value of a query over the table `output` (the new version's rows).
    Sql(String),
    /// |new rows − current rows| / current rows (skipped without a current version).
    RowCountChange,
    /// The fraction of nulls in a column.
    NullFraction(String),
    /// The population stability index of a column against the current version, over `bins`
    /// quantile bins of the current values (skipped without a current version).
    Drift { column: String, bins: usize },
}

impl CheckKind {
    fn code(&self) -> &'static str {
        match self {
            CheckKind::Sql(_) => "sql",
            CheckKind::RowCountChange => "row_count_change",
            CheckKind::NullFraction(_) => "null_fraction",
            CheckKind::Drift { .. } => "drift",
        }
    }
}

/// A validated `[[checks]]` entry: the measured value must be within `min..=max`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    pub name: String,
    pub severity: Severity,
    pub kind: CheckKind,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Nothing to compare with (no current version).
    Skipped,
}

/// One check's outcome on one partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub kind: String,
    pub severity: Severity,
    pub status: CheckStatus,
    /// The measured value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The bounds it was held to, e.g. `<= 0.25`.
    pub expected: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl CheckResult {
    /// A failed `error` check: it stops the publication.
    pub fn blocks(&self) -> bool {
        self.status == CheckStatus::Fail && self.severity == Severity::Error
    }
}

/// The checks of a published version, counted in its commit entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckTally {
    pub passed: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warned: Vec<String>,
    /// `error` checks that failed; only in a version published with `--override-checks`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: usize,
    /// The reason given to `--override-checks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl CheckTally {
    pub fn of(results: &[CheckResult], overridden: Option<&str>) -> Option<Self> {
        if results.is_empty() && overridden.is_none() {
            return None;
        }
        let names = |f: &dyn Fn(&CheckResult) -> bool| results.iter().filter(|r| f(r)).map(|r| r.name.clone()).collect();
        Some(CheckTally {
            passed: results.iter().filter(|r| r.status == CheckStatus::Pass).count(),
            warned: names(&|r| r.status == CheckStatus::Fail && r.severity == Severity::Warn),
            failed: names(&|r| r.blocks()),
            skipped: results.iter().filter(|r| r.status == CheckStatus::Skipped).count(),
            overridden: overridden.map(str::to_string),
        })
    }

    /// One cell of `sluice versions`: `ok 4`, `warn: row_count`, `OVERRIDDEN (reason): drift`.
    pub fn describe(&self) -> String {
        let mut s = match &self.overridden {
            Some(reason) => format!("OVERRIDDEN ({reason})"),
            None => format!("ok {}", self.passed),
        };
        if !self.failed.is_empty() {
            s.push_str(&format!(" failed: {}", self.failed.join(",")));
        }
        if !self.warned.is_empty() {
            s.push_str(&format!(" warn: {}", self.warned.join(",")));
        }
        s
    }
}

/// Read Parquet files of the dataset into one frame (only `columns`, if given). A file that
/// is gone was collected by gc while the run was long (or the version is being removed): a
/// conflict, as the commit would find.
fn read_files(dataset: &Dataset, files: &[String], columns: Option<Vec<String>>) -> Result<DataFrame, SluiceError> {
    let mut out: Option<DataFrame> = None;
    for f in files {
        let bytes = dataset.storage().get(f).map_err(|e| match e {
            ExtractError::NotFound { .. } => SluiceError::Conflict {
                dataset: dataset.uri().to_string(),
                reason: format!("{} is gone before the checks could read it (collected by gc?); re-run", dataset.uri_of(f)),
            },
            e => e.into(),
        })?;
        let df = ParquetReader::new(Cursor::new(bytes))
            .with_columns(columns.clone())
            .finish()
            .map_err(|e| SluiceError::other(format!("reading back {}", dataset.uri_of(f)), e))?;
        out = Some(match out {
            None => df,
            Some(acc) => acc.vstack(&df).map_err(|e| SluiceError::other("stacking files", e))?,
        });
    }
    Ok(out.unwrap_or_default())
}

/// Run every check on one partition's staged version.
pub(crate) fn run(
    specs: &[CheckSpec],
    dataset: &Dataset,
    staged: &StagedPartition,
    current: Option<&PartitionVersion>,
) -> Result<Vec<CheckResult>, SluiceError> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let output = read_files(dataset, &staged.files, columns_read(specs, &staged.schema))?;
    let drift_columns: Vec<String> =
        specs.iter().filter_map(|s| if let CheckKind::Drift { column, .. } = &s.kind { Some(column.clone()) } else { None }).collect();
    let current_frame = match current {
        Some(v) if !drift_columns.is_empty() => Some(read_files(dataset, &v.files, Some(drift_columns))?),
        _ => None,
    };
    specs.iter().map(|s| one(s, &output, current, current_frame.as_ref())).collect()
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
                if COUNT_STAR.replace_all(&sql, "").contains('*') {
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

static COUNT_STAR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern
    regex::Regex::new(r"count\s*\(\s*\*\s*\)").unwrap()
});

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
