//! One function per subcommand: parse what is left of its arguments, call the library, and
//! say what stdout gets (the run's summary, or lines for a reader).

use std::path::Path;

use serde_json::json;
use sluice_extract::Storage;
use sluice_orchestrate::ops::{convert, gc};
use sluice_orchestrate::ops::history::{self, RollbackTarget, RollbackTo};
use sluice_orchestrate::report::html;
use sluice_orchestrate::report::summary::RunSummary;
use sluice_orchestrate::run::{self as job, open_dataset as dataset_of};
use sluice_orchestrate::runtime::Cancel;
use sluice_orchestrate::store::Dataset;
use sluice_orchestrate::types::RunOptions;
use sluice_orchestrate::{Pipeline, SluiceError};

use crate::cli::{Command, RunArgs};
use crate::output::print_lines;

/// What a command leaves on stdout: a run's summary line, or nothing more (it printed its
/// own lines).
pub type Outcome = Result<Option<RunSummary>, SluiceError>;

pub fn dispatch(command: Command, argv: Vec<String>, cancel: &Cancel, progress: bool, loaded: &mut Option<Pipeline>) -> Outcome {
    match command {
        Command::Run(args) => run(args, argv, cancel, progress, loaded),
        Command::Publish { pipeline, run_id, output, params, metrics_file: _, override_checks } => {
            let p = loaded.insert(Pipeline::load_with(&pipeline, &params, true)?);
            job::publish(p, &run_id, output.as_deref(), &argv, override_checks.as_deref()).map(Some)
        }
        Command::Validate { pipeline, params } => validate(&pipeline, &params),
        Command::Versions { dataset, partition, model, json } => versions(&dataset, partition.as_deref(), model.as_deref(), json),
        Command::Show { dataset, as_of, json } => show(&dataset, as_of.as_deref(), json),
        Command::Rollback { dataset, run, model, partition, to, to_commit, dry_run } => {
            let target = match (run, model, partition, to, to_commit) {
                (Some(run_id), None, None, None, None) => RollbackTarget::Run { run_id },
                (None, Some(model), None, None, None) => RollbackTarget::Model { model },
                (None, None, Some(partition), Some(v), None) => RollbackTarget::Partition { partition, to: RollbackTo::Version(v) },
                (None, None, Some(partition), None, Some(n)) => RollbackTarget::Partition { partition, to: RollbackTo::Commit(n) },
                _ => return Err(SluiceError::Usage("give --run RUN_ID, --model MODEL_ID, or --partition K=V with --to VERSION or --to-commit N".into())),
            };
            history::rollback(&open_dataset(&dataset)?, &target, dry_run, &argv).map(Some)
        }
        Command::Gc { dataset, retain, apply, allow_short_retention, json } => gc(&dataset, retain, apply, allow_short_retention, json, &argv),
        Command::Pin { dataset, partition, version, note } => {
            let line = history::pin(&open_dataset(&dataset)?, &partition, &version, true, note, &argv)?;
            print_lines([json_line(&line)?])
        }
        Command::Report { dataset, partitions, html } => report(&dataset, &partitions, &html),
        Command::Convert { dataset } => print_lines([json_line(&convert::convert(&open_dataset(&dataset)?)?)?]),
        Command::Unpin { dataset, partition, version } => {
            let line = history::pin(&open_dataset(&dataset)?, &partition, &version, false, None, &argv)?;
            print_lines([json_line(&line)?])
        }
    }
}

/// `sluice report`: the page, written beside its path and renamed into place.
fn report(dataset: &str, partitions: &[String], path: &Path) -> Outcome {
    let ds = open_dataset(dataset)?;
    let page = html::render(&ds, partitions)?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let io = |e: std::io::Error| SluiceError::other(format!("writing {}", path.display()), e);
    std::fs::write(&tmp, &page).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    print_lines([json_line(&json!({"status": "written", "html": path.display().to_string(), "bytes": page.len()}))?])
}

/// `sluice run`: the partitions from `--date`, `--from/--to` and `--partition`, then the run.
/// The pipeline it loaded is left in `loaded` (for its alerts and metrics).
fn run(args: RunArgs, argv: Vec<String>, cancel: &Cancel, progress: bool, loaded: &mut Option<Pipeline>) -> Outcome {
    let RunArgs {
        pipeline, date, from, to, dry_run, shard, metrics_file: _, statsd: _, mut partitions, force, run_id, input, output, model, params, override_checks,
        rescore_model,
    } = args;
    let p = loaded.insert(Pipeline::load_with(&pipeline, &params, true)?);
    if let Some(old) = rescore_model {
        partitions = job::scored_by(p, output.as_deref(), &old)?;
        if partitions.is_empty() {
            return Err(SluiceError::NoInput { partition: format!("(partitions scored by {old})"), uri: "no current version".into() });
        }
    }
    let mut dates: Vec<String> = date.iter().map(|d| format!("date={d}")).collect();
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
    let cancel = cancel.clone();
    let opts = RunOptions { partitions, force, run_id, input, output, model, command: argv, dry_run, shard, progress, cancel, override_checks };
    job::run(p, opts).map(Some)
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

fn validate(pipeline: &Path, params: &[(String, String)]) -> Outcome {
    let p = Pipeline::load_with(pipeline, params, true)?;
    print_lines([format!(
        "{}: ok ({} dimensions, {} transform steps, {} model features, output {})",
        pipeline.display(),
        p.dimensions.len(),
        p.steps.len(),
        p.model.kind.features().len(),
        p.output.uri
    )])
}

fn versions(dataset: &str, partition: Option<&str>, model: Option<&str>, json: bool) -> Outcome {
    let ds = open_dataset(dataset)?;
    let log = ds.log()?;
    let entries = match model {
        Some(m) => history::history_of_model(&ds, &log, m)?,
        None => history::history(&log, partition),
    };
    if json {
        return print_lines([json_line(&entries)?]);
    }
    let row = |cells: [&str; 7]| {
        let [commit, time, operation, partition, version, rows, checks] = cells;
        format!("{commit:>6}  {time:<20}  {operation:<9}  {partition:<24}  {version:<38}  {rows:>8}  {checks}")
    };
    let header = row(["commit", "time", "operation", "partition", "version", "rows", "checks"]);
    print_lines(std::iter::once(header).chain(entries.iter().map(|e| {
        let operation = if e.pinned == Some(false) { "unpin" } else { e.operation.as_str() };
        let (commit, time) = (e.commit.to_string(), e.timestamp.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        let rows = e.rows.map(|r| r.to_string()).unwrap_or_default();
        let checks = e.checks.as_ref().map(|c| c.describe()).unwrap_or_default();
        row([&commit, &time, operation, &e.partition, e.version.as_deref().unwrap_or("(removed)"), &rows, &checks])
    })))
}

fn show(dataset: &str, as_of: Option<&str>, json: bool) -> Outcome {
    let ds = open_dataset(dataset)?;
    let snap = history::snapshot_as_of(&ds, as_of)?;
    if json {
        let parts: Vec<_> = snap
            .partitions
            .iter()
            .map(|(p, v)| {
                json!({"partition": p, "version": v.version, "rows": v.rows, "published_in": v.published_in,
                       "files": v.files.iter().map(|f| ds.uri_of(f)).collect::<Vec<_>>(), "manifest": ds.uri_of(&v.manifest)})
            })
            .collect();
        return print_lines([json_line(&json!({"dataset": ds.uri(), "commit": snap.commit, "partitions": parts}))?]);
    }
    let mut lines = vec![format!("{} @ commit {}", ds.uri(), snap.commit)];
    for (p, v) in &snap.partitions {
        lines.push(format!("{p}  version {}  rows {}", v.version, v.rows));
        lines.extend(v.files.iter().map(|f| format!("  {}", ds.uri_of(f))));
    }
    print_lines(lines)
}

fn gc(dataset: &str, retain: std::time::Duration, apply: bool, allow_short_retention: bool, json: bool, argv: &[String]) -> Outcome {
    if retain < gc::MIN_RETENTION && !allow_short_retention {
        return Err(SluiceError::Usage(format!(
            "--retain {}: under 1 hour a run still going may need its files; add --allow-short-retention to insist",
            humantime::format_duration(retain)
        )));
    }
    let s = gc::gc(&open_dataset(dataset)?, retain, apply, gc_now()?, argv)?;
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

/// A dataset argument: a URI, or a pipeline file whose output to use (opened as `sluice
/// run` opens it).
fn open_dataset(arg: &str) -> Result<Dataset, SluiceError> {
    if arg.ends_with(".toml") && Path::new(arg).is_file() {
        return dataset_of(&Pipeline::load(Path::new(arg))?, None);
    }
    Dataset::open(Storage::open(arg, None)?)
}

fn json_line<T: serde::Serialize>(v: &T) -> Result<String, SluiceError> {
    serde_json::to_string(v).map_err(|e| SluiceError::other("encoding output", e))
}
