//! sluice-transform: raw objects -> typed Polars frames -> the pipeline's transform steps.
//!
//! Vectorized only: every operation on rows is a Polars expression or SQL; nothing calls
//! `map_elements`/`apply`. The only loops over records in Rust are the readers' (the
//! prescan's structure check and `plain_csv`'s parse), which build columns from bytes, and
//! two kernels over whole integer columns for calendar dates (`MAKE_DATE` and the
//! `valid_date` contract).
//!
//! - [`types`]: the column types a pipeline file may declare ([`ColumnType`]).
//! - [`ingest`]: CSV bytes -> a typed frame plus a quarantine frame of rows that failed,
//!   each with its file, line, column and reason ([`read_csv`], [`Ingested`]).
//!   Its first pass (`prescan`) checks each record's structure and line, the same way
//!   for LF, CRLF, blank lines and a byte order mark; plain CSV (unquoted, LF, plain
//!   numbers) is then parsed into typed columns in one pass (`plain_csv`), the rest by
//!   Polars' reader.
//! - [`email`]: raw emails -> one row each (headers, decoded text body), broken ones
//!   quarantined ([`read_emails`]).
//! - [`decode`]: gzip and zstd inputs decompressed by content; other containers named.
//! - [`contracts`]: row-level rules on source columns (not null, ranges, allowed values,
//!   regex, calendar dates); rows that break one are quarantined with the rule.
//! - [`checks`]: the measurements of `[[checks]]` on a staged version (SQL value, null
//!   fraction, population stability index).
//! - [`dims`]: dimension tables, loaded once per run ([`Dimensions`]).
//! - [`steps`]: SQL steps, named filter rules and de-duplication applied to a partition's
//!   frame ([`Transformer`]); SQL steps must keep the row count, so every dropped row is
//!   counted by the rule that dropped it. Rows a step fails on (a cast, a date parse) are
//!   found by bisection and set aside, up to a limit. Steps that are row-wise (decided on
//!   the engine's plan, [`Transformer::row_wise`]) may run on several partitions at once.
//!   A dimension a step joins only by equalities with `input`'s columns is cut, before the
//!   step runs, to the rows within the range of the keys it is given (`prune`).

pub mod checks;
pub mod contracts;
pub mod decode;
pub mod dims;
pub mod email;
pub mod error;
pub mod ingest;
mod plain_csv;
mod prescan;
mod prune;
mod rowwise;
pub mod sql_functions;
pub mod steps;
pub mod types;

pub use dims::{DimensionSpec, Dimensions};
pub use email::read_emails;
pub use error::TransformError;
pub use ingest::{parse_csv, read_csv, read_ndjson, read_parquet, type_rows, CsvSpec, Ingested, RawCsv, QUARANTINE_COLUMNS};
pub use polars;
pub use contracts::{Contract, Contracts, DateParts, Rule};
pub use steps::{Isolated, Step, Transformed, Transformer};
pub use types::ColumnType;

/// Make the engine's results the same on every run: call once, first thing in `main`, before
/// any thread starts (it sets an environment variable the engine reads).
///
/// Polars runs a GROUP BY on few keys as a "partitioned" aggregation on its streaming engine,
/// whose partial sums meet in whichever order its threads finish: an `AVG` (the flight
/// job's `weather_means`) then differs in its last bits from one run to the next, and so
/// does every row filled from it. `POLARS_NO_PARTITION` keeps the default hash aggregation,
/// which sums each group in row order.
pub fn pin_engine() {
    std::env::set_var("POLARS_NO_PARTITION", "1");
}
