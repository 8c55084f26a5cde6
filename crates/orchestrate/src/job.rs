//! One `sluice run`: plan, decide, execute, publish.
//!
//! 1. [`plan`](crate::plan): partitions, input objects, fingerprints, the dataset's state.
//! 2. Decide on that state: a run id that is already published is done (`up_to_date`,
//!    naming its commit); a shard goes to [`shards`](crate::shards); a plan whose every
//!    partition is current is `up_to_date` (unless `--force`).
//! 3. [`execute`](crate::execute) the stages, writing through a new [`Attempt`] of the run.
//! 4. [`publish`](crate::publish) one commit on the state of step 1, after the
//!    [`audit`](crate::audit) checks. On any failure the attempt removes what it created,
//!    unless a commit may have landed, or checks failed (the version is held for review).
//!
//! [`Attempt`]: crate::store::Attempt

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use crate::plan::{self, Plan};
use crate::publish::{already_published, publish_staged, Publication, Published};
use crate::runtime::Cancel;
use crate::store::{self, Attempt};
use crate::summary::{PartitionSummary, RunSummary};
use crate::{execute, hooks, shards, Pipeline, SluiceError};

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
    pub model: Option<String>,
    /// The command line, for lineage.
    pub command: Vec<String>,
    /// Plan only: report partitions, input objects and output locations; write nothing.
    pub dry_run: bool,
    /// Process this share of the input objects and stage the result under the run (see
    /// [`shards::publish`]) instead of publishing.
    pub shard: Option<Shard>,
    /// Draw a progress bar on stderr (the CLI sets it when stderr is a terminal).
    pub progress: bool,
    /// Publish even if `error` checks fail, recording this reason.
    pub override_checks: Option<String>,
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
pub fn run(p: &Pipeline, opts: RunOptions) -> Result<RunSummary, SluiceError> {
    let (started, started_at) = (Instant::now(), Utc::now());
    let run_id = run_id(&opts)?;
    let dataset = plan::open_dataset(p, opts.output.as_deref())?;
    let head = dataset.head()?;
    // a run id names one logical run: once it is published, every attempt of it is done
    // (even if its inputs are gone by now)
    if let Some(n) = head.published_by(&run_id).filter(|_| !opts.dry_run) {
        return Ok(already_published(&dataset, &dataset.read_commit(n)?, started));
    }
    let plan = plan::plan(p, &opts, &run_id, dataset, head)?;
    if opts.dry_run {
        let mut summary = plan.dry_run(started);
        summary.shard = opts.shard.map(|s| s.to_string());
        return Ok(summary);
    }
    if let Some(shard) = opts.shard {
        return shards::run_shard(p, &opts, &plan, shard, started);
    }
    if !opts.force && plan.all_current() {
        tracing::info!(dataset = plan.dataset.uri(), "already up to date: same inputs, pipeline and model; nothing published (use --force to rebuild)");
        let current = plan
            .partitions
            .iter()
            .filter_map(|(part, _)| plan.snapshot.partitions.get(part).map(|v| PartitionSummary::of_version(&plan.dataset, part, v)));
        let mut summary = RunSummary::new("up_to_date", &run_id, &plan.dataset, started).with_partitions(current.collect()).with_commit(plan.base());
        summary.skipped = plan.skipped.clone();
        return Ok(summary);
    }
    hooks::checkpoint("planned", &opts.cancel)?;

    let attempt = Arc::new(plan.dataset.begin(&run_id));
    tracing::info!(run_id, attempt = attempt.nonce(), base_commit = plan.base(), "running");
    let (published, bottleneck) = execute_and_publish(p, &opts, &plan, &attempt, started_at).inspect_err(|_| attempt.discard())?;
    match published {
        Published::Committed { commit, partitions } => {
            let mut summary = RunSummary::new("published", &run_id, &plan.dataset, started).with_partitions(partitions).with_commit(commit);
            summary.skipped = plan.skipped.clone();
            summary.bottleneck = bottleneck;
            Ok(summary)
        }
        Published::AlreadyPublished { commit } => {
            attempt.discard();
            Ok(already_published(&plan.dataset, &plan.dataset.read_commit(commit)?, started))
        }
    }
}

/// Run the stages over the whole plan and publish the result on the plan's base commit.
fn execute_and_publish(
    p: &Pipeline,
    opts: &RunOptions,
    plan: &Plan,
    attempt: &Arc<Attempt>,
    started_at: chrono::DateTime<Utc>,
) -> Result<(Published, Option<String>), SluiceError> {
    let (staged, report) = execute::execute(p, opts, plan, attempt, plan.partitions.clone())?;
    if opts.cancel.is_cancelled() {
        return Err(SluiceError::Cancelled);
    }
    // every data file exists before the hold point (and before the manifests and the commit)
    let waited = std::time::Instant::now();
    attempt.wait()?;
    tracing::debug!(wait_s = waited.elapsed().as_secs_f64(), "data files written");
    hooks::checkpoint("commit", &opts.cancel)?;
    let bottleneck = report.get("bottleneck").and_then(|b| b.as_str()).map(str::to_string);
    let publication = Publication {
        current: &plan.snapshot.partitions,
        override_checks: opts.override_checks.as_deref(),
        p,
        dataset: &plan.dataset,
        model_dir: plan.model_uri.clone(),
        model_id: &plan.model_id,
        dim_refs: &plan.dims,
        command: &opts.command,
        stages: report.clone(),
        started_at,
        base_commit: plan.base(),
    };
    match publish_staged(attempt, &publication, &staged) {
        Ok(published) => Ok((published, bottleneck)),
        Err(e @ SluiceError::ChecksFailed { .. }) => {
            // keep the version for review: a staging record makes it publishable with
            // `sluice publish --override-checks`
            shards::hold(p, opts, plan, attempt, staged, report, started_at)?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}
