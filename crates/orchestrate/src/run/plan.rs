//! Planning a run: which partitions, which input objects (at which version), which model and
//! dimension objects, each partition's fingerprint, and the state of the dataset that every
//! decision of the run is made on. Nothing is read beyond listings and heads, nothing is
//! written.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_extract::source::SourceObject;
use sluice_extract::{ObjectRef, SourceSpec, Storage};
use sluice_transform::DimensionSpec;

use crate::report::summary::{PlannedObject, PlannedPartition, RunStatus, RunSummary};
use crate::store::{Dataset, Head, Snapshot};
use crate::types::{Partition, RunOptions};
use crate::error::SluiceError;
use crate::pipeline::Pipeline;

pub(crate) struct Plan {
    pub run_id: String,
    pub dataset: Dataset,
    /// Partitions with input, in the order asked, each with its objects sorted by URI.
    pub partitions: Vec<(Partition, Vec<SourceObject>)>,
    /// Partitions asked for that have no input.
    pub skipped: Vec<String>,
    /// The model as named (a local folder or an object store URI), for lineage.
    pub model_uri: String,
    /// Where it is loaded from (the cache entry for a model in object storage).
    pub model_dir: PathBuf,
    pub model_id: String,
    /// The dimension tables' objects, as seen now; they are read at these versions.
    pub dims: Vec<ObjectRef>,
    pub fingerprints: BTreeMap<String, String>,
    /// The commit log as read when planning, and its state.
    /// The log as read when planning (the last checkpoint and the commits after it).
    pub head: Head,
    pub snapshot: Snapshot,
}

impl Plan {
    /// The commit the run's decisions are made on.
    pub fn base(&self) -> u64 {
        self.snapshot.commit
    }

    /// The current version of `part` was made from the same inputs, pipeline and model.
    pub fn is_current(&self, part: &Partition) -> bool {
        let part = part.to_string();
        self.snapshot.partitions.get(&part).is_some_and(|v| Some(&v.fingerprint) == self.fingerprints.get(&part))
    }

    pub fn all_current(&self) -> bool {
        self.partitions.iter().all(|(part, _)| self.is_current(part))
    }

    pub fn partition_names(&self) -> Vec<String> {
        self.partitions.iter().map(|(p, _)| p.to_string()).collect()
    }

    /// The `--dry-run` summary: partitions, objects, whether each is up to date, where its
    /// files would go.
    pub fn dry_run(&self, started: Instant) -> RunSummary {
        let plan = self
            .partitions
            .iter()
            .map(|(part, objs)| PlannedPartition {
                partition: part.to_string(),
                up_to_date: self.is_current(part),
                objects: objs.iter().map(|o| PlannedObject { uri: o.meta.uri.clone(), size: o.meta.size }).collect(),
                bytes: objs.iter().map(|o| o.meta.size).sum(),
                output: self.dataset.partition_dir_uri(&part.to_string()),
            })
            .collect();
        let mut summary = RunSummary::new(RunStatus::DryRun, &self.run_id, &self.dataset, started).with_commit(self.base());
        summary.plan = Some(plan);
        summary.skipped = self.skipped.clone();
        summary
    }
}

/// The partitions a run asks for: the CLI's, or `<key>=all` for a source without a
/// partition placeholder.
/// Each is parsed (a partition names folders) and must use the pipeline's key; repeats
/// are dropped.
fn requested_partitions(p: &Pipeline, opts: &RunOptions) -> Result<Vec<Partition>, SluiceError> {
    let key = &p.partition.key;
    let templated = sluice_extract::source::template_vars(opts.input.as_deref().unwrap_or(&p.source.uri)).contains(key);
    let asked = match (opts.partitions.is_empty(), templated) {
        (false, _) => opts.partitions.clone(),
        (true, false) => vec![format!("{key}=all")],
        (true, true) => return Err(SluiceError::Usage(format!("give a partition: --date D, --from D --to D or --partition {key}=VALUE"))),
    };
    let mut wanted: Vec<Partition> = Vec::new();
    for text in asked {
        let part = Partition::parse(&text)?;
        if part.key() != key {
            return Err(SluiceError::Usage(format!("partition '{part}': this pipeline is partitioned by '{key}'")));
        }
        if !wanted.contains(&part) {
            wanted.push(part);
        }
    }
    Ok(wanted)
}

/// Partitions, each with its input objects.
type Inputs = Vec<(Partition, Vec<SourceObject>)>;

/// List each partition's input objects; partitions without input are skipped (the second
/// list), unless only one was asked for (then it is exit 99).
fn list_inputs(p: &Pipeline, opts: &RunOptions) -> Result<(Inputs, Vec<String>), SluiceError> {
    let wanted = requested_partitions(p, opts)?;
    let source = match &opts.input {
        Some(uri) => SourceSpec::new(uri.clone(), None),
        None => SourceSpec::new(p.source.uri.clone(), Some(p.base_dir())),
    };
    let asked = wanted.len();
    let vars: Vec<Vec<(String, String)>> = wanted.iter().map(Partition::vars).collect();
    // one listing per partition, 16 at once: on a bucket a backfill's listings are latency
    let listed = source.list_many(&vars, 16);
    let mut planned: Inputs = Vec::new();
    let mut skipped = Vec::new();
    for ((part, vars), objects) in wanted.into_iter().zip(&vars).zip(listed) {
        let mut objects = objects?;
        if objects.is_empty() {
            let uri = source.uri_for(vars)?;
            if asked == 1 {
                return Err(SluiceError::NoInput { partition: part.to_string(), uri });
            }
            tracing::warn!(partition = %part, uri, "no input; skipped");
            skipped.push(part.to_string());
            continue;
        }
        objects.sort_by(|a, b| a.meta.uri.cmp(&b.meta.uri));
        tracing::info!(partition = %part, objects = objects.len(), bytes = objects.iter().map(|o| o.meta.size).sum::<u64>(), "planned");
        planned.push((part.clone(), objects));
    }
    if planned.is_empty() {
        return Err(SluiceError::NoInput {
            partition: format!("any of the {asked} partitions asked for"),
            uri: source.template.clone(),
        });
    }
    Ok((planned, skipped))
}

/// Open the run's dataset: `--output`, or the pipeline's.
pub fn open_dataset(p: &Pipeline, output: Option<&str>) -> Result<Dataset, SluiceError> {
    Dataset::open(match output {
        Some(uri) => Storage::open(uri, None)?,
        None => Storage::open(&p.output.uri, Some(p.base_dir()))?,
    })
}

/// Plan a run on `log`, the dataset's commit log as just read.
/// `dims`: the dimension tables' objects ([`dimension_refs`]).
pub(crate) fn plan(p: &Pipeline, opts: &RunOptions, run_id: &str, dataset: Dataset, head: Head, dims: Vec<ObjectRef>) -> Result<Plan, SluiceError> {
    let (partitions, skipped) = list_inputs(p, opts)?;
    let model_uri = opts.model.clone().unwrap_or_else(|| p.model.uri.clone());
    let model_dir = super::models::local_dir(&model_uri)?;
    // the precision is part of the id: a bf16 version is never taken for the f32 one
    let model_id = p.model.kind.precision().model_id(&sluice_infer::model_id(&model_dir)?);
    let fingerprints = partitions
        .iter()
        .map(|(part, objs)| {
            let refs: Vec<&ObjectRef> = objs.iter().map(|o| &o.meta).collect();
            (part.to_string(), fingerprint(&p.sha256, &model_id, &part.to_string(), &refs, &dims))
        })
        .collect();
    let snapshot = head.snapshot();
    Ok(Plan {
        run_id: run_id.to_string(),
        dataset,
        partitions,
        skipped,
        model_uri,
        model_dir,
        model_id,
        dims,
        fingerprints,
        head,
        snapshot,
    })
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

/// The dimension tables' objects as seen now, for the fingerprint and the lineage; the
/// tables are read at these versions.
pub(crate) fn dimension_refs(p: &Pipeline) -> Result<Vec<ObjectRef>, SluiceError> {
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
