//! SQL functions sluice adds to the engine's, in every SQL a pipeline runs (steps, derived
//! dimensions, checks): `MAKE_DATE(year, month, day)`, as DuckDB, Postgres and Spark have it.
//! Polars' SQL builds a date from its parts only through text (`DATE(CONCAT_WS('-', y, m,
//! d), '%Y-%m-%d')`): every row made a string and parsed again, about a tenth of the flight
//! year's transform at 10x.
//!
//! `MAKE_DATE` is element-wise (the transform may still batch partitions, [`crate::rowwise`])
//! and runs over whole columns: a part that is null gives null; a year, month and day that
//! are no calendar date (2013-02-30) fail the step naming them, as DuckDB's does, so the
//! transform isolates those rows.

use std::sync::Arc;

use polars::prelude::*;
use polars::sql::{FunctionRegistry, SQLContext};
use polars_plan::dsl::{BaseColumnUdf, UserDefinedFunction};
use polars_plan::prelude::FunctionOptions;

/// A SQL context with sluice's functions.
pub fn sql_context() -> SQLContext {
    SQLContext::new().with_function_registry(Arc::new(Functions))
}

/// The functions, by name (SQL names are case-insensitive).
struct Functions;

impl FunctionRegistry for Functions {
    fn register(&mut self, name: &str, _: UserDefinedFunction) -> PolarsResult<()> {
        polars_bail!(InvalidOperation: "sluice's SQL functions are fixed; cannot add '{name}'")
    }

    fn get_udf(&self, name: &str) -> PolarsResult<Option<UserDefinedFunction>> {
        Ok(self.contains(name).then(make_date))
    }

    fn contains(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("make_date")
    }
}

fn make_date() -> UserDefinedFunction {
    let output = |_: &Schema, fields: &[Field]| {
        Ok(Field::new(fields.first().map_or_else(|| "make_date".into(), |f| f.name().clone()), DataType::Date))
    };
    let mut udf = UserDefinedFunction::new("make_date".into(), BaseColumnUdf::new(|parts: &mut [Column]| make_dates(parts), output));
    udf.options = FunctionOptions::elementwise();
    udf
}

/// The dates of `[year, month, day]` (integer columns, or one value for every row).
fn make_dates(parts: &mut [Column]) -> PolarsResult<Column> {
    polars_ensure!(parts.len() == 3, InvalidOperation: "MAKE_DATE takes a year, a month and a day, not {} arguments", parts.len());
    for part in parts.iter() {
        polars_ensure!(part.dtype().is_integer() || part.dtype().is_null(), InvalidOperation: "MAKE_DATE takes integers, not {} ('{}')", part.dtype(), part.name());
    }
    let ints = aligned(parts, &DataType::Int32)?;
    let name = parts[0].name().clone();
    let (years, months, days) = (ints[0].i32()?, ints[1].i32()?, ints[2].i32()?);
    let mut out = Vec::with_capacity(years.len());
    for ((y, m), d) in years.iter().zip(months.iter()).zip(days.iter()) {
        out.push(match (y, m, d) {
            (Some(y), Some(m), Some(d)) => Some(epoch_days(y, m, d).ok_or_else(|| polars_err!(ComputeError: "MAKE_DATE({y}, {m}, {d}): not a calendar date"))?),
            _ => None,
        });
    }
    Ok(Int32Chunked::from_iter_options(name, out.into_iter()).into_date().into_series().into_column())
}

/// `parts` each as long as the longest (a part of one value repeated), cast to `dtype`, in
/// one chunk: the arguments of a function over whole columns.
pub(crate) fn aligned(parts: &[Column], dtype: &DataType) -> PolarsResult<Vec<Column>> {
    let rows = parts.iter().map(Column::len).max().unwrap_or(0);
    parts
        .iter()
        .map(|part| {
            let part = if part.len() == 1 && rows != 1 { part.new_from_index(0, rows) } else { part.clone() };
            Ok(part.cast(dtype)?.rechunk())
        })
        .collect()
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d`; `None` for no such date.
fn epoch_days(y: i32, m: i32, d: i32) -> Option<i32> {
    /// Days from 0001-01-01 (day 1 of the common era, as chrono counts) to 1970-01-01.
    const EPOCH_FROM_CE: i32 = 719_163;
    let date = chrono::NaiveDate::from_ymd_opt(y, u32::try_from(m).ok()?, u32::try_from(d).ok()?)?;
    Some(chrono::Datelike::num_days_from_ce(&date) - EPOCH_FROM_CE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sql: &str, frame: DataFrame) -> PolarsResult<DataFrame> {
        let mut ctx = sql_context();
        ctx.register("input", frame.lazy());
        ctx.execute(sql)?.collect()
    }

    #[test]
    fn make_date_is_the_date_the_text_gives_on_every_day_of_four_centuries() {
        let (mut y, mut m, mut d) = (Vec::new(), Vec::new(), Vec::new());
        for year in [1600, 1899, 1900, 1969, 1970, 2000, 2013, 2024, 2100, 2400] {
            for month in 1..=12 {
                for day in 1..=31 {
                    if epoch_days(year, month, day).is_some() {
                        y.push(year);
                        m.push(month);
                        d.push(day);
                    }
                }
            }
        }
        assert_eq!(y.len(), 10 * 365 + 4, "1600, 2000, 2024 and 2400 are leap years; 1900 and 2100 are not");
        let frame = df!("year" => y, "month" => m, "day" => d).unwrap();
        let both = query(
            "SELECT MAKE_DATE(year, month, day) AS ours, DATE(CONCAT_WS('-', year, month, day), '%Y-%m-%d') AS text, \
             DATE_PART('isodow', make_date(year, month, day)) AS dow FROM input",
            frame,
        )
        .unwrap();
        assert!(both.column("ours").unwrap().equals_missing(both.column("text").unwrap()));
        assert_eq!(both.column("ours").unwrap().dtype(), &DataType::Date);
    }

    #[test]
    fn a_null_part_is_null_a_literal_part_is_every_rows_and_no_date_fails() {
        let frame = df!("month" => [Some(2i64), None, Some(12)], "day" => [Some(28i32), Some(1), Some(31)]).unwrap();
        let out = query("SELECT MAKE_DATE(2013, month, day) AS d FROM input", frame.clone()).unwrap();
        let days: Vec<Option<i32>> = out.column("d").unwrap().to_physical_repr().i32().unwrap().iter().collect();
        assert_eq!(days, [Some(15_764), None, Some(16_070)]); // 2013-02-28, null, 2013-12-31
        let bad = df!("month" => [2i32], "day" => [29i32]).unwrap();
        assert!(query("SELECT MAKE_DATE(2013, month, day) AS d FROM input", bad).is_err(), "2013 is not a leap year");
        assert!(query("SELECT MAKE_DATE(2013, month) AS d FROM input", frame.clone()).is_err());
        assert!(query("SELECT MAKE_DATE('2013', month, day) AS d FROM input", frame).is_err());
        for (y, m, d) in [(2013, 0, 1), (2013, 13, 1), (2013, 4, 31), (2013, 1, 0)] {
            assert_eq!(epoch_days(y, m, d), None, "{y}-{m}-{d}");
        }
        assert_eq!(epoch_days(1970, 1, 1), Some(0));
        assert_eq!(epoch_days(1969, 12, 31), Some(-1));
    }
}
