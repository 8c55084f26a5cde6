//! Column types a pipeline file declares, written as short names: `i32`, `i64`, `f32`, `f64`,
//! `str`, `bool`, `date` (`%Y-%m-%d`) and `datetime` (naive, microseconds; ISO-8601 with an
//! optional trailing `Z`).

use std::fmt;
use std::str::FromStr;

use polars::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    I32,
    I64,
    F32,
    F64,
    Str,
    Bool,
    Date,
    Datetime,
}

impl ColumnType {
    pub fn dtype(self) -> DataType {
        match self {
            ColumnType::I32 => DataType::Int32,
            ColumnType::I64 => DataType::Int64,
            ColumnType::F32 => DataType::Float32,
            ColumnType::F64 => DataType::Float64,
            ColumnType::Str => DataType::String,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date => DataType::Date,
            ColumnType::Datetime => DataType::Datetime(TimeUnit::Microseconds, None),
        }
    }

    /// The expression that turns a String column into this type; unparsable values become
    /// null (the caller compares with the input to find them).
    pub fn parse_expr(self, column: &str) -> Expr {
        let c = col(column);
        match self {
            ColumnType::Str => c,
            ColumnType::Date => c.str().to_date(StrptimeOptions {
                format: Some("%Y-%m-%d".into()),
                strict: false,
                exact: true,
                cache: true,
            }),
            ColumnType::Datetime => datetime_expr(column, None),
            ColumnType::Bool => {
                let lower = c.str().to_lowercase();
                when(lower.clone().eq(lit("true")))
                    .then(lit(true))
                    .when(lower.eq(lit("false")))
                    .then(lit(false))
                    .otherwise(lit(NULL).cast(DataType::Boolean))
            }
            other => c.cast(other.dtype()),
        }
    }
}

/// Formats tried, from the first value, by [`parse_datetime`]: the common ones Polars' own
/// inference would find.
const DATETIME_FORMATS: [&str; 4] = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"];

/// A text column as Datetime(µs), the same as [`ColumnType::Datetime`]'s `parse_expr`, faster:
/// Polars' format inference re-reads its format for every value. When the first value has
/// one of [`DATETIME_FORMATS`] and every value parses with it, each distinct value is parsed
/// once (Polars' cache). Otherwise (another format, mixed formats, a value that does not
/// parse) the inference runs as before, so the result is the same.
///
/// The first value's format is found without the engine (a query per format tried cost a
/// millisecond of a daily run), and the column parsed with it without a query too. When the
/// first value ends in `Z`, the column is parsed with the `Z` as part of the format: no copy
/// of every value without its `Z`.
pub fn parse_datetime(column: &Column) -> PolarsResult<Column> {
    let name = column.name().as_str();
    let parse = |e: Expr| -> PolarsResult<Column> {
        let frame = DataFrame::new_infer_height(vec![column.clone()])?;
        Ok(frame.lazy().select([e]).collect()?.into_columns().swap_remove(0))
    };
    let text = column.str()?;
    if let Some(first) = text.first_non_null().and_then(|i| text.get(i)) {
        let bare = first.strip_suffix('Z');
        let format = DATETIME_FORMATS.iter().find(|f| chrono::NaiveDateTime::parse_from_str(bare.unwrap_or(first), f).is_ok());
        if let Some(f) = format {
            // what `to_datetime`'s expression runs (exact, cached, no time zone in these
            // formats), called directly: a query for one column cost a daily run ~2 ms
            let raise = StringChunked::new("ambiguous".into(), ["raise"]);
            let parsed = match bare {
                Some(_) => text.as_datetime(Some(&format!("{f}Z")), TimeUnit::Microseconds, true, false, None, &raise)?,
                None => text.strip_suffix(&StringChunked::new("z".into(), ["Z"])).as_datetime(Some(f), TimeUnit::Microseconds, true, false, None, &raise)?,
            };
            let parsed = parsed.into_column().with_name(name.into());
            if parsed.null_count() == column.null_count() {
                return Ok(parsed);
            }
        }
    }
    parse(datetime_expr(name, None))
}

/// Text in `format` (or the one Polars infers from the first value) to Datetime(µs);
/// values that do not parse become null.
fn to_datetime(text: Expr, format: Option<&str>) -> Expr {
    let options = StrptimeOptions { format: format.map(Into::into), strict: false, exact: true, cache: true };
    text.str().to_datetime(Some(TimeUnit::Microseconds), None, options, lit("raise"))
}

/// Text (an optional trailing `Z` dropped) to Datetime(µs) with `format`, or the format
/// Polars infers from the first value; values that do not parse become null.
fn datetime_expr(column: &str, format: Option<&str>) -> Expr {
    to_datetime(col(column).str().strip_suffix(lit("Z")), format)
}

impl FromStr for ColumnType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "i32" => ColumnType::I32,
            "i64" => ColumnType::I64,
            "f32" => ColumnType::F32,
            "f64" => ColumnType::F64,
            "str" => ColumnType::Str,
            "bool" => ColumnType::Bool,
            "date" => ColumnType::Date,
            "datetime" => ColumnType::Datetime,
            other => {
                return Err(format!(
                    "unknown column type '{other}' (expected one of i32, i64, f32, f64, str, bool, date, datetime)"
                ))
            }
        })
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnType::I32 => "i32",
            ColumnType::I64 => "i64",
            ColumnType::F32 => "f32",
            ColumnType::F64 => "f64",
            ColumnType::Str => "str",
            ColumnType::Bool => "bool",
            ColumnType::Date => "date",
            ColumnType::Datetime => "datetime",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Polars' own inference makes of the column (the reference).
    fn inferred(values: &[Option<&str>]) -> Column {
        let frame = df!("t" => values).unwrap();
        frame.lazy().select([ColumnType::Datetime.parse_expr("t")]).collect().unwrap().into_columns().swap_remove(0)
    }

    #[test]
    fn datetimes_parse_as_polars_inference_does_with_one_format_mixed_or_broken() {
        let cases: [&[Option<&str>]; 9] = [
            &[Some("2013-01-01 05:00:00"), None, Some("2013-12-31 23:59:59"), Some("2013-01-01 05:00:00")],
            &[Some("2013-01-01T05:00:00Z"), Some("2013-01-01T06:30:00Z")],
            // a Z on the first value only, and on a later one only
            &[Some("2013-01-01T05:00:00Z"), Some("2013-01-01T06:30:00"), None],
            &[Some("2013-01-01T05:00:00"), Some("2013-01-01T06:30:00Z")],
            &[Some("2013-01-01 05:00"), Some("2013-02-28 17:45")],
            // fits the sniffed format at first, then not: the inference decides
            &[Some("2013-01-01 05:00:00"), Some("2013-01-01T06:00:00"), Some("2013-01-01 07:00:00.250")],
            &[Some("2013-01-01 05:00:00"), Some("not a time"), Some("2013-02-30 01:00:00")],
            &[Some("2013-01-01"), Some("2013-01-02 03:00:00")],
            &[None, None],
        ];
        // the trailing Z is read as part of the format (the path that copies no value)
        let zs = df!("t" => [Some("2013-01-01T05:00:00Z"), None]).unwrap();
        let direct = zs.lazy().select([to_datetime(col("t"), Some("%Y-%m-%dT%H:%M:%SZ"))]).collect().unwrap();
        assert_eq!(direct.column("t").unwrap().null_count(), 1);
        for values in cases {
            let column = Column::new("t".into(), values);
            let fast = parse_datetime(&column).unwrap();
            let reference = inferred(values);
            assert_eq!(fast.dtype(), reference.dtype(), "{values:?}");
            assert!(fast.as_materialized_series().equals_missing(reference.as_materialized_series()), "{values:?}: {fast:?} vs {reference:?}");
        }
    }
}
