//! `sluice`: parse, build a validated plan, run, map the error to an exit code.
//! The last line on stdout of `run`, `publish` and `rollback` is a one-line JSON summary,
//! failures included, and panics too (exit 1, never Rust's 101); logs go to stderr. SIGTERM
//! and SIGINT cancel the run: every stage stops, nothing is published, the exit code is 1.
//! A closed stdout (`sluice versions | head`) ends the output quietly.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use sluice_extract::Storage;
use sluice_orchestrate::gc;
use sluice_orchestrate::history::{self, RollbackTarget, RollbackTo};
use sluice_orchestrate::job::{self, RunOptions, Shard};
use sluice_orchestrate::shards;
use sluice_orchestrate::summary::RunSummary;
use sluice_orchestrate::metrics::{self, RunMetrics};
use sluice_orchestrate::runtime::{panic_message, Cancel};
use sluice_orchestrate::store::Dataset;
use sluice_orchestrate::{exit, Pipeline, SluiceError};

/// With the `mimalloc` feature: candle allocates a tensor per op, and mimalloc reuses freed
/// blocks where glibc would map fresh ones (the sample email pipeline 3.9 s against 4.2 s
/// with glibc and one arena). The default, the system allocator, held less memory on the
/// tabular job even before its arenas were limited (211–269 MiB against 279–391).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// glibc gives each thread that meets a locked arena a new one, up to 8 per core, and keeps
/// what is freed into an arena for that arena: the stages, Polars' pool and the I/O threads
/// spread a run's churn over 16 arenas on 2 cores. One arena per two cores (at least one)
/// took the full year's peak from 175–214 to 133–143 MiB at 1x and from 206–211 to 141–150
/// at 30x, for 13–20% more wall at 10x (threads queue on the one arena's lock; see
/// docs/ARCHITECTURE.md, "Blocks"). A
/// `MALLOC_ARENA_MAX` or `glibc.malloc.arena_max` tunable set by the user wins.
#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
fn limit_malloc_arenas() {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() || tunables.contains("arena_max") {
        return;
    }
    let arenas = std::thread::available_parallelism().map_or(1, |n| n.get() / 2).max(1);
    // SAFETY: mallopt sets one allocator parameter; no other thread exists yet to race it.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, i32::try_from(arenas).unwrap_or(i32::MAX));
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc"))))]
fn limit_malloc_arenas() {}

#[derive(Parser)]
#[command(name = "sluice", version, about = "Batch ETL and offline inference into versioned Parquet datasets")]
struct Cli {
    /// Log format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Also write the JSON summary line to this file, replaced atomically (e.g.
    /// /airflow/xcom/return.json, where KubernetesPodOperator reads its XCom)
    #[arg(long, value_name = "PATH", global = true)]
    summary_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline for one or more partitions and publish them in one commit
    Run {
        pipeline: PathBuf,
        /// The partition date (fills '{date}'; same as --partition date=D)
        #[arg(long, conflicts_with_all = ["from", "to"])]
        date: Option<chrono::NaiveDate>,
        /// First date of a backfill range (inclusive); each date is a partition, the whole
        /// range is published in one commit; dates without input are skipped
        #[arg(long, requires = "to")]
        from: Option<chrono::NaiveDate>,
        /// Last date of the range (inclusive)
        #[arg(long, requires = "from")]
        to: Option<chrono::NaiveDate>,
        /// Print the plan (partitions, input objects and sizes, output locations); write nothing
        #[arg(long)]
        dry_run: bool,
        /// Process shard I of N (0-based) of the input objects and stage it under --run-id
        /// without publishing; then `sluice publish PIPELINE --run RUN_ID`
        #[arg(long, value_name = "I/N", requires = "run_id")]
        shard: Option<Shard>,
        /// Write the run's outcome here in Prometheus text format (node_exporter textfile)
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>,
        /// A partition as KEY=VALUE; repeatable (all are published in one commit)
        #[arg(long = "partition", value_name = "K=V")]
        partitions: Vec<String>,
        /// Publish a new version even if the same inputs, pipeline and model made the current one
        #[arg(long)]
        force: bool,
        /// Use this run id instead of a generated one (e.g. the scheduler's)
        #[arg(long)]
        run_id: Option<String>,
        /// Override the pipeline's source URI template
        #[arg(long)]
        input: Option<String>,
        /// Override the pipeline's output dataset URI
        #[arg(long)]
        output: Option<String>,
        /// Score with this model instead of the pipeline's (a folder or an object store URI)
        #[arg(long)]
        model: Option<String>,
        /// Override a pipeline [params] entry (relative paths are from the current directory)
        #[arg(long = "param", value_name = "K=V", value_parser = parse_kv)]
        params: Vec<(String, String)>,
        /// Publish even if error checks fail; the reason is recorded in the commit and manifest
        #[arg(long, value_name = "REASON")]
        override_checks: Option<String>,
    },
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
        #[arg(long, value_name = "K=V")]
        partition: Option<String>,
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
        #[arg(long, conflicts_with_all = ["partition", "to", "to_commit"])]
        run: Option<String>,
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
    /// Remove a pin
    Unpin {
        dataset: String,
        #[arg(long, value_name = "K=V")]
        partition: String,
        #[arg(long, value_name = "VERSION")]
        version: String,
    },
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), sluice_orchestrate::pipeline::absolutize_param(v))),
        _ => Err(format!("expected K=V, got '{s}'")),
    }
}

/// The signal that cancelled the run, for the summary line.
static SIGNAL: OnceLock<&'static str> = OnceLock::new();

/// The subcommands whose last stdout line is the JSON summary.
const SUMMARY_COMMANDS: [&str; 6] = ["run", "publish", "rollback", "gc", "pin", "unpin"];

fn main() -> ExitCode {
    // both before any thread starts
    sluice_transform::pin_engine();
    limit_malloc_arenas();
    let argv: Vec<String> = std::env::args().collect();
    let subcommand = argv.iter().skip(1).find(|a| !a.starts_with('-') && !["text", "json"].contains(&a.as_str()));
    let writes_summary = subcommand.is_some_and(|c| SUMMARY_COMMANDS.contains(&c.as_str()));
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version go to stdout with 0; usage errors to stderr with 2
            let _ = e.print();
            if !e.use_stderr() {
                return ExitCode::SUCCESS;
            }
            if writes_summary {
                // clap's message up to its usage block, on one line
                let rendered = e.to_string();
                let error: Vec<&str> =
                    rendered.lines().map(str::trim).take_while(|l| !l.starts_with("Usage:")).filter(|l| !l.is_empty()).collect();
                let error = error.join(" ");
                let error = error.trim_start_matches("error: ");
                let _ = write_line(&json!({"status": "failed", "error": format!("usage: {error}"), "exit_code": exit::USAGE}));
            }
            return ExitCode::from(exit::USAGE);
        }
    };
    init_logging(cli.log_format);
    let cancel = Cancel::default();
    install_signal_handlers(&cancel);
    let started = Instant::now();
    let metrics_target = match &cli.command {
        Command::Run { metrics_file: Some(path), pipeline, .. } | Command::Publish { metrics_file: Some(path), pipeline, .. } => {
            Some((path.clone(), pipeline.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()))
        }
        _ => None,
    };
    let progress = std::io::stderr().is_terminal() && matches!(cli.log_format, LogFormat::Text);
    let summary_file = cli.summary_file.clone();
    install_panic_hook();
    // a bug anywhere still ends with the summary line and exit 1 (stage threads catch their own)
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli.command, argv, &cancel, progress)))
        .unwrap_or_else(|panic| Err(SluiceError::Panic(panic_message(panic.as_ref()))));

    let (code, status) = match &result {
        Ok(Some(s)) => (exit::OK, s.status),
        Ok(None) => (exit::OK, "ok"),
        Err(e) => (e.exit_code(), e.status()),
    };
    if let Some((path, pipeline)) = metrics_target {
        let m = RunMetrics { pipeline: &pipeline, status, exit_code: code, summary: result.as_ref().ok().and_then(Option::as_ref), duration_s: started.elapsed().as_secs_f64() };
        if let Err(e) = metrics::write(&path, &m) {
            tracing::warn!("{e}");
        }
    }
    // the outcome is the exit code; a summary line nobody reads (closed stdout) does not change it
    let line = match result {
        Ok(Some(summary)) => Some(serde_json::to_value(&summary).unwrap_or_else(|e| json!({"status": summary.status, "error": e.to_string()}))),
        Ok(None) => None,
        Err(e) => {
            tracing::error!("{e}");
            let mut line = json!({"status": e.status(), "error": e.to_string(), "exit_code": code});
            if let (Some(details), Some(obj)) = (e.details(), line.as_object_mut()) {
                obj.extend(details.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
            }
            if let (SluiceError::Cancelled, Some(signal)) = (&e, SIGNAL.get()) {
                line["signal"] = json!(signal);
            }
            writes_summary.then_some(line)
        }
    };
    if let Some(line) = line {
        if let Some(path) = summary_file {
            if let Err(e) = write_summary_file(&path, &line) {
                tracing::error!("writing the summary to {}: {e}", path.display());
            }
        }
        if let Err(e) = write_line(&line) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::error!("writing the summary line: {e}");
            }
        }
    }
    ExitCode::from(code)
}

/// Panics are logged through tracing (so JSON logs stay JSON) with where they happened.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(thread, at, "panicked: {}", panic_message(info.payload()));
    }));
}

/// One line on stdout; the caller decides what a closed pipe means.
fn write_line(line: &dyn std::fmt::Display) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// The summary line in a file: written beside it, then renamed over it, so a reader sees
/// the whole line or the previous file.
fn write_summary_file(path: &Path, line: &serde_json::Value) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, format!("{line}\n"))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Print lines for a reader; a reader that went away (`| head`) ends the output quietly.
fn print_lines(lines: impl IntoIterator<Item = String>) -> Result<Option<RunSummary>, SluiceError> {
    for line in lines {
        match write_line(&line) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(None),
            Err(e) => return Err(SluiceError::other("writing to stdout", e)),
        }
    }
    Ok(None)
}

/// SIGTERM (what schedulers send to stop a task) and SIGINT cancel the run: blocked stages
/// wake up, running ones stop at their next item, nothing is published and the files the
/// run wrote are removed.
fn install_signal_handlers(cancel: &Cancel) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                for signal in signals.forever() {
                    let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
                    let _ = SIGNAL.set(name);
                    cancel.cancel();
                    tracing::warn!(signal = name, "stopping: cancelling every stage; nothing will be published");
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "could not install the SIGTERM/SIGINT handlers"),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| "info".into());
    // URLs in log lines lose passwords and query strings (SAS tokens) on the way out; colours
    // only for a terminal (not in container or scheduler logs)
    let builder = tracing_subscriber::fmt()
        .with_writer(|| sluice_extract::redact::RedactedStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A dataset argument: a URI, or a pipeline file whose output to use.
fn open_dataset(arg: &str) -> Result<Dataset, SluiceError> {
    let storage = if arg.ends_with(".toml") && Path::new(arg).is_file() {
        let p = Pipeline::load(Path::new(arg))?;
        Storage::open(&p.output.uri, Some(p.base_dir()))?
    } else {
        Storage::open(arg, None)?
    };
    Dataset::open(storage)
}

fn json_line<T: serde::Serialize>(v: &T) -> Result<String, SluiceError> {
    serde_json::to_string(v).map_err(|e| SluiceError::other("encoding output", e))
}

/// `--from`/`--to` as partitions: every date of the range, inclusive.
fn date_range(from: chrono::NaiveDate, to: chrono::NaiveDate) -> Result<Vec<String>, SluiceError> {
    if from > to {
        return Err(SluiceError::Usage(format!("--from {from} is after --to {to}")));
    }
    if (to - from).num_days() >= 100 * 366 {
        return Err(SluiceError::Usage(format!("--from {from} --to {to}: a range of more than 100 years is surely a typo")));
    }
    Ok(from.iter_days().take_while(|d| *d <= to).map(|d| format!("date={d}")).collect())
}

fn dispatch(command: Command, argv: Vec<String>, cancel: &Cancel, progress: bool) -> Result<Option<RunSummary>, SluiceError> {
    match command {
        Command::Run {
            pipeline,
            date,
            from,
            to,
            dry_run,
            shard,
            metrics_file: _,
            mut partitions,
            force,
            run_id,
            input,
            output,
            model,
            params,
            override_checks,
        } => {
            let p = Pipeline::load_with(&pipeline, &params, true)?;
            let mut dates = Vec::new();
            if let Some(d) = date {
                dates.push(format!("date={d}"));
            }
            if let (Some(from), Some(to)) = (from, to) {
                dates.extend(date_range(from, to)?);
            }
            if !dates.is_empty() && p.partition.key != "date" {
                return Err(SluiceError::Usage(format!(
                    "--date and --from/--to need a pipeline partitioned by 'date'; this one uses '{}': pass --partition",
                    p.partition.key
                )));
            }
            partitions.splice(0..0, dates);
            let opts = RunOptions {
                partitions,
                force,
                run_id,
                input,
                output,
                model,
                command: argv,
                dry_run,
                shard,
                progress,
                cancel: cancel.clone(),
                override_checks,
            };
            job::run(&p, opts).map(Some)
        }
        Command::Publish { pipeline, run_id, output, params, metrics_file: _, override_checks } => {
            let p = Pipeline::load_with(&pipeline, &params, true)?;
            shards::publish(&p, &run_id, output.as_deref(), &argv, override_checks.as_deref()).map(Some)
        }
        Command::Validate { pipeline, params } => {
            let p = Pipeline::load_with(&pipeline, &params, true)?;
            print_lines([format!(
                "{}: ok ({} dimensions, {} transform steps, {} model features, output {})",
                pipeline.display(),
                p.dimensions.len(),
                p.steps.len(),
                p.model.features.len(),
                p.output.uri
            )])
        }
        Command::Versions { dataset, partition, json } => {
            let ds = open_dataset(&dataset)?;
            let entries = history::history(&ds.log()?, partition.as_deref());
            if json {
                return print_lines([json_line(&entries)?]);
            }
            let header = format!(
                "{:>6}  {:<20}  {:<9}  {:<24}  {:<38}  {:>8}  {}",
                "commit", "time", "operation", "partition", "version", "rows", "checks"
            );
            print_lines(std::iter::once(header).chain(entries.iter().map(|e| {
                format!(
                    "{:>6}  {:<20}  {:<9}  {:<24}  {:<38}  {:>8}  {}",
                    e.commit,
                    e.timestamp.format("%Y-%m-%dT%H:%M:%SZ"),
                    if e.pinned == Some(false) { "unpin" } else { e.operation.as_str() },
                    e.partition,
                    e.version.as_deref().unwrap_or("(removed)"),
                    e.rows.map(|r| r.to_string()).unwrap_or_default(),
                    e.checks.as_ref().map(|c| c.describe()).unwrap_or_default()
                )
            })))
        }
        Command::Show { dataset, as_of, json } => {
            let ds = open_dataset(&dataset)?;
            let snap = history::snapshot_as_of(&ds, as_of.as_deref())?;
            let parts: Vec<_> = snap
                .partitions
                .iter()
                .map(|(p, v)| {
                    json!({"partition": p, "version": v.version, "rows": v.rows, "published_in": v.published_in,
                           "files": v.files.iter().map(|f| ds.uri_of(f)).collect::<Vec<_>>(), "manifest": ds.uri_of(&v.manifest)})
                })
                .collect();
            if json {
                return print_lines([json_line(&json!({"dataset": ds.uri(), "commit": snap.commit, "partitions": parts}))?]);
            }
            let mut lines = vec![format!("{} @ commit {}", ds.uri(), snap.commit)];
            for (p, v) in &snap.partitions {
                lines.push(format!("{p}  version {}  rows {}", v.version, v.rows));
                lines.extend(v.files.iter().map(|f| format!("  {}", ds.uri_of(f))));
            }
            print_lines(lines)
        }
        Command::Rollback { dataset, run, partition, to, to_commit } => {
            let ds = open_dataset(&dataset)?;
            let target = match (run, partition, to, to_commit) {
                (Some(run_id), None, None, None) => RollbackTarget::Run { run_id },
                (None, Some(partition), Some(v), None) => RollbackTarget::Partition { partition, to: RollbackTo::Version(v) },
                (None, Some(partition), None, Some(n)) => RollbackTarget::Partition { partition, to: RollbackTo::Commit(n) },
                _ => {
                    return Err(SluiceError::Usage("give --run RUN_ID, or --partition K=V with --to VERSION or --to-commit N".into()))
                }
            };
            history::rollback(&ds, &target, &argv).map(Some)
        }
        Command::Gc { dataset, retain, apply, allow_short_retention, json } => {
            if retain < gc::MIN_RETENTION && !allow_short_retention {
                return Err(SluiceError::Usage(format!(
                    "--retain {}: under 1 hour a run still going may need its files; add --allow-short-retention to insist",
                    humantime::format_duration(retain)
                )));
            }
            let ds = open_dataset(&dataset)?;
            let s = gc::gc(&ds, retain, apply, gc_now()?, &argv)?;
            let mut lines = Vec::new();
            if !json {
                let verb = if apply { "deleted" } else { "would delete" };
                lines.push(format!("{}: {verb} {} files, {} bytes (versions replaced before {})", s.dataset, s.files, s.bytes, s.cutoff));
                lines.extend(s.groups.iter().map(|g| format!("  {:<13}  {:<60}  {:>5} files  {:>12} bytes", g.kind, g.name, g.files, g.bytes)));
                let k = &s.kept;
                lines.push(format!("kept: {} current, {} in the window, {} pinned, {} young attempts", k.current, k.in_window, k.pinned, k.young_attempts));
            }
            lines.push(json_line(&s)?);
            print_lines(lines)
        }
        Command::Pin { dataset, partition, version, note } => {
            let ds = open_dataset(&dataset)?;
            print_lines([json_line(&history::pin(&ds, &partition, &version, true, note, &argv)?)?])
        }
        Command::Unpin { dataset, partition, version } => {
            let ds = open_dataset(&dataset)?;
            print_lines([json_line(&history::pin(&ds, &partition, &version, false, None, &argv)?)?])
        }
    }
}

/// The time gc decides by: now, or `SLUICE_GC_NOW` (RFC 3339; a test hook that ages the
/// dataset without waiting).
fn gc_now() -> Result<chrono::DateTime<chrono::Utc>, SluiceError> {
    match std::env::var("SLUICE_GC_NOW") {
        Ok(t) => chrono::DateTime::parse_from_rfc3339(&t)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| SluiceError::Usage(format!("SLUICE_GC_NOW '{t}': {e}"))),
        Err(_) => Ok(chrono::Utc::now()),
    }
}
