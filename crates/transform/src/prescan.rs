//! The first pass over a CSV object: which records are well formed, the line each starts on,
//! and the bytes Polars then parses.
//!
//! Two ways through, which must find the same records (the `ingest_csv` fuzz target checks
//! that a file and its CRLF twin give the same rows):
//! - **The usual file** (no quotes, valid UTF-8, LF or CRLF line ends, no blank line, no
//!   lone `\r`, every line the header's field count) is checked by byte search (a tenth of
//!   the CSV reader's time) and Polars parses its own bytes.
//! - **Anything else** goes through the `csv` crate record by record. Its well-formed
//!   records are written out again as plain CSV (LF line ends, quotes only where a field
//!   needs them), so Polars parses exactly the records the `csv` crate found, whatever the
//!   line ends, blank lines or `\r`s inside quotes; malformed ones are set aside with their
//!   line and reason.
//!
//! A UTF-8 byte order mark before the header is not part of the data ([`strip_bom`]).

use crate::error::TransformError;
use crate::types::ColumnType;

pub(crate) struct Prescan {
    /// The well-formed records written out again (header first), or None: parse the
    /// object's own bytes.
    pub cleaned: Option<Vec<u8>>,
    /// Where the first record starts (the header's end), in the bytes Polars parses.
    pub header_end: usize,
    /// The line each well-formed record starts on (1-based; the header is line 1).
    pub lines: Vec<u32>,
    pub bad_lines: Vec<u32>,
    pub bad_raw: Vec<String>,
    pub bad_reasons: Vec<String>,
}

/// `bytes` without a leading UTF-8 byte order mark (Excel writes one).
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Check that the header has the `declared` columns, then sort the records into good and bad.
pub(crate) fn prescan(file: &str, bytes: &[u8], separator: u8, declared: &[(String, ColumnType)]) -> Result<Prescan, TransformError> {
    let mut rdr = csv::ReaderBuilder::new().delimiter(separator).flexible(true).has_headers(false).from_reader(bytes);
    let mut header = csv::ByteRecord::new();
    match rdr.read_byte_record(&mut header) {
        Ok(true) => {}
        Ok(false) => return Err(TransformError::EmptyFile { file: file.to_string() }),
        Err(e) => return Err(TransformError::BadRow { file: file.to_string(), line: 1, reason: e.to_string() }),
    };
    let names: Vec<String> = header.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect();
    if let Some((name, _)) = declared.iter().find(|(name, _)| !names.contains(name)) {
        return Err(TransformError::MissingColumn { file: file.to_string(), column: name.clone(), header: names.join(",") });
    }
    if let Some((header_end, lines)) = simple_lines(bytes, header.len(), separator) {
        return Ok(Prescan { cleaned: None, header_end, lines, bad_lines: Vec::new(), bad_raw: Vec::new(), bad_reasons: Vec::new() });
    }
    careful(file, bytes, rdr, &header, separator)
}

/// The usual file's header end and the line numbers of its records, found by byte search;
/// `None` sends the file through the CSV reader.
fn simple_lines(bytes: &[u8], header_len: usize, separator: u8) -> Option<(usize, Vec<u32>)> {
    if memchr::memchr(b'"', bytes).is_some() || bytes.last() == Some(&b'\r') || std::str::from_utf8(bytes).is_err() {
        return None;
    }
    let header_end = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |i| i + 1);
    let header = &bytes[..header_end];
    let header = header.strip_suffix(b"\n").unwrap_or(header);
    if memchr::memchr(b'\r', header.strip_suffix(b"\r").unwrap_or(header)).is_some() {
        return None;
    }
    let body = &bytes[header_end..];
    let mut lines = Vec::with_capacity(body.len() / 64);
    let (mut start, mut line) = (0, 2u32);
    for end in memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len())) {
        let record = &body[start.min(body.len())..end];
        start = end + 1;
        if end == body.len() && record.is_empty() {
            break; // after the last newline
        }
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        if record.is_empty() || memchr::memchr(b'\r', record).is_some() || memchr::memchr_iter(separator, record).count() + 1 != header_len {
            return None;
        }
        lines.push(line);
        line += 1;
    }
    Some((header_end, lines))
}

/// Every record through the CSV reader (`rdr`, just past the header): the good ones written
/// out again, the bad ones set aside.
fn careful(file: &str, bytes: &[u8], mut rdr: csv::Reader<&[u8]>, header: &csv::ByteRecord, separator: u8) -> Result<Prescan, TransformError> {
    let internal = |e: csv::Error| TransformError::Internal { file: file.to_string(), detail: format!("rewriting records: {e}") };
    let mut out = csv::WriterBuilder::new().delimiter(separator).terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::with_capacity(bytes.len()));
    out.write_byte_record(header).map_err(internal)?;
    out.flush().map_err(|e| internal(e.into()))?;
    let header_end = out.get_ref().len();
    let mut scan = Prescan { cleaned: None, header_end, lines: Vec::new(), bad_lines: Vec::new(), bad_raw: Vec::new(), bad_reasons: Vec::new() };
    let mut record = csv::ByteRecord::new();
    loop {
        let before = rdr.position().clone();
        let res = rdr.read_byte_record(&mut record);
        let (start, end) = (before.byte() as usize, (rdr.position().byte() as usize).max(before.byte() as usize));
        // the reader stops a record after its `\r` of a `\r\n`, so the record's own bytes
        // start after the line ends it skipped (and its line after the `\n`s among them)
        let lead = bytes[start..end].iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
        let line = before.line() as u32 + bytes[start..start + lead].iter().filter(|&&b| b == b'\n').count() as u32;
        let raw = || String::from_utf8_lossy(bytes[start + lead..end].trim_ascii_end()).into_owned();
        let reason = match res {
            Ok(false) => break,
            Ok(true) if record.len() == header.len() && std::str::from_utf8(record.as_slice()).is_ok() => {
                scan.lines.push(line);
                out.write_byte_record(&record).map_err(internal)?;
                continue;
            }
            // a blank line is not a record
            Ok(true) if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) => continue,
            Ok(true) if record.len() != header.len() => format!("expected {} fields, found {}", header.len(), record.len()),
            Ok(true) => "invalid UTF-8".to_string(),
            Err(e) => format!("malformed CSV: {e}"),
        };
        scan.bad_lines.push(line);
        scan.bad_raw.push(raw());
        scan.bad_reasons.push(reason);
    }
    scan.cleaned = Some(out.into_inner().map_err(|e| internal(e.into_error().into()))?);
    Ok(scan)
}
