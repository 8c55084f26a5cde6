//! Executing a plan: the four stages, joined by the runtime's bounded channels.
//!
//! ```text
//! extract (source) -> transform (N workers) -> infer (M workers) -> write (sink)
//!   RawItem            Batch                    Batch (+ score)      files per partition
//! ```
//!
//! Inputs, dimension tables and the model are read at the versions the plan saw; the write
//! stage creates the files through the run's [`Attempt`], which alone knows where they go.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_extract::source::{prefetch, SourceObject};
use sluice_extract::storage::ObjectWriter;
use sluice_extract::{ObjectRef, RawObject, Storage};
use sluice_infer::{choose_device, BatchPolicy, EmbeddingModel, TabularModel};
use sluice_transform::ingest::{first_bad_row, LINE};
use sluice_transform::steps::OBJECT;
use sluice_transform::{
    read_csv, read_emails, read_ndjson, read_parquet, CsvSpec, Dimensions, Ingested, Isolated, TransformError, Transformer,
};

use crate::features::{embedding_column, tabular_batch};
use crate::job::RunOptions;
use crate::pipeline::{ModelKind, OnBadRows, SourceFormat};
use crate::plan::Plan;
use crate::publish::StagedPartition;
use crate::runtime::{self, Budget, Cancel, Emitter, Measure, RunReport, Sink, Source, Stage};
use crate::store::Attempt;
use crate::{Pipeline, SluiceError};

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
    /// Reads in flight at once, and bytes fetched ahead of the transform.
    max_in_flight: usize,
    max_bytes_ahead: u64,
}

impl Source for ExtractSource {
    type Out = RawItem;
    type Error = SluiceError;
    fn run(&mut self, out: &mut Emitter<'_, RawItem, SluiceError>) -> StageResult<()> {
        // every object of every item, read ahead concurrently and taken in order
        let all: Vec<SourceObject> = self.items.iter().flat_map(|(_, objs)| objs.iter().cloned()).collect();
        let mut fetched = prefetch(all, self.max_in_flight, self.max_bytes_ahead);
        for (partition, objs) in &self.items {
            let objects = fetched
                .by_ref()
                .take(objs.len())
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
    format: SourceFormat,
    csv: CsvSpec,
    transformer: Transformer,
    fail_on_bad_rows: bool,
}

impl TransformStage {
    /// Parse an item's objects into one frame (and one quarantine).
    fn ingest(&self, item: &RawItem) -> Result<Ingested, SluiceError> {
        if self.format == SourceFormat::Email {
            let objects: Vec<(&str, &[u8])> = item.objects.iter().map(|o| (o.object.uri.as_str(), &o.bytes[..])).collect();
            return Ok(read_emails(&objects)?);
        }
        let mut parts = Vec::with_capacity(item.objects.len());
        for (i, o) in item.objects.iter().enumerate() {
            let (uri, bytes) = (o.object.uri.as_str(), &o.bytes[..]);
            let format = match self.format {
                SourceFormat::Auto => SourceFormat::of_extension(uri).ok_or_else(|| {
                    SluiceError::BadInput(format!("{uri}: cannot tell the format from the extension (.csv, .ndjson, .jsonl, .parquet)"))
                })?,
                f => f,
            };
            let mut part = match format {
                SourceFormat::Ndjson => read_ndjson(uri, bytes, &self.csv)?,
                SourceFormat::Parquet => read_parquet(uri, bytes, &self.csv)?,
                _ => read_csv(uri, bytes, &self.csv)?,
            };
            // which object each row came from, for a row a step fails on
            let n = part.frame.height();
            part.frame
                .with_column(Column::new_scalar(OBJECT.into(), Scalar::from(i as u32), n))
                .map_err(|e| SluiceError::other("numbering the item's objects", e))?;
            parts.push(part);
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
        let names: Vec<&str> = item.objects.iter().map(|o| o.object.uri.as_str()).collect();
        let t = self.transformer.apply(ing.frame, &names).map_err(|e| (part.clone(), e.into()))?;
        let quarantine = with_isolated(ing.quarantine, &t.isolated).map_err(|e| (part, e))?;
        let inputs = item.objects.iter().map(|o| InputRecord { object: o.object.clone(), sha256: o.sha256.clone() }).collect();
        Ok(Batch {
            partition: item.partition,
            inputs,
            frame: t.frame.drop_many([LINE, OBJECT]),
            quarantine,
            rows_read: ing.rows_read,
            filtered: t.filtered,
        })
    }
}

/// The quarantine plus the rows a step failed on (rule `step`).
fn with_isolated(quarantine: DataFrame, isolated: &[Isolated]) -> Result<DataFrame, SluiceError> {
    if isolated.is_empty() {
        return Ok(quarantine);
    }
    let rows = df!(
        "file" => isolated.iter().map(|r| r.file.clone()).collect::<Vec<_>>(),
        "line" => isolated.iter().map(|r| r.line.unwrap_or(0)).collect::<Vec<_>>(),
        "column" => isolated.iter().map(|r| r.column.clone()).collect::<Vec<_>>(),
        "value" => isolated.iter().map(|r| r.value.clone()).collect::<Vec<_>>(),
        "rule" => vec!["step"; isolated.len()],
        "reason" => isolated.iter().map(|r| format!("step '{}': {}", r.step, r.reason)).collect::<Vec<_>>(),
    )
    .map_err(|e| SluiceError::other("quarantining rows a step failed on", e))?;
    quarantine.vstack(&rows).map_err(|e| SluiceError::other("quarantining rows a step failed on", e))
}

/// The loaded model a run scores with; shared by the infer workers.
#[derive(Clone)]
enum Scorer {
    Tabular { model: TabularModel, batch_rows: usize },
    Embedding { model: Arc<EmbeddingModel>, text_column: String, policy: BatchPolicy },
}

impl Scorer {
    /// Load the model; it must be the one the plan fingerprinted (`model_id`).
    fn load(p: &Pipeline, dir: &Path, model_id: &str) -> Result<Self, SluiceError> {
        let device = choose_device(true)?;
        let (scorer, loaded_id) = match p.model.kind {
            ModelKind::SentenceEmbedding => {
                let model = EmbeddingModel::load(dir, &device)?;
                let id = model.id().to_string();
                let policy = BatchPolicy { max_tokens: p.model.max_tokens, ..Default::default() };
                (Scorer::Embedding { model: Arc::new(model), text_column: p.model.text_column.clone().unwrap_or_default(), policy }, id)
            }
            ModelKind::TabularMlp => {
                let model = TabularModel::load(dir, &device)?;
                let inputs: Vec<&str> = model.config().inputs.iter().map(|i| i.name.as_str()).collect();
                if inputs != p.model.features.iter().map(String::as_str).collect::<Vec<_>>() {
                    return Err(SluiceError::Usage(format!(
                        "model {} reads {inputs:?}, but the pipeline's model.features are {:?}",
                        dir.display(),
                        p.model.features
                    )));
                }
                let id = model.id().to_string();
                (Scorer::Tabular { model, batch_rows: p.model.batch_rows }, id)
            }
        };
        if loaded_id != model_id {
            return Err(SluiceError::Changed {
                uri: dir.display().to_string(),
                detail: format!("model id {loaded_id} when loaded, {model_id} when planned"),
            });
        }
        Ok(scorer)
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
    pub quarantine_file: Option<String>,
    pub rows_in: u64,
    pub rows_out: u64,
    pub filtered: BTreeMap<String, u64>,
    pub quarantine: Option<DataFrame>,
    pub inputs: Vec<InputRecord>,
    pub schema: Vec<(String, String)>,
}

struct WriteSink {
    attempt: Arc<Attempt>,
    progress: Option<indicatif::ProgressBar>,
    max_rows_per_file: usize,
    drop_columns: Vec<String>,
    /// Key-value metadata common to every file; per-partition facts are added.
    kv: Vec<(String, String)>,
    fingerprints: BTreeMap<String, String>,
    parts: BTreeMap<String, Written>,
}

fn write_parquet<W: std::io::Write>(w: W, df: &mut DataFrame, kv: Vec<(String, String)>) -> Result<(), PolarsError> {
    ParquetWriter::new(w)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(kv)))
        .finish(df)?;
    Ok(())
}

fn parquet_bytes(df: &mut DataFrame, kv: Vec<(String, String)>) -> Result<Vec<u8>, PolarsError> {
    let mut buf = Vec::new();
    write_parquet(&mut buf, df, kv)?;
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
            let write = |out: &mut ObjectWriter| write_parquet(out, &mut chunk, kv.clone()).map_err(|e| err(e).1);
            let rel = self.attempt.write_data(&b.partition, w.files.len(), write).map_err(|e| (part.clone(), e))?;
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
                let at = Some(partition.clone());
                let bytes = parquet_bytes(q, self.kv.clone()).map_err(|e| (at.clone(), SluiceError::other("writing the quarantine", e)))?;
                w.quarantine_file = Some(self.attempt.put_quarantine(partition, Bytes::from(bytes)).map_err(|e| (at, e))?);
            }
        }
        Ok(self.parts)
    }
}

/// Read the dimension tables at the versions the plan saw, and load them.
fn load_dimensions(p: &Pipeline, plan: &Plan) -> Result<Dimensions, SluiceError> {
    let mut bytes: BTreeMap<&str, Bytes> = BTreeMap::new();
    for r in &plan.dims {
        bytes.insert(&r.uri, Storage::open(&r.uri, None)?.get_version("", r)?);
    }
    Ok(Dimensions::load(&p.dimensions, |file| {
        bytes.get(file).map(|b| b.to_vec()).ok_or_else(|| TransformError::BadRow {
            file: file.to_string(),
            line: 0,
            reason: "not among the dimension objects the plan listed".into(),
        })
    })?)
}

/// Run the stages over `items`' objects, writing through `attempt`; what each partition
/// got, and the run report.
pub(crate) fn execute(
    p: &Pipeline,
    opts: &RunOptions,
    plan: &Plan,
    attempt: &Arc<Attempt>,
    planned: Vec<(String, Vec<SourceObject>)>,
) -> Result<(BTreeMap<String, StagedPartition>, serde_json::Value), SluiceError> {
    // load what every worker shares, once
    let dims = load_dimensions(p, plan)?;
    let scorer = Scorer::load(p, &plan.model_dir, &plan.model_id)?;
    let items: Vec<(String, Vec<SourceObject>)> = planned
        .iter()
        .flat_map(|(part, objs)| objs.chunks(p.source.objects_per_item).map(move |c| (part.clone(), c.to_vec())))
        .collect();
    let largest = items.iter().map(|(_, o)| o.iter().map(|o| o.meta.size).sum::<u64>()).max().unwrap_or(1) as usize;
    // a parsed, joined frame is a few times its CSV; size channels for the largest item
    let budget = Budget { channel_bytes: p.runtime.channel_mib << 20, item_bytes: largest.saturating_mul(4) };
    let kv = vec![
        ("sluice.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("sluice.run_id".to_string(), plan.run_id.clone()),
        ("sluice.attempt".to_string(), attempt.nonce().to_string()),
        ("sluice.pipeline".to_string(), p.name.clone()),
        ("sluice.pipeline_sha256".to_string(), p.sha256.clone()),
        ("sluice.model_id".to_string(), plan.model_id.clone()),
    ];
    let progress = opts.progress.then(|| progress_bar(items.len()));
    // reads ahead: up to 8 at once, and at most half the channel budget fetched ahead
    let extract = ExtractSource { items, max_in_flight: 8, max_bytes_ahead: (budget.channel_bytes / 2) as u64 };
    let (written, report) = runtime::source("extract", extract, budget, opts.cancel.clone())
        .stage("transform", p.runtime.transform_workers, |_| TransformStage {
            format: p.source.format,
            csv: p.csv.clone(),
            transformer: match p.source.on_bad_rows {
                OnBadRows::Fail => Transformer::new(&dims, p.steps.clone()),
                OnBadRows::Quarantine => Transformer::new(&dims, p.steps.clone()).isolating(p.source.max_bad_fraction),
            },
            fail_on_bad_rows: p.source.on_bad_rows == OnBadRows::Fail,
        })
        .stage("infer", p.runtime.infer_workers, |_| InferStage {
            scorer: scorer.clone(),
            output: p.model.output.clone(),
            cancel: opts.cancel.clone(),
        })
        .sink(
            "write",
            WriteSink {
                attempt: attempt.clone(),
                progress,
                max_rows_per_file: p.output.max_rows_per_file,
                drop_columns: p.output.drop_columns.clone(),
                kv,
                fingerprints: plan.fingerprints.clone(),
                parts: BTreeMap::new(),
            },
        )?;
    log_report(&report);
    let staged = written.into_iter().map(|(part, w)| (part.clone(), StagedPartition::new(plan.fingerprints[&part].clone(), w))).collect();
    let report = serde_json::to_value(&report).map_err(|e| SluiceError::other("encoding the run report", e))?;
    Ok((staged, report))
}

fn progress_bar(items: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(items as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} items {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
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
