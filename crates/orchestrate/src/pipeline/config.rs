//! A pipeline file's sections as written: serde types that deny unknown fields, with their
//! defaults. [`super::validate`] checks them and makes the [`super::Pipeline`].

use std::collections::BTreeMap;

use serde::Deserialize;
use sluice_transform::Step;

use crate::types::Severity;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// URI template; `{<partition key>}` is filled per partition (a template without it
    /// names one partition, `<key>=all`). A trailing `/` names every object under a prefix.
    pub uri: String,
    /// `csv`, `ndjson`, `parquet`, `email` (one raw RFC 5322 message per object), or `auto`
    /// (by each object's extension: .csv, .ndjson/.jsonl, .parquet).
    #[serde(default)]
    pub format: SourceFormat,
    /// How many objects go into one item through the stages (their rows are processed
    /// together; `unique_on` steps de-duplicate within an item).
    #[serde(default = "one")]
    pub objects_per_item: usize,
    #[serde(default = "default_nulls")]
    pub null_values: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    /// `quarantine` (set bad rows aside with their reason) or `fail` (stop at the first).
    #[serde(default)]
    pub on_bad_rows: OnBadRows,
    /// Fail the run (exit 3) when more than this fraction of a partition's rows is quarantined.
    #[serde(default = "default_max_bad")]
    pub max_bad_fraction: f64,
    /// Declared columns and their types (`i32`, `i64`, `f32`, `f64`, `str`, `bool`, `date`,
    /// `datetime`); required for CSV, optional for NDJSON and Parquet, none for email.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Row-level rules per declared column (`[source.contracts]`); a row that breaks one is
    /// quarantined with the column, value and rule.
    #[serde(default)]
    pub contracts: BTreeMap<String, ContractConfig>,
    /// Declared columns that together must be a real calendar date: `[["year", "month", "day"]]`.
    #[serde(default)]
    pub valid_dates: Vec<Vec<String>>,
}

/// The rules on one column, e.g. `month = { min = 1, max = 12 }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractConfig {
    #[serde(default)]
    pub not_null: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The allowed values (strings or numbers, compared as text).
    pub allowed: Option<Vec<toml::Value>>,
    /// A regular expression the value (as text) must match (a search; anchor with `^…$`).
    pub regex: Option<String>,
}

/// A `[[checks]]` entry as written: a name, exactly one of `sql`, `row_count_change`,
/// `null_fraction` or `drift`, bounds, and a severity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckConfig {
    pub(super) name: String,
    #[serde(default)]
    pub(super) severity: Severity,
    /// A query over the table `output` returning one value, held to `min`/`max`.
    pub(super) sql: Option<String>,
    /// The largest allowed |new − current| / current row count of the partition.
    pub(super) row_count_change: Option<f64>,
    /// A column whose null fraction is held to `min`/`max`.
    pub(super) null_fraction: Option<String>,
    /// A column whose population stability index against the current version is held to `max`.
    pub(super) drift: Option<String>,
    /// Quantile bins for `drift` (default 10: deciles).
    pub(super) bins: Option<usize>,
    pub(super) min: Option<f64>,
    pub(super) max: Option<f64>,
}

/// The source formats sluice reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    #[default]
    Csv,
    Ndjson,
    Parquet,
    /// One raw RFC 5322 message per object.
    Email,
    /// By each object's extension.
    Auto,
}

impl SourceFormat {
    /// The format an object's extension names: .csv, .ndjson/.jsonl, .parquet.
    pub fn of_extension(uri: &str) -> Option<Self> {
        let lower = uri.to_ascii_lowercase();
        // compression is recognised by content; the name's format is under it
        let uri = [".gz", ".zst", ".zstd"].iter().find_map(|c| lower.strip_suffix(c)).unwrap_or(&lower);
        let ext = uri.rsplit_once('.')?.1;
        match ext {
            "csv" => Some(SourceFormat::Csv),
            "ndjson" | "jsonl" => Some(SourceFormat::Ndjson),
            "parquet" => Some(SourceFormat::Parquet),
            _ => None,
        }
    }
}

/// What a malformed row does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadRows {
    /// Set it aside in the quarantine with its reason (counted against `max_bad_fraction`).
    #[default]
    Quarantine,
    /// Stop the run at the first one (exit 3).
    Fail,
}
fn default_nulls() -> Vec<String> {
    vec!["NA".into(), "".into()]
}
fn default_separator() -> String {
    ",".into()
}
fn default_max_bad() -> f64 {
    0.01
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionConfig {
    /// Partition column name; partitions are written `<key>=<value>`. With `date`, `--date`
    /// fills it.
    pub key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionConfig {
    pub name: String,
    /// A CSV object ...
    pub uri: Option<String>,
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    #[serde(default = "default_nulls")]
    pub null_values: Vec<String>,
    #[serde(default)]
    pub unique_on: Vec<String>,
    /// ... or SQL over the dimensions declared before this one.
    pub sql: Option<String>,
}

/// A `[[transform]]` step as written: a name and exactly one of `sql`, `filter` or
/// `unique_on`, which says its kind. Deserialises straight into [`Step`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StepConfig {
    name: String,
    /// `SELECT ... FROM input ...` keeping every row.
    sql: Option<String>,
    /// A SQL boolean expression: rows where it is not true are dropped and counted.
    filter: Option<String>,
    /// Drop rows that repeat an earlier row's values in these columns (counted).
    unique_on: Option<Vec<String>>,
}

/// A transform step, typed by its kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "StepConfig")]
pub(super) struct TypedStep(pub(super) Step);

impl TryFrom<StepConfig> for TypedStep {
    type Error = String;
    fn try_from(s: StepConfig) -> Result<Self, String> {
        let name = s.name;
        match (s.sql, s.filter, s.unique_on) {
            (Some(sql), None, None) => Ok(TypedStep(Step::Sql { name, sql })),
            (None, Some(keep), None) => Ok(TypedStep(Step::Filter { name, keep })),
            (None, None, Some(on)) => Ok(TypedStep(Step::Unique { name, on })),
            _ => Err(format!("step '{name}': give exactly one of 'sql', 'filter' or 'unique_on'")),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `tabular_mlp` (scores rows from feature columns) or `sentence_embedding` (embeds a
    /// text column).
    #[serde(default)]
    pub kind: ModelKindName,
    /// Model directory: config.json + model.safetensors (+ tokenizer.json for embeddings).
    pub path: String,
    /// tabular_mlp: the columns the model reads; must match its declared inputs, in order.
    #[serde(default)]
    pub features: Vec<String>,
    /// sentence_embedding: the text column. Null texts get a null embedding.
    pub text_column: Option<String>,
    /// The column the score or embedding is written to.
    pub output: String,
    /// tabular_mlp: rows per forward pass.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// sentence_embedding: padded tokens per forward pass (texts x longest text).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// sentence_embedding: `f32` (the default) or `bf16` (the linear layers in bfloat16 on
    /// the CPU: faster where the CPU has AVX-512 BF16, vectors within 1e-3 of f32's).
    pub precision: Option<String>,
}

/// The kinds of model sluice scores with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKindName {
    /// Scores rows from feature columns.
    #[default]
    TabularMlp,
    /// Embeds a text column.
    SentenceEmbedding,
}
fn default_batch_rows() -> usize {
    16_384
}
fn default_max_tokens() -> usize {
    // measured on all-MiniLM-L6-v2, 2 cores: 4,096 was faster than 16,384 and needs a third of the memory
    4_096
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// The dataset root (local path or file:// URI).
    pub uri: String,
    #[serde(default = "default_rows_per_file")]
    pub max_rows_per_file: usize,
    /// Columns to leave out of the output.
    #[serde(default)]
    pub drop_columns: Vec<String>,
    /// The codec of the data files' pages.
    #[serde(default)]
    pub compression: Codec,
}

/// How a dataset's Parquet pages are compressed. Every engine a dataset is read with (Spark,
/// Trino and Athena, DuckDB, Polars, pyarrow) reads both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// zstd level 1: the smaller files.
    #[default]
    Zstd,
    /// Snappy, as Spark, DuckDB and pyarrow write by default: half zstd's time per file, a
    /// third less of a run's encoding CPU, files ~25% larger (the flight year at 1x;
    /// docs/ARCHITECTURE.md, "Parquet encoding").
    Snappy,
}

fn default_rows_per_file() -> usize {
    1_000_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Byte budget per channel; capacity = budget / largest expected item.
    #[serde(default = "default_channel_mib")]
    pub channel_mib: usize,
    #[serde(default = "one")]
    pub transform_workers: usize,
    #[serde(default = "one")]
    pub infer_workers: usize,
    /// Threads encoding Parquet files.
    #[serde(default = "two")]
    pub write_workers: usize,
    /// Consecutive small partitions go through the transform together, up to this many KiB
    /// of input, when the steps are row-wise (0: one partition at a time).
    #[serde(default = "default_batch_kib")]
    pub batch_kib: usize,
    /// `HOST:PORT` of a StatsD agent (DogStatsD tags: Datadog's agent, CloudWatch's) to send
    /// each run's metrics to over UDP; `--statsd` overrides it.
    #[serde(default)]
    pub statsd: Option<String>,
}

fn two() -> usize {
    2
}
fn default_batch_kib() -> usize {
    3072
}

fn default_channel_mib() -> usize {
    64
}
fn one() -> usize {
    1
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            channel_mib: default_channel_mib(),
            transform_workers: 1,
            infer_workers: 1,
            write_workers: two(),
            batch_kib: default_batch_kib(),
            statsd: None,
        }
    }
}
