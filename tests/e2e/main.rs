//! End-to-end tests: the real `sluice` binary on the committed sample (data/sample), each
//! test with its own dataset in a temp folder; outputs are read back as Parquet.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use polars::prelude::*;
use serde_json::Value;

mod bad_input;
mod history;
mod ops;
mod run;
mod text;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const DATE: &str = "2013-01-15";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn pipeline() -> PathBuf {
    repo().join("pipelines/flight_delays.toml")
}

/// A fresh, empty folder for one test.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!("sluice-e2e-{}-{tag}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// The last stdout line, parsed: the summary.
    fn summary(&self) -> Value {
        let line = self.stdout.lines().last().unwrap_or_else(|| panic!("no stdout; stderr:\n{}", self.stderr));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}\nstderr:\n{}", self.stderr))
    }
}

/// Run sluice with a deadline: a hang fails the test instead of blocking CI.
fn sluice_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(SLUICE);
    cmd.args(args).current_dir(repo()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("starting sluice");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(600);
    let watchdog = std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return false;
            }
        }
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        true
    });
    let out = child.wait_with_output().expect("waiting for sluice");
    let _ = watchdog;
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn sluice(args: &[&str]) -> Out {
    sluice_env(args, &[])
}

/// `sluice run` of the sample pipeline into `dataset`, plus extra arguments.
fn run_into(dataset: &Path, extra: &[&str]) -> Out {
    let p = pipeline();
    let mut args = vec!["run", p.to_str().unwrap(), "--output", dataset.to_str().unwrap()];
    args.extend_from_slice(extra);
    sluice(&args)
}

fn read_parquet(path: &str) -> DataFrame {
    ParquetReader::new(File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"))).finish().unwrap()
}

fn kv_metadata(path: &str) -> Vec<(String, String)> {
    let mut r = ParquetReader::new(File::open(path).unwrap());
    let md = r.get_metadata().unwrap();
    md.key_value_metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|kv| (kv.key, kv.value.unwrap_or_default()))
        .collect()
}

/// Data lines (header excluded) of a CSV file.
fn csv_rows(path: &Path) -> u64 {
    std::fs::read_to_string(path).unwrap().lines().skip(1).filter(|l| !l.is_empty()).count() as u64
}

fn commits(dataset: &Path) -> usize {
    std::fs::read_dir(dataset.join("_sluice/commits")).map(|d| d.count()).unwrap_or(0)
}

/// Every file under a folder (a failed run must leave none behind).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A copy of the sample landing zone to corrupt.
fn landing_copy(tag: &str) -> PathBuf {
    let dst = temp_dir(tag).join("landing");
    for sub in ["flights", "dims"] {
        std::fs::create_dir_all(dst.join(sub)).unwrap();
        for e in std::fs::read_dir(repo().join("data/sample/landing").join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(sub).join(e.file_name())).unwrap();
        }
    }
    dst
}
