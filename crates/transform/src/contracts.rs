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
            let text = concat_str(parts.iter().map(|p| p.clone().cast(DataType::String)).collect::<Vec<_>>(), "-", false);
            out.push(Violation {
                broken: map_multiple(not_dates, parts, |_: &Schema, fields: &[Field]| {
                    Ok(Field::new(fields.first().map_or_else(|| "valid_date".into(), |f| f.name().clone()), DataType::Boolean))
                }),
                column: format!("{}-{}-{}", d.year, d.month, d.day),
                value: text,
                rule: "valid_date",
                reason: "not a calendar date (contract: valid_date)".into(),
            });
        }
        out
    }
}

/// True where a year, a month and a day (integer columns, or one value for every row) are
/// all present and name no calendar date; a missing part is left to `not_null`. One kernel
/// over the columns: as an expression tree (leap years, month lengths) it was some forty
/// nodes, and planning them cost a daily run about 2 ms.
fn not_dates(parts: &mut [Column]) -> PolarsResult<Column> {
    polars_ensure!(parts.len() == 3, InvalidOperation: "a calendar date has three parts, not {}", parts.len());
    let ints = crate::sql_functions::aligned(parts, &DataType::Int64)?;
    let name = parts[0].name().clone();
    let broken: BooleanChunked = ints[0]
        .i64()?
        .iter()
        .zip(ints[1].i64()?.iter())
        .zip(ints[2].i64()?.iter())
        .map(|((y, m), d)| matches!((y, m, d), (Some(y), Some(m), Some(d)) if !is_date(y, m, d)))
        .collect();
    Ok(broken.with_name(name).into_column())
}

/// Whether `y-m-d` is a date of the proleptic Gregorian calendar.
fn is_date(y: i64, m: i64, d: i64) -> bool {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        1..=12 => 31,
        _ => return false,
    };
    (1..=days).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_dates_are_chronos_on_every_day_of_four_centuries_and_their_edges() {
        for y in [1600i64, 1899, 1900, 1969, 2000, 2013, 2024, 2100, 2400] {
            for m in -1..=14 {
                for d in -1..=33 {
                    let chrono = u32::try_from(m).ok().zip(u32::try_from(d).ok()).and_then(|(m, d)| chrono::NaiveDate::from_ymd_opt(y as i32, m, d));
                    assert_eq!(is_date(y, m, d), chrono.is_some(), "{y}-{m}-{d}");
                }
            }
        }
    }

    #[test]
    fn only_present_parts_that_name_no_date_break_the_rule() {
        let mut parts = [
            Column::new("y".into(), [Some(2013i32), Some(2012), None, Some(2013), Some(2013)]),
            Column::new("m".into(), [Some(2i32), Some(2), Some(2), Some(13), Some(12)]),
            Column::new("d".into(), [Some(29i64), Some(29), Some(30), Some(1), Some(31)]),
        ];
        let broken: Vec<Option<bool>> = not_dates(&mut parts).unwrap().bool().unwrap().iter().collect();
        assert_eq!(broken, [Some(true), Some(false), Some(false), Some(true), Some(false)]);
    }
}
