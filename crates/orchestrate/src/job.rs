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
use serde::Serialize;
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
    pub cancel: Cancel,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_file: Option<String>,
}

/// The one-line JSON summary printed last on stdout.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub status: &'static str,
    pub run_id: String,
    pub dataset: String,
    pub commit: Option<u64>,
    pub partitions: Vec<PartitionSummary>,
    pub duration_s: f64,
    /// The stage that bounded the run (the full per-stage report is in each manifest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<String>,
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
#[derive(Debug, Clone, Serialize)]
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

    /// The output column for `frame`'s rows.
    fn score(&self, frame: &DataFrame, output: &str) -> Result<Column, SluiceError> {
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
            Scorer::Embedding { model, text_column, policy } => embedding_column(model, frame, text_column, output, policy),
        }
    }
}

struct InferStage {
    scorer: Scorer,
    output: String,
}

impl Stage for InferStage {
    type In = Batch;
    type Out = Batch;
    type Error = SluiceError;
    fn process(&mut self, mut b: Batch) -> StageResult<Batch> {
        let part = Some(b.partition.clone());
        let column = self.scorer.score(&b.frame, &self.output).map_err(|e| (part.clone(), e))?;
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
            let rel = format!("{}/{}/part-{:05}.parquet", b.partition, self.run_id, w.files.len());
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
        Ok(())
    }

    fn finish(mut self) -> StageResult<Self::Output> {
        for (partition, w) in self.parts.iter_mut() {
            if let Some(q) = w.quarantine.as_mut() {
                let rel = format!("{partition}/{}/quarantine.parquet", self.run_id);
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
        quarantine_file: None,
    }
}

/// Run a pipeline for the requested partitions and publish the result as one commit.
pub fn run(p: &Pipeline, opts: RunOptions) -> Result<RunSummary, SluiceError> {
    let started = Instant::now();
    let started_at = Utc::now();
    let run_id = match &opts.run_id {
        Some(id) => {
            store::validate_run_id(id)?;
            id.clone()
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
            return Err(SluiceError::Usage(format!("give a partition: --date D or --partition {key}=VALUE")));
        }
    };

    // plan: the input objects of each partition
    let source = match &opts.input {
        Some(uri) => SourceSpec::new(uri.clone(), None),
        None => SourceSpec::new(p.source.uri.clone(), Some(p.base_dir())),
    };
    let mut planned: Vec<(String, Vec<SourceObject>)> = Vec::new();
    for part in &partitions {
        store::validate_partition(part)?;
        let (k, v) = part.split_once('=').unwrap_or_default();
        if k != p.partition.key {
            return Err(SluiceError::Usage(format!("partition '{part}': this pipeline is partitioned by '{}'", p.partition.key)));
        }
        let vars = [(k.to_string(), v.to_string())];
        let objects = source.list(&vars)?;
        if objects.is_empty() {
            return Err(SluiceError::NoInput { partition: part.clone(), uri: source.uri_for(&vars)? });
        }
        tracing::info!(partition = %part, objects = objects.len(), bytes = objects.iter().map(|o| o.meta.size).sum::<u64>(), "planned");
        planned.push((part.clone(), objects));
    }

    let dataset = Dataset::open(match &opts.output {
        Some(uri) => Storage::open(uri, None)?,
        None => Storage::open(&p.output.uri, Some(p.base_dir()))?,
    });
    for (part, _) in &planned {
        if !dataset.storage().list(&format!("{part}/{run_id}"))?.is_empty() {
            return Err(SluiceError::Usage(format!(
                "run id '{run_id}' was already used for partition {part}: a version's files are never replaced"
            )));
        }
    }
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

    // idempotency: the same fingerprint is already current for every partition
    let snap = dataset.snapshot(None)?;
    let current: Vec<_> = planned
        .iter()
        .filter_map(|(part, _)| snap.partitions.get(part).filter(|v| v.fingerprint == fingerprints[part]).map(|v| (part, v)))
        .collect();
    if !opts.force && current.len() == planned.len() {
        tracing::info!(dataset = dataset.uri(), "already up to date: same inputs, pipeline and model; nothing published (use --force to rebuild)");
        return Ok(RunSummary {
            status: "up_to_date",
            run_id,
            dataset: dataset.uri().to_string(),
            commit: Some(snap.commit),
            partitions: current.iter().map(|(part, v)| summary_from_version(&dataset, part, v)).collect(),
            duration_s: started.elapsed().as_secs_f64(),
            bottleneck: None,
        });
    }

    let parts: Vec<String> = planned.iter().map(|(part, _)| part.clone()).collect();
    let ctx = Planned { p, opts: &opts, run_id: &run_id, dataset: &dataset, model_dir, model_id, dim_refs, fingerprints, base_commit: snap.commit };
    execute(&ctx, planned, started, started_at).inspect_err(|_| discard_unpublished(&dataset, &parts, &run_id))
}

/// What planning decided, for [`execute`].
struct Planned<'a> {
    p: &'a Pipeline,
    opts: &'a RunOptions,
    run_id: &'a str,
    dataset: &'a Dataset,
    model_dir: PathBuf,
    model_id: String,
    dim_refs: Vec<ObjectRef>,
    fingerprints: BTreeMap<String, String>,
    base_commit: u64,
}

/// A failed run publishes nothing; also remove the files it wrote (under its own run
/// folders, which were empty when it started), so the dataset is exactly as it was.
/// Best effort: anything left is unreferenced debris that readers never see.
fn discard_unpublished(dataset: &Dataset, partitions: &[String], run_id: &str) {
    for part in partitions {
        let Ok(files) = dataset.storage().list(&format!("{part}/{run_id}")) else { continue };
        for (rel, _) in files {
            if let Err(e) = dataset.storage().delete(&rel) {
                tracing::warn!(file = %rel, error = %e, "could not remove an unpublished file");
            }
        }
    }
}

fn execute(
    ctx: &Planned<'_>,
    planned: Vec<(String, Vec<SourceObject>)>,
    started: Instant,
    started_at: chrono::DateTime<Utc>,
) -> Result<RunSummary, SluiceError> {
    let Planned { p, opts, run_id, dataset, model_dir, model_id, dim_refs, fingerprints, base_commit } = ctx;
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
    let fail_on_bad_rows = p.source.on_bad_rows == "fail";
    let (written, report) = runtime::source("extract", ExtractSource { items }, budget, opts.cancel.clone())
        .stage("transform", p.runtime.transform_workers, |_| TransformStage {
            format: p.source.format.clone(),
            csv: p.csv.clone(),
            transformer: Transformer::new(&dims, p.steps.clone()),
            fail_on_bad_rows,
        })
        .stage("infer", p.runtime.infer_workers, |_| InferStage { scorer: scorer.clone(), output: p.model.output.clone() })
        .sink(
            "write",
            WriteSink {
                storage: dataset.storage().clone(),
                run_id: run_id.clone(),
                max_rows_per_file: p.output.max_rows_per_file,
                drop_columns: p.output.drop_columns.clone(),
                kv,
                fingerprints: fingerprints.clone(),
                parts: BTreeMap::new(),
            },
        )?;
    log_report(&report);

    // account for every row, and hold bad input to the pipeline's limit
    let mut versions = BTreeMap::new();
    let mut summaries = Vec::new();
    for (part, w) in &written {
        let filtered: u64 = w.filtered.values().sum();
        let quarantined = w.quarantine.as_ref().map_or(0, |q| q.height() as u64);
        let quarantine_file = w.quarantine.as_ref().map(|_| format!("{part}/{run_id}/quarantine.parquet"));
        if w.rows_in != w.rows_out + filtered + quarantined {
            return Err(SluiceError::other(
                format!("partition {part}"),
                format!("row accounting mismatch: {} in != {} out + {filtered} filtered + {quarantined} quarantined", w.rows_in, w.rows_out),
            ));
        }
        if w.rows_in > 0 && quarantined as f64 / w.rows_in as f64 > p.source.max_bad_fraction {
            return Err(SluiceError::TooManyBadRows {
                partition: part.clone(),
                rows: w.rows_in,
                quarantined,
                fraction: 100.0 * quarantined as f64 / w.rows_in as f64,
                limit: 100.0 * p.source.max_bad_fraction,
                first: w.quarantine.as_ref().and_then(first_bad_row).map(|e| e.to_string()).unwrap_or_default(),
            });
        }
        let manifest_rel = format!("{part}/{run_id}/manifest.json");
        let manifest = json!({
            "dataset": dataset.uri(),
            "partition": part,
            "version": run_id,
            "run_id": run_id,
            "fingerprint": fingerprints[part],
            "inputs": w.inputs,
            "dimensions": dim_refs,
            "pipeline": {"name": p.name, "path": p.path.display().to_string(), "sha256": p.sha256},
            "model": {"path": model_dir.display().to_string(), "id": model_id},
            "sluice_version": env!("CARGO_PKG_VERSION"),
            "command": opts.command,
            "rows": {"in": w.rows_in, "out": w.rows_out, "filtered": filtered, "filtered_by": w.filtered, "quarantined": quarantined},
            "schema": w.schema.iter().map(|(n, t)| json!({"name": n, "type": t})).collect::<Vec<_>>(),
            "files": w.files,
            "quarantine_file": quarantine_file,
            "stages": report,
            "started_at": started_at,
            "finished_at": Utc::now(),
        });
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| SluiceError::other("encoding the manifest", e))?;
        dataset.storage().put(&manifest_rel, Bytes::from(body))?;
        versions.insert(
            part.clone(),
            Some(PartitionVersion {
                version: run_id.clone(),
                files: w.files.clone(),
                rows: w.rows_out,
                fingerprint: fingerprints[part].clone(),
                manifest: manifest_rel,
                published_in: 0,
            }),
        );
        summaries.push(PartitionSummary {
            partition: part.clone(),
            version: run_id.clone(),
            rows_in: w.rows_in,
            rows_out: w.rows_out,
            rows_filtered: filtered,
            rows_quarantined: quarantined,
            files: w.files.iter().map(|f| dataset.storage().uri_of(f)).collect(),
            quarantine_file: quarantine_file.map(|f| dataset.storage().uri_of(&f)),
        });
    }
    if opts.cancel.is_cancelled() {
        return Err(SluiceError::Cancelled);
    }
    let commit = dataset.commit(*base_commit, Operation::Publish, &run_id, versions, BTreeMap::new(), &opts.command)?;
    Ok(RunSummary {
        status: "published",
        run_id,
        dataset: dataset.uri().to_string(),
        commit: Some(commit),
        partitions: summaries,
        duration_s: started.elapsed().as_secs_f64(),
        bottleneck: report.bottleneck.clone(),
    })
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
