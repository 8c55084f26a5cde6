//! The pipeline's checks as data: what a `[[checks]]` entry asks for ([`CheckSpec`]), what
//! one measured ([`CheckResult`]) and how a published version's checks went ([`CheckTally`]).
//! The pipeline file makes the specs, the run measures them, the store keeps the tallies in
//! commits, and the summary and errors report results: so they live here, below all four.

use serde::{Deserialize, Serialize};

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
    pub fn code(&self) -> &'static str {
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
