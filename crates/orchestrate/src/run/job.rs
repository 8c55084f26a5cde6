//! One `sluice run`: plan, decide, execute, publish.
//!
//! 1. [`plan`](super::plan): partitions, input objects, fingerprints, the dataset's state.
//! 2. Decide on that state: a run id that is already published is done (`up_to_date`,
//!    naming its commit); a shard goes to [`shards`](super::shards); a plan whose every
//!    partition is current is `up_to_date` (unless `--force`).
//! 3. [`execute`](super::execute) the stages, writing through a new [`Attempt`] of the run.
//! 4. [`publish`](super::publish) one commit on the state of step 1, after the
//!    [`audit`](super::audit) checks. On any failure the attempt removes what it created,
//!    unless a commit may have landed, or checks failed (the version is held for review).
//!
//! [`Attempt`]: crate::store::Attempt

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use super::dimensions::{self, PendingDimensions};
use super::manifest::Stages;
use super::plan::{self, Plan};
use super::publish::{publish_run, published_before, up_to_date, Publication};
use super::{execute, hooks, shards};
use crate::report::summary::{RunStatus, RunSummary};
use crate::store::{self, Attempt};
use crate::types::RunOptions;
use crate::error::SluiceError;
use crate::pipeline::Pipeline;

fn run_id(opts: &RunOptions) -> Result<String, SluiceError> {
    match &opts.run_id {
        Some(id) => {
            store::validate_run_id(id)?;
            Ok(id.clone())
        }
        None if opts.shard.is_some() => Err(SluiceError::Usage("--shard needs --run-id: the shards of one run share its id".into())),
        None => Ok(store::new_run_id()),
    }
}

/// Run a pipeline for the requested partitions and publish the result as one commit (or,
/// with a shard, stage this shard's share for [`shards::publish`]).
/// The partitions of `p`'s dataset (or `output`) whose current version the model `prefix`
/// names scored: what `sluice run --rescore-model` reprocesses.
pub fn scored_by(p: &Pipeline, output: Option<&str>, prefix: &str) -> Result<Vec<String>, SluiceError> {
    let ds = plan::open_dataset(p, output)?;
    let log = ds.log()?;
    let model = ds.resolve_model(&log, prefix)?;
    ds.scored_by(&store::fold(&log, None), &model)
}

pub fn run(p: &Pipeline, opts: RunOptions) -> Result<RunSummary, SluiceError> {
    let (started, started_at) = (Instant::now(), Utc::now());
    let run_id = run_id(&opts)?;
    let dataset = plan::open_dataset(p, opts.output.as_deref())?;
    let dim_refs = plan::dimension_refs(p)?;
    // the dimension tables load on their own thread while the log is read, the run plans
    // and its input is read and typed (see `dimensions`)
    let dims = dimensions::spawn(p.dimensions.clone(), dim_refs.clone(), opts.cancel.clone());
    let head = dataset.head()?;
    // only a run id given on the command line can have been published before: the one
    // just generated is new (a time to the millisecond and 32 random bits), and looking a
    // run id up replays the Delta log once more, every `txn` in it
    if opts.run_id.is_some() && !opts.dry_run {
        if let Some(done) = published_before(&dataset, &head, &run_id, started)? {
            return Ok(done);
        }
    }
    let plan = plan::plan(p, &opts, &run_id, dataset, head, dim_refs)?;
    if opts.dry_run {
        let mut summary = plan.dry_run(started);
        summary.shard = opts.shard.map(|s| s.to_string());
        return Ok(summary);
    }
    if let Some(shard) = opts.shard {
        return shards::run_shard(p, &opts, &plan, shard, started, dims);
    }
    if !opts.force && plan.all_current() {
        let summary = up_to_date(&plan.dataset, &plan.snapshot, &plan.partition_names(), &run_id, started);
        return Ok(RunSummary { skipped: plan.skipped.clone(), ..summary });
    }
    hooks::checkpoint("planned", &opts.cancel)?;
    let attempt = Arc::new(Attempt::begin(&plan.dataset, &run_id));
    tracing::info!(run_id, attempt = attempt.nonce(), base_commit = plan.base(), "running");
    let summary = execute_and_publish(p, &opts, &plan, &attempt, dims, (started_at, started)).inspect_err(|_| attempt.discard())?;
    Ok(RunSummary { skipped: plan.skipped.clone(), ..summary })
}


/// Run the stages over the whole plan and publish the result on the plan's base commit; a
/// version whose `error` checks fail is held for review.
fn execute_and_publish(
    p: &Pipeline,
    opts: &RunOptions,
    plan: &Plan,
    attempt: &Arc<Attempt>,
    dims: PendingDimensions,
    (started_at, started): (chrono::DateTime<Utc>, Instant),
) -> Result<RunSummary, SluiceError> {
    let (staged, report) = execute::execute(p, opts, plan, attempt, plan.partitions.clone(), dims)?;
    if opts.cancel.is_cancelled() {
        return Err(SluiceError::Cancelled);
    }
    // every data file exists before the hold point (and before the manifests and the commit)
    let waited = Instant::now();
    attempt.wait()?;
    tracing::debug!(wait_s = waited.elapsed().as_secs_f64(), "data files written");
    hooks::checkpoint("commit", &opts.cancel)?;
    let bottleneck = report.bottleneck.clone();
    let publication = Publication {
        current: &plan.snapshot.partitions,
        table: plan.head.table.as_ref(),
        override_checks: opts.override_checks.as_deref(),
        p,
        dataset: &plan.dataset,
        model_dir: plan.model_uri.clone(),
        model_id: &plan.model_id,
        dim_refs: &plan.dims,
        command: &opts.command,
        stages: Stages::Run(report.clone()),
        started_at,
        base_commit: plan.base(),
    };
    match publish_run(attempt, &publication, &staged, started) {
        Ok(summary) if summary.status == RunStatus::Published => Ok(RunSummary { bottleneck, ..summary }),
        Ok(summary) => Ok(summary),
        Err(e @ SluiceError::ChecksFailed { .. }) => {
            // keep the version for review: a staging record makes it publishable with
            // `sluice publish --override-checks`
            shards::hold(p, opts, plan, attempt, staged, report, started_at)?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}
