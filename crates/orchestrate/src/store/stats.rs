//! What the Delta log says of the files a run writes: the table schema as a Delta struct
//! type, and each file's statistics (`numRecords`, per-column `minValues`, `maxValues` and
//! `nullCount`, as Delta writers record them).
//!
//! The bounds are the ones the file's Parquet footer already records for each column chunk
//! (as delta-rs takes them): the writer computes them once, on a dictionary's distinct
//! values where it has one. Computing them again on the frame was 0.38 s of a 10x
//! backfill's encoding CPU, most of it comparing strings row by row.

use std::cmp::Ordering;
use std::io::Cursor;

use polars::prelude::*;
use polars_parquet::parquet::statistics::Statistics;
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

/// The statistics of `file`, the Parquet bytes of `df`'s rows: the row and null counts from
/// the frame, the bounds from the file's footer. The partition column is left out: its
/// value is the file's partition value.
pub fn file_stats(df: &DataFrame, file: &[u8], partition_key: &str) -> FileStats {
    let mut bounds = footer_bounds(file, df.schema()).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "no column bounds for a file: its footer did not read back");
        Default::default()
    });
    let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
    for c in df.columns().iter().filter(|c| c.name().as_str() != partition_key) {
        let name = c.name().to_string();
        nulls.insert(name.clone(), json!(c.null_count()));
        if let Some((lo, hi)) = bounds.remove(name.as_str()) {
            if let Some(v) = lo {
                min.insert(name.clone(), v);
            }
            if let Some(v) = hi {
                max.insert(name, v);
            }
        }
    }
    let stats = json!({"numRecords": df.height(), "minValues": min, "maxValues": max, "nullCount": nulls});
    FileStats { size: file.len() as u64, rows: df.height() as u64, stats: Some(stats.to_string()) }
}

/// A column chunk's smallest or largest value, as its statistics hold it.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Plain {
    Int(i64),
    F32(f32),
    F64(f64),
    Bytes(Vec<u8>),
}

/// What one column chunk says of its column's range.
enum Chunk {
    /// Every value null: nothing to bound.
    Empty,
    Range(Plain, Plain),
    /// No usable statistics: the file's range is unknown.
    Unknown,
}

type Bounds = std::collections::HashMap<String, (Option<Value>, Option<Value>)>;

/// Each top-level column's Delta bounds (`None` each where it has none), across the
/// footer's row groups.
fn footer_bounds(file: &[u8], schema: &Schema) -> Result<Bounds, polars_parquet::parquet::error::ParquetError> {
    let meta = polars_parquet::read::read_metadata(&mut Cursor::new(file))?;
    let mut ranges: std::collections::HashMap<String, (Plain, Plain)> = Default::default();
    let mut unknown = std::collections::HashSet::new();
    for group in &meta.row_groups {
        for chunk in group.parquet_columns() {
            let [name] = chunk.descriptor().path_in_schema.as_slice() else { continue };
            let Some(dtype) = schema.get(name) else { continue };
            let stats = chunk.statistics(&meta.footer_buf).and_then(Result::ok);
            match chunk_range(stats, group.num_rows(), dtype) {
                Chunk::Empty => {}
                Chunk::Unknown => {
                    unknown.insert(name.to_string());
                }
                Chunk::Range(lo, hi) => {
                    let range = match ranges.remove(name.as_str()) {
                        None => (lo, hi),
                        Some((a, b)) => (least(a, lo, Ordering::Less), least(b, hi, Ordering::Greater)),
                    };
                    ranges.insert(name.to_string(), range);
                }
            }
        }
    }
    Ok(ranges
        .into_iter()
        .filter(|(name, _)| !unknown.contains(name))
        .filter_map(|(name, (lo, hi))| {
            let dtype = schema.get(&name)?;
            Some((name, (bound(lo, dtype, false), bound(hi, dtype, true))))
        })
        .collect())
}

/// `b` if it compares `wanted` to `a`, else `a` (no NaN reaches here: see [`chunk_range`]).
fn least(a: Plain, b: Plain, wanted: Ordering) -> Plain {
    if b.partial_cmp(&a) == Some(wanted) { b } else { a }
}

/// The range of a column chunk of `rows` rows of type `dtype`, from its statistics.
fn chunk_range(stats: Option<Statistics>, rows: usize, dtype: &DataType) -> Chunk {
    let (nulls, lo, hi) = match stats {
        Some(Statistics::Int32(s)) => {
            // a UInt32 is stored in INT32's bits
            let int = |v: i32| Plain::Int(if dtype == &DataType::UInt32 { v as u32 as i64 } else { v as i64 });
            (s.null_count, s.min_value.map(int), s.max_value.map(int))
        }
        Some(Statistics::Int64(s)) => (s.null_count, s.min_value.map(Plain::Int), s.max_value.map(Plain::Int)),
        Some(Statistics::Float(s)) => (s.null_count, s.min_value.map(Plain::F32), s.max_value.map(Plain::F32)),
        Some(Statistics::Double(s)) => (s.null_count, s.min_value.map(Plain::F64), s.max_value.map(Plain::F64)),
        Some(Statistics::Binary(s)) => (s.null_count, s.min_value.map(Plain::Bytes), s.max_value.map(Plain::Bytes)),
        _ => return Chunk::Unknown,
    };
    let nan = |p: &Plain| matches!(p, Plain::F32(x) if x.is_nan()) || matches!(p, Plain::F64(x) if x.is_nan());
    match (lo, hi) {
        // a NaN bounds nothing (Polars' writer leaves a chunk with one unbounded)
        (Some(lo), Some(hi)) if nan(&lo) || nan(&hi) => Chunk::Unknown,
        (Some(lo), Some(hi)) => Chunk::Range(lo, hi),
        _ if nulls == Some(rows as i64) => Chunk::Empty,
        _ => Chunk::Unknown,
    }
}

/// A bound as Delta's stats JSON writes it for a column of `dtype`; `None` where it has none.
fn bound(v: Plain, dtype: &DataType, is_max: bool) -> Option<Value> {
    Some(match (v, dtype) {
        (Plain::Int(x), DataType::Date) => json!(date(x)?),
        (Plain::Int(x), DataType::Datetime(unit, tz)) => json!(datetime(x, *unit, tz.is_some())?),
        (Plain::Int(x), dt) if dt.is_integer() && dt != &DataType::UInt64 => json!(x),
        // a zero as 0.0, though Parquet writes a minimum of zero as -0.0
        (Plain::F32(x), DataType::Float32) if x.is_finite() => json!(x + 0.0),
        (Plain::F64(x), DataType::Float64) if x.is_finite() => json!(x + 0.0),
        (Plain::Bytes(b), DataType::String) => string_bound(std::str::from_utf8(&b).ok()?, is_max)?,
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

/// A date (days since the epoch) as `2013-01-15`.
fn date(days: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(days.checked_mul(86_400)?, 0).map(|t| t.format("%Y-%m-%d").to_string())
}

/// A timestamp to the microsecond, `Z` where the column has a zone.
fn datetime(x: i64, unit: TimeUnit, zoned: bool) -> Option<String> {
    let micros = match unit {
        TimeUnit::Nanoseconds => x.div_euclid(1000),
        TimeUnit::Microseconds => x,
        TimeUnit::Milliseconds => x.checked_mul(1000)?,
    };
    let t = chrono::DateTime::from_timestamp_micros(micros)?;
    Some(t.format(if zoned { "%Y-%m-%dT%H:%M:%S%.6fZ" } else { "%Y-%m-%dT%H:%M:%S%.6f" }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `df` as Parquet through Polars' writer, `group` rows per row group.
    fn parquet(df: &mut DataFrame, group: usize) -> Vec<u8> {
        let mut out = Vec::new();
        ParquetWriter::new(&mut out).with_row_group_size(Some(group)).finish(df).unwrap();
        out
    }

    #[test]
    fn the_bounds_are_the_footers_across_its_row_groups() {
        let ints = [Some(7i32), None, Some(-3), Some(12), None, Some(5), Some(0)];
        let big = [1u32, 4_000_000_000, 3, 9, 2, 8, 5]; // above i32::MAX: INT32's bits
        let floats = [Some(0.5f64), Some(-2.25), None, Some(1e300), Some(3.0), Some(-0.0), Some(2.0)];
        let small = [0.25f32, -1.5, 8.0, 3.0, 2.0, 1.0, 0.0];
        let with_nan = [1.0f64, f64::NAN, 3.0, 4.0, 5.0, 6.0, 7.0]; // in the first row group
        let strings = ["m", "b", "zz", "c", "a1", "q", "d"];
        let long = "x".repeat(STRING_PREFIX + 8);
        let longs = ["b", "c", long.as_str(), "d", "e", "f", "g"];
        let days: Vec<chrono::NaiveDate> = [40, 3, 300, 12, 77, 5, 200].iter().map(|d| chrono::NaiveDate::from_yo_opt(2013, *d).unwrap()).collect();
        let nanos = [1_357_000_000_123_456_789i64, 1_356_999_999_000_000_001, 1_358_000_000_000_000_000, 1_357_500_000_000_000_000, 1_357_000_000_000_000_000, 1_357_100_000_000_000_000, 1_357_200_000_000_000_000];
        let mut df = df!(
            "p" => ["k"; 7], "i" => ints, "u" => big, "f" => floats, "f32" => small, "nan" => with_nan, "s" => strings, "long" => longs,
            "day" => days.clone(), "t" => nanos, "none" => [None::<f64>; 7], "b" => [true, false, true, true, false, true, true],
        )
        .unwrap();
        df.apply("t", |t| t.cast(&DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC))).unwrap()).unwrap();
        let micros = |n: i64| chrono::DateTime::from_timestamp_micros(n.div_euclid(1000)).unwrap().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        for group in [2, 7] {
            let bytes = parquet(&mut df, group);
            let groups = polars_parquet::read::read_metadata(&mut Cursor::new(&bytes)).unwrap().row_groups.len();
            assert_eq!(groups > 1, group < 7, "{groups} row groups");
            let stats: Value = serde_json::from_str(file_stats(&df, &bytes, "p").stats.as_deref().unwrap()).unwrap();
            let (min, max, nulls) = (&stats["minValues"], &stats["maxValues"], &stats["nullCount"]);
            assert_eq!(stats["numRecords"], 7);
            assert_eq!((&min["i"], &max["i"], &nulls["i"]), (&json!(ints.iter().flatten().min()), &json!(ints.iter().flatten().max()), &json!(2)));
            assert_eq!((&min["u"], &max["u"]), (&json!(big.iter().min()), &json!(big.iter().max())), "{group} rows a group");
            let fmin = floats.iter().flatten().copied().fold(f64::INFINITY, f64::min);
            let fmax = floats.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((&min["f"], &max["f"], &nulls["f"]), (&json!(fmin), &json!(fmax), &json!(1)));
            let smin = small.iter().copied().fold(f32::INFINITY, f32::min);
            assert_eq!(min["f32"], json!(smin));
            assert_eq!((&min["s"], &max["s"]), (&json!(strings.iter().min()), &json!(strings.iter().max())));
            // the longest string bounds from below cut to Delta's prefix, not from above
            assert_eq!(min["long"], json!("b"));
            assert!(max.get("long").is_none() && max.get("nan").is_none() && min.get("nan").is_none(), "{stats}");
            assert_eq!((&min["day"], &max["day"]), (&json!(days.iter().min().unwrap().to_string()), &json!(days.iter().max().unwrap().to_string())));
            assert_eq!((&min["t"], &max["t"]), (&json!(micros(*nanos.iter().min().unwrap())), &json!(micros(*nanos.iter().max().unwrap()))));
            assert!(min.get("none").is_none() && min.get("b").is_none() && min.get("p").is_none(), "{stats}");
            assert_eq!((&nulls["none"], &nulls["b"], nulls.get("p")), (&json!(7), &json!(0), None));
        }
    }
}
