//! What an input object's bytes are, by content (magic bytes), not by name: gzip and zstd
//! are decompressed whatever the file is called; other containers (bzip2, xz, zip, Parquet
//! in a text format, text in a Parquet file) are refused naming what the bytes look like
//! ("bzip2 data in a CSV file"), which is bad input (exit 3).

use std::borrow::Cow;
use std::io::Read;

use crate::TransformError;

/// What the first bytes of an object say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Gzip,
    Zstd,
    Bzip2,
    Xz,
    Zip,
    Parquet,
    /// Anything else: text for the text formats to parse.
    Other,
}

impl Content {
    pub fn sniff(bytes: &[u8]) -> Content {
        match bytes {
            [0x1f, 0x8b, ..] => Content::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Content::Zstd,
            [b'B', b'Z', b'h', ..] => Content::Bzip2,
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Content::Xz,
            [b'P', b'K', 0x03, 0x04, ..] => Content::Zip,
            [b'P', b'A', b'R', b'1', ..] => Content::Parquet,
            _ => Content::Other,
        }
    }

    /// How an error names it: "gzip data".
    pub fn describe(self) -> &'static str {
        match self {
            Content::Gzip => "gzip data",
            Content::Zstd => "zstd data",
            Content::Bzip2 => "bzip2 data",
            Content::Xz => "xz data",
            Content::Zip => "a zip archive",
            Content::Parquet => "Parquet data",
            Content::Other => "text (or unknown binary data)",
        }
    }
}

/// At most this many bytes come out of one compressed object (a guard against a
/// decompression bomb filling the memory).
pub const MAX_DECOMPRESSED: u64 = 8 << 30;

/// The bytes a reader of `format` ("CSV", "NDJSON", "Parquet", "email") should parse:
/// gzip and zstd (also nested, e.g. `.csv.gz.zst`) are decompressed; a container the
/// format cannot hold is an error saying what the bytes look like.
pub fn decode<'a>(file: &str, bytes: &'a [u8], format: &'static str) -> Result<Cow<'a, [u8]>, TransformError> {
    let mut data = Cow::Borrowed(bytes);
    for _ in 0..4 {
        let content = Content::sniff(&data);
        let inflated = match content {
            Content::Gzip => inflate(file, flate2::read::MultiGzDecoder::new(&data[..]), content)?,
            Content::Zstd => {
                let decoder = zstd::stream::read::Decoder::new(&data[..]).map_err(|e| corrupt(file, content, e))?;
                inflate(file, decoder, content)?
            }
            Content::Parquet if format == "Parquet" => return Ok(data),
            Content::Other if format != "Parquet" => return Ok(data),
            found => return Err(TransformError::WrongContent { file: file.to_string(), found: found.describe(), format }),
        };
        data = Cow::Owned(inflated);
    }
    Err(TransformError::WrongContent { file: file.to_string(), found: "compressed data nested more than 4 deep", format })
}

fn inflate(file: &str, reader: impl Read, content: Content) -> Result<Vec<u8>, TransformError> {
    let mut out = Vec::new();
    let n = reader.take(MAX_DECOMPRESSED + 1).read_to_end(&mut out).map_err(|e| corrupt(file, content, e))?;
    if n as u64 > MAX_DECOMPRESSED {
        return Err(TransformError::BadRow {
            file: file.to_string(),
            line: 0,
            reason: format!("{} decompresses to more than {} GiB", content.describe(), MAX_DECOMPRESSED >> 30),
        });
    }
    Ok(out)
}

fn corrupt(file: &str, content: Content, e: std::io::Error) -> TransformError {
    TransformError::BadRow { file: file.to_string(), line: 0, reason: format!("corrupt or truncated {}: {e}", content.describe()) }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const CSV: &[u8] = b"a,b\n1,2\n";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_zstd_are_decompressed_by_content() {
        assert_eq!(&decode("x.csv", &gzip(CSV), "CSV").unwrap()[..], CSV);
        let z = zstd::encode_all(CSV, 3).unwrap();
        assert_eq!(&decode("x.csv", &z, "CSV").unwrap()[..], CSV);
        let nested = zstd::encode_all(&gzip(CSV)[..], 3).unwrap();
        assert_eq!(&decode("x.csv.gz.zst", &nested, "CSV").unwrap()[..], CSV);
        assert!(matches!(decode("x.csv", CSV, "CSV").unwrap(), Cow::Borrowed(_)), "plain text is not copied");
    }

    #[test]
    fn other_containers_are_named() {
        let e = decode("x.csv", b"BZh91AY&SY...", "CSV").unwrap_err();
        assert!(matches!(e, TransformError::WrongContent { found: "bzip2 data", format: "CSV", .. }), "{e}");
        let e = decode("x.parquet", CSV, "Parquet").unwrap_err();
        assert!(matches!(e, TransformError::WrongContent { format: "Parquet", .. }), "{e}");
        let e = decode("x.ndjson", b"PAR1....", "NDJSON").unwrap_err();
        assert!(matches!(e, TransformError::WrongContent { found: "Parquet data", .. }), "{e}");
    }

    #[test]
    fn truncated_gzip_is_bad_input_naming_the_file() {
        let g = gzip(&CSV.repeat(1000));
        let e = decode("day.csv.gz", &g[..g.len() / 2], "CSV").unwrap_err();
        assert!(matches!(&e, TransformError::BadRow { file, .. } if file == "day.csv.gz"), "{e}");
    }
}
