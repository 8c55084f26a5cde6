//! End-to-end tests: the real `sluice` binary on the committed sample (data/sample), each
//! test with its own dataset in a temp folder; outputs are read back as Parquet.

// Test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use polars::prelude::*;
use serde_json::Value;

mod alerts;
mod bad_input;
mod batching;
mod concurrency;
mod contract;
mod crash;
mod delta;
mod faults;
mod gc;
mod history;
mod line_ends;
mod models;
mod ops;
mod proxy;
mod quality;
mod run;
mod stores;
mod text;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const DATE: &str = "2013-01-15";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn pipeline() -> PathBuf {
    repo().join("pipelines/flight_delays.toml")
}

/// The flight pipeline with absolute paths and `runtime` as its `[runtime]` section, plus
/// `extra_step` (a `[[transform]]` table) after the others, written into `dir`.
fn pipeline_variant(dir: &Path, runtime: &str, extra_step: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let text = std::fs::read_to_string(pipeline()).unwrap().replace("\"../", &format!("\"{}/", repo().display()));
    let (head, _) = text.split_once("[runtime]").unwrap();
    let (before, after) = head.split_once("# Checks on each new version").unwrap();
    let path = dir.join(format!("pipeline-{}.toml", N.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(&path, format!("{before}{extra_step}\n# Checks on each new version{after}[runtime]\n{runtime}\n")).unwrap();
    path
}

/// The flight pipeline with one partition per item (no batching): for tests that count
/// items (`SLUICE_FAIL_STAGE=write:N` is then the N-th partition).
fn pipeline_one_partition_per_item() -> PathBuf {
    static P: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    P.get_or_init(|| pipeline_variant(&temp_dir("pipelines"), "batch_kib = 0", "")).clone()
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

/// How long any one sluice process may take before the test kills it and fails.
const DEADLINE: Duration = Duration::from_secs(600);

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(SLUICE);
    cmd.args(args).current_dir(repo()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Wait for a child with a deadline: a hang fails the test instead of blocking CI.
fn finish(child: Child) -> Out {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.expect("waiting for sluice"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("sluice (pid {pid}) did not finish within {DEADLINE:?}");
        }
    };
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run sluice to the end.
fn sluice_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    finish(command(args, env).spawn().expect("starting sluice"))
}

/// A sluice process the test steers: it reads its log line by line, can release a run
/// held at a point (`SLUICE_HOLD_AT`, a line on stdin), and can signal it.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    stderr_reader: std::thread::JoinHandle<()>,
}

impl Running {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
        Running::spawn(command(args, env))
    }

    /// Start `cmd` (stdout and stderr piped) with its stdin piped.
    fn spawn(mut cmd: Command) -> Running {
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().expect("starting sluice");
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        Running { child, stdin, lines, log, stderr_reader }
    }

    /// Read the log until a line contains `needle`; panics if the process ends first.
    fn wait_for(&self, needle: &str) {
        loop {
            match self.lines.recv_timeout(DEADLINE) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no '{needle}' within {DEADLINE:?}:\n{}", self.log()),
                Err(RecvTimeoutError::Disconnected) => panic!("sluice ended without logging '{needle}':\n{}", self.log()),
            }
        }
    }

    /// Read `n` log lines (fewer if the process ends first).
    fn wait_lines(&self, n: usize) {
        for _ in 0..n {
            if self.lines.recv_timeout(DEADLINE).is_err() {
                return;
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Let a run held at a point go on.
    fn release(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(b"go\n").expect("writing to sluice's stdin");
        stdin.flush().unwrap();
    }

    fn signal(&self, signal: &str) {
        assert!(Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status().unwrap().success());
    }

    /// Wait for the end; stdin stays open until then (its end would release a hold).
    fn finish(mut self) -> Out {
        let stdin = self.stdin.take();
        let mut out = finish(self.child);
        drop(stdin);
        self.stderr_reader.join().unwrap();
        out.stderr = self.log.lock().unwrap().clone();
        out
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
    commit_records(dataset).len()
}

/// The commit records on disk, in order (the test reads the Delta log as any reader would).
fn commit_records(dataset: &Path) -> Vec<Value> {
    let Ok(dir) = std::fs::read_dir(dataset.join("_delta_log")) else { return Vec::new() };
    let mut names: Vec<PathBuf> = dir.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    names.sort();
    names.iter().skip(1).map(|p| delta_commit(&std::fs::read(p).unwrap())).collect()
}

/// One Delta commit file as sluice's commit record: the record sluice keeps in
/// `commitInfo`, with `partitions` rebuilt from the `add` and `remove` actions (each
/// partition's version, files in order, rows, manifest and fingerprint from the adds'
/// `sluice.*` tags; a partition only removed is null).
fn delta_commit(bytes: &[u8]) -> Value {
    let actions: Vec<Value> = String::from_utf8_lossy(bytes).lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut record = actions.iter().find_map(|a| a["commitInfo"].get("sluice").cloned()).unwrap_or_else(|| serde_json::json!({}));
    let part = |a: &Value| a["partitionValues"].as_object().unwrap().iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap())).next().unwrap();
    let mut partitions = serde_json::Map::new();
    for r in actions.iter().filter_map(|a| a.get("remove")) {
        partitions.insert(part(r), Value::Null);
    }
    let mut adds: Vec<&Value> = actions.iter().filter_map(|a| a.get("add")).collect();
    adds.sort_by_key(|a| a["tags"]["sluice.file"].as_str().unwrap().parse::<u64>().unwrap());
    for a in adds {
        let rows = serde_json::from_str::<Value>(a["stats"].as_str().unwrap()).unwrap()["numRecords"].as_u64().unwrap();
        let v = partitions.entry(part(a)).or_insert(Value::Null);
        if v.is_null() {
            let t = &a["tags"];
            let checks = t["sluice.checks"].as_str().map_or(Value::Null, |c| serde_json::from_str(c).unwrap());
            *v = serde_json::json!({"version": t["sluice.version"], "manifest": t["sluice.manifest"], "fingerprint": t["sluice.fingerprint"], "checks": checks,
                                     "published_in": t["sluice.publishedIn"].as_str().unwrap().parse::<u64>().unwrap(), "model": t["sluice.model"], "files": [], "rows": 0});
        }
        v["files"].as_array_mut().unwrap().push(a["path"].clone());
        v["rows"] = (v["rows"].as_u64().unwrap() + rows).into();
    }
    record["partitions"] = Value::Object(partitions);
    record
}

/// The manifest of `version` of `partition`, found through the commit log.
fn manifest(dataset: &Path, partition: &str, version: &str) -> Value {
    let rel = commit_records(dataset)
        .iter()
        .filter_map(|c| c["partitions"].get(partition).filter(|v| v["version"] == version).cloned())
        .map(|v| v["manifest"].as_str().unwrap().to_string())
        .next()
        .unwrap_or_else(|| panic!("no commit published {partition} version {version}"));
    serde_json::from_slice(&std::fs::read(dataset.join(rel)).unwrap()).unwrap()
}

/// Every dataset-relative path any commit references (data files and manifests).
fn referenced_files(dataset: &Path) -> std::collections::BTreeSet<PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    for c in commit_records(dataset) {
        for v in c["partitions"].as_object().unwrap().values().filter(|v| !v.is_null()) {
            out.insert(dataset.join(v["manifest"].as_str().unwrap()));
            for f in v["files"].as_array().unwrap() {
                out.insert(dataset.join(f.as_str().unwrap()));
            }
        }
    }
    out
}

/// Every file under `dataset` outside `_sluice/` that no commit references.
fn unreferenced_files(dataset: &Path) -> Vec<PathBuf> {
    let referenced = referenced_files(dataset);
    files_under(dataset)
        .into_iter()
        .filter(|f| !f.starts_with(dataset.join("_sluice")) && !f.starts_with(dataset.join("_delta_log")) && !referenced.contains(f))
        // quarantine files are listed in manifests, not in commits
        .filter(|f| f.file_name().is_none_or(|n| n != "quarantine.parquet"))
        .collect()
}

/// Every file of every version the log ever published exists and holds the rows its commit
/// records. Returns file -> bytes, to check later that nothing changed.
fn check_published(dataset: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut seen = BTreeMap::new();
    for c in commit_records(dataset) {
        for (part, v) in c["partitions"].as_object().unwrap().iter().filter(|(_, v)| !v.is_null()) {
            let mut rows = 0;
            for f in v["files"].as_array().unwrap() {
                let path = dataset.join(f.as_str().unwrap());
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("commit {}: {part}: {}: {e}", c["commit"], path.display()));
                rows += ParquetReader::new(std::io::Cursor::new(&bytes)).finish().unwrap().height() as u64;
                seen.insert(path, bytes);
            }
            assert_eq!(rows, v["rows"].as_u64().unwrap(), "commit {}: {part}: rows", c["commit"]);
        }
    }
    seen
}

/// `sluice show --json` works, says what Delta's replay of the log says without the cached
/// state (`_sluice/heads`, moved aside for a second show), and every file it lists holds the
/// rows it says.
fn check_show(dataset: &Path) -> Value {
    let show_json = || {
        let out = sluice(&["show", dataset.to_str().unwrap(), "--json"]);
        assert_eq!(out.code, 0, "show: {}", out.stderr);
        serde_json::from_str::<Value>(out.stdout.lines().last().unwrap()).unwrap()
    };
    let show = show_json();
    let (heads, aside) = (dataset.join("_sluice/heads"), dataset.join("_sluice/heads-aside"));
    if heads.exists() {
        std::fs::rename(&heads, &aside).unwrap();
        let replayed = show_json();
        std::fs::rename(&aside, &heads).unwrap();
        assert_eq!(show, replayed, "the cached state is the log's");
    }
    for p in show["partitions"].as_array().unwrap() {
        let rows: usize = p["files"].as_array().unwrap().iter().map(|f| read_parquet(f.as_str().unwrap()).height()).sum();
        assert_eq!(rows as u64, p["rows"].as_u64().unwrap(), "{p}");
    }
    show
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
