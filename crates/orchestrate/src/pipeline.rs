//! Pipeline files: parsed, then validated as a whole before anything runs.
//!
//! A pipeline file is TOML with these sections (see `pipelines/flight_delays.toml`):
//! `name`, `[source]` (+ `[source.columns]`, `[source.contracts]`), `[partition]`,
//! `[[dimensions]]`, `[[transform]]`, `[[checks]]`, `[model]`, `[output]`, `[runtime]`,
//! `[storage."<url>"]`. Every table denies unknown fields.
//! [`Pipeline::load`] reports every error it finds at once ([`SluiceError::Pipeline`]):
//! each section and each array element is checked on its own, then the cross-checks run
//! (types, templates, SQL filters, files and the model's inputs).
//!
//! Relative paths in the file are relative to the file's own folder.
//!
//! `[params]` holds named strings that `{name}` placeholders in `source.uri`,
//! `dimensions[].uri`, `model.path` and `output.uri` are replaced with, e.g. a landing
//! zone: `landing = "../data/sample/landing"`. `sluice run --param landing=DIR` overrides
//! one; a relative override is taken from the current directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use sha2::{Digest, Sha256};
use sluice_transform::{ColumnType, Contract, Contracts, CsvSpec, DateParts, DimensionSpec, Rule, Step};

use crate::audit::{CheckKind, CheckSpec, Severity};
use crate::SluiceError;

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
struct CheckConfig {
    name: String,
    #[serde(default)]
    severity: Severity,
    /// A query over the table `output` returning one value, held to `min`/`max`.
    sql: Option<String>,
    /// The largest allowed |new − current| / current row count of the partition.
    row_count_change: Option<f64>,
    /// A column whose null fraction is held to `min`/`max`.
    null_fraction: Option<String>,
    /// A column whose population stability index against the current version is held to `max`.
    drift: Option<String>,
    /// Quantile bins for `drift` (default 10: deciles).
    bins: Option<usize>,
    min: Option<f64>,
    max: Option<f64>,
}

impl CheckConfig {
    fn into_spec(self, at: &str, errors: &mut Vec<String>) -> Option<CheckSpec> {
        let CheckConfig { name, severity, sql, row_count_change, null_fraction, drift, bins, min, max } = self;
        let mut err = |m: &str| errors.push(format!("{at}: {m}"));
        let kind = match (sql, row_count_change, null_fraction, drift) {
            (Some(sql), None, None, None) => CheckKind::Sql(sql),
            (None, Some(_), None, None) => CheckKind::RowCountChange,
            (None, None, Some(c), None) => CheckKind::NullFraction(c),
            (None, None, None, Some(column)) => CheckKind::Drift { column, bins: bins.unwrap_or(10) },
            _ => {
                err("give exactly one of 'sql', 'row_count_change', 'null_fraction' or 'drift'");
                return None;
            }
        };
        match &kind {
            CheckKind::Sql(_) | CheckKind::NullFraction(_) if min.is_none() && max.is_none() => err("give 'min', 'max' or both"),
            CheckKind::RowCountChange if row_count_change.is_some_and(|c| c < 0.0) || min.is_some() || max.is_some() => {
                err("row_count_change is the largest allowed relative change (e.g. 0.5 for ±50%); no 'min'/'max'")
            }
            CheckKind::Drift { bins, .. } if max.is_none() || min.is_some() || !(2..=100).contains(bins) => {
                err("drift needs 'max' (the largest allowed PSI, e.g. 0.25), no 'min', and 'bins' between 2 and 100")
            }
            _ => {}
        }
        if bins.is_some() && !matches!(kind, CheckKind::Drift { .. }) {
            err("'bins' applies to a drift check");
        }
        if let (Some(a), Some(b)) = (min, max) {
            if a > b {
                err(&format!("min {a} is above max {b}"));
            }
        }
        if !valid_name(&name) {
            err("name must be letters, digits and '_'");
        }
        // the allowed change is the bound the measured change is held to
        let max = if kind == CheckKind::RowCountChange { row_count_change } else { max };
        Some(CheckSpec { name, severity, kind, min, max })
    }
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
struct StepConfig {
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
struct TypedStep(Step);

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
    pub kind: ModelKind,
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
}

/// The kinds of model sluice scores with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
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
        }
    }
}

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub path: PathBuf,
    /// sha256 of the file's bytes.
    pub sha256: String,
    pub name: String,
    pub source: SourceConfig,
    pub csv: CsvSpec,
    pub partition: PartitionConfig,
    pub dimensions: Vec<DimensionSpec>,
    pub steps: Vec<Step>,
    pub model: ModelConfig,
    /// The model's folder: an absolute local path or an object store URI.
    pub model_uri: String,
    pub output: OutputConfig,
    pub runtime: RuntimeConfig,
    /// `[[checks]]`, run on each staged version before it is published.
    pub checks: Vec<CheckSpec>,
}

const SECTIONS: [&str; 11] =
    ["name", "params", "source", "partition", "dimensions", "transform", "checks", "model", "output", "runtime", "storage"];

/// Replace `{name}` for every param; other placeholders stay.
fn substitute(s: &str, params: &BTreeMap<String, String>) -> String {
    params.iter().fold(s.to_string(), |acc, (k, v)| acc.replace(&format!("{{{k}}}"), v))
}

/// Absolute form of a param override given on the command line (relative to the current
/// directory), so that it does not get resolved against the pipeline file's folder.
pub fn absolutize_param(value: &str) -> String {
    let p = Path::new(value);
    if value.contains("://") || p.is_absolute() {
        return value.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(p).display().to_string(),
        Err(_) => value.to_string(),
    }
}

impl Pipeline {
    /// Read and validate; every problem is reported in one [`SluiceError::Pipeline`].
    pub fn load(path: &Path) -> Result<Self, SluiceError> {
        Self::load_with(path, &[], true)
    }

    /// [`Pipeline::load`] with `[params]` overrides; `check_model: false` skips the model
    /// checks (for the trainer, which makes the model).
    pub fn load_with(path: &Path, overrides: &[(String, String)], check_model_dir: bool) -> Result<Self, SluiceError> {
        let shown = path.display().to_string();
        let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let fail = |errors: Vec<String>| SluiceError::Pipeline { path: shown.clone(), errors };
        let bytes = std::fs::read(path).map_err(|e| fail(vec![format!("cannot read: {e}")]))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let text = String::from_utf8(bytes).map_err(|_| fail(vec!["not UTF-8".into()]))?;
        let doc = Doc::parse(&text).map_err(|e| fail(vec![e]))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut errors = Vec::new();

        for (key, value) in doc.table.get_ref().iter() {
            if !SECTIONS.contains(&key.get_ref().as_ref()) {
                errors.push(doc.at(
                    value.span(),
                    &format!("unknown top-level key '{}' (expected one of {})", key.get_ref(), SECTIONS.join(", ")),
                ));
            }
        }
        let name = match doc.section::<String>("name", &mut errors, true) {
            Some(s) if !s.is_empty() => s,
            Some(_) => {
                errors.push("'name' must be a non-empty string".into());
                String::new()
            }
            None => String::new(),
        };
        let mut params: BTreeMap<String, String> = doc.section("params", &mut errors, false).unwrap_or_default();
        for (k, v) in overrides {
            if !params.contains_key(k) {
                errors.push(format!("--param {k}: the pipeline has no param '{k}' (params: {:?})", params.keys().collect::<Vec<_>>()));
            }
            params.insert(k.clone(), v.clone());
        }
        let mut source: Option<SourceConfig> = doc.section("source", &mut errors, true);
        if let Some(s) = source.as_mut() {
            s.uri = substitute(&s.uri, &params);
        }
        let partition: Option<PartitionConfig> = doc.section("partition", &mut errors, true);
        let mut model: Option<ModelConfig> = doc.section("model", &mut errors, true);
        if let Some(m) = model.as_mut() {
            m.path = substitute(&m.path, &params);
        }
        let mut output: Option<OutputConfig> = doc.section("output", &mut errors, true);
        if let Some(o) = output.as_mut() {
            o.uri = substitute(&o.uri, &params);
        }
        let runtime: RuntimeConfig = doc.section("runtime", &mut errors, false).unwrap_or_default();
        // [storage."s3://bucket"] options for that store's client (they override the
        // environment); registered before any URI below is parsed
        let storage: BTreeMap<String, BTreeMap<String, String>> = doc.section("storage", &mut errors, false).unwrap_or_default();
        for (prefix, options) in storage {
            if !prefix.contains("://") {
                errors.push(format!("[storage.\"{prefix}\"]: keys are store URLs such as \"s3://bucket\""));
                continue;
            }
            sluice_extract::set_store_options(&prefix, options.into_iter().collect());
        }
        let mut dims: Vec<DimensionConfig> = doc.array("dimensions", &mut errors);
        for d in dims.iter_mut() {
            d.uri = d.uri.as_ref().map(|u| substitute(u, &params));
        }
        let steps: Vec<TypedStep> = doc.array("transform", &mut errors);
        let check_configs: Vec<CheckConfig> = doc.array("checks", &mut errors);

        // source
        let mut csv = None;
        if let Some(s) = &source {
            if s.objects_per_item == 0 {
                errors.push("source.objects_per_item: must be at least 1".into());
            }
            if !(0.0..=1.0).contains(&s.max_bad_fraction) {
                errors.push(format!("source.max_bad_fraction: {} is not between 0 and 1", s.max_bad_fraction));
            }
            let sep = separator(&s.separator, "source.separator", &mut errors);
            let columns = column_types(&s.columns, "source.columns", &mut errors);
            if s.columns.is_empty() && s.format == SourceFormat::Csv {
                errors.push("source.columns: declare at least one column".into());
            }
            if !s.columns.is_empty() && s.format == SourceFormat::Email {
                errors.push("source.columns: an email source has a fixed schema; declare no columns".into());
            }
            if let Some(p) = &partition {
                let vars = sluice_extract::source::template_vars(&s.uri);
                for v in vars.iter().filter(|v| *v != &p.key) {
                    errors.push(format!("source.uri: unknown placeholder '{{{v}}}' (only '{{{}}}' is filled)", p.key));
                }
            }
            if let Err(e) = sluice_extract::Location::parse(&s.uri.replace(['{', '}'], "_"), Some(&base)) {
                errors.push(format!("source.uri: {e}"));
            }
            let contracts = contracts(s, &columns, &mut errors);
            csv = Some(CsvSpec { columns, null_values: s.null_values.clone(), separator: sep, contracts });
        }
        if let Some(p) = &partition {
            if !valid_name(&p.key) {
                errors.push(format!("partition.key: '{}' must be letters, digits and '_'", p.key));
            }
        }

        // dimensions
        let mut dimensions = Vec::new();
        let mut tables: Vec<String> = vec!["input".into()];
        for (i, d) in dims.iter().enumerate() {
            let at = format!("dimensions[{i}] '{}'", d.name);
            if !valid_name(&d.name) {
                errors.push(format!("{at}: name must be letters, digits and '_'"));
            }
            if tables.contains(&d.name) {
                errors.push(format!("{at}: the name is already used"));
            }
            tables.push(d.name.clone());
            match (&d.uri, &d.sql) {
                (Some(uri), None) => {
                    let columns = column_types(&d.columns, &format!("{at}.columns"), &mut errors);
                    for k in &d.unique_on {
                        if !d.columns.contains_key(k) {
                            errors.push(format!("{at}.unique_on: '{k}' is not a declared column"));
                        }
                    }
                    match sluice_extract::Location::parse(uri, Some(&base)) {
                        Ok(loc) => {
                            if loc.kind == sluice_extract::StoreKind::Local && !Path::new(&loc.uri).is_file() {
                                errors.push(format!("{at}.uri: no file at {}", loc.uri));
                            }
                            dimensions.push(DimensionSpec::Csv {
                                name: d.name.clone(),
                                file: loc.uri,
                                spec: CsvSpec { columns, null_values: d.null_values.clone(), separator: b',', contracts: Contracts::default() },
                                unique_on: d.unique_on.clone(),
                            });
                        }
                        Err(e) => errors.push(format!("{at}.uri: {e}")),
                    }
                }
                (None, Some(sql)) => {
                    if !d.columns.is_empty() || !d.unique_on.is_empty() {
                        errors.push(format!("{at}: 'columns' and 'unique_on' apply to a 'uri' dimension, not to 'sql'"));
                    }
                    dimensions.push(DimensionSpec::Sql { name: d.name.clone(), sql: sql.clone() });
                }
                _ => errors.push(format!("{at}: give exactly one of 'uri' or 'sql'")),
            }
        }

        // transform steps
        let mut parsed_steps = Vec::new();
        for (i, TypedStep(step)) in steps.into_iter().enumerate() {
            if let Err(e) = step.check() {
                errors.push(format!("transform[{i}] '{}': {e}", step.name()));
            }
            parsed_steps.push(step);
        }

        // checks
        let mut checks = Vec::new();
        for (i, c) in check_configs.into_iter().enumerate() {
            let at = format!("checks[{i}] '{}'", c.name);
            if checks.iter().any(|k: &CheckSpec| k.name == c.name) {
                errors.push(format!("{at}: the name is already used"));
            }
            checks.extend(c.into_spec(&at, &mut errors));
        }

        // model
        let mut model_uri = String::new();
        if let Some(m) = &model {
            let remote = m.path.contains("://");
            model_uri = if remote { m.path.clone() } else { base.join(&m.path).display().to_string() };
            // a model in object storage is checked when it is downloaded
            let check_model_dir = check_model_dir && !remote;
            let model_dir = Path::new(&model_uri);
            match m.kind {
                ModelKind::TabularMlp => {
                    if m.features.is_empty() {
                        errors.push("model.features: a tabular_mlp model needs its feature columns".into());
                    }
                    if check_model_dir {
                        check_model(model_dir, m, &mut errors);
                    }
                }
                ModelKind::SentenceEmbedding => {
                    if m.text_column.is_none() {
                        errors.push("model.text_column: a sentence_embedding model needs the text column".into());
                    }
                    if !m.features.is_empty() {
                        errors.push("model.features: a sentence_embedding model reads text_column, not features".into());
                    }
                    for f in sluice_infer::embed::EMBEDDING_FILES {
                        if check_model_dir && !model_dir.join(f).is_file() {
                            errors.push(format!(
                                "model.path: {} is missing {f} (for all-MiniLM-L6-v2: python3 data/fetch_minilm.py)",
                                model_dir.display()
                            ));
                        }
                    }
                }
            }
            if m.batch_rows == 0 || m.max_tokens == 0 {
                errors.push("model.batch_rows and model.max_tokens must be at least 1".into());
            }
        }
        if let Some(o) = &output {
            if let Err(e) = sluice_extract::Location::parse(&o.uri, Some(&base)) {
                errors.push(format!("output.uri: {e}"));
            }
            if o.max_rows_per_file == 0 {
                errors.push("output.max_rows_per_file: must be at least 1".into());
            }
        }
        if runtime.channel_mib == 0 || runtime.transform_workers == 0 || runtime.infer_workers == 0 || runtime.write_workers == 0 {
            errors.push("runtime: channel_mib and worker counts must be at least 1".into());
        }

        match (errors.is_empty(), source, csv, partition, model, output) {
            (true, Some(source), Some(csv), Some(partition), Some(model), Some(output)) => Ok(Pipeline {
                path: path.to_path_buf(),
                sha256,
                name,
                source,
                csv,
                partition,
                dimensions,
                steps: parsed_steps,
                model,
                model_uri,
                output,
                runtime,
                checks,
            }),
            _ => Err(fail(errors)),
        }
    }

    /// The folder relative paths in the file are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }
}

/// The parsed file, with the position of every value, so that errors say where.
struct Doc<'a> {
    text: &'a str,
    table: toml::Spanned<DeTable<'a>>,
}

impl<'a> Doc<'a> {
    fn parse(text: &'a str) -> Result<Self, String> {
        let table = DeTable::parse(text).map_err(|e| format!("invalid TOML: {}", located(text, e.span(), e.message())))?;
        Ok(Doc { text, table })
    }

    /// `line L, column C: message` for a span of the file.
    fn at(&self, span: std::ops::Range<usize>, message: &str) -> String {
        located(self.text, Some(span), message)
    }

    fn value(&self, key: &str) -> Option<&toml::Spanned<DeValue<'a>>> {
        self.table.get_ref().get(key)
    }

    /// Deserialise one top-level value; an error is pushed with its position.
    fn section<T: DeserializeOwned>(&self, key: &str, errors: &mut Vec<String>, required: bool) -> Option<T> {
        let Some(v) = self.value(key) else {
            if required {
                errors.push(format!("missing [{key}]"));
            }
            return None;
        };
        T::deserialize(ValueDeserializer::from(v.clone()))
            .map_err(|e| errors.push(format!("[{key}] {}", located(self.text, e.span().or(Some(v.span())), e.message()))))
            .ok()
    }

    /// Deserialise each element of an array of tables on its own, so one bad element does
    /// not hide the errors in the others.
    fn array<T: DeserializeOwned>(&self, key: &str, errors: &mut Vec<String>) -> Vec<T> {
        let Some(v) = self.value(key) else { return Vec::new() };
        let DeValue::Array(items) = v.get_ref() else {
            errors.push(self.at(v.span(), &format!("'{key}' must be an array of tables ([[{key}]])")));
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                T::deserialize(ValueDeserializer::from(item.clone()))
                    .map_err(|e| errors.push(format!("[[{key}]] #{i} {}", located(self.text, e.span().or(Some(item.span())), e.message()))))
                    .ok()
            })
            .collect()
    }
}

/// `line L, column C: message` (1-based; the column counts characters).
fn located(text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> String {
    let Some(span) = span else { return message.to_string() };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}: {message}")
}

fn column_types(cols: &BTreeMap<String, String>, at: &str, errors: &mut Vec<String>) -> Vec<(String, ColumnType)> {
    cols.iter()
        .filter_map(|(name, ty)| match ty.parse::<ColumnType>() {
            Ok(t) => Some((name.clone(), t)),
            Err(e) => {
                errors.push(format!("{at}.{name}: {e}"));
                None
            }
        })
        .collect()
}

/// The source's `[source.contracts]` and `valid_dates`, checked against its declared columns.
fn contracts(s: &SourceConfig, columns: &[(String, ColumnType)], errors: &mut Vec<String>) -> Contracts {
    let type_of = |c: &str| columns.iter().find(|(n, _)| n == c).map(|(_, t)| *t);
    let numeric = |t: ColumnType| matches!(t, ColumnType::I32 | ColumnType::I64 | ColumnType::F32 | ColumnType::F64);
    let mut out = Contracts::default();
    for (column, c) in &s.contracts {
        let at = format!("source.contracts.{column}");
        let Some(ty) = type_of(column) else {
            errors.push(format!("{at}: '{column}' is not a declared column (source.columns)"));
            continue;
        };
        let mut rule = |r: Rule| out.rules.push(Contract { column: column.clone(), rule: r });
        if c.not_null {
            rule(Rule::NotNull);
        }
        if (c.min.is_some() || c.max.is_some()) && !numeric(ty) {
            errors.push(format!("{at}: min/max apply to numeric columns; '{column}' is {ty}"));
        }
        if let (Some(a), Some(b)) = (c.min, c.max) {
            if a > b {
                errors.push(format!("{at}: min {a} is above max {b}"));
            }
        }
        if let Some(m) = c.min {
            rule(Rule::Min(m));
        }
        if let Some(m) = c.max {
            rule(Rule::Max(m));
        }
        if let Some(values) = &c.allowed {
            let text: Vec<String> = values
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            if text.is_empty() {
                errors.push(format!("{at}.allowed: list at least one value"));
            }
            rule(Rule::Allowed(text));
        }
        if let Some(r) = &c.regex {
            match regex::Regex::new(r) {
                Ok(_) => rule(Rule::Regex(r.clone())),
                Err(e) => errors.push(format!("{at}.regex: {e}")),
            }
        }
        if !c.not_null && c.min.is_none() && c.max.is_none() && c.allowed.is_none() && c.regex.is_none() {
            errors.push(format!("{at}: no rule (not_null, min, max, allowed, regex)"));
        }
    }
    for (i, parts) in s.valid_dates.iter().enumerate() {
        let at = format!("source.valid_dates[{i}]");
        match parts.as_slice() {
            [y, m, d] => {
                for c in [y, m, d] {
                    match type_of(c) {
                        Some(t) if numeric(t) || t == ColumnType::Str => {}
                        Some(t) => errors.push(format!("{at}: '{c}' is {t}; date parts are integers or text")),
                        None => errors.push(format!("{at}: '{c}' is not a declared column (source.columns)")),
                    }
                }
                out.dates.push(DateParts { year: y.clone(), month: m.clone(), day: d.clone() });
            }
            _ => errors.push(format!("{at}: give the year, month and day columns, e.g. [\"year\", \"month\", \"day\"]")),
        }
    }
    out
}

fn separator(s: &str, at: &str, errors: &mut Vec<String>) -> u8 {
    match s.as_bytes() {
        [b] => *b,
        _ => {
            errors.push(format!("{at}: must be a single byte, got '{s}'"));
            b','
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_model(dir: &Path, m: &ModelConfig, errors: &mut Vec<String>) {
    for f in sluice_infer::MODEL_FILES {
        if !dir.join(f).is_file() {
            errors.push(format!("model.path: {} is missing {f}", dir.display()));
        }
    }
    let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else { return };
    match serde_json::from_str::<sluice_infer::MlpConfig>(&text) {
        Ok(cfg) => {
            let declared: Vec<&str> = cfg.inputs.iter().map(|i| i.name.as_str()).collect();
            let listed: Vec<&str> = m.features.iter().map(String::as_str).collect();
            if declared != listed {
                errors.push(format!(
                    "model.features {listed:?} do not match the model's inputs {declared:?} ({})",
                    dir.join("config.json").display()
                ));
            }
        }
        Err(e) => errors.push(format!("model.path: {}: {e}", dir.join("config.json").display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_of_a_compressed_object_is_the_extension_under_the_compression() {
        assert_eq!(SourceFormat::of_extension("s3://b/day.CSV.gz"), Some(SourceFormat::Csv));
        assert_eq!(SourceFormat::of_extension("day.jsonl.zst"), Some(SourceFormat::Ndjson));
        assert_eq!(SourceFormat::of_extension("day.parquet"), Some(SourceFormat::Parquet));
        assert_eq!(SourceFormat::of_extension("day.gz"), None);
    }
}
