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
use serde_json::json;
use sluice_extract::par::map_ordered;
use sluice_extract::source::{prefetch, SourceObject};
use sluice_extract::Storage;
use sluice_infer::{choose_device, BatchPolicy, EmbeddingModel, Kernels, Precision, TabularModel};
use sluice_transform::ingest::first_bad_row;

use super::audit;
use super::dimensions::PendingDimensions;
use super::features::{embedding_column, tabular_batch, vocabularies, Vocabulary};
use super::parquet_out::parquet_bytes;
use super::pending::Pending;
use super::plan::Plan;
use super::transform_stage::{Batch, PartRows, RawItem, RawPart, Steps, TransformStage};
use crate::pipeline::{Codec, ModelKind, OnBadRows, SourceFormat};
use crate::runtime::{self, Budget, Cancel, Emitter, Measure, RunReport, Sink, Source, Stage};
use crate::store::{self, Attempt, PartitionVersion};
use crate::types::{CheckResult, CheckSpec, FileStats, InputRecord, Partition, RunOptions, StagedPartition};
use crate::error::SluiceError;
use crate::pipeline::Pipeline;

type StageResult<T> = Result<T, (Option<String>, SluiceError)>;

struct ExtractSource {
    /// Items to emit, each one or more (partition, group of its objects).
    items: Vec<Vec<(Partition, Vec<SourceObject>)>>,
    /// Reads in flight at once, and bytes fetched ahead of the transform.
    max_in_flight: usize,
    max_bytes_ahead: u64,
}

impl Source for ExtractSource {
    type Out = RawItem;
    type Error = SluiceError;
    fn run(&mut self, out: &mut Emitter<'_, RawItem, SluiceError>) -> StageResult<()> {
        // every object of every item, read ahead concurrently and taken in order
        let all: Vec<SourceObject> = self.items.iter().flatten().flat_map(|(_, objs)| objs.iter().cloned()).collect();
        let mut fetched = prefetch(all, self.max_in_flight, self.max_bytes_ahead);
        for item in &self.items {
            let mut parts = Vec::with_capacity(item.len());
            for (partition, objs) in item {
                let objects = fetched
                    .by_ref()
                    .take(objs.len())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| (Some(partition.to_string()), e.into()))?;
                parts.push(RawPart { partition: partition.clone(), objects });
            }
            if out.emit(RawItem { parts }).is_err() {
                return Ok(()); // cancelled
            }
        }
        Ok(())
    }
}

/// Group consecutive items into blocks of up to `max_bytes` of input (an item larger than
/// that is a block of its own); `max_bytes` 0: one item per block.
fn blocks(items: Vec<(Partition, Vec<SourceObject>)>, max_bytes: u64) -> Vec<Vec<(Partition, Vec<SourceObject>)>> {
    let mut out: Vec<Vec<(Partition, Vec<SourceObject>)>> = Vec::new();
    let mut size = 0;
    for item in items {
        let bytes: u64 = item.1.iter().map(|o| o.meta.size).sum();
        match out.last_mut() {
            Some(block) if size + bytes <= max_bytes => block.push(item),
            _ => {
                out.push(vec![item]);
                size = 0;
            }
        }
        size += bytes;
    }
    out
}

/// The loaded model a run scores with; shared by the infer workers.
#[derive(Clone)]
enum Scorer {
    Tabular { model: Box<TabularModel>, batch_rows: usize, vocabularies: Arc<Vec<Option<Vocabulary>>> },
    Embedding { model: Arc<EmbeddingModel>, text_column: String, policy: BatchPolicy },
}

impl Scorer {
    /// Load the model; it must be the one the plan fingerprinted (`model_id`).
    fn load(kind: &ModelKind, dir: &Path, model_id: &str) -> Result<Self, SluiceError> {
        let device = choose_device(true)?;
        let (scorer, loaded_id) = match kind {
            ModelKind::SentenceEmbedding { text_column, max_tokens, precision } => {
                let model = match precision {
                    Precision::F32 => EmbeddingModel::load(dir, &device)?,
                    p => EmbeddingModel::load_in(dir, &device, Kernels::Fused, *p)?,
                };
                let id = model.id().to_string();
                let policy = BatchPolicy { max_tokens: *max_tokens, ..Default::default() };
                (Scorer::Embedding { model: Arc::new(model), text_column: text_column.clone(), policy }, id)
            }
            ModelKind::TabularMlp { features, batch_rows } => {
                let model = TabularModel::load(dir, &device)?;
                let inputs: Vec<&str> = model.config().inputs.iter().map(|i| i.name.as_str()).collect();
                if inputs != features.iter().map(String::as_str).collect::<Vec<_>>() {
                    return Err(SluiceError::Usage(format!(
                        "model {} reads {inputs:?}, but the pipeline's model.features are {features:?}",
                        dir.display()
                    )));
                }
                let id = model.id().to_string();
                let vocabularies = Arc::new(vocabularies(&model.config().inputs));
                (Scorer::Tabular { model: Box::new(model), batch_rows: *batch_rows, vocabularies }, id)
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
            Scorer::Tabular { model, batch_rows, vocabularies } => {
                let mut scores = Vec::with_capacity(frame.height());
                let mut offset = 0;
                while offset < frame.height() {
                    let chunk = frame.slice(offset as i64, *batch_rows);
                    scores.extend(model.predict(&tabular_batch(&chunk, &model.config().inputs, vocabularies)?)?);
                    offset += batch_rows;
                }
                Ok(Column::new(output.into(), scores))
            }
            Scorer::Embedding { model, text_column, policy } => embedding_column(model, frame, text_column, output, policy, cancel),
        }
    }
}

struct InferStage {
    scorer: Pending<Scorer>,
    output: String,
    cancel: Cancel,
}

impl Stage for InferStage {
    type In = Batch;
    type Out = Batch;
    type Error = SluiceError;
    fn process(&mut self, mut b: Batch) -> StageResult<Batch> {
        let scorer = self.scorer.wait().map_err(|e| (None, e))?;
        for seg in &mut b.segments {
            let part = seg.parts.first().map(|p| p.partition.clone());
            let column = scorer.score(&seg.frame, &self.output, &self.cancel).map_err(|e| (part.clone(), e))?;
            seg.frame.with_column(column).map_err(|e| (part, SluiceError::other("adding the model's output", e)))?;
        }
        Ok(b)
    }
}

/// One part's rows encoded as Parquet files, with what it accounts for.
struct EncodedPart {
    rows: PartRows,
    /// At least one file (an all-filtered part has an empty one, for its schema).
    files: Vec<Bytes>,
    /// One per file.
    stats: Vec<FileStats>,
    schema: Vec<(String, String)>,
    table_schema: serde_json::Value,
}

struct Encoded(Vec<EncodedPart>);

impl Measure for Encoded {
    fn rows(&self) -> usize {
        self.0.iter().map(|p| p.rows.rows).sum()
    }
    fn bytes(&self) -> usize {
        self.0.iter().flat_map(|p| &p.files).map(Bytes::len).sum()
    }
}

/// Encodes each part's rows as Parquet (several workers: the run's heaviest CPU work after
/// the transform); the write sink only stores the bytes.
struct EncodeStage {
    max_rows_per_file: usize,
    codec: Codec,
    drop_columns: Vec<String>,
    /// Key-value metadata common to every file; per-partition facts are added.
    kv: Arc<Vec<(String, String)>>,
    fingerprints: Arc<BTreeMap<String, String>>,
}

impl Stage for EncodeStage {
    type In = Batch;
    type Out = Encoded;
    type Error = SluiceError;
    fn process(&mut self, b: Batch) -> StageResult<Encoded> {
        let mut out = Vec::new();
        for seg in b.segments {
            let frame = seg.frame.drop_many(self.drop_columns.iter().map(String::as_str));
            let schema: Vec<(String, String)> = frame.schema().iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
            let table_schema = store::stats::table_schema(frame.schema()).map_err(|e| (None, e))?;
            let mut offset = 0;
            let jobs: Vec<(DataFrame, &PartRows)> = seg
                .parts
                .iter()
                .map(|rows| {
                    offset += rows.rows;
                    (frame.slice((offset - rows.rows) as i64, rows.rows), rows)
                })
                .collect();
            // a block's partitions on a thread per core: the last block of a run is encoded
            // while the other stages have nothing left to do; one partition on this thread
            // (whose zstd context lives on)
            let files = match jobs.as_slice() {
                [(mine, rows)] => vec![self.encode_part(mine, rows)],
                _ => map_ordered(&jobs, std::thread::available_parallelism().map_or(1, |n| n.get()), |(mine, rows)| self.encode_part(mine, rows)),
            };
            for (rows, files) in seg.parts.into_iter().zip(files) {
                let (files, stats) = files.map_err(|e| (Some(rows.partition.clone()), e))?;
                out.push(EncodedPart { rows, files, stats, schema: schema.clone(), table_schema: table_schema.clone() });
            }
        }
        Ok(Encoded(out))
    }
}

impl EncodeStage {
    /// One part's rows (`mine`) as Parquet files of at most `max_rows_per_file` rows, with
    /// their statistics; at least one file.
    fn encode_part(&self, mine: &DataFrame, rows: &PartRows) -> Result<(Vec<Bytes>, Vec<FileStats>), SluiceError> {
        let err = |e: PolarsError| SluiceError::other(format!("writing partition {}", rows.partition), e);
        let mut kv = (*self.kv).clone();
        kv.push(("sluice.partition".into(), rows.partition.clone()));
        kv.push(("sluice.fingerprint".into(), self.fingerprints.get(&rows.partition).cloned().unwrap_or_default()));
        let inputs: Vec<_> = rows.inputs.iter().map(|i| json!({"uri": i.object.uri, "sha256": i.sha256})).collect();
        kv.push(("sluice.inputs".into(), serde_json::Value::from(inputs).to_string()));
        let (mut files, mut stats) = (Vec::new(), Vec::new());
        let key = rows.partition.split_once('=').map_or("", |(k, _)| k).to_string();
        let mut at = 0;
        while at < mine.height() || files.is_empty() {
            let chunk = mine.slice(at as i64, self.max_rows_per_file);
            let bytes = parquet_bytes(&chunk, kv.clone(), self.codec).map_err(err)?;
            stats.push(store::stats::file_stats(&chunk, &bytes, &key));
            files.push(Bytes::from(bytes));
            at += self.max_rows_per_file;
        }
        Ok((files, stats))
    }
}

/// What the write stage produced for one partition.
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<String>,
    pub file_stats: Vec<FileStats>,
    pub table_schema: serde_json::Value,
    pub quarantine_file: Option<String>,
    pub rows_in: u64,
    pub rows_out: u64,
    pub filtered: BTreeMap<String, u64>,
    pub quarantine: Option<DataFrame>,
    pub inputs: Vec<InputRecord>,
    pub schema: Vec<(String, String)>,
    /// The checks, once the partition is complete.
    pub checks: Option<Vec<CheckResult>>,
}

struct WriteSink {
    attempt: Arc<Attempt>,
    progress: Option<indicatif::ProgressBar>,
    /// Key-value metadata of the quarantine files.
    kv: Vec<(String, String)>,
    /// Their pages' codec, the dataset's.
    codec: Codec,
    parts: BTreeMap<String, Written>,
    audit: Audit,
}

/// The checks of each partition, measured in the write stage on its files' bytes as soon as
/// its last file is encoded (a partition's items arrive one after another, in plan order).
/// A partition whose files outgrow [`AUDIT_KEEP_BYTES`] is measured at publication instead,
/// read back from the store, so that memory does not follow a partition's size.
struct Audit {
    specs: Arc<Vec<CheckSpec>>,
    storage: Storage,
    /// The partitions' current versions, for the checks that compare.
    current: Arc<BTreeMap<String, PartitionVersion>>,
    /// The partition being written and its files' bytes so far (`None`: too many to keep).
    open: Option<(String, Option<Vec<Bytes>>)>,
}

/// Most bytes of one partition's encoded files the write stage keeps for its checks.
const AUDIT_KEEP_BYTES: usize = 64 << 20;

impl Audit {
    /// `partition` is written next: the partition written until now, if another, is complete.
    fn next(&mut self, partition: &str) -> Option<(String, Option<Vec<Bytes>>)> {
        let done = self.open.take_if(|(p, _)| p != partition);
        self.open.get_or_insert_with(|| (partition.to_string(), Some(Vec::new())));
        done
    }

    /// A file of the open partition (kept only for checks, and up to [`AUDIT_KEEP_BYTES`]).
    fn keep(&mut self, bytes: Bytes) {
        let Some((_, Some(files))) = self.open.as_mut().filter(|_| !self.specs.is_empty()) else { return };
        files.push(bytes);
        if files.iter().map(Bytes::len).sum::<usize>() > AUDIT_KEEP_BYTES {
            if let Some((_, kept)) = self.open.as_mut() {
                *kept = None; // measured at publication, read back
            }
        }
    }

    /// Measure complete partition `partition` from its files' bytes, if it was written and
    /// they were kept.
    fn measure(&self, partition: &str, files: Option<Vec<Bytes>>, parts: &mut BTreeMap<String, Written>) -> Result<(), SluiceError> {
        let (Some(w), Some(files)) = (parts.get_mut(partition), files) else { return Ok(()) };
        let names: Vec<String> = w.files.iter().map(|f| self.storage.uri_of(f)).collect();
        let current = self.current.get(partition);
        w.checks = Some(audit::run_on_files(&self.specs, &self.storage, &files, &names, &w.schema, current)?);
        Ok(())
    }
}

impl Sink for WriteSink {
    type In = Encoded;
    type Output = BTreeMap<String, Written>;
    type Error = SluiceError;

    fn consume(&mut self, e: Encoded) -> StageResult<()> {
        for p in e.0 {
            let rows = p.rows;
            let part = Some(rows.partition.clone());
            if let Some((done, files)) = self.audit.next(&rows.partition) {
                self.audit.measure(&done, files, &mut self.parts).map_err(|e| (Some(done), e))?;
            }
            let w = self.parts.entry(rows.partition.clone()).or_default();
            if w.schema.is_empty() {
                w.schema = p.schema;
                w.table_schema = p.table_schema;
            }
            for (bytes, stats) in p.files.into_iter().zip(p.stats) {
                // an all-filtered part's empty file only where the partition has no file yet
                if rows.rows == 0 && !w.files.is_empty() {
                    continue;
                }
                let rel = self.attempt.put_data(&rows.partition, w.files.len(), bytes.clone()).map_err(|e| (part.clone(), e))?;
                self.audit.keep(bytes);
                w.files.push(rel);
                w.file_stats.push(stats);
            }
            w.rows_in += rows.rows_read as u64;
            w.rows_out += rows.rows as u64;
            for (name, n) in rows.filtered {
                *w.filtered.entry(name).or_default() += n as u64;
            }
            if rows.quarantine.height() > 0 {
                w.quarantine = Some(match w.quarantine.take() {
                    Some(q) => q.vstack(&rows.quarantine).map_err(|e| (part.clone(), SluiceError::other("collecting the quarantine", e)))?,
                    None => rows.quarantine,
                });
            }
            w.inputs.extend(rows.inputs);
            if let Some(bar) = &self.progress {
                bar.inc(1);
                bar.set_message(rows.partition);
            }
        }
        Ok(())
    }

    fn finish(mut self) -> StageResult<Self::Output> {
        if let Some((last, files)) = self.audit.open.take() {
            self.audit.measure(&last, files, &mut self.parts).map_err(|e| (Some(last), e))?;
        }
        if let Some(bar) = &self.progress {
            bar.finish_and_clear();
        }
        for (partition, w) in self.parts.iter_mut() {
            if let Some(q) = w.quarantine.as_mut() {
                let at = Some(partition.clone());
                let bytes = parquet_bytes(q, self.kv.clone(), self.codec).map_err(|e| (at.clone(), SluiceError::other("writing the quarantine", e)))?;
                w.quarantine_file = Some(self.attempt.put_quarantine(partition, Bytes::from(bytes)).map_err(|e| (at, e))?);
            }
        }
        Ok(self.parts)
    }
}

/// Run the stages over `items`' objects, writing through `attempt`; what each partition
/// got, and the run report. `dims`: the plan's dimension tables, perhaps still loading
/// (the transform stage waits for them before its steps; their error is the run's).
pub(crate) fn execute(
    p: &Pipeline,
    opts: &RunOptions,
    plan: &Plan,
    attempt: &Arc<Attempt>,
    planned: Vec<(Partition, Vec<SourceObject>)>,
    dims: PendingDimensions,
) -> Result<(BTreeMap<String, StagedPartition>, RunReport), SluiceError> {
    // what every worker shares: the dimension tables (loading beside the log) and the model,
    // loading while the first block is read and transformed (the infer stage waits for it)
    let (kind, dir, id) = (p.model.kind.clone(), plan.model_dir.clone(), plan.model_id.clone());
    let scorer = Pending::spawn("sluice-model", "the model", move || Scorer::load(&kind, &dir, &id));
    let items: Vec<(Partition, Vec<SourceObject>)> = planned
        .iter()
        .flat_map(|(part, objs)| objs.chunks(p.source.objects_per_item).map(move |c| (part.clone(), c.to_vec())))
        .collect();
    let parts = items.len();
    // small partitions together through the transform (emails: one at a time)
    let batch_bytes = if p.source.format == SourceFormat::Email { 0 } else { (p.runtime.batch_kib as u64) << 10 };
    let items = blocks(items, batch_bytes);
    // no more workers than blocks: a daily run's one block needs no dispatch or reorder threads
    let blocks_n = items.len();
    let workers = |configured: usize| configured.min(blocks_n).max(1);
    let largest = items.iter().map(|b| b.iter().flat_map(|(_, o)| o).map(|o| o.meta.size).sum::<u64>()).max().unwrap_or(1) as usize;
    // a parsed, joined frame is a few times its CSV; size channels for the largest item
    // the extract stage reads ahead itself (below): one raw item waits in its channel
    // blocks in flight: one per transform and infer worker, and one being encoded or written.
    // More only wait in channels: when a later stage fell behind for a moment, the transform
    // went on and the blocks piled up (30x year on 2 cores: peaks of 133-146 MiB against
    // 125-126 with this bound)
    let in_flight = workers(p.runtime.transform_workers) + workers(p.runtime.infer_workers) + 1;
    let budget = Budget { channel_bytes: p.runtime.channel_mib << 20, item_bytes: largest.saturating_mul(4), source_items: 1, in_flight };
    let kv = vec![
        ("sluice.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("sluice.run_id".to_string(), plan.run_id.clone()),
        ("sluice.attempt".to_string(), attempt.nonce().to_string()),
        ("sluice.pipeline".to_string(), p.name.clone()),
        ("sluice.pipeline_sha256".to_string(), p.sha256.clone()),
        ("sluice.model_id".to_string(), plan.model_id.clone()),
    ];
    let progress = opts.progress.then(|| progress_bar(parts));
    let audit = Audit {
        specs: Arc::new(p.checks.clone()),
        storage: plan.dataset.storage().clone(),
        current: Arc::new(plan.snapshot.partitions.clone()),
        open: None,
    };
    // reads ahead: up to 8 at once, and two items' worth of bytes (at least 8 MiB, to hide a
    // store's latency; at most half the channel budget) fetched but not yet taken
    let ahead = (2 * largest).max(8 << 20).min(budget.channel_bytes / 2) as u64;
    let extract = ExtractSource { items, max_in_flight: 8, max_bytes_ahead: ahead };
    let flow = runtime::source("extract", extract, budget, opts.cancel.clone())
        .stage("transform", workers(p.runtime.transform_workers), |_| TransformStage {
            format: p.source.format,
            csv: p.csv.clone(),
            steps: Steps::new(dims.clone(), p.steps.clone(), (p.source.on_bad_rows == OnBadRows::Quarantine).then_some(p.source.max_bad_fraction)),
            fail_on_bad_rows: p.source.on_bad_rows == OnBadRows::Fail,
        })
        .stage("infer", workers(p.runtime.infer_workers), |_| InferStage {
            scorer: scorer.clone(),
            output: p.model.output.clone(),
            cancel: opts.cancel.clone(),
        })
        .stage("encode", workers(p.runtime.write_workers), |_| EncodeStage {
            max_rows_per_file: p.output.max_rows_per_file,
            codec: p.output.compression,
            drop_columns: p.output.drop_columns.clone(),
            kv: Arc::new(kv.clone()),
            fingerprints: Arc::new(plan.fingerprints.clone()),
        })
        .sink("write", WriteSink { attempt: attempt.clone(), progress, kv: kv.clone(), codec: p.output.compression, parts: BTreeMap::new(), audit });
    // the model's and the tables' errors are the run's, whatever the stages made of them
    if let Some(e) = scorer.take_error().or_else(|| dims.take_error()) {
        return Err(e);
    }
    let (written, report) = flow?;
    log_report(&report);
    let staged = written.into_iter().map(|(part, w)| (part.clone(), staged(plan.fingerprints[&part].clone(), w))).collect();
    Ok((staged, report))
}

fn progress_bar(items: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(items as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} {msg}")
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

/// What a partition's writes stage for its publication.
fn staged(fingerprint: String, w: Written) -> StagedPartition {
    StagedPartition {
        fingerprint,
        quarantined: w.quarantine.as_ref().map_or(0, |q| q.height() as u64),
        first_bad_row: w.quarantine.as_ref().and_then(first_bad_row).map(|e| e.to_string()),
        quarantine_files: w.quarantine_file.into_iter().collect(),
        files: w.files,
        file_stats: w.file_stats,
        table_schema: w.table_schema,
        rows_in: w.rows_in,
        rows_out: w.rows_out,
        filtered_by: w.filtered,
        inputs: w.inputs,
        schema: w.schema,
        checks: w.checks,
    }
}
