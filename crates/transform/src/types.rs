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
            ColumnType::Datetime => c.str().strip_suffix(lit("Z")).str().to_datetime(
                Some(TimeUnit::Microseconds),
                None,
                StrptimeOptions { format: None, strict: false, exact: true, cache: true },
                lit("raise"),
            ),
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
