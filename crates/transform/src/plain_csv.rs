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
//! correctly rounded as the reader's `fast_float2` is (one of up to 15 digits and no
//! exponent is placed without the parser, exactly: see [`decimal`]).

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
    if !records(body, separator, &mut columns, null_values) {
        return None;
    }
    DataFrame::new_infer_height(columns.into_iter().map(Builder::finish).collect()).ok()
}

/// Read `body`'s records (whole lines; the last one's `\n` may be missing) into `columns`;
/// false where they are not plain. One pass over the bytes: each field ends at the first
/// separator or line end after it (fields are short: a byte loop beats a search), and must
/// end with a separator but the last, which ends its line.
fn records(body: &str, separator: u8, columns: &mut [Builder], null_values: &[&str]) -> bool {
    let bytes = body.as_bytes();
    let Some(last) = columns.len().checked_sub(1) else { return bytes.is_empty() };
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'\n' {
            return false; // an empty line
        }
        for (i, column) in columns.iter_mut().enumerate() {
            let start = at;
            while at < bytes.len() && bytes[at] != separator && bytes[at] != b'\n' {
                at += 1;
            }
            let ends_line = at == bytes.len() || bytes[at] == b'\n';
            if ends_line != (i == last) {
                return false; // another number of fields than the header's
            }
            let field = &body[start..at];
            if is_null(field, null_values) {
                column.push_null();
            } else if !column.push(field) {
                return false;
            }
            at += 1;
        }
    }
    true
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
/// One of at most 15 digits, at most one point and no exponent is exact before its point is
/// placed, and so is a power of ten up to 1e15: their quotient is the correctly rounded
/// value, as `f64::from_str` and the reader's `fast_float2` give (`-0` is -0.0, as they read
/// it). Anything else goes through `f64::from_str`.
#[inline]
fn decimal(field: &str) -> Option<f64> {
    let bytes = field.as_bytes();
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let (mut mantissa, mut count, mut point) = (0u64, 0usize, None);
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' if count < 15 => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                count += 1;
            }
            b'.' if point.is_none() => point = Some(i),
            _ => return parsed(field),
        }
    }
    if count == 0 {
        return parsed(field);
    }
    let places = point.map_or(0, |p| digits.len() - p - 1);
    let value = mantissa as f64 / POWERS_OF_TEN[places];
    Some(if negative { -value } else { value })
}

/// 1e0 to 1e15, each exact as an f64.
const POWERS_OF_TEN: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// A decimal [`decimal`] does not place itself, if it is in a plain form.
fn parsed(field: &str) -> Option<f64> {
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
    fn decimals_placed_without_the_parser_are_the_parsers_values() {
        // a deterministic spread of digit counts, point places, signs and zeros
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let digits = 1 + (next() % 17) as usize;
            let mut text: String = (0..digits).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
            match next() % 4 {
                0 => {}
                1 => text.insert(0, '.'),
                2 => text.push('.'),
                _ => text.insert((next() as usize) % (digits + 1), '.'),
            }
            if next() % 2 == 0 {
                text.insert(0, '-');
            }
            let ours = decimal(&text).unwrap();
            let theirs: f64 = text.parse().unwrap();
            assert_eq!(ours.to_bits(), theirs.to_bits(), "{text}");
        }
        for bad in ["", "-", ".", "-.", "1.2.3", "+1", "1e", "inf", "1,5"] {
            assert_eq!(decimal(bad), bad.parse().ok().filter(|_| !bad.starts_with('+') && bad != "inf"), "{bad}");
        }
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
