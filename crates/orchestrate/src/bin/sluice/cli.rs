//! The command line: clap's types for every subcommand and flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sluice_orchestrate::types::Shard;

#[derive(Parser)]
#[command(name = "sluice", version, about = "Batch ETL and offline inference into versioned Parquet datasets")]
pub struct Cli {
    /// Log format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Also write the JSON summary line to this file, replaced atomically (e.g.
    /// /airflow/xcom/return.json, where KubernetesPodOperator reads its XCom)
    #[arg(long, value_name = "PATH", global = true)]
    pub summary_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a pipeline for one or more partitions and publish them in one commit
    Run(RunArgs),
    /// Publish what the shards of a run staged (`run --shard I/N --run-id RUN_ID`), in one commit
    Publish {
        pipeline: PathBuf,
        /// The run id the shards were given
        #[arg(long = "run", value_name = "RUN_ID")]
        run_id: String,
        /// The dataset URI the shards wrote to, if not the pipeline's
        #[arg(long)]
        output: Option<String>,
        #[arg(long = "param", value_name = "K=V", value_parser = parse_kv)]
        params: Vec<(String, String)>,
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>,
        /// Publish a run whose error checks failed (held for review); the reason is recorded
        /// in the commit and manifest
        #[arg(long, value_name = "REASON")]
        override_checks: Option<String>,
    },
    /// Check a pipeline file and report every error at once; runs nothing
    Validate {
        pipeline: PathBuf,
        #[arg(long = "param", value_name = "K=V", value_parser = parse_kv)]
        params: Vec<(String, String)>,
    },
    /// The history of a dataset (a dataset URI, or a pipeline file for its output)
    Versions {
        dataset: String,
        #[arg(long, value_name = "K=V", conflicts_with = "model")]
        partition: Option<String>,
        /// Only the versions this model (an id or a unique prefix) scored
        #[arg(long, value_name = "MODEL_ID")]
        model: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The current partitions and their files (or as of a commit number or RFC 3339 time)
    Show {
        dataset: String,
        #[arg(long, value_name = "COMMIT|TIME")]
        as_of: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Re-point a partition to an earlier version, or undo what a run published
    Rollback {
        dataset: String,
        /// Undo everything this run published
        #[arg(long, conflicts_with_all = ["partition", "to", "to_commit", "model"])]
        run: Option<String>,
        /// Re-point every partition whose current version this model (an id or a unique
        /// prefix) scored to its latest earlier version by another model, in one commit
        #[arg(long, value_name = "MODEL_ID", conflicts_with_all = ["partition", "to", "to_commit"])]
        model: Option<String>,
        /// Print what would move; commit nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_name = "K=V")]
        partition: Option<String>,
        /// The version id (see `sluice versions`) to re-point the partition to
        #[arg(long, value_name = "VERSION", requires = "partition", conflicts_with = "to_commit")]
        to: Option<String>,
        /// Take the partition's version as of this commit number
        #[arg(long, value_name = "COMMIT", requires = "partition")]
        to_commit: Option<u64>,
    },
    /// Delete superseded versions and failed runs' files older than the retention (a dry run unless --apply)
    Gc {
        dataset: String,
        /// Keep every version that was current within this long (e.g. 7d, 36h, 90min)
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        retain: std::time::Duration,
        /// Delete (after recording what in a commit); without it, only report
        #[arg(long)]
        apply: bool,
        /// Allow a retention under 1 hour (a run still going may need its files)
        #[arg(long)]
        allow_short_retention: bool,
        /// Only the JSON summary line
        #[arg(long)]
        json: bool,
    },
    /// Pin a version: gc keeps it whatever its age
    Pin {
        dataset: String,
        #[arg(long, value_name = "K=V")]
        partition: String,
        #[arg(long, value_name = "VERSION")]
        version: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Write one self-contained HTML page: each partition's versions, row accounting and
    /// its numeric columns' distributions against the previous version (with the PSI)
    Report {
        dataset: String,
        #[arg(long = "partition", value_name = "K=V")]
        partitions: Vec<String>,
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
    },
    /// Convert a dataset written by an older sluice (its _sluice/commits log) into a Delta table, history kept
    Convert { dataset: String },
    /// Remove a pin
    Unpin {
        dataset: String,
        #[arg(long, value_name = "K=V")]
        partition: String,
        #[arg(long, value_name = "VERSION")]
        version: String,
    },
}

pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), sluice_orchestrate::pipeline::absolutize_param(v))),
        _ => Err(format!("expected K=V, got '{s}'")),
    }
}

/// `sluice run`'s arguments.
#[derive(Args)]
pub struct RunArgs {
    pub pipeline: PathBuf,
    /// The partition date (fills '{date}'; same as --partition date=D)
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub date: Option<chrono::NaiveDate>,
    /// First date of a backfill range (inclusive); each date is a partition, the whole
    /// range is published in one commit; dates without input are skipped
    #[arg(long, requires = "to")]
    pub from: Option<chrono::NaiveDate>,
    /// Last date of the range (inclusive)
    #[arg(long, requires = "from")]
    pub to: Option<chrono::NaiveDate>,
    /// Print the plan (partitions, input objects and sizes, output locations); write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Process shard I of N (0-based) of the input objects and stage it under --run-id
    /// without publishing; then `sluice publish PIPELINE --run RUN_ID`
    #[arg(long, value_name = "I/N", requires = "run_id")]
    pub shard: Option<Shard>,
    /// Write the run's outcome here in Prometheus text format (node_exporter textfile)
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Send the run's metrics to this StatsD agent (HOST:PORT, UDP, DogStatsD tags)
    #[arg(long, value_name = "HOST:PORT")]
    pub statsd: Option<String>,
    /// A partition as KEY=VALUE; repeatable (all are published in one commit)
    #[arg(long = "partition", value_name = "K=V")]
    pub partitions: Vec<String>,
    /// Publish a new version even if the same inputs, pipeline and model made the current one
    #[arg(long)]
    pub force: bool,
    /// Use this run id instead of a generated one (e.g. the scheduler's)
    #[arg(long)]
    pub run_id: Option<String>,
    /// Override the pipeline's source URI template
    #[arg(long)]
    pub input: Option<String>,
    /// Override the pipeline's output dataset URI
    #[arg(long)]
    pub output: Option<String>,
    /// Score with this model instead of the pipeline's (a folder or an object store URI)
    #[arg(long)]
    pub model: Option<String>,
    /// Re-score exactly the partitions whose current version this model (an id or a
    /// unique prefix) scored, with --model, in one commit
    #[arg(long, value_name = "MODEL_ID", requires = "model", conflicts_with_all = ["date", "from", "to", "partitions", "shard"])]
    pub rescore_model: Option<String>,
    /// Override a pipeline [params] entry (relative paths are from the current directory)
    #[arg(long = "param", value_name = "K=V", value_parser = parse_kv)]
    pub params: Vec<(String, String)>,
    /// Publish even if error checks fail; the reason is recorded in the commit and manifest
    #[arg(long, value_name = "REASON")]
    pub override_checks: Option<String>,
    
}
