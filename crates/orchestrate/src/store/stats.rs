//! What the Delta log says of the files a run writes: the table schema as a Delta struct
//! type, and each file's statistics (`numRecords`, per-column `minValues`, `maxValues` and
//! `nullCount`, as Delta writers record them), computed on the frame before it is encoded.

use polars::prelude::*;
use serde_json::{json, Map, Value};

use crate::error::SluiceError;
use crate::types::FileStats;

/// Delta keeps string bounds this long (its writers' default); a longer maximum is left
/// out rather than truncated, which would make it smaller than the values it bounds.
const STRING_PREFIX: usize = 32;

/// The Delta type of a Polars column, `None` for one a Delta table cannot hold.
fn delta_type(dt: &DataType) -> Option<Value> {
    let name = match dt {
        DataType::Boolean => "boolean",
        DataType::Int8 => "byte",
        DataType::Int16 | DataType::UInt8 => "short",
        DataType::Int32 | DataType::UInt16 => "integer",
        DataType::Int64 | DataType::UInt32 => "long",
        DataType::Float32 => "float",
        DataType::Float64 => "double",
        DataType::String => "string",
        DataType::Binary => "binary",
        DataType::Date => "date",
        DataType::Datetime(_, None) => "timestamp_ntz",
        DataType::Datetime(_, Some(_)) => "timestamp",
        DataType::List(inner) | DataType::Array(inner, _) => {
            return Some(json!({"type": "array", "elementType": delta_type(inner)?, "containsNull": true}))
        }
        _ => return None,
    };
    Some(Value::from(name))
}

/// The table schema of frames with `schema`.
pub fn table_schema(schema: &Schema) -> Result<Value, SluiceError> {
    let mut fields = Vec::new();
    for (name, dt) in schema.iter() {
        let t = delta_type(dt).ok_or_else(|| {
            SluiceError::Usage(format!("output column {name} is {dt}, which a Delta table cannot hold; cast it in the pipeline"))
        })?;
        fields.push(json!({"name": name.as_str(), "type": t, "nullable": true, "metadata": {}}));
    }
    Ok(json!({"type": "struct", "fields": fields}))
}

/// The statistics of a file of `df`'s rows, `size` bytes long. The partition column is
/// left out: its value is the file's partition value.
pub fn file_stats(df: &DataFrame, size: usize, partition_key: &str) -> FileStats {
    let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
    for c in df.columns().iter().filter(|c| c.name().as_str() != partition_key) {
        let s = c.as_materialized_series();
        let name = c.name().to_string();
        nulls.insert(name.clone(), json!(s.null_count()));
        if matches!(s.dtype(), DataType::List(_) | DataType::Array(..) | DataType::Boolean | DataType::Binary) {
            continue;
        }
        if let Some(v) = s.min_reduce().ok().and_then(|m| bound(m.value(), false)) {
            min.insert(name.clone(), v);
        }
        if let Some(v) = s.max_reduce().ok().and_then(|m| bound(m.value(), true)) {
            max.insert(name, v);
        }
    }
    let stats = json!({"numRecords": df.height(), "minValues": min, "maxValues": max, "nullCount": nulls});
    FileStats { size: size as u64, rows: df.height() as u64, stats: Some(stats.to_string()) }
}

/// A bound as Delta's stats JSON writes it; `None` where it has none.
fn bound(v: &AnyValue<'_>, is_max: bool) -> Option<Value> {
    Some(match v {
        AnyValue::Null => return None,
        AnyValue::Int8(x) => json!(x),
        AnyValue::Int16(x) => json!(x),
        AnyValue::Int32(x) => json!(x),
        AnyValue::Int64(x) => json!(x),
        AnyValue::UInt8(x) => json!(x),
        AnyValue::UInt16(x) => json!(x),
        AnyValue::UInt32(x) => json!(x),
        AnyValue::Float32(x) if x.is_finite() => json!(x),
        AnyValue::Float64(x) if x.is_finite() => json!(x),
        AnyValue::String(s) => string_bound(s, is_max)?,
        AnyValue::StringOwned(s) => string_bound(s, is_max)?,
        AnyValue::Date(_) | AnyValue::Datetime(..) | AnyValue::DatetimeOwned(..) => json!(time_bound(v)?),
        _ => return None,
    })
}

fn string_bound(s: &str, is_max: bool) -> Option<Value> {
    match s.chars().count() > STRING_PREFIX {
        true if is_max => None,
        true => Some(json!(s.chars().take(STRING_PREFIX).collect::<String>())),
        false => Some(json!(s)),
    }
}

/// Dates as `2013-01-15`; timestamps to the microsecond, `Z` where the column has a zone.
fn time_bound(v: &AnyValue<'_>) -> Option<String> {
    match v {
        AnyValue::Date(d) => chrono::DateTime::from_timestamp(*d as i64 * 86_400, 0).map(|t| t.format("%Y-%m-%d").to_string()),
        AnyValue::Datetime(x, unit, tz) => datetime(*x, *unit, tz.is_some()),
        AnyValue::DatetimeOwned(x, unit, tz) => datetime(*x, *unit, tz.is_some()),
        _ => None,
    }
}

fn datetime(x: i64, unit: TimeUnit, zoned: bool) -> Option<String> {
    let micros = match unit {
        TimeUnit::Nanoseconds => x.div_euclid(1000),
        TimeUnit::Microseconds => x,
        TimeUnit::Milliseconds => x.checked_mul(1000)?,
    };
    let t = chrono::DateTime::from_timestamp_micros(micros)?;
    Some(t.format(if zoned { "%Y-%m-%dT%H:%M:%S%.6fZ" } else { "%Y-%m-%dT%H:%M:%S%.6f" }).to_string())
}
