//! Row-level contracts on declared source columns, checked as one vectorized pass after the
//! columns are typed. A row that breaks a rule is quarantined with the column, the value,
//! the rule and its line, like a value that does not parse.
//!
//! Every rule is a boolean Polars expression ("this row breaks it"); a null value breaks
//! only `not_null` (the other rules say nothing about a missing value).

use polars::prelude::*;

/// One rule on one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    NotNull,
    /// Numeric columns: the value is at least this.
    Min(f64),
    /// Numeric columns: the value is at most this.
    Max(f64),
    /// The value (as text) is one of these.
    Allowed(Vec<String>),
    /// The value (as text) matches this regular expression (a search: anchor with `^…$`).
    Regex(String),
}

impl Rule {
    /// The code recorded in the quarantine's `rule` column.
    pub fn code(&self) -> &'static str {
        match self {
            Rule::NotNull => "not_null",
            Rule::Min(_) => "min",
            Rule::Max(_) => "max",
            Rule::Allowed(_) => "allowed",
            Rule::Regex(_) => "regex",
        }
    }

    fn reason(&self) -> String {
        match self {
            Rule::NotNull => "missing value (contract: not_null)".into(),
            Rule::Min(m) => format!("below the minimum {m} (contract: min)"),
            Rule::Max(m) => format!("above the maximum {m} (contract: max)"),
            Rule::Allowed(v) => format!("not one of the allowed values {v:?} (contract: allowed)"),
            Rule::Regex(r) => format!("does not match /{r}/ (contract: regex)"),
        }
    }

    /// True where the typed value `v` breaks the rule (never null).
    fn broken(&self, v: Expr) -> Expr {
        let text = || v.clone().cast(DataType::String);
        let e = match self {
            Rule::NotNull => return v.is_null(),
            Rule::Min(m) => v.clone().cast(DataType::Float64).lt(lit(*m)),
            Rule::Max(m) => v.clone().cast(DataType::Float64).gt(lit(*m)),
            // a short list: one comparison each, or-ed
            Rule::Allowed(values) => {
                values.iter().map(|a| text().eq(lit(a.as_str()))).reduce(|a, b| a.or(b)).unwrap_or(lit(false)).not()
            }
            Rule::Regex(r) => text().str().contains(lit(r.as_str()), true).not(),
        };
        e.fill_null(lit(false))
    }
}

/// A rule on a column.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    pub column: String,
    pub rule: Rule,
}

/// Columns that together must form a real calendar date (e.g. year, month, day: no
/// 2013-02-30). Rows with a missing part are left to `not_null`.
#[derive(Debug, Clone, PartialEq)]
pub struct DateParts {
    pub year: String,
    pub month: String,
    pub day: String,
}

/// Everything a source declares about its rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contracts {
    pub rules: Vec<Contract>,
    pub dates: Vec<DateParts>,
}

/// One way a row can be bad: where `broken` is true, the row is quarantined naming
/// `column`, the text `value`, the `rule` code and `reason`.
pub struct Violation {
    pub broken: Expr,
    pub column: String,
    pub value: Expr,
    pub rule: &'static str,
    pub reason: String,
}

impl Contracts {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.dates.is_empty()
    }

    /// The violations to check; `typed(c)` is column `c`'s typed value and `raw(c)` the
    /// text to report.
    pub fn violations(&self, typed: &dyn Fn(&str) -> Expr, raw: &dyn Fn(&str) -> Expr) -> Vec<Violation> {
        let mut out: Vec<Violation> = self
            .rules
            .iter()
            .map(|c| Violation {
                broken: c.rule.broken(typed(&c.column)),
                column: c.column.clone(),
                value: raw(&c.column),
                rule: c.rule.code(),
                reason: c.rule.reason(),
            })
            .collect();
        for d in &self.dates {
            let parts = [typed(&d.year), typed(&d.month), typed(&d.day)];
            let present = parts.iter().cloned().map(|p| p.is_not_null()).reduce(|a, b| a.and(b)).unwrap_or(lit(true));
            let text = concat_str(parts.iter().map(|p| p.clone().cast(DataType::String)).collect::<Vec<_>>(), "-", false);
            let [y, m, dd] = parts.clone().map(|p| p.cast(DataType::Int64));
            // integer arithmetic, no text: months of 31 and 30 days, February 28 or 29
            let leap = (y.clone() % lit(4i64)).eq(lit(0i64)).and((y.clone() % lit(100i64)).neq(lit(0i64))).or((y % lit(400i64)).eq(lit(0i64)));
            let days = when(m.clone().is_in(lit(Series::new("m".into(), [4i64, 6, 9, 11])).implode(false), false))
                .then(lit(30i64))
                .when(m.clone().eq(lit(2i64)))
                .then(when(leap).then(lit(29i64)).otherwise(lit(28i64)))
                .otherwise(lit(31i64));
            let valid = m.clone().gt_eq(lit(1i64)).and(m.lt_eq(lit(12i64))).and(dd.clone().gt_eq(lit(1i64))).and(dd.lt_eq(days));
            out.push(Violation {
                broken: present.and(valid.fill_null(lit(false)).not()).fill_null(lit(false)),
                column: format!("{}-{}-{}", d.year, d.month, d.day),
                value: text,
                rule: "valid_date",
                reason: "not a calendar date (contract: valid_date)".into(),
            });
        }
        out
    }
}
