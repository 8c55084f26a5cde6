//! `sluice-extract SOURCE DEST [--date D] [--var K=V]...`: copy one partition's objects from a
//! source template to a landing location, printing one JSON line per object and a summary.
//! Exit codes: 0 copied, 99 nothing to copy, 2 usage, 1 anything else.

// A program: its output is on stdout.
#![allow(clippy::print_stdout)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use sluice_extract::copy::extract;
use sluice_extract::{ExtractError, Policy};

#[derive(Parser)]
#[command(name = "sluice-extract", version, about = "Copy one partition's raw objects to a landing location")]
struct Args {
    /// Source URI template: a local path, s3://, gs://, az://, abfss:// or http(s)://, e.g.
    /// 's3://raw/flights/{date}.csv' (a trailing '/' names a prefix)
    source: String,
    /// Destination folder: a local path, s3://, gs://, az:// or abfss:// (credentials and
    /// endpoints come from the clouds' standard environment: AWS_*, AZURE_*, GOOGLE_*)
    dest: String,
    /// Fill '{date}' in the template (YYYY-MM-DD)
    #[arg(long)]
    date: Option<chrono::NaiveDate>,
    /// Fill '{K}' in the template; repeatable
    #[arg(long = "var", value_name = "K=V", value_parser = parse_kv)]
    vars: Vec<(String, String)>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected K=V, got '{s}'")),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt().with_writer(|| sluice_extract::redact::RedactedStderr).with_ansi(std::io::stderr().is_terminal()).with_env_filter(
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
    ).init();
    let args = Args::parse();
    match run(args) {
        Ok(0) => {
            eprintln!("sluice-extract: no objects to copy");
            println!("{}", serde_json::json!({"status": "skipped", "objects": 0}));
            ExitCode::from(99)
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-extract: error: {e:#}");
            println!("{}", serde_json::json!({"status": "failed", "error": format!("{e:#}")}));
            let usage = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<ExtractError>(),
                    Some(ExtractError::InvalidLocation { .. } | ExtractError::UnsupportedScheme { .. } | ExtractError::ReadOnly { .. } | ExtractError::Refused { .. })
                )
            });
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn run(args: Args) -> anyhow::Result<usize> {
    let mut vars = args.vars;
    if let Some(d) = args.date {
        vars.push(("date".into(), d.to_string()));
    }
    let done = extract(&args.source, &args.dest, &vars, &Policy::open())?;
    for c in &done.copied {
        println!("{}", serde_json::to_string(c)?);
    }
    if done.objects > 0 {
        println!("{}", serde_json::json!({"status": done.status, "objects": done.objects, "bytes": done.bytes}));
    }
    Ok(done.objects)
}
