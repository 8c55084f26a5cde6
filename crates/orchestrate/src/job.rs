//! One `sluice run`: plan, check idempotency, run the four stages, verify the row
//! accounting, write manifests and publish one commit.
//!
//! ```text
//! extract (source) -> transform (N workers) -> infer (M workers) -> write (sink)
//!   RawItem            Batch                    Batch (+ score)      files per partition
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_extract::source::SourceObject;
use sluice_extract::{ObjectRef, RawObject, SourceSpec, Storage};
use sluice_infer::{choose_device, BatchPolicy, EmbeddingModel, TabularModel};
use sluice_transform::ingest::first_bad_row;
use sluice_transform::{
    read_csv, read_emails, read_ndjson, read_parquet, CsvSpec, DimensionSpec, Dimensions, Ingested, TransformError,
    Transformer,
};

use crate::features::{embedding_column, tabular_batch};
use crate::runtime::{self, Budget, Cancel, Emitter, Measure, RunReport, Sink, Source, Stage};
use crate::store::{self, Dataset, Operation, PartitionVersion};
use crate::{Pipeline, SluiceError};

/// How this run was asked for (CLI flags).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `key=value` partitions to (re)build.
    pub partitions: Vec<String>,
    pub force: bool,
    pub run_id: Option<String>,
    /// Overrides of the pipeline's source template, dataset and model (CLI paths, relative
    /// to the current directory).
    pub input: Option<String>,
    pub output: Option<String>,
    pub model: Option<PathBuf>,
    /// The command line, for lineage.
    pub command: Vec<String>,
    /// Plan only: report partitions, input objects and output locations; write nothing.
    pub dry_run: bool,
    /// Process this share of the input objects and stage the result under the run (see
    /// [`publish`]) instead of publishing.
    pub shard: Option<Shard>,
    /// Draw a progress bar on stderr (the CLI sets it when stderr is a terminal).
    pub progress: bool,
    pub cancel: Cancel,
}

/// Shard `index` of `count` (`--shard I/N`, 0-based): every `count`-th input object of
/// the run's plan (partitions in order, objects sorted by URI), starting at `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected I/N with 0 <= I < N (e.g. 0/4), got '{s}'");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index >= count || count > 10_000 {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One partition in the summary line.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionSummary {
    pub partition: String,
    pub version: String,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_filtered: u64,
    pub rows_quarantined: u64,
    /// Paths a plain Parquet reader opens.
    pub files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quarantine_files: Vec<String>,
}

/// One partition of a `--dry-run` plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedPartition {
    pub partition: String,
    /// The current version has the same fingerprint: a run would publish nothing for it.
    pub up_to_date: bool,
    pub objects: Vec<PlannedObject>,
    pub bytes: u64,
    /// Where this run's files would go.
    pub output: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedObject {
    pub uri: String,
    pub size: u64,
}

/// The one-line JSON summary printed last on stdout.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// `published`, `up_to_date`, `staged` (a shard's share is done, not yet published) or
    /// `dry_run`.
    pub status: &'static str,
    pub run_id: String,
    pub dataset: String,
    pub commit: Option<u64>,
    pub partitions: Vec<PartitionSummary>,
    /// Partitions asked for that have no input (a backfill range with gaps).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<PlannedPartition>>,
    pub duration_s: f64,
    /// Rows in, out, filtered and quarantined over all partitions.
    pub rows: RowCounts,
    /// The stage that bounded the run (the full per-stage report is in each manifest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RowCounts {
    #[serde(rename = "in")]
    pub rows_in: u64,
    pub out: u64,
    pub filtered: u64,
    pub quarantined: u64,
}

impl RunSummary {
    pub(crate) fn new(status: &'static str, run_id: &str, dataset: &Dataset, started: Instant) -> Self {
        RunSummary {
            status,
            run_id: run_id.to_string(),
            dataset: dataset.uri().to_string(),
            commit: None,
            partitions: Vec::new(),
            skipped: Vec::new(),
            shard: None,
            plan: None,
            duration_s: started.elapsed().as_secs_f64(),
            rows: RowCounts::default(),
            bottleneck: None,
        }
    }

    pub(crate) fn with_partitions(mut self, partitions: Vec<PartitionSummary>) -> Self {
        for p in &partitions {
            self.rows.rows_in += p.rows_in;
            self.rows.out += p.rows_out;
            self.rows.filtered += p.rows_filtered;
            self.rows.quarantined += p.rows_quarantined;
        }
        self.partitions = partitions;
        self
    }
}

/// Input objects of one partition, with their bytes.
pub struct RawItem {
    partition: String,
    objects: Vec<RawObject>,
}

impl Measure for RawItem {
    fn rows(&self) -> usize {
        0
    }
    fn bytes(&self) -> usize {
        self.objects.iter().map(|o| o.bytes.len()).sum()
    }
}

/// A parsed, transformed (and later scored) piece of one partition.
pub struct Batch {
    partition: String,
    inputs: Vec<InputRecord>,
    frame: DataFrame,
    quarantine: DataFrame,
    rows_read: usize,
    filtered: Vec<(String, usize)>,
}

impl Measure for Batch {
    fn rows(&self) -> usize {
        self.frame.height()
    }
    fn bytes(&self) -> usize {
        self.frame.estimated_size()
    }
}

/// An input object as recorded in lineage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputRecord {
    #[serde(flatten)]
    pub object: ObjectRef,
    pub sha256: String,
}

type StageResult<T> = Result<T, (Option<String>, SluiceError)>;

struct ExtractSource {
    /// Items to emit: a partition and a group of its objects.
    items: Vec<(String, Vec<SourceObject>)>,
}

impl Source for ExtractSource {
    type Out = RawItem;
    type Error = SluiceError;
    fn run(&mut self, out: &mut Emitter<'_, RawItem, SluiceError>) -> StageResult<()> {
        for (partition, objs) in &self.items {
            let objects = objs
                .iter()
                .map(|o| o.fetch())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| (Some(partition.clone()), e.into()))?;
            if out.emit(RawItem { partition: partition.clone(), objects }).is_err() {
                return Ok(()); // cancelled
            }
        }
        Ok(())
    }
}

struct TransformStage {
    format: String,
    csv: CsvSpec,
    transformer: Transformer,
    fail_on_bad_rows: bool,
}

impl TransformStage {
    /// Parse an item's objects into one frame (and one quarantine).
    fn ingest(&self, item: &RawItem) -> Result<Ingested, SluiceError> {
        if self.format == "email" {
            let objects: Vec<(&str, &[u8])> = item.objects.iter().map(|o| (o.object.uri.as_str(), &o.bytes[..])).collect();
            return Ok(read_emails(&objects)?);
        }
        let mut parts = Vec::with_capacity(item.objects.len());
        for o in &item.objects {
            let (uri, bytes) = (o.object.uri.as_str(), &o.bytes[..]);
            let format = match self.format.as_str() {
                "auto" => format_of(uri).ok_or_else(|| {
                    SluiceError::BadInput(format!("{uri}: cannot tell the format from the extension (.csv, .ndjson, .jsonl, .parquet)"))
                })?,
                f => f,
            };
            parts.push(match format {
                "ndjson" => read_ndjson(uri, bytes, &self.csv.columns)?,
                "parquet" => read_parquet(uri, bytes, &self.csv.columns)?,
                _ => read_csv(uri, bytes, &self.csv)?,
            });
        }
        if parts.len() == 1 {
            return Ok(parts.remove(0));
        }
        let rows_read = parts.iter().map(|p| p.rows_read).sum();
        let stack = |frames: Vec<LazyFrame>| concat(frames, UnionArgs::default()).and_then(|lf| lf.collect());
        let frame = stack(parts.iter().map(|p| p.frame.clone().lazy()).collect())
            .map_err(|e| SluiceError::other("stacking the item's objects (do their schemas differ?)", e))?;
        let quarantine = stack(parts.into_iter().map(|p| p.quarantine.lazy()).collect())
            .map_err(|e| SluiceError::other("stacking quarantines", e))?;
        Ok(Ingested { frame, quarantine, rows_read })
    }
}

/// A format from an object's extension.
fn format_of(uri: &str) -> Option<&'static str> {
    let ext = uri.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some("csv"),
        "ndjson" | "jsonl" => Some("ndjson"),
        "parquet" => Some("parquet"),
        _ => None,
    }
}

impl Stage for TransformStage {
    type In = RawItem;
    type Out = Batch;
    type Error = SluiceError;
    fn process(&mut self, item: RawItem) -> StageResult<Batch> {
        let part = Some(item.partition.clone());
        let mut ing = self.ingest(&item).map_err(|e| (part.clone(), e))?;
        if self.fail_on_bad_rows {
            if let Some(e) = first_bad_row(&ing.quarantine) {
                return Err((part, e.into()));
            }
        }
        // the partition's value as a column (Hive style), unless the data has it already
        let (key, value) = item.partition.split_once('=').unwrap_or_default();
        if ing.frame.column(key).is_err() {
            let n = ing.frame.height();
            ing.frame
                .with_column(Column::new_scalar(key.into(), Scalar::from(PlSmallStr::from(value)), n))
                .map_err(|e| (part.clone(), SluiceError::other("adding the partition column", e)))?;
        }
        let t = self.transformer.apply(ing.frame).map_err(|e| (part, e.into()))?;
        let inputs = item.objects.iter().map(|o| InputRecord { object: o.object.clone(), sha256: o.sha256.clone() }).collect();
        Ok(Batch {
            partition: item.partition,
            inputs,
            frame: t.frame,
            quarantine: ing.quarantine,
            rows_read: ing.rows_read,
            filtered: t.filtered,
        })
    }
}

/// The loaded model a run scores with; shared by the infer workers.
#[derive(Clone)]
enum Scorer {
    Tabular { model: TabularModel, batch_rows: usize },
    Embedding { model: Arc<EmbeddingModel>, text_column: String, policy: BatchPolicy },
}

impl Scorer {
    fn load(p: &Pipeline, dir: &Path) -> Result<Self, SluiceError> {
        let device = choose_device(true)?;
        match p.model.kind.as_str() {
            "sentence_embedding" => Ok(Scorer::Embedding {
                model: Arc::new(EmbeddingModel::load(dir, &device)?),
                text_column: p.model.text_column.clone().unwrap_or_default(),
                policy: BatchPolicy { max_tokens: p.model.max_tokens, ..Default::default() },
            }),
            _ => {
                let model = TabularModel::load(dir, &device)?;
                let inputs: Vec<&str> = model.config().inputs.iter().map(|i| i.name.as_str()).collect();
                if inputs != p.model.features.iter().map(String::as_str).collect::<Vec<_>>() {
                    return Err(SluiceError::Usage(format!(
                        "model {} reads {inputs:?}, but the pipeline's model.features are {:?}",
                        dir.display(),
                        p.model.features
                    )));
                }
                Ok(Scorer::Tabular { model, batch_rows: p.model.batch_rows })
            }
        }
    }

    /// The output column for `frame`'s rows; an embedding stops between batches once
    /// `cancel` is set.
    fn score(&self, frame: &DataFrame, output: &str, cancel: &Cancel) -> Result<Column, SluiceError> {
        match self {
            Scorer::Tabular { model, batch_rows } => {
                let mut scores = Vec::with_capacity(frame.height());
                let mut offset = 0;
                while offset < frame.height() {
                    let chunk = frame.slice(offset as i64, *batch_rows);
                    scores.extend(model.predict(&tabular_batch(&chunk, &model.config().inputs)?)?);
                    offset += batch_rows;
                }
                Ok(Column::new(output.into(), scores))
            }
            Scorer::Embedding { model, text_column, policy } => embedding_column(model, frame, text_column, output, policy, cancel),
        }
    }
}

struct InferStage {
    scorer: Scorer,
    output: String,
    cancel: Cancel,
}

impl Stage for InferStage {
    type In = Batch;
    type Out = Batch;
    type Error = SluiceError;
    fn process(&mut self, mut b: Batch) -> StageResult<Batch> {
        let part = Some(b.partition.clone());
        let column = self.scorer.score(&b.frame, &self.output, &self.cancel).map_err(|e| (part.clone(), e))?;
        b.frame.with_column(column).map_err(|e| (part, SluiceError::other("adding the model's output", e)))?;
        Ok(b)
    }
}

/// What the write stage produced for one partition.
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<String>,
    pub rows_in: u64,
    pub rows_out: u64,
    pub filtered: BTreeMap<String, u64>,
    pub quarantine: Option<DataFrame>,
    pub inputs: Vec<InputRecord>,
    pub schema: Vec<(String, String)>,
}

struct WriteSink {
    storage: Storage,
    run_id: String,
    /// Before each file name: empty, or `shard-III-` for a shard's files.
    file_prefix: String,
    progress: Option<indicatif::ProgressBar>,
    max_rows_per_file: usize,
    drop_columns: Vec<String>,
    /// Key-value metadata common to every file; per-partition facts are added.
    kv: Vec<(String, String)>,
    fingerprints: BTreeMap<String, String>,
    parts: BTreeMap<String, Written>,
}

fn parquet_bytes(df: &mut DataFrame, kv: Vec<(String, String)>) -> Result<Vec<u8>, PolarsError> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(kv)))
        .finish(df)?;
    Ok(buf)
}

impl Sink for WriteSink {
    type In = Batch;
    type Output = BTreeMap<String, Written>;
    type Error = SluiceError;

    fn consume(&mut self, b: Batch) -> StageResult<()> {
        let part = Some(b.partition.clone());
        let err = |e: PolarsError| (part.clone(), SluiceError::other(format!("writing partition {}", b.partition), e));
        let w = self.parts.entry(b.partition.clone()).or_default();
        let frame = b.frame.drop_many(self.drop_columns.iter().map(String::as_str));
        if w.schema.is_empty() {
            w.schema = frame.schema().iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        }
        let mut kv = self.kv.clone();
        kv.push(("sluice.partition".into(), b.partition.clone()));
        kv.push(("sluice.fingerprint".into(), self.fingerprints.get(&b.partition).cloned().unwrap_or_default()));
        let inputs: Vec<_> = b.inputs.iter().map(|i| json!({"uri": i.object.uri, "sha256": i.sha256})).collect();
        kv.push(("sluice.inputs".into(), serde_json::Value::from(inputs).to_string()));
        let mut offset = 0;
        // at least one file per partition, so an all-filtered partition still has its schema
        while offset < frame.height() || (offset == 0 && w.files.is_empty()) {
            let mut chunk = frame.slice(offset as i64, self.max_rows_per_file);
            let rel = format!("{}/{}/{}part-{:05}.parquet", b.partition, self.run_id, self.file_prefix, w.files.len());
            let bytes = parquet_bytes(&mut chunk, kv.clone()).map_err(err)?;
            self.storage.put(&rel, Bytes::from(bytes)).map_err(|e| (part.clone(), e.into()))?;
            w.files.push(rel);
            offset += self.max_rows_per_file;
        }
        w.rows_in += b.rows_read as u64;
        w.rows_out += frame.height() as u64;
        for (name, n) in b.filtered {
            *w.filtered.entry(name).or_default() += n as u64;
        }
        if b.quarantine.height() > 0 {
            w.quarantine = Some(match w.quarantine.take() {
                Some(q) => q.vstack(&b.quarantine).map_err(err)?,
                None => b.quarantine,
            });
        }
        w.inputs.extend(b.inputs);
        if let Some(bar) = &self.progress {
            bar.inc(1);
            bar.set_message(b.partition);
        }
        Ok(())
    }

    fn finish(mut self) -> StageResult<Self::Output> {
        if let Some(bar) = &self.progress {
            bar.finish_and_clear();
        }
        for (partition, w) in self.parts.iter_mut() {
            if let Some(q) = w.quarantine.as_mut() {
                let rel = format!("{partition}/{}/{}quarantine.parquet", self.run_id, self.file_prefix);
                let bytes = parquet_bytes(q, self.kv.clone())
                    .map_err(|e| (Some(partition.clone()), SluiceError::other("writing the quarantine", e)))?;
                self.storage.put(&rel, Bytes::from(bytes)).map_err(|e| (Some(partition.clone()), e.into()))?;
            }
        }
        Ok(self.parts)
    }
}

/// The fingerprint of one partition's run: what went in (its objects and the dimension
/// tables, by URI, size and ETag) and how it was processed (pipeline file, model).
fn fingerprint(pipeline_sha: &str, model_id: &str, partition: &str, objects: &[&ObjectRef], dims: &[ObjectRef]) -> String {
    let refs = |o: &ObjectRef| json!([o.uri, o.size, o.e_tag]);
    let inputs: Vec<_> = objects.iter().map(|o| refs(o)).collect();
    let dims: Vec<_> = dims.iter().map(refs).collect();
    let doc = json!({"v": 1, "pipeline": pipeline_sha, "model": model_id, "partition": partition, "inputs": inputs, "dimensions": dims});
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
}

fn summary_from_version(ds: &Dataset, partition: &str, v: &PartitionVersion) -> PartitionSummary {
    PartitionSummary {
        partition: partition.to_string(),
        version: v.version.clone(),
        rows_in: 0,
        rows_out: v.rows,
        rows_filtered: 0,
        rows_quarantined: 0,
        files: v.files.iter().map(|f| ds.storage().uri_of(f)).collect(),
        quarantine_files: Vec::new(),
    }
}

/// What a run (or one shard of it) made of one partition, before it is published: the
/// files it wrote and the counts and lineage its manifest will hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedPartition {
    pub fingerprint: String,
    pub files: Vec<String>,
    pub quarantine_files: Vec<String>,
    pub rows_in: u64,
    pub rows_out: u64,
    pub filtered_by: BTreeMap<String, u64>,
    pub quarantined: u64,
    /// The first quarantined row, for the error when there are too many.
    pub first_bad_row: Option<String>,
    pub inputs: Vec<InputRecord>,
    pub schema: Vec<(String, String)>,
}

/// A shard's record, `_sluice/runs/<run_id>/shard-<I>-of-<N>.json`: written (create-only)
/// when its share is staged; `sluice publish` reads them all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardRecord {
    pub run_id: String,
    pub shard: usize,
    pub shards: usize,
    /// Every partition of the run's plan and its fingerprint: the same in every shard of
    /// a run, or the shards did not see the same inputs.
    pub fingerprints: BTreeMap<String, String>,
    /// The plan was already current (same fingerprints) and nothing was processed.
    pub up_to_date: bool,
    pub pipeline_sha256: String,
    pub model: String,
    pub model_id: String,
    pub dimensions: Vec<ObjectRef>,
    pub command: Vec<String>,
    /// This shard's share of each partition it had objects of.
    pub partitions: BTreeMap<String, StagedPartition>,
    pub stages: serde_json::Value,
    pub started_at: chrono::DateTime<Utc>,
    pub finished_at: chrono::DateTime<Utc>,
}

fn shard_record_path(run_id: &str, shard: Shard) -> String {
    format!("_sluice/runs/{run_id}/shard-{:05}-of-{:05}.json", shard.index, shard.count)
}

fn shard_prefix(shard: Option<Shard>) -> String {
    shard.map(|s| format!("shard-{:05}-", s.index)).unwrap_or_default()
}

/// Run a pipeline for the requested partitions and publish the result as one commit (or,
/// with a shard, stage this shard's share for [`publish`]).
pub fn run(p: &Pipeline, opts: RunOptions) -> Result<RunSummary, SluiceError> {
    let started = Instant::now();
    let started_at = Utc::now();
    let run_id = match &opts.run_id {
        Some(id) => {
            store::validate_run_id(id)?;
            id.clone()
        }
        None if opts.shard.is_some() => {
            return Err(SluiceError::Usage("--shard needs --run-id: the shards of one run share its id".into()));
        }
        None => store::new_run_id(),
    };
    let key = &p.partition.key;
    let templated = sluice_extract::source::template_vars(opts.input.as_deref().unwrap_or(&p.source.uri)).contains(key);
    let partitions = match (opts.partitions.is_empty(), templated) {
        (false, _) => opts.partitions.clone(),
        // a source without a partition placeholder is one partition
        (true, false) => vec![format!("{key}=all")],
        (true, true) => {
            return Err(SluiceError::Usage(format!("give a partition: --date D, --from D --to D or --partition {key}=VALUE")));
        }
    };

    // plan: the input objects of each partition, sorted by URI
    let source = match &opts.input {
        Some(uri) => SourceSpec::new(uri.clone(), None),
        None => SourceSpec::new(p.source.uri.clone(), Some(p.base_dir())),
    };
    let mut planned: Vec<(String, Vec<SourceObject>)> = Vec::new();
    let mut skipped = Vec::new();
    for part in &partitions {
        store::validate_partition(part)?;
        let (k, v) = part.split_once('=').unwrap_or_default();
        if k != p.partition.key {
            return Err(SluiceError::Usage(format!("partition '{part}': this pipeline is partitioned by '{}'", p.partition.key)));
        }
        if planned.iter().any(|(q, _)| q == part) || skipped.contains(part) {
            continue;
        }
        let vars = [(k.to_string(), v.to_string())];
        let mut objects = source.list(&vars)?;
        if objects.is_empty() {
            let uri = source.uri_for(&vars)?;
            if partitions.len() == 1 {
                return Err(SluiceError::NoInput { partition: part.clone(), uri });
            }
            // a backfill over a range with gaps: the others still run
            tracing::warn!(partition = %part, uri, "no input; skipped");
            skipped.push(part.clone());
            continue;
        }
        objects.sort_by(|a, b| a.meta.uri.cmp(&b.meta.uri));
        tracing::info!(partition = %part, objects = objects.len(), bytes = objects.iter().map(|o| o.meta.size).sum::<u64>(), "planned");
        planned.push((part.clone(), objects));
    }
    if planned.is_empty() {
        return Err(SluiceError::NoInput { partition: format!("any of the {} partitions asked for", partitions.len()), uri: source.template.clone() });
    }

    let dataset = Dataset::open(match &opts.output {
        Some(uri) => Storage::open(uri, None)?,
        None => Storage::open(&p.output.uri, Some(p.base_dir()))?,
    });
    let model_dir = opts.model.clone().unwrap_or_else(|| p.model_dir.clone());
    let model_id = sluice_infer::model_id(&model_dir)?;
    let dim_refs = dimension_refs(p)?;
    let fingerprints: BTreeMap<String, String> = planned
        .iter()
        .map(|(part, objs)| {
            let refs: Vec<&ObjectRef> = objs.iter().map(|o| &o.meta).collect();
            (part.clone(), fingerprint(&p.sha256, &model_id, part, &refs, &dim_refs))
        })
        .collect();
    let log = dataset.log()?;
    let snap = store::fold(&log, None);
    let is_current = |part: &str| snap.partitions.get(part).is_some_and(|v| v.fingerprint == fingerprints[part]);
    let up_to_date = !opts.force && planned.iter().all(|(part, _)| is_current(part));

    if opts.dry_run {
        let plan = planned
            .iter()
            .map(|(part, objs)| PlannedPartition {
                partition: part.clone(),
                up_to_date: is_current(part),
                objects: objs.iter().map(|o| PlannedObject { uri: o.meta.uri.clone(), size: o.meta.size }).collect(),
                bytes: objs.iter().map(|o| o.meta.size).sum(),
                output: format!("{}/", dataset.storage().uri_of(&format!("{part}/{run_id}"))),
            })
            .collect();
        let mut summary = RunSummary::new("dry_run", &run_id, &dataset, started);
        summary.commit = Some(snap.commit);
        summary.plan = Some(plan);
        summary.skipped = skipped;
        summary.shard = opts.shard.map(|s| s.to_string());
        return Ok(summary);
    }

    // a version's files are never replaced: a run id is used once (per shard)
    let prefix = shard_prefix(opts.shard);
    if let Some(shard) = opts.shard {
        if let Some(done) = read_shard_record(&dataset, &run_id, shard)? {
            if done.fingerprints != fingerprints {
                return Err(SluiceError::Usage(format!(
                    "shard {shard} of run '{run_id}' already finished with other inputs, pipeline or model; use a new run id"
                )));
            }
            tracing::info!(shard = %shard, run_id, "this shard already finished; nothing to do");
            let mut summary = RunSummary::new("staged", &run_id, &dataset, started);
            summary.shard = Some(shard.to_string());
            summary.skipped = skipped;
            return Ok(summary);
        }
    }
    for (part, _) in &planned {
        let used = dataset.storage().list(&format!("{part}/{run_id}"))?.iter().any(|(rel, _)| file_name(rel).starts_with(&prefix));
        if used {
            return Err(SluiceError::Usage(format!(
                "run id '{run_id}' was already used for partition {part}: a version's files are never replaced"
            )));
        }
    }
    if let Some(shard) = opts.shard {
        if log.iter().any(|c| c.run_id == run_id) {
            return Err(SluiceError::Usage(format!("run '{run_id}' is already published; shard {shard} has nothing to add")));
        }
    }

    // idempotency: the same fingerprint is already current for every partition
    if up_to_date {
        tracing::info!(dataset = dataset.uri(), "already up to date: same inputs, pipeline and model; nothing published (use --force to rebuild)");
        let current = planned.iter().filter_map(|(part, _)| snap.partitions.get(part).map(|v| summary_from_version(&dataset, part, v)));
        let mut summary = RunSummary::new("up_to_date", &run_id, &dataset, started).with_partitions(current.collect());
        summary.commit = Some(snap.commit);
        summary.skipped = skipped;
        if let Some(shard) = opts.shard {
            let record = shard_record(p, &opts, &run_id, shard, &fingerprints, true, &model_dir, &model_id, &dim_refs, BTreeMap::new(), json!(null), started_at);
            write_shard_record(&dataset, &record)?;
            summary.shard = Some(shard.to_string());
        }
        return Ok(summary);
    }

    // this shard's share: every count-th object of the plan
    let mut k = 0usize;
    let mine: Vec<(String, Vec<SourceObject>)> = planned
        .iter()
        .map(|(part, objs)| {
            let share = objs
                .iter()
                .filter(|_| {
                    k += 1;
                    opts.shard.is_none_or(|s| (k - 1) % s.count == s.index)
                })
                .cloned()
                .collect::<Vec<_>>();
            (part.clone(), share)
        })
        .filter(|(_, objs)| !objs.is_empty())
        .collect();
    let parts: Vec<String> = mine.iter().map(|(part, _)| part.clone()).collect();
    let ctx = Planned {
        p,
        opts: &opts,
        run_id: &run_id,
        dataset: &dataset,
        model_dir: model_dir.clone(),
        model_id: model_id.clone(),
        fingerprints: fingerprints.clone(),
        file_prefix: prefix.clone(),
    };
    let discard = |_: &SluiceError| discard_unpublished(&dataset, &parts, &run_id, &prefix);
    let (staged, report) = if mine.is_empty() {
        (BTreeMap::new(), json!(null)) // a shard whose share is empty
    } else {
        execute(&ctx, mine).inspect_err(discard)?
    };
    if opts.cancel.is_cancelled() {
        discard(&SluiceError::Cancelled);
        return Err(SluiceError::Cancelled);
    }

    if let Some(shard) = opts.shard {
        let summaries = staged.iter().map(|(part, s)| partition_summary(&dataset, part, &run_id, s)).collect();
        let record = shard_record(p, &opts, &run_id, shard, &fingerprints, false, &model_dir, &model_id, &dim_refs, staged, report, started_at);
        write_shard_record(&dataset, &record).inspect_err(discard)?;
        tracing::info!(shard = %shard, run_id, "shard staged; publish the run with: sluice publish {} --run {run_id}", p.path.display());
        let mut summary = RunSummary::new("staged", &run_id, &dataset, started).with_partitions(summaries);
        summary.shard = Some(shard.to_string());
        summary.skipped = skipped;
        return Ok(summary);
    }

    hold_commit(&opts.cancel).inspect_err(discard)?;
    let bottleneck = report.get("bottleneck").and_then(|b| b.as_str()).map(str::to_string);
    let publication = Publication {
        p,
        dataset: &dataset,
        run_id: &run_id,
        model_dir: model_dir.display().to_string(),
        model_id: &model_id,
        dim_refs: &dim_refs,
        command: &opts.command,
        stages: report,
        started_at,
        base_commit: snap.commit,
    };
    let (commit, summaries) = publish_staged(&publication, &staged).inspect_err(discard)?;
    let mut summary = RunSummary::new("published", &run_id, &dataset, started).with_partitions(summaries);
    summary.commit = Some(commit);
    summary.skipped = skipped;
    summary.bottleneck = bottleneck;
    Ok(summary)
}

/// Test hook: with `SLUICE_HOLD_COMMIT_UNTIL=PATH`, wait (at most 10 minutes) for PATH to
/// exist before committing, so tests can stage a commit race or a signal at the last moment.
fn hold_commit(cancel: &Cancel) -> Result<(), SluiceError> {
    let Some(path) = std::env::var_os("SLUICE_HOLD_COMMIT_UNTIL") else { return Ok(()) };
    tracing::info!(until = ?path, "holding the commit (SLUICE_HOLD_COMMIT_UNTIL)");
    let deadline = Instant::now() + std::time::Duration::from_secs(600);
    while !Path::new(&path).exists() && Instant::now() < deadline {
        if cancel.is_cancelled() {
            return Err(SluiceError::Cancelled);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if cancel.is_cancelled() {
        return Err(SluiceError::Cancelled);
    }
    Ok(())
}

fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

#[allow(clippy::too_many_arguments)]
fn shard_record(
    p: &Pipeline,
    opts: &RunOptions,
    run_id: &str,
    shard: Shard,
    fingerprints: &BTreeMap<String, String>,
    up_to_date: bool,
    model_dir: &Path,
    model_id: &str,
    dim_refs: &[ObjectRef],
    partitions: BTreeMap<String, StagedPartition>,
    stages: serde_json::Value,
    started_at: chrono::DateTime<Utc>,
) -> ShardRecord {
    ShardRecord {
        run_id: run_id.to_string(),
        shard: shard.index,
        shards: shard.count,
        fingerprints: fingerprints.clone(),
        up_to_date,
        pipeline_sha256: p.sha256.clone(),
        model: model_dir.display().to_string(),
        model_id: model_id.to_string(),
        dimensions: dim_refs.to_vec(),
        command: opts.command.clone(),
        partitions,
        stages,
        started_at,
        finished_at: Utc::now(),
    }
}

fn write_shard_record(dataset: &Dataset, record: &ShardRecord) -> Result<(), SluiceError> {
    let body = serde_json::to_vec_pretty(record).map_err(|e| SluiceError::other("encoding the shard record", e))?;
    let rel = shard_record_path(&record.run_id, Shard { index: record.shard, count: record.shards });
    if dataset.storage().put_if_absent(&rel, Bytes::from(body))? == sluice_extract::storage::PutOutcome::AlreadyExists {
        return Err(SluiceError::Conflict {
            dataset: dataset.uri().to_string(),
            reason: format!("shard {}/{} of run '{}' was finished by another process", record.shard, record.shards, record.run_id),
        });
    }
    Ok(())
}

fn read_shard_record(dataset: &Dataset, run_id: &str, shard: Shard) -> Result<Option<ShardRecord>, SluiceError> {
    let rel = shard_record_path(run_id, shard);
    if !dataset.storage().list(&format!("_sluice/runs/{run_id}/"))?.iter().any(|(r, _)| *r == rel) {
        return Ok(None);
    }
    let bytes = dataset.storage().get(&rel)?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| SluiceError::Store(format!("{}: {e}", dataset.storage().uri_of(&rel))))
}

/// Publish what the shards of `run_id` staged, as one commit. Every shard `0..N` must have
/// finished, with the same fingerprints; publishing a run that is already published does
/// nothing.
pub fn publish(p: &Pipeline, run_id: &str, output: Option<&str>, command: &[String]) -> Result<RunSummary, SluiceError> {
    let started = Instant::now();
    store::validate_run_id(run_id)?;
    let dataset = Dataset::open(match output {
        Some(uri) => Storage::open(uri, None)?,
        None => Storage::open(&p.output.uri, Some(p.base_dir()))?,
    });
    let log = dataset.log()?;
    if let Some(c) = log.iter().find(|c| c.run_id == run_id && c.operation == Operation::Publish) {
        tracing::info!(run_id, commit = c.commit, "run already published; nothing to do");
        let mut summary = RunSummary::new("up_to_date", run_id, &dataset, started);
        summary.commit = Some(c.commit);
        return Ok(summary);
    }
    let mut records = Vec::new();
    for (rel, _) in dataset.storage().list(&format!("_sluice/runs/{run_id}/"))? {
        let bytes = dataset.storage().get(&rel)?;
        let r: ShardRecord =
            serde_json::from_slice(&bytes).map_err(|e| SluiceError::Store(format!("{}: {e}", dataset.storage().uri_of(&rel))))?;
        records.push(r);
    }
    records.sort_by_key(|r| r.shard);
    let Some(first) = records.first() else {
        return Err(SluiceError::other(format!("publish run '{run_id}'"), "no shard of this run has finished (nothing staged)"));
    };
    let n = first.shards;
    let missing: Vec<String> =
        (0..n).filter(|i| !records.iter().any(|r| r.shard == *i && r.shards == n)).map(|i| format!("{i}/{n}")).collect();
    if !missing.is_empty() || records.len() != n {
        return Err(SluiceError::other(
            format!("publish run '{run_id}'"),
            format!("{} of {n} shards finished; missing: {} (run them, then publish again)", records.len(), missing.join(", ")),
        ));
    }
    if let Some(r) = records.iter().find(|r| r.fingerprints != first.fingerprints || r.model_id != first.model_id) {
        return Err(SluiceError::other(
            format!("publish run '{run_id}'"),
            format!("shard {}/{n} saw other inputs, pipeline or model than shard 0/{n}; re-run the run under a new id", r.shard),
        ));
    }
    if first.pipeline_sha256 != p.sha256 {
        return Err(SluiceError::Usage(format!("run '{run_id}' was staged with another version of {} (sha256 differs)", p.path.display())));
    }
    if records.iter().all(|r| r.up_to_date) {
        tracing::info!(run_id, "every shard found its partitions up to date; nothing to publish");
        let snap = store::fold(&log, None);
        let current = first.fingerprints.keys().filter_map(|part| snap.partitions.get(part).map(|v| summary_from_version(&dataset, part, v)));
        let mut summary = RunSummary::new("up_to_date", run_id, &dataset, started).with_partitions(current.collect());
        summary.commit = Some(snap.commit);
        return Ok(summary);
    }

    // merge the shards' shares of each partition, in shard order
    let mut staged: BTreeMap<String, StagedPartition> = BTreeMap::new();
    for r in &records {
        for (part, s) in &r.partitions {
            let m = staged.entry(part.clone()).or_insert_with(|| StagedPartition {
                fingerprint: s.fingerprint.clone(),
                files: Vec::new(),
                quarantine_files: Vec::new(),
                rows_in: 0,
                rows_out: 0,
                filtered_by: BTreeMap::new(),
                quarantined: 0,
                first_bad_row: None,
                inputs: Vec::new(),
                schema: s.schema.clone(),
            });
            m.files.extend(s.files.iter().cloned());
            m.quarantine_files.extend(s.quarantine_files.iter().cloned());
            m.rows_in += s.rows_in;
            m.rows_out += s.rows_out;
            for (rule, k) in &s.filtered_by {
                *m.filtered_by.entry(rule.clone()).or_default() += k;
            }
            m.quarantined += s.quarantined;
            if m.first_bad_row.is_none() {
                m.first_bad_row = s.first_bad_row.clone();
            }
            m.inputs.extend(s.inputs.iter().cloned());
        }
    }
    if let Some(part) = first.fingerprints.keys().find(|part| !staged.contains_key(*part)) {
        return Err(SluiceError::other(format!("publish run '{run_id}'"), format!("no shard staged partition {part}")));
    }
    let stages: BTreeMap<String, serde_json::Value> = records.iter().map(|r| (format!("{}/{n}", r.shard), r.stages.clone())).collect();
    let publication = Publication {
        p,
        dataset: &dataset,
        run_id,
        model_dir: first.model.clone(),
        model_id: &first.model_id,
        dim_refs: &first.dimensions,
        command,
        stages: json!({"shards": stages}),
        started_at: records.iter().map(|r| r.started_at).min().unwrap_or_else(Utc::now),
        base_commit: log.last().map_or(0, |c| c.commit),
    };
    let (commit, summaries) = publish_staged(&publication, &staged)?;
    let mut summary = RunSummary::new("published", run_id, &dataset, started).with_partitions(summaries);
    summary.commit = Some(commit);
    summary.shard = Some(format!("{n} shards"));
    Ok(summary)
}

/// What planning decided, for [`execute`].
struct Planned<'a> {
    p: &'a Pipeline,
    opts: &'a RunOptions,
    run_id: &'a str,
    dataset: &'a Dataset,
    model_dir: PathBuf,
    model_id: String,
    fingerprints: BTreeMap<String, String>,
    file_prefix: String,
}

/// A failed run publishes nothing; also remove the files it wrote (under its own run
/// folders, which were empty when it started, and with a shard only its own files), so
/// the dataset is exactly as it was. Best effort: anything left is unreferenced debris
/// that readers never see.
fn discard_unpublished(dataset: &Dataset, partitions: &[String], run_id: &str, file_prefix: &str) {
    for part in partitions {
        let Ok(files) = dataset.storage().list(&format!("{part}/{run_id}")) else { continue };
        for (rel, _) in files.iter().filter(|(rel, _)| file_name(rel).starts_with(file_prefix)) {
            if let Err(e) = dataset.storage().delete(rel) {
                tracing::warn!(file = %rel, error = %e, "could not remove an unpublished file");
            }
        }
    }
}

/// Run the stages over `items`' objects; what each partition got, and the run report.
fn execute(
    ctx: &Planned<'_>,
    planned: Vec<(String, Vec<SourceObject>)>,
) -> Result<(BTreeMap<String, StagedPartition>, serde_json::Value), SluiceError> {
    let Planned { p, opts, run_id, dataset, model_dir, model_id, fingerprints, file_prefix } = ctx;
    let run_id = run_id.to_string();
    // load what every worker shares, once
    let dims = Dimensions::load(&p.dimensions, |file| {
        Storage::open(file, None)
            .and_then(|s| s.get(""))
            .map(|b| b.to_vec())
            .map_err(|e| TransformError::BadRow { file: file.to_string(), line: 0, reason: e.to_string() })
    })?;
    let scorer = Scorer::load(p, model_dir)?;
    let items: Vec<(String, Vec<SourceObject>)> = planned
        .iter()
        .flat_map(|(part, objs)| objs.chunks(p.source.objects_per_item).map(move |c| (part.clone(), c.to_vec())))
        .collect();
    let largest = items.iter().map(|(_, o)| o.iter().map(|o| o.meta.size).sum::<u64>()).max().unwrap_or(1) as usize;
    // a parsed, joined frame is a few times its CSV; size channels for the largest item
    let budget = Budget { channel_bytes: p.runtime.channel_mib << 20, item_bytes: largest.saturating_mul(4) };
    let kv = vec![
        ("sluice.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("sluice.run_id".to_string(), run_id.clone()),
        ("sluice.pipeline".to_string(), p.name.clone()),
        ("sluice.pipeline_sha256".to_string(), p.sha256.clone()),
        ("sluice.model_id".to_string(), model_id.clone()),
    ];
    let progress = opts.progress.then(|| {
        let bar = indicatif::ProgressBar::new(items.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} items {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let fail_on_bad_rows = p.source.on_bad_rows == "fail";
    let (written, report) = runtime::source("extract", ExtractSource { items }, budget, opts.cancel.clone())
        .stage("transform", p.runtime.transform_workers, |_| TransformStage {
            format: p.source.format.clone(),
            csv: p.csv.clone(),
            transformer: Transformer::new(&dims, p.steps.clone()),
            fail_on_bad_rows,
        })
        .stage("infer", p.runtime.infer_workers, |_| InferStage {
            scorer: scorer.clone(),
            output: p.model.output.clone(),
            cancel: opts.cancel.clone(),
        })
        .sink(
            "write",
            WriteSink {
                storage: dataset.storage().clone(),
                run_id: run_id.clone(),
                file_prefix: file_prefix.clone(),
                progress,
                max_rows_per_file: p.output.max_rows_per_file,
                drop_columns: p.output.drop_columns.clone(),
                kv,
                fingerprints: fingerprints.clone(),
                parts: BTreeMap::new(),
            },
        )?;
    log_report(&report);
    let staged = written
        .into_iter()
        .map(|(part, w)| {
            let quarantined = w.quarantine.as_ref().map_or(0, |q| q.height() as u64);
            let s = StagedPartition {
                fingerprint: fingerprints[&part].clone(),
                quarantine_files: w.quarantine.iter().map(|_| format!("{part}/{run_id}/{file_prefix}quarantine.parquet")).collect(),
                first_bad_row: w.quarantine.as_ref().and_then(first_bad_row).map(|e| e.to_string()),
                files: w.files,
                rows_in: w.rows_in,
                rows_out: w.rows_out,
                filtered_by: w.filtered,
                quarantined,
                inputs: w.inputs,
                schema: w.schema,
            };
            (part, s)
        })
        .collect();
    let report = serde_json::to_value(&report).map_err(|e| SluiceError::other("encoding the run report", e))?;
    Ok((staged, report))
}

/// What [`publish_staged`] records in each manifest and the commit.
struct Publication<'a> {
    p: &'a Pipeline,
    dataset: &'a Dataset,
    run_id: &'a str,
    model_dir: String,
    model_id: &'a str,
    dim_refs: &'a [ObjectRef],
    command: &'a [String],
    stages: serde_json::Value,
    started_at: chrono::DateTime<Utc>,
    base_commit: u64,
}

fn partition_summary(dataset: &Dataset, part: &str, run_id: &str, s: &StagedPartition) -> PartitionSummary {
    PartitionSummary {
        partition: part.to_string(),
        version: run_id.to_string(),
        rows_in: s.rows_in,
        rows_out: s.rows_out,
        rows_filtered: s.filtered_by.values().sum(),
        rows_quarantined: s.quarantined,
        files: s.files.iter().map(|f| dataset.storage().uri_of(f)).collect(),
        quarantine_files: s.quarantine_files.iter().map(|f| dataset.storage().uri_of(f)).collect(),
    }
}

/// Account for every row, hold bad input to the pipeline's limit, write each partition's
/// manifest and publish them all in one commit.
fn publish_staged(
    publication: &Publication<'_>,
    staged: &BTreeMap<String, StagedPartition>,
) -> Result<(u64, Vec<PartitionSummary>), SluiceError> {
    let Publication { p, dataset, run_id, model_dir, model_id, dim_refs, command, stages, started_at, base_commit } = publication;
    let mut versions = BTreeMap::new();
    let mut summaries = Vec::new();
    for (part, s) in staged {
        let filtered: u64 = s.filtered_by.values().sum();
        if s.rows_in != s.rows_out + filtered + s.quarantined {
            return Err(SluiceError::other(
                format!("partition {part}"),
                format!("row accounting mismatch: {} in != {} out + {filtered} filtered + {} quarantined", s.rows_in, s.rows_out, s.quarantined),
            ));
        }
        if s.rows_in > 0 && s.quarantined as f64 / s.rows_in as f64 > p.source.max_bad_fraction {
            return Err(SluiceError::TooManyBadRows {
                partition: part.clone(),
                rows: s.rows_in,
                quarantined: s.quarantined,
                fraction: 100.0 * s.quarantined as f64 / s.rows_in as f64,
                limit: 100.0 * p.source.max_bad_fraction,
                first: s.first_bad_row.clone().unwrap_or_default(),
            });
        }
        let manifest_rel = format!("{part}/{run_id}/manifest.json");
        let manifest = json!({
            "dataset": dataset.uri(),
            "partition": part,
            "version": run_id,
            "run_id": run_id,
            "fingerprint": s.fingerprint,
            "inputs": s.inputs,
            "dimensions": dim_refs,
            "pipeline": {"name": p.name, "path": p.path.display().to_string(), "sha256": p.sha256},
            "model": {"path": model_dir, "id": model_id},
            "sluice_version": env!("CARGO_PKG_VERSION"),
            "command": command,
            "rows": {"in": s.rows_in, "out": s.rows_out, "filtered": filtered, "filtered_by": s.filtered_by, "quarantined": s.quarantined},
            "schema": s.schema.iter().map(|(n, t)| json!({"name": n, "type": t})).collect::<Vec<_>>(),
            "files": s.files,
            "quarantine_files": s.quarantine_files,
            "stages": stages,
            "started_at": started_at,
            "finished_at": Utc::now(),
        });
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| SluiceError::other("encoding the manifest", e))?;
        dataset.storage().put(&manifest_rel, Bytes::from(body))?;
        versions.insert(
            part.clone(),
            Some(PartitionVersion {
                version: run_id.to_string(),
                files: s.files.clone(),
                rows: s.rows_out,
                fingerprint: s.fingerprint.clone(),
                manifest: manifest_rel,
                published_in: 0,
            }),
        );
        summaries.push(partition_summary(dataset, part, run_id, s));
    }
    let commit = dataset.commit(*base_commit, Operation::Publish, run_id, versions, BTreeMap::new(), command)?;
    Ok((commit, summaries))
}

/// The dimension tables' objects, for the fingerprint and the lineage.
fn dimension_refs(p: &Pipeline) -> Result<Vec<ObjectRef>, SluiceError> {
    let mut out = Vec::new();
    for d in &p.dimensions {
        if let DimensionSpec::Csv { file, .. } = d {
            let storage = Storage::open(file, None)?;
            let meta = storage.head("")?;
            out.push(ObjectRef { uri: storage.uri().to_string(), size: meta.size, e_tag: meta.e_tag, last_modified: meta.last_modified });
        }
    }
    Ok(out)
}

fn log_report(r: &RunReport) {
    for s in &r.stages {
        tracing::info!(
            stage = %s.stage,
            workers = s.workers,
            items = s.items_in.max(s.items_out),
            rows = s.rows_out,
            busy_s = format!("{:.3}", s.busy_s),
            blocked_send_s = format!("{:.3}", s.blocked_send_s),
            blocked_recv_s = format!("{:.3}", s.blocked_recv_s),
            "stage report"
        );
    }
    tracing::info!(bottleneck = ?r.bottleneck, wall_s = format!("{:.3}", r.wall_s), channel_capacity = r.channel_capacity, "run report");
}
