//! sluice-transform: raw objects -> typed Polars frames -> the pipeline's transform steps.
//!
//! Vectorized only: every operation on rows is a Polars expression or SQL; nothing loops
//! over rows in Rust and nothing calls `map_elements`/`apply`.
//!
//! - [`types`]: the column types a pipeline file may declare ([`ColumnType`]).
//! - [`ingest`]: CSV bytes -> a typed frame plus a quarantine frame of rows that failed,
//!   each with its file, line, column and reason ([`read_csv`], [`Ingested`]).
//! - [`email`]: raw emails -> one row each (headers, decoded text body), broken ones
//!   quarantined ([`read_emails`]).
//! - [`dims`]: dimension tables, loaded once per run ([`Dimensions`]).
//! - [`steps`]: SQL steps, named filter rules and de-duplication applied to a partition's
//!   frame ([`Transformer`]); SQL steps must keep the row count, so every dropped row is
//!   counted by the rule that dropped it.

pub mod dims;
pub mod email;
pub mod error;
pub mod ingest;
pub mod steps;
pub mod types;

pub use dims::{DimensionSpec, Dimensions};
pub use email::read_emails;
pub use error::TransformError;
pub use ingest::{read_csv, read_ndjson, read_parquet, CsvSpec, Ingested, QUARANTINE_COLUMNS};
pub use polars;
pub use steps::{Step, Transformed, Transformer};
pub use types::ColumnType;
