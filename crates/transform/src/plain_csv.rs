//! The common CSV in one pass: unquoted fields, `\n` line ends, integers and decimals in
//! their plain forms. Each record's fields go straight into typed column builders, where
//! Polars' reader, general over quoting, escapes, encodings and whitespace, spent about a
//! fifth of a backfill's CPU (profiled on the flight year at 10x).
//!
//! Whatever it is not sure to read as Polars' reader does, it leaves to it: [`read`] gives
//! `None` for a quote or a carriage return anywhere, bytes that are not UTF-8, an empty or
//! duplicated header name, an empty line, a record with another number of fields, a column
//! type other than `i32`, `i64` and `f64`, or a number in any other form (a sign `+`,
//! whitespace, a leading zero, an exponent in an integer, more than 18 digits). Where it
//! does read, the frame equals the reader's (tests check on the committed samples and on
//! edge cases): an empty field and the listed null strings are null; an integer is
//! `-?[0-9]+`; a decimal is what `f64::from_str` reads from `-?[0-9.]+([eE][-+]?[0-9]+)?`,
//! correctly rounded as the reader's `fast_float2` is (a whole number of up to 15 digits
//! is exact as an f64, and summed without the parser).

use polars::prelude::*;

/// The frame Polars' reader gives for `data` (a header line, then records) with `numeric`'s
/// columns as their types and every other column as strings; `None` where this pass cannot
/// be sure of it (see the module's text). `rows`: the records expected (the prescan's count),
/// to size the columns.
pub(crate) fn read(data: &[u8], separator: u8, numeric: &[(&str, DataType)], null_values: &[&str], rows: usize) -> Option<DataFrame> {
    if !separator.is_ascii() || separator == b'\n' || memchr::memchr2(b'"', b'\r', data).is_some() {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    let (header, body) = text.split_once('\n').unwrap_or((text, ""));
    let names: Vec<&str> = header.split(separator as char).collect();
    if names.iter().enumerate().any(|(i, n)| n.is_empty() || names[..i].contains(n)) || numeric.iter().any(|(n, _)| !names.contains(n)) {
        return None;
    }
    let mut columns = names
        .iter()
        .map(|n| Builder::new(n, numeric.iter().find(|(c, _)| c == n).map(|(_, t)| t), rows))
        .collect::<Option<Vec<_>>>()?;
    let bytes = body.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        if end == start {
            return None; // an empty line
        }
        let mut from = start;
        let mut fields = 0;
        for to in memchr::memchr_iter(separator, &bytes[start..end]).map(|i| start + i).chain([end]) {
            let field = &body[from..to];
            let column = columns.get_mut(fields)?;
            if is_null(field, null_values) {
                column.push_null();
            } else if !column.push(field) {
                return None;
            }
            fields += 1;
            from = to + 1;
        }
        if fields != columns.len() {
            return None;
        }
        start = end + 1;
    }
    DataFrame::new_infer_height(columns.into_iter().map(Builder::finish).collect()).ok()
}

/// One column's values as they are read.
enum Builder {
    I32(PrimitiveChunkedBuilder<Int32Type>),
    I64(PrimitiveChunkedBuilder<Int64Type>),
    F64(PrimitiveChunkedBuilder<Float64Type>),
    Str(StringChunkedBuilder),
}

impl Builder {
    /// `None` for a type this pass does not read.
    fn new(name: &str, dtype: Option<&DataType>, rows: usize) -> Option<Self> {
        let name = PlSmallStr::from_str(name);
        Some(match dtype {
            None => Builder::Str(StringChunkedBuilder::new(name, rows)),
            Some(DataType::Int32) => Builder::I32(PrimitiveChunkedBuilder::new(name, rows)),
            Some(DataType::Int64) => Builder::I64(PrimitiveChunkedBuilder::new(name, rows)),
            Some(DataType::Float64) => Builder::F64(PrimitiveChunkedBuilder::new(name, rows)),
            Some(_) => return None,
        })
    }

    fn push_null(&mut self) {
        match self {
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Str(b) => b.append_null(),
        }
    }

    /// Append a present field; false when it is not in its type's plain form.
    #[inline]
    fn push(&mut self, field: &str) -> bool {
        match self {
            Builder::I32(b) => match integer(field.as_bytes()).and_then(|v| i32::try_from(v).ok()) {
                Some(v) => b.append_value(v),
                None => return false,
            },
            Builder::I64(b) => match integer(field.as_bytes()) {
                Some(v) => b.append_value(v),
                None => return false,
            },
            Builder::F64(b) => match decimal(field) {
                Some(v) => b.append_value(v),
                None => return false,
            },
            Builder::Str(b) => b.append_value(field),
        }
        true
    }

    fn finish(self) -> Column {
        match self {
            Builder::I32(b) => b.finish().into_column(),
            Builder::I64(b) => b.finish().into_column(),
            Builder::F64(b) => b.finish().into_column(),
            Builder::Str(b) => b.finish().into_column(),
        }
    }
}

/// `-?[0-9]{1,18}` without a leading zero (but `0` itself).
#[inline]
fn integer(field: &[u8]) -> Option<i64> {
    let (negative, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, field),
    };
    if digits.is_empty() || digits.len() > 18 || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut value = 0i64;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + i64::from(d);
    }
    Some(if negative { -value } else { value })
}

/// Empty, or one of the null strings (its first byte compared before the rest).
#[inline]
fn is_null(field: &str, null_values: &[&str]) -> bool {
    field.is_empty() || null_values.iter().any(|n| n.len() == field.len() && n.as_bytes().first() == field.as_bytes().first() && *n == field)
}

/// A decimal of digits, `.`, signs and an exponent only (no `+` first, no `inf` or `nan`).
/// One of at most 15 digits and no point is exact as an f64, so it is summed, not parsed
/// (`-0` is -0.0, as the reader reads it).
#[inline]
fn decimal(field: &str) -> Option<f64> {
    let bytes = field.as_bytes();
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    if !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let value = digits.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0')) as f64;
        return Some(if negative { -value } else { value });
    }
    let plain = |c: &u8| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E');
    if field.starts_with('+') || !field.as_bytes().iter().all(plain) {
        return None;
    }
    field.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// What `ingest::strings` asks of Polars' reader, for the same inputs.
    fn polars(data: &[u8], numeric: &[(&str, DataType)], null_values: &[&str]) -> DataFrame {
        let schema: Schema = numeric.iter().map(|(n, t)| Field::new((*n).into(), t.clone())).collect();
        let nulls = NullValues::AllColumns(null_values.iter().map(|s| (*s).into()).collect());
        CsvReadOptions::default()
            .with_has_header(true)
            .with_schema_overwrite((!schema.is_empty()).then(|| Arc::new(schema)))
            .with_infer_schema_length(Some(0))
            .with_parse_options(CsvParseOptions::default().with_null_values((!null_values.is_empty()).then_some(nulls)))
            .into_reader_with_file_handle(Cursor::new(data))
            .finish()
            .unwrap()
    }

    fn same(data: &str, numeric: &[(&str, DataType)]) {
        let ours = read(data.as_bytes(), b',', numeric, &["NA"], data.lines().count()).unwrap_or_else(|| panic!("not read: {:?}", &data[..data.len().min(200)]));
        let theirs = polars(data.as_bytes(), numeric, &["NA"]);
        assert_eq!(ours.schema(), theirs.schema(), "{data:?}");
        assert!(ours.equals_missing(&theirs), "{data:?}:\n{ours}\n{theirs}");
    }

    #[test]
    fn the_committed_flights_read_as_polars_reads_them() {
        let numeric: Vec<(&str, DataType)> = ["year", "month", "day", "dep_time", "sched_dep_time", "arr_time", "sched_arr_time", "flight", "hour", "minute"]
            .into_iter()
            .map(|c| (c, DataType::Int32))
            .chain(["dep_delay", "arr_delay", "air_time", "distance"].into_iter().map(|c| (c, DataType::Float64)))
            .collect();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/sample/landing/flights");
        let mut files = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let data = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            same(&data, &numeric);
            files += 1;
        }
        assert!(files > 0);
    }

    #[test]
    fn plain_forms_nulls_and_line_ends_read_as_polars_reads_them() {
        let types = [("i", DataType::Int32), ("l", DataType::Int64), ("f", DataType::Float64)];
        same("i,l,f,s\n0,-0,-0,Zürich\n-2147483648,999999999999999999,1.5e3,\n2147483647,-7,.5,NA\n,,5.,x y\nNA,NA,NA,NA\n", &types);
        same("i,l,f,s\n1,2,-0.25,a\n3,4,1E-05,b", &types); // no newline at the end
        // whole numbers as decimals: leading zeros, 15 and 16 digits, and -0 keeps its sign
        same("f\n007\n-999999999999999\n1234567890123456\n-0\n", &types[2..]);
        let zero = read(b"f\n-0\n", b',', &types[2..], &[], 1).unwrap();
        assert!(zero.column("f").unwrap().f64().unwrap().get(0).unwrap().is_sign_negative());
        same("s,t\n,\nNA,x\n", &[]);
        same("i,f\n", &types[..1]); // a header only
    }

    #[test]
    fn anything_else_is_left_to_polars() {
        let types = [("i", DataType::Int32), ("f", DataType::Float64)];
        for data in [
            "i,f\n\"1\",2\n",
            "i,f\r\n1,2\r\n",
            "i,f\n+1,2\n",
            "i,f\n 1,2\n",
            "i,f\n01,2\n",
            "i,f\n1e3,2\n",
            "i,f\n2147483648,2\n",
            "i,f\n1,+2\n",
            "i,f\n1,inf\n",
            "i,f\n1,2\n\n3,4\n",
            "i,f\n1,2,3\n",
            "i,f\n1\n",
            "i,i\n1,2\n",
            "i,\n1,2\n",
        ] {
            assert!(read(data.as_bytes(), b',', &types, &["NA"], 2).is_none(), "{data:?}");
        }
        assert!(read(b"i,f\n1,2\n", b',', &[("f", DataType::Float32)], &[], 1).is_none());
        assert!(read(b"i,f\n1,\xff\n", b',', &[], &[], 1).is_none());
    }
}
