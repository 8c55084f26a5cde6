//! A partition's rows as the bytes of one Parquet file, through polars-parquet's writer
//! directly, to choose each column's encoding.
//!
//! Polars' `ParquetWriter` tries a dictionary for every column and, for a float column,
//! first counts its distinct values with a HyperLogLog sketch: a fixed cost per column chunk
//! that was most of the encoding time of a year of small daily files. Here float columns
//! are written plain (zstd still finds their repeats); integers, text and the rest keep
//! Polars' choice. Row groups, statistics and the Arrow schema in the footer are as
//! `ParquetWriter` writes them, so Polars and pyarrow read the same types back.
//!
//! Pages are compressed with the pipeline's codec ([`Codec`]). zstd runs on one context per
//! thread ([`ZstdPages`]), the same bytes as polars-parquet's `Compressor`, which sets up a
//! context for every page: a year of small daily files has tens of thousands of pages, and
//! that setup was a tenth of the run. Snappy has no context; its pages go through the
//! `Compressor`.

use polars::prelude::*;
use polars_arrow::array::{DictionaryArray, MutableBinaryViewArray, MutableDictionaryArray, TryExtend, Utf8ViewArray};
use std::cell::RefCell;

use crate::pipeline::Codec;

use polars_parquet::parquet::error::ParquetResult;
use polars_parquet::parquet::page::{CompressedDictPage, DictPage};
use polars_parquet::parquet::CowBuffer;
use polars_parquet::read::ParquetError;
use polars_parquet::write::{
    array_to_columns, schema_to_metadata_key, to_parquet_schema, CompressedDataPage, CompressedPage, CompressionOptions,
    Compressor, DynIter, DynStreamingIterator, Encoding, FallibleStreamingIterator, FileWriter, KeyValue, Page, StatisticsOptions,
    Version, WriteOptions, ZstdLevel,
};

/// Rows per row group, as Polars' writer.
const ROW_GROUP_ROWS: usize = 512 * 512;
/// zstd's level for every page.
const ZSTD_LEVEL: i32 = 1;

/// A column chunk's pages, encoded, not yet compressed.
type Pages = Box<dyn Iterator<Item = ParquetResult<Page>> + Send + Sync>;
/// A column chunk's pages, compressed, as the file writer takes them.
type Compressed = DynStreamingIterator<'static, CompressedPage, PolarsError>;

/// `df` as a Parquet file with `kv` in its footer, its pages compressed with `codec`.
pub fn parquet_bytes(df: &DataFrame, kv: Vec<(String, String)>, codec: Codec) -> PolarsResult<Vec<u8>> {
    match codec {
        Codec::Zstd => write_parquet(df, kv, zstd(), |pages| DynStreamingIterator::new(ZstdPages { pages, current: None }.map_err(PolarsError::from))),
        Codec::Snappy => write_parquet(df, kv, CompressionOptions::Snappy, |pages| {
            DynStreamingIterator::new(Compressor::new(pages, CompressionOptions::Snappy, Vec::new()).map_err(PolarsError::from))
        }),
    }
}

/// zstd at [`ZSTD_LEVEL`].
fn zstd() -> CompressionOptions {
    CompressionOptions::Zstd(ZstdLevel::try_new(ZSTD_LEVEL).ok())
}

/// `df` as a Parquet file with `kv` in its footer, each column chunk's pages compressed by
/// `compress` (with `compression`).
fn write_parquet(df: &DataFrame, kv: Vec<(String, String)>, compression: CompressionOptions, compress: impl Fn(Pages) -> Compressed) -> PolarsResult<Vec<u8>> {
    let schema = df.schema().to_arrow(CompatLevel::newest());
    let fields = to_parquet_schema(&schema)?.fields().to_vec();
    let encodings: Vec<Vec<Encoding>> = schema
        .iter_values()
        .map(|f| match f.dtype {
            ArrowDataType::Float32 | ArrowDataType::Float64 => vec![Encoding::Plain],
            ref dtype => polars_parquet::arrow::write::get_dtype_encoding(dtype),
        })
        .collect();
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        compression,
        version: Version::V1,
        data_page_size: None,
    };
    let mut writer = FileWriter::try_new(Vec::new(), schema.clone(), options)?;
    let mut offset = 0;
    while offset < df.height() {
        let mut group = df.slice(offset as i64, ROW_GROUP_ROWS);
        offset += ROW_GROUP_ROWS;
        group.rechunk_mut();
        for batch in group.iter_chunks(CompatLevel::newest(), false) {
            let mut columns = Vec::new();
            for ((array, field), encoding) in batch.columns().iter().zip(&fields).zip(&encodings) {
                let (array, encoding) = strings_as_dictionary(array, encoding)?;
                for pages in array_to_columns(array, field.clone(), options, &encoding)? {
                    let pages = pages.map(|p| p.map_err(|e| ParquetError::FeatureNotSupported(e.to_string())));
                    columns.push(Ok(compress(Box::new(pages))));
                }
            }
            writer.write(batch.len() as u64, DynIter::new(columns.into_iter()))?;
        }
    }
    let mut footer = vec![schema_to_metadata_key(&schema)];
    footer.extend(kv.into_iter().map(|(key, value)| KeyValue { key, value: Some(value) }));
    writer.end(Some(footer))?;
    Ok(writer.into_inner())
}

/// A text column to be dictionary-encoded, as the dictionary: polars-parquet would first
/// estimate its distinct values with a HyperLogLog sketch (a pass over every string) and
/// then build the dictionary anyway. Its rule on the exact count: plain when more than 128
/// rows and over three quarters of them distinct.
fn strings_as_dictionary(array: &ArrayRef, encoding: &[Encoding]) -> PolarsResult<(ArrayRef, Vec<Encoding>)> {
    let Some(text) = array.as_any().downcast_ref::<Utf8ViewArray>().filter(|_| encoding == [Encoding::RleDictionary]) else {
        return Ok((array.clone(), encoding.to_vec()));
    };
    let mut dictionary = MutableDictionaryArray::<u32, MutableBinaryViewArray<str>>::new(false);
    dictionary.reserve(text.len());
    dictionary.try_extend(text.iter())?;
    if text.len() > 128 && dictionary.values().len() as f64 / text.len() as f64 > 0.75 {
        return Ok((array.clone(), vec![Encoding::Plain]));
    }
    let dictionary: DictionaryArray<u32> = dictionary.into();
    Ok((Box::new(dictionary), encoding.to_vec()))
}

thread_local! {
    /// This thread's zstd context, set up on its first page.
    static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// `bytes` compressed (zstd, [`ZSTD_LEVEL`]) into `out`, with this thread's context.
fn zstd_into(bytes: &[u8], out: &mut Vec<u8>) -> ParquetResult<()> {
    ZSTD.with_borrow_mut(|cctx| {
        let cctx = match cctx {
            Some(c) => c,
            None => cctx.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(bytes.len()));
        cctx.compress_to_buffer(bytes, out).map(|_| ())
    })
    .map_err(ParquetError::from)
}

/// A column's pages, each compressed as it is asked for (what polars-parquet's
/// `Compressor` does for version 1 pages, on this thread's zstd context).
struct ZstdPages<I> {
    pages: I,
    current: Option<CompressedPage>,
}

impl<I: Iterator<Item = ParquetResult<Page>>> FallibleStreamingIterator for ZstdPages<I> {
    type Item = CompressedPage;
    type Error = ParquetError;

    fn advance(&mut self) -> Result<(), ParquetError> {
        let mut out = Vec::new();
        self.current = match self.pages.next() {
            None => None,
            Some(page) => Some(match page? {
                Page::Data(page) => {
                    zstd_into(page.buffer(), &mut out)?;
                    let rows = page.num_rows().unwrap_or(0);
                    let header = page.header().clone();
                    let len = page.buffer().len();
                    CompressedPage::Data(CompressedDataPage::new(header, CowBuffer::Owned(out), compression(), len, page.descriptor, rows))
                }
                Page::Dict(DictPage { buffer, num_values, is_sorted }) => {
                    zstd_into(&buffer, &mut out)?;
                    CompressedPage::Dict(CompressedDictPage::new(CowBuffer::Owned(out), compression(), buffer.len(), num_values, is_sorted))
                }
            }),
        };
        Ok(())
    }

    fn get(&self) -> Option<&CompressedPage> {
        self.current.as_ref()
    }
}

fn compression() -> polars_parquet::parquet::compression::Compression {
    zstd().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_the_bytes_polars_parquets_compressor_writes() {
        let n = 70_000; // several pages per column
        let df = df!(
            "i" => (0..n).map(|i| i % 97).collect::<Vec<_>>(),
            "f" => (0..n).map(|i| if i % 11 == 0 { None } else { Some(i as f64 / 7.0) }).collect::<Vec<_>>(),
            "s" => (0..n).map(|i| format!("carrier-{}", i % 13)).collect::<Vec<_>>(),
        )
        .unwrap();
        let kv = vec![("sluice.test".to_string(), "1".to_string())];
        let theirs = write_parquet(&df, kv.clone(), zstd(), |pages| {
            DynStreamingIterator::new(Compressor::new(pages, zstd(), Vec::new()).map_err(PolarsError::from))
        })
        .unwrap();
        let ours = parquet_bytes(&df, kv.clone(), Codec::Zstd).unwrap();
        assert!(ours == theirs, "{} bytes against {}", ours.len(), theirs.len());
        for (codec, name) in [(Codec::Zstd, "ZSTD"), (Codec::Snappy, "SNAPPY")] {
            let bytes = parquet_bytes(&df, kv.clone(), codec).unwrap();
            let back = ParquetReader::new(std::io::Cursor::new(bytes.clone())).finish().unwrap();
            assert!(back.equals_missing(&df), "{name}");
            let meta = polars_parquet::read::read_metadata(&mut std::io::Cursor::new(bytes)).unwrap();
            for chunk in meta.row_groups.iter().flat_map(|g| g.parquet_columns()) {
                assert_eq!(format!("{:?}", chunk.compression()).to_uppercase(), name);
            }
        }
    }

    #[test]
    fn text_is_a_dictionary_unless_most_values_differ() {
        let n = 1000;
        let df = df!(
            "few" => (0..n).map(|i| format!("carrier-{}", i % 13)).collect::<Vec<_>>(),
            "many" => (0..n).map(|i| format!("tail-{i}")).collect::<Vec<_>>(),
            "sparse" => (0..n).map(|i| (i % 7 == 0).then(|| format!("x{}", i % 3))).collect::<Vec<_>>(),
        )
        .unwrap();
        // 128 rows or fewer: a dictionary, however many differ
        let short = df!("short" => (0..100).map(|i| format!("s{i}")).collect::<Vec<_>>()).unwrap();
        for (df, expected) in [(df, vec![("few", true), ("many", false), ("sparse", true)]), (short, vec![("short", true)])] {
            let bytes = parquet_bytes(&df, Vec::new(), Codec::Zstd).unwrap();
            let back = ParquetReader::new(std::io::Cursor::new(bytes.clone())).finish().unwrap();
            assert!(back.equals_missing(&df));
            let meta = polars_parquet::read::read_metadata(&mut std::io::Cursor::new(bytes)).unwrap();
            for (column, dictionary) in expected {
                let chunk = meta.row_groups[0].parquet_columns().iter().find(|c| c.descriptor().path_in_schema[0] == column).unwrap();
                assert_eq!(chunk.dictionary_page_offset().is_some(), dictionary, "{column}");
            }
        }
    }
}
