//! `sluice`: parse, build a validated plan, run, map the error to an exit code.
//! The last line on stdout of `run`, `publish` and `rollback` is a one-line JSON summary,
//! failures included, and panics too (exit 1, never Rust's 101); logs go to stderr. SIGTERM
//! and SIGINT cancel the run: every stage stops, nothing is published, the exit code is 1.
//! A closed stdout (`sluice versions | head`) ends the output quietly.
//!
//! - `cli`: clap's types; `commands`: one function per subcommand; `output`: the summary
//!   line and printed lines.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

use clap::Parser;
use serde_json::json;
use sluice_orchestrate::report::metrics::{self, RunMetrics};
use sluice_orchestrate::report::{alerts, statsd};
use sluice_orchestrate::runtime::{panic_message, Cancel};
use sluice_orchestrate::{exit, Pipeline, SluiceError};

mod alloc;
mod cli;
mod commands;
mod output;

use cli::{Cli, Command, LogFormat, RunArgs};
use commands::Outcome;
use output::{emit, summary_line, write_line};

/// The signal that cancelled the run, for the summary line.
static SIGNAL: OnceLock<&'static str> = OnceLock::new();

/// The subcommands whose last stdout line is the JSON summary.
const SUMMARY_COMMANDS: [&str; 6] = ["run", "publish", "rollback", "gc", "pin", "unpin"];

fn main() -> ExitCode {
    // before any thread starts
    sluice_transform::pin_engine();
    size_engine_pool();
    let argv: Vec<String> = std::env::args().collect();
    let subcommand = argv.iter().skip(1).find(|a| !a.starts_with('-') && !["text", "json"].contains(&a.as_str()));
    let writes_summary = subcommand.is_some_and(|c| SUMMARY_COMMANDS.contains(&c.as_str()));
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, writes_summary),
    };
    init_logging(cli.log_format);
    let cancel = Cancel::default();
    install_signal_handlers(&cancel);
    let started = Instant::now();
    let metrics_target = metrics_target(&cli.command);
    let report_target = report_target(&cli.command);
    let progress = std::io::stderr().is_terminal() && matches!(cli.log_format, LogFormat::Text);
    let summary_file = cli.summary_file.clone();
    install_panic_hook();
    // a bug anywhere still ends with the summary line and exit 1 (stage threads catch their own)
    let mut loaded = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commands::dispatch(cli.command, argv, &cancel, progress, &mut loaded)))
        .unwrap_or_else(|panic| Err(SluiceError::Panic(panic_message(panic.as_ref()))));
    let code = result.as_ref().map_or_else(SluiceError::exit_code, |_| exit::OK);
    if let Some((path, pipeline)) = metrics_target {
        write_metrics(&path, &pipeline, &result, code, started);
    }
    if let Some(line) = summary_line(result, code, writes_summary, SIGNAL.get().copied()) {
        emit(&line, summary_file.as_deref());
        if let Some(target) = report_target {
            report(&target, loaded.as_ref(), &line, started);
        }
    }
    ExitCode::from(code)
}

/// Polars' thread pool: a core fewer than the machine has (at least one), unless
/// `POLARS_MAX_THREADS` says otherwise. The transform's steps run on it while the infer and
/// encode stages work on earlier blocks on their own threads; a pool of every core
/// oversubscribes them: on 2 cores, against a pool of 2, the flight year's wall is the same
/// and the 30x year's peak RSS 135-141 MiB instead of 156-202 (docs/BENCHMARKS.md). Call
/// before any thread starts: Polars reads the variable when it builds the pool.
fn size_engine_pool() {
    if std::env::var_os("POLARS_MAX_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        std::env::set_var("POLARS_MAX_THREADS", (cores - 1).max(1).to_string());
    }
}

/// `sluice run`'s pipeline file, its params and `--statsd`: where its alerts and StatsD
/// metrics go.
struct ReportTarget {
    pipeline: PathBuf,
    params: Vec<(String, String)>,
    statsd: Option<String>,
}

fn report_target(command: &Command) -> Option<ReportTarget> {
    match command {
        Command::Run(RunArgs { pipeline, params, statsd, .. }) => Some(ReportTarget { pipeline: pipeline.clone(), params: params.clone(), statsd: statsd.clone() }),
        Command::Publish { pipeline, params, .. } => Some(ReportTarget { pipeline: pipeline.clone(), params: params.clone(), statsd: None }),
        _ => None,
    }
}

/// Send the pipeline's alerts and StatsD metrics for the summary `line`: those of the
/// pipeline the command `loaded`, else (it failed before) the file's, loaded without its
/// model. A pipeline file that does not load (the run's own usage error) has none.
fn report(target: &ReportTarget, loaded: Option<&Pipeline>, line: &serde_json::Value, started: Instant) {
    let p = match loaded {
        Some(p) => Cow::Borrowed(p),
        None => match Pipeline::load_with(&target.pipeline, &target.params, false) {
            Ok(p) => Cow::Owned(p),
            Err(_) => return,
        },
    };
    alerts::send_all(&p.alerts, &p.name, line);
    if let Some(addr) = target.statsd.as_ref().or(p.runtime.statsd.as_ref()) {
        statsd::send(addr, &p.name, line, started.elapsed().as_secs_f64());
    }
}

/// A command line clap refused: `--help` and `--version` go to stdout with 0; usage errors
/// to stderr with 2, and (for commands with a summary) clap's message up to its usage block
/// as the summary line.
fn usage_error(e: &clap::Error, writes_summary: bool) -> ExitCode {
    let _ = e.print();
    if !e.use_stderr() {
        return ExitCode::SUCCESS;
    }
    if writes_summary {
        let rendered = e.to_string();
        let error: Vec<&str> = rendered.lines().map(str::trim).take_while(|l| !l.starts_with("Usage:")).filter(|l| !l.is_empty()).collect();
        let error = error.join(" ");
        let error = error.trim_start_matches("error: ");
        let _ = write_line(&json!({"status": "failed", "error": format!("usage: {error}"), "exit_code": exit::USAGE}));
    }
    ExitCode::from(exit::USAGE)
}

/// `--metrics-file` of `run` and `publish`: the file, and the pipeline's name for its labels.
fn metrics_target(command: &Command) -> Option<(PathBuf, String)> {
    match command {
        Command::Run(RunArgs { metrics_file: Some(path), pipeline, .. }) | Command::Publish { metrics_file: Some(path), pipeline, .. } => {
            Some((path.clone(), pipeline.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()))
        }
        _ => None,
    }
}

fn write_metrics(path: &std::path::Path, pipeline: &str, result: &Outcome, code: u8, started: Instant) {
    let (status, summary) = match result {
        Ok(s) => (s.as_ref().map(|s| s.status), s.as_ref()),
        Err(e) => (Some(e.status()), None),
    };
    let Some(status) = status else { return };
    let m = RunMetrics { pipeline, status, exit_code: code, summary, duration_s: started.elapsed().as_secs_f64() };
    if let Err(e) = metrics::write(path, &m) {
        tracing::warn!("{e}");
    }
}

/// Panics are logged through tracing (so JSON logs stay JSON) with where they happened.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(thread, at, "panicked: {}", panic_message(info.payload()));
    }));
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
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| "info,buoyant_kernel=off".into());
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

