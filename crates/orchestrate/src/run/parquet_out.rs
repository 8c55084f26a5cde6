//! A partition's rows as the bytes of one Parquet file, through polars-parquet's writer
//! directly, to choose each column's encoding.
//!
//! Polars' `ParquetWriter` tries a dictionary for every column and, for a float column,
//! first counts its distinct values with a HyperLogLog sketch: a fixed cost per column chunk
//! that was most of the encoding time of a year of small daily files. Here float columns
//! are written plain (zstd still finds their repeats); integers, text and the rest keep
//! Polars' choice. Row groups, statistics and the Arrow schema in the footer are as
//! `ParquetWriter` writes them, so Polars and pyarrow read the same types back.

use polars::prelude::*;
use polars_parquet::read::ParquetError;
use polars_parquet::write::{
    array_to_columns, schema_to_metadata_key, to_parquet_schema, CompressionOptions, Compressor, DynIter,
    DynStreamingIterator, Encoding, FallibleStreamingIterator, FileWriter, KeyValue, StatisticsOptions, Version,
    WriteOptions, ZstdLevel,
};

/// Rows per row group, as Polars' writer.
const ROW_GROUP_ROWS: usize = 512 * 512;

/// `df` as a Parquet file (zstd level 1) with `kv` in its footer.
pub fn parquet_bytes(df: &DataFrame, kv: Vec<(String, String)>) -> PolarsResult<Vec<u8>> {
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
        compression: CompressionOptions::Zstd(ZstdLevel::try_new(1).ok()),
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
                for pages in array_to_columns(array, field.clone(), options, encoding)? {
                    let pages = pages.map(|p| p.map_err(|e| ParquetError::FeatureNotSupported(e.to_string())));
                    let compressed = Compressor::new_from_vec(pages, options.compression, Vec::new());
                    columns.push(Ok(DynStreamingIterator::new(compressed.map_err(PolarsError::from))));
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
