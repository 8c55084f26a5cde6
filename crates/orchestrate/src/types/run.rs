//! How a run was asked for (the CLI's flags as [`RunOptions`], a shard of a run), and how
//! it ended ([`RunStatus`]).

use serde::Serialize;

use crate::runtime::Cancel;

/// How a command ended: the summary line's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// A commit was made (a run, a publish of shards, a rollback).
    Published,
    /// Nothing to do: the same inputs, pipeline and model made the current version, or the
    /// run id is already published.
    UpToDate,
    /// A shard's share is done, not yet published.
    Staged,
    /// `--dry-run`: the plan, nothing written.
    DryRun,
    /// No input for the partitions asked for (exit 99).
    Skipped,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Published => "published",
            RunStatus::UpToDate => "up_to_date",
            RunStatus::Staged => "staged",
            RunStatus::DryRun => "dry_run",
            RunStatus::Skipped => "skipped",
            RunStatus::Failed => "failed",
        }
    }
}

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
    /// `sluice publish`) instead of publishing.
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
