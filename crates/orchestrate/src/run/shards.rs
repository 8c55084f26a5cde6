//! Sharded runs: `sluice run --shard I/N --run-id ID` stages a share of a run's input, and
//! `sluice publish --run ID` publishes every shard's share in one commit. An unsharded run
//! whose checks failed is held the same way, as shard 0 of 1 ([`hold`]).
//!
//! Each shard attempt writes its files through its own [`Attempt`] and then a staging
//! record (`ShardRecord`) with the commit its decisions were made on (`base_commit`) and the
//! plan's fingerprints. A shard re-run finds a record of its own that is still valid (same
//! fingerprints, and no other run changed the plan's partitions since its base) and does
//! nothing; otherwise it runs again on the new state. `publish` takes the newest record of
//! each shard and commits on the oldest base among them, so a version published after
//! the shards planned is a conflict (exit 4), never silently replaced.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_extract::source::SourceObject;
use sluice_extract::ObjectRef;

use super::dimensions::PendingDimensions;
use super::manifest::Stages;
use super::plan::{self, Plan};
use super::publish::{publish_run, published_before, up_to_date, Publication};
use super::{execute, hooks};
use crate::report::summary::{PartitionSummary, RunStatus, RunSummary};
use crate::runtime::RunReport;
use crate::store::{self, Attempt, Dataset};
use crate::types::{Partition, RunOptions, Shard, StagedPartition};
use crate::error::SluiceError;
use crate::pipeline::Pipeline;

/// A shard attempt's staging record: written (create-only, under the attempt's nonce) when
/// its share is staged; `sluice publish` reads them all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardRecord {
    pub run_id: String,
    #[serde(default)]
    pub attempt: String,
    pub shard: usize,
    pub shards: usize,
    /// The commit this shard's decisions were made on.
    #[serde(default)]
    pub base_commit: u64,
    /// Every partition of the run's plan and its fingerprint: the same in every shard of
    /// a run, or the shards did not see the same inputs.
    pub fingerprints: BTreeMap<String, String>,
    /// The plan was already current (same fingerprints) and nothing was processed.
    pub up_to_date: bool,
    /// An unsharded run whose `error` checks failed: its version, held for review.
    #[serde(default)]
    pub held: bool,
    pub pipeline_sha256: String,
    pub model: String,
    pub model_id: String,
    pub dimensions: Vec<ObjectRef>,
    pub command: Vec<String>,
    /// This shard's share of each partition it had objects of.
    pub partitions: BTreeMap<String, StagedPartition>,
    /// The shard's stage report (none when it found its partitions up to date).
    pub stages: Option<RunReport>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

impl ShardRecord {
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: &Pipeline,
        opts: &RunOptions,
        plan: &Plan,
        attempt: &Attempt,
        shard: Shard,
        partitions: BTreeMap<String, StagedPartition>,
        stages: Option<RunReport>,
        started_at: DateTime<Utc>,
    ) -> Self {
        ShardRecord {
            run_id: plan.run_id.clone(),
            attempt: attempt.nonce().to_string(),
            shard: shard.index,
            shards: shard.count,
            base_commit: plan.base(),
            fingerprints: plan.fingerprints.clone(),
            up_to_date: false,
            held: false,
            pipeline_sha256: p.sha256.clone(),
            model: plan.model_uri.clone(),
            model_id: plan.model_id.clone(),
            dimensions: plan.dims.clone(),
            command: opts.command.clone(),
            partitions,
            stages,
            started_at,
            finished_at: Utc::now(),
        }
    }

    /// Newer records win: a later base, then a later finish.
    fn recency(&self) -> (u64, DateTime<Utc>) {
        (self.base_commit, self.finished_at)
    }
}

fn put_record(attempt: &Attempt, r: &ShardRecord) -> Result<String, SluiceError> {
    let body = serde_json::to_vec_pretty(r).map_err(|e| SluiceError::other("encoding the staging record", e))?;
    attempt.put_shard_record(r.shard, r.shards, Bytes::from(body))
}

/// Hold an unsharded run's version whose `error` checks failed: its files stay, with a
/// staging record (as shard 0 of 1), so that `sluice publish --run ID --override-checks`
/// can publish it after review.
pub(crate) fn hold(
    p: &Pipeline,
    opts: &RunOptions,
    plan: &Plan,
    attempt: &Attempt,
    staged: BTreeMap<String, StagedPartition>,
    stages: RunReport,
    started_at: DateTime<Utc>,
) -> Result<(), SluiceError> {
    let record = ShardRecord { held: true, ..ShardRecord::new(p, opts, plan, attempt, Shard { index: 0, count: 1 }, staged, Some(stages), started_at) };
    let rel = put_record(attempt, &record)?;
    tracing::info!(run_id = %plan.run_id, record = %plan.dataset.uri_of(&rel), "checks failed: the version is held for review");
    Ok(())
}

fn read_records(dataset: &Dataset, run_id: &str) -> Result<Vec<ShardRecord>, SluiceError> {
    dataset
        .shard_records(run_id)?
        .into_iter()
        .map(|(uri, bytes)| serde_json::from_slice(&bytes).map_err(|e| SluiceError::Store(format!("{uri}: {e}"))))
        .collect()
}

/// Every `count`-th object of the plan (partitions in order, objects sorted by URI),
/// starting at `index`; partitions this shard has no object of are left out.
fn share(plan: &Plan, shard: Shard) -> Vec<(Partition, Vec<SourceObject>)> {
    let mut k = 0usize;
    let mut out = Vec::new();
    for (part, objs) in &plan.partitions {
        let mine: Vec<SourceObject> = objs
            .iter()
            .filter(|_| {
                k += 1;
                (k - 1) % shard.count == shard.index
            })
            .cloned()
            .collect();
        if !mine.is_empty() {
            out.push((part.clone(), mine));
        }
    }
    out
}

/// Stage this shard's share of the run (see the module docs).
/// `dims`: the plan's dimension tables, perhaps still loading.
pub(crate) fn run_shard(
    p: &Pipeline,
    opts: &RunOptions,
    plan: &Plan,
    shard: Shard,
    started: Instant,
    dims: PendingDimensions,
) -> Result<RunSummary, SluiceError> {
    let started_at = Utc::now();
    let run_id = &plan.run_id;
    let parts = plan.partition_names();
    let mine: Vec<ShardRecord> =
        read_records(&plan.dataset, run_id)?.into_iter().filter(|r| r.shard == shard.index && r.shards == shard.count).collect();
    let mut valid = None;
    for r in mine.iter().filter(|r| r.fingerprints == plan.fingerprints) {
        let since = plan.dataset.commits_after(&plan.head, r.base_commit)?;
        if store::touched_since(&since, r.base_commit, run_id, &parts.iter().map(String::as_str).collect::<Vec<_>>()).is_none() && valid.is_none_or(|v: &ShardRecord| r.recency() >= v.recency()) {
            valid = Some(r);
        }
    }
    let staged = |summaries| {
        let mut s = RunSummary::new(RunStatus::Staged, run_id, &plan.dataset, started).with_partitions(summaries);
        s.shard = Some(shard.to_string());
        s.skipped = plan.skipped.clone();
        s
    };
    if let Some(r) = valid {
        tracing::info!(shard = %shard, run_id, attempt = %r.attempt, "this shard already finished on the current state; nothing to do");
        return Ok(staged(Vec::new()));
    }
    if !mine.is_empty() {
        tracing::info!(shard = %shard, run_id, "this shard finished before on other inputs or an older state; running it again");
    }
    let up_to_date = !opts.force && plan.all_current();
    hooks::checkpoint("planned", &opts.cancel)?;
    let attempt = Arc::new(Attempt::begin(&plan.dataset, run_id));
    let result = (|| {
        let work = if up_to_date { Vec::new() } else { share(plan, shard) };
        let (partitions, stages) = match work.is_empty() {
            true => (BTreeMap::new(), None),
            false => execute::execute(p, opts, plan, &attempt, work, dims).map(|(parts, report)| (parts, Some(report)))?,
        };
        if opts.cancel.is_cancelled() {
            return Err(SluiceError::Cancelled);
        }
        let record = ShardRecord { up_to_date, ..ShardRecord::new(p, opts, plan, &attempt, shard, partitions, stages, started_at) };
        put_record(&attempt, &record)?;
        Ok(record)
    })();
    let record = result.inspect_err(|_| attempt.discard())?;
    tracing::info!(shard = %shard, run_id, "shard staged; publish the run with: sluice publish {} --run {run_id}", p.path.display());
    let summaries = record.partitions.iter().map(|(part, s)| PartitionSummary::of_staged(&plan.dataset, part, run_id, s)).collect::<Vec<PartitionSummary>>();
    Ok(staged(summaries))
}

/// The newest record of each shard `0..N` (N from the newest record of all). Fails naming
/// the shards that have none.
fn choose_records(run_id: &str, records: &[ShardRecord]) -> Result<Vec<ShardRecord>, SluiceError> {
    let fail = |why: String| SluiceError::other(format!("publish run '{run_id}'"), why);
    let Some(newest) = records.iter().max_by_key(|r| r.finished_at) else {
        return Err(fail("no shard of this run has finished (nothing staged)".into()));
    };
    let n = newest.shards;
    let mut chosen = Vec::with_capacity(n);
    let mut missing = Vec::new();
    for i in 0..n {
        match records.iter().filter(|r| r.shards == n && r.shard == i).max_by_key(|r| r.recency()) {
            Some(r) => chosen.push(r.clone()),
            None => missing.push(format!("{i}/{n}")),
        }
    }
    if !missing.is_empty() {
        return Err(fail(format!(
            "{} of {n} shards finished; missing: {} (run them, then publish again)",
            n - missing.len(),
            missing.join(", ")
        )));
    }
    if let Some(r) = chosen.iter().find(|r| r.fingerprints != chosen[0].fingerprints || r.model_id != chosen[0].model_id) {
        return Err(fail(format!(
            "shard {}/{n} saw other inputs, pipeline or model than shard 0/{n}; re-run the shards, then publish again",
            r.shard
        )));
    }
    Ok(chosen)
}

/// Publish what the shards of `run_id` staged, as one commit on the state they planned on.
/// Publishing a run that is already published does nothing.
pub fn publish(p: &Pipeline, run_id: &str, output: Option<&str>, command: &[String], override_checks: Option<&str>) -> Result<RunSummary, SluiceError> {
    let started = Instant::now();
    store::validate_run_id(run_id)?;
    let dataset = plan::open_dataset(p, output)?;
    let head = dataset.head()?;
    if let Some(done) = published_before(&dataset, &head, run_id, started)? {
        return Ok(done);
    }
    let chosen = choose_records(run_id, &read_records(&dataset, run_id)?)?;
    let first = &chosen[0];
    let n = first.shards;
    if first.pipeline_sha256 != p.sha256 {
        return Err(SluiceError::Usage(format!("run '{run_id}' was staged with another version of {} (sha256 differs)", p.path.display())));
    }
    if chosen.iter().all(|r| r.up_to_date) {
        let partitions: Vec<String> = first.fingerprints.keys().cloned().collect();
        return Ok(up_to_date(&dataset, &head.snapshot(), &partitions, run_id, started));
    }
    // merge the shards' shares of each partition, in shard order
    let mut staged: BTreeMap<String, StagedPartition> = BTreeMap::new();
    for r in &chosen {
        for (part, s) in &r.partitions {
            staged.entry(part.clone()).or_insert_with(|| StagedPartition::empty(&s.fingerprint, &s.schema)).merge(s);
        }
    }
    if let Some(part) = first.fingerprints.keys().find(|part| !staged.contains_key(*part)) {
        return Err(SluiceError::other(format!("publish run '{run_id}'"), format!("no shard staged partition {part}")));
    }
    let shards: BTreeMap<String, Option<RunReport>> = chosen.iter().map(|r| (format!("{}/{n}", r.shard), r.stages.clone())).collect();
    let snapshot = head.snapshot();
    let publication = Publication {
        current: &snapshot.partitions,
        table: head.table.as_ref(),
        override_checks,
        p,
        dataset: &dataset,
        model_dir: first.model.clone(),
        model_id: &first.model_id,
        dim_refs: &first.dimensions,
        command,
        stages: Stages::Shards { shards },
        started_at: chosen.iter().map(|r| r.started_at).min().unwrap_or_else(Utc::now),
        base_commit: chosen.iter().map(|r| r.base_commit).min().unwrap_or(0),
    };
    let attempt = Attempt::begin(&dataset, run_id);
    let summary = publish_run(&attempt, &publication, &staged, started).inspect_err(|_| attempt.discard())?;
    let shard = (summary.status == RunStatus::Published).then(|| format!("{n} shards"));
    Ok(RunSummary { shard, ..summary })
}
