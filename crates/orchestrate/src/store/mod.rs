//! The dataset store: immutable versioned Parquet files, published by put-if-absent commits.
//! This module and [`attempt`] are the only code that knows the on-disk layout.
//!
//! Layout under the dataset root (local path or object store, always through
//! `Arc<dyn ObjectStore>`):
//!
//! ```text
//! _sluice/commits/00000000000000000001.json          commit records, zero-padded, put-if-absent
//! _sluice/checkpoints/00000000000000000100.json      the folded log every 100 commits ([`checkpoint`])
//! _sluice/runs/<run_id>/shard-00000-of-00004.<attempt>.json   a shard attempt's staging record
//! <key>=<value>/<run_id>/<attempt>/part-00000.parquet   a version's data files
//! <key>=<value>/<run_id>/<attempt>/quarantine.parquet   its quarantined rows
//! <key>=<value>/<run_id>/<attempt>/manifest.json        its lineage
//! ```
//!
//! A run id names one logical run; each process working for it is an *attempt* with a
//! random nonce, and every object an attempt writes is created put-if-absent under a path
//! that holds that nonce ([`Attempt`]). So two attempts never write the same object, and
//! nothing is ever overwritten.
//!
//! The commit protocol, as a state machine:
//! 1. *write*: an attempt writes its files under its own folders. Readers never look there
//!    unless a commit points to it, so a crash here leaves only unreferenced debris.
//! 2. *read state*: the current state is the fold of commits 1..=N, in order (each commit
//!    sets or removes partitions' current versions). Readers find versions only this way,
//!    never by listing data folders.
//! 3. *commit*: create commit N+1 with put-if-absent, built on the state the caller read
//!    (`base`). If N+1 already exists another writer won: read it. If it is a publish by the
//!    same run id, the run is already published ([`CommitOutcome::AlreadyPublished`]); if it
//!    touched one of our partitions it is a [`Conflict`] (exit 4, retrying may help);
//!    otherwise retry as N+2, and so on. A failed commit write whose outcome is unknown (an
//!    I/O error or timeout on the write itself) is [`CommitUnknown`]: the attempt keeps its
//!    files, since the commit may have landed.
//!
//! A multi-partition run is one commit, so readers see all of it or none. Rollback is a new
//! commit that re-points partitions to earlier versions (their files must still exist):
//! reversible, and recorded in the history. `snapshot(Some(n))` reads the state as of
//! commit `n` (time travel).
//!
//! [`Conflict`]: crate::SluiceError::Conflict
//! [`CommitUnknown`]: crate::SluiceError::CommitUnknown

pub mod attempt;
pub mod checkpoint;

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_extract::{PutOutcome, Storage};

pub use attempt::Attempt;

use crate::audit::CheckTally;
pub use checkpoint::{Checkpoint, Head};

use crate::SluiceError;

const COMMITS_DIR: &str = "_sluice/commits";
const RUNS_DIR: &str = "_sluice/runs";
/// A writer that keeps losing the race to writers on other partitions gives up after this
/// many commits (each lost race means the log grew by one).
const MAX_COMMIT_ATTEMPTS: usize = 10_000;

/// One version of one partition: the files a reader opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionVersion {
    /// The id of the run that wrote the files.
    pub version: String,
    /// Dataset-relative paths of the Parquet data files.
    pub files: Vec<String>,
    pub rows: u64,
    /// The run fingerprint that produced this version (inputs + pipeline + model + parameters).
    pub fingerprint: String,
    /// Dataset-relative path of the version's manifest.
    pub manifest: String,
    /// The commit that first published this version.
    pub published_in: u64,
    /// The pipeline's checks on it, counted (and an override's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<CheckTally>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Publish,
    Rollback,
    /// Pins or unpins versions ([`Commit::pins`]); the state does not change.
    Pin,
    /// Garbage collection: records what it deletes ([`Commit::gc`]) before deleting it.
    Gc,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Publish => "publish",
            Operation::Rollback => "rollback",
            Operation::Pin => "pin",
            Operation::Gc => "gc",
        }
    }
}

/// A pin set or removed by a commit: a pinned version is never garbage-collected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinChange {
    pub partition: String,
    pub version: String,
    /// `false`: unpin.
    pub pinned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a gc commit collects; it is written before anything is deleted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GcRecord {
    /// Versions replaced before this time (and not pinned) were collected.
    pub cutoff: DateTime<Utc>,
    pub retain_s: u64,
    /// Versions whose files are deleted: (partition, version).
    pub versions: Vec<(String, String)>,
    /// Folders of attempts no commit references (failed or killed runs), deleted whole.
    pub debris: Vec<String>,
    /// Shard staging records deleted.
    pub records: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

/// A commit record: which partitions now point where (`None` removes a partition).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    pub commit: u64,
    pub timestamp: DateTime<Utc>,
    pub operation: Operation,
    /// The run that published, or the id of the rollback action.
    pub run_id: String,
    /// The attempt of the run that wrote this commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
    pub partitions: BTreeMap<String, Option<PartitionVersion>>,
    /// For rollbacks: what each partition pointed to before.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub previous: BTreeMap<String, Option<String>>,
    pub sluice_version: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pins: Vec<PinChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc: Option<GcRecord>,
}

/// What to commit, and on which state it was decided.
#[derive(Debug, Clone)]
pub struct CommitRequest<'a> {
    /// The last commit the caller read before deciding.
    pub base: u64,
    pub operation: Operation,
    pub run_id: &'a str,
    pub attempt: Option<&'a str>,
    pub partitions: BTreeMap<String, Option<PartitionVersion>>,
    pub previous: BTreeMap<String, Option<String>>,
    pub command: &'a [String],
    pub pins: Vec<PinChange>,
    pub gc: Option<GcRecord>,
}

impl<'a> CommitRequest<'a> {
    /// A request that only moves partitions (publish, rollback).
    pub fn new(base: u64, operation: Operation, run_id: &'a str, partitions: BTreeMap<String, Option<PartitionVersion>>, command: &'a [String]) -> Self {
        CommitRequest { base, operation, run_id, attempt: None, partitions, previous: BTreeMap::new(), command, pins: Vec::new(), gc: None }
    }

    /// The (partition, version) pairs and attempt folders this commit relies on existing.
    fn relies_on(&self) -> (Vec<(String, String)>, Vec<String>) {
        let mut versions: Vec<(String, String)> =
            self.partitions.iter().filter_map(|(p, v)| v.as_ref().map(|v| (p.clone(), v.version.clone()))).collect();
        versions.extend(self.pins.iter().filter(|c| c.pinned).map(|c| (c.partition.clone(), c.version.clone())));
        let dirs = self.partitions.values().flatten().filter_map(|v| v.files.first().and_then(|f| attempt_dir(f))).collect();
        (versions, dirs)
    }
}

/// The attempt folder (`<partition>/<run_id>/<attempt>`) of a data file's path.
pub fn attempt_dir(file: &str) -> Option<String> {
    let parts: Vec<&str> = file.split('/').collect();
    (parts.len() == 4).then(|| parts[..3].join("/"))
}

/// How a commit ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// This call created commit N.
    Committed(u64),
    /// Another attempt of the same run id published first, as commit N.
    AlreadyPublished(u64),
}

/// The state of a dataset as of a commit.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// 0 for an empty dataset.
    pub commit: u64,
    pub partitions: BTreeMap<String, PartitionVersion>,
}

/// A versioned dataset at a storage root.
pub struct Dataset {
    storage: Storage,
}

fn commit_path(n: u64) -> String {
    format!("{COMMITS_DIR}/{n:020}.json")
}

fn run_dir(partition: &str, run_id: &str) -> String {
    format!("{partition}/{run_id}")
}

impl Dataset {
    /// A dataset at `storage`'s root. Plain HTTP is refused: it cannot commit.
    pub fn open(storage: Storage) -> Result<Self, SluiceError> {
        if !storage.is_writable() {
            return Err(sluice_extract::ExtractError::ReadOnly { uri: storage.uri().to_string() }.into());
        }
        Ok(Dataset { storage })
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn uri(&self) -> &str {
        self.storage.uri()
    }

    /// The URI a plain reader opens for a dataset-relative path.
    pub fn uri_of(&self, rel: &str) -> String {
        self.storage.uri_of(rel)
    }

    /// Where the attempts of `run_id` put their files for `partition` (for plans).
    pub fn run_dir_uri(&self, partition: &str, run_id: &str) -> String {
        format!("{}/", self.storage.uri_of(&run_dir(partition, run_id)))
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> SluiceError {
        SluiceError::Store(format!("{}: {what}: {e}", self.uri()))
    }

    /// Start an attempt of `run_id`: a fresh nonce, nothing written yet.
    pub fn begin(&self, run_id: &str) -> Attempt {
        Attempt::new(self.storage.clone(), run_id)
    }

    /// Every commit, in order. The log must be contiguous from 1.
    pub fn log(&self) -> Result<Vec<Commit>, SluiceError> {
        let mut numbers: Vec<u64> = Vec::new();
        for (rel, _) in self.storage.list(COMMITS_DIR)? {
            let name = rel.rsplit('/').next().unwrap_or("");
            if let Some(n) = name.strip_suffix(".json").and_then(|s| s.parse::<u64>().ok()) {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        let mut out = Vec::with_capacity(numbers.len());
        for (i, n) in numbers.into_iter().enumerate() {
            if n != i as u64 + 1 {
                return Err(self.err("commit log", format!("commit {} is missing (found {n})", i + 1)));
            }
            out.push(self.read_commit(n)?);
        }
        Ok(out)
    }

    /// Commit `n`.
    pub fn read_commit(&self, n: u64) -> Result<Commit, SluiceError> {
        let bytes = self.storage.get(&commit_path(n))?;
        serde_json::from_slice(&bytes).map_err(|e| self.err(&commit_path(n), e))
    }

    /// The state after commit `as_of` (default: the latest, read from the last checkpoint).
    pub fn snapshot(&self, as_of: Option<u64>) -> Result<Snapshot, SluiceError> {
        match as_of {
            None => Ok(self.head()?.snapshot()),
            Some(n) => self.snapshot_in(&self.log()?, n),
        }
    }

    /// The state after commit `n` of `log` (this dataset's log, as read by the caller).
    pub fn snapshot_in(&self, log: &[Commit], n: u64) -> Result<Snapshot, SluiceError> {
        if n > log.len() as u64 {
            return Err(SluiceError::Usage(format!("{}: no commit {n} (latest is {})", self.uri(), log.len())));
        }
        Ok(fold(log, Some(n)))
    }

    /// Create the next commit on top of `req.base`, retrying past commits that touched
    /// other partitions. Prefer [`Attempt::commit`] for a run's files: it also knows when the
    /// attempt may still remove them.
    pub fn commit(&self, mut req: CommitRequest<'_>) -> Result<CommitOutcome, SluiceError> {
        for next in (req.base + 1..).take(MAX_COMMIT_ATTEMPTS) {
            if req.operation == Operation::Publish {
                req.partitions.values_mut().flatten().for_each(|v| v.published_in = next);
            }
            let record = Commit {
                commit: next,
                timestamp: Utc::now(),
                operation: req.operation,
                run_id: req.run_id.to_string(),
                attempt: req.attempt.map(str::to_string),
                partitions: req.partitions.clone(),
                previous: req.previous.clone(),
                sluice_version: env!("CARGO_PKG_VERSION").to_string(),
                command: req.command.to_vec(),
                pins: req.pins.clone(),
                gc: req.gc.clone(),
            };
            let body = serde_json::to_vec_pretty(&record).map_err(|e| self.err("encoding commit", e))?;
            match self.storage.put_if_absent(&commit_path(next), Bytes::from(body)) {
                Ok(PutOutcome::Created) => {
                    tracing::info!(dataset = self.uri(), commit = next, run_id = req.run_id, "committed");
                    if next % checkpoint::CHECKPOINT_EVERY == 0 {
                        self.write_checkpoint(next);
                    }
                    return Ok(CommitOutcome::Committed(next));
                }
                Ok(PutOutcome::AlreadyExists) => {}
                Err(e) => {
                    return Err(SluiceError::CommitUnknown { dataset: self.uri().to_string(), commit: next, reason: e.to_string() })
                }
            }
            let theirs = self.read_commit(next)?;
            if req.attempt.is_some() && theirs.attempt.as_deref() == req.attempt && theirs.run_id == req.run_id {
                // our own write landed and a retry of the request found it
                tracing::info!(commit = next, run_id = req.run_id, "commit written by this attempt (a retried request found it)");
                return Ok(CommitOutcome::Committed(next));
            }
            if req.operation == Operation::Publish && theirs.operation == Operation::Publish && theirs.run_id == req.run_id {
                tracing::info!(commit = next, run_id = req.run_id, "another attempt of this run published first");
                return Ok(CommitOutcome::AlreadyPublished(next));
            }
            if let Some(gc) = &theirs.gc {
                let (versions, dirs) = req.relies_on();
                if let Some(hit) = versions.iter().find(|v| gc.versions.contains(v)).map(|(p, v)| format!("version {v} of {p}")).or_else(|| dirs.iter().find(|d| gc.debris.contains(d)).cloned()) {
                    return Err(SluiceError::Conflict {
                        dataset: self.uri().to_string(),
                        reason: format!("gc (commit {next}) collected {hit}, which this commit needs; re-run"),
                    });
                }
            }
            if req.operation == Operation::Gc {
                // a gc decides on the whole log: any newer commit means deciding again
                return Err(SluiceError::Conflict { dataset: self.uri().to_string(), reason: format!("commit {next} landed while gc planned") });
            }
            if let Some(p) = theirs.partitions.keys().find(|p| req.partitions.contains_key(*p)) {
                return Err(SluiceError::Conflict {
                    dataset: self.uri().to_string(),
                    reason: format!(
                        "commit {next} (run {}) changed partition {p} after commit {}, which this run built on; re-run to build on it",
                        theirs.run_id, req.base
                    ),
                });
            }
            tracing::info!(commit = next, "lost the race for a commit on other partitions; retrying");
        }
        Err(SluiceError::Conflict {
            dataset: self.uri().to_string(),
            reason: format!("gave up after {MAX_COMMIT_ATTEMPTS} attempts"),
        })
    }

    /// Files of `v` that are missing, as dataset-relative paths.
    pub fn missing_files(&self, v: &PartitionVersion) -> Result<Vec<String>, SluiceError> {
        let mut missing = Vec::new();
        for f in &v.files {
            if !self.storage.exists(f)? {
                missing.push(f.clone());
            }
        }
        Ok(missing)
    }

    /// Every version a partition ever had, in the order they were first published.
    pub fn versions_of(&self, log: &[Commit], partition: &str) -> Vec<PartitionVersion> {
        let mut seen: Vec<PartitionVersion> = Vec::new();
        for c in log {
            if let Some(Some(v)) = c.partitions.get(partition) {
                if !seen.iter().any(|s| s.version == v.version) {
                    seen.push(v.clone());
                }
            }
        }
        seen
    }

    /// The staging records of every attempt of every shard of `run_id`: (path, bytes).
    pub fn shard_records(&self, run_id: &str) -> Result<Vec<(String, Bytes)>, SluiceError> {
        let mut out = Vec::new();
        for (rel, _) in self.storage.list(&format!("{RUNS_DIR}/{run_id}/"))? {
            if rel.ends_with(".json") {
                let bytes = self.storage.get(&rel)?;
                out.push((self.storage.uri_of(&rel), bytes));
            }
        }
        Ok(out)
    }
}

/// The publish commit of `run_id`, if the log has one: a run id names one logical run, and
/// once it is published every later attempt of it has nothing to do.
pub fn published_by<'a>(log: &'a [Commit], run_id: &str) -> Option<&'a Commit> {
    log.iter().find(|c| c.operation == Operation::Publish && c.run_id == run_id)
}

/// Whether a commit after `base`, by another run, touched one of `partitions`: then a
/// decision made on `base` about them is stale.
pub fn touched_since<'a>(log: &'a [Commit], base: u64, run_id: &str, partitions: &[&str]) -> Option<&'a Commit> {
    log.iter()
        .filter(|c| c.commit > base && c.run_id != run_id)
        .find(|c| c.partitions.keys().any(|p| partitions.contains(&p.as_str())))
}

/// A pin in force.
#[derive(Debug, Clone, Serialize)]
pub struct Pin {
    pub partition: String,
    pub version: String,
    pub note: Option<String>,
    pub commit: u64,
    pub timestamp: DateTime<Utc>,
}

/// The pins in force after `log`.
pub fn pins(log: &[Commit]) -> Vec<Pin> {
    let mut out: Vec<Pin> = Vec::new();
    for c in log {
        for ch in &c.pins {
            out.retain(|p| !(p.partition == ch.partition && p.version == ch.version));
            if ch.pinned {
                let (partition, version, note) = (ch.partition.clone(), ch.version.clone(), ch.note.clone());
                out.push(Pin { partition, version, note, commit: c.commit, timestamp: c.timestamp });
            }
        }
    }
    out
}

/// The gc commit that collected `version` of `partition`, if one did.
pub fn collected_by<'a>(log: &'a [Commit], partition: &str, version: &str) -> Option<&'a Commit> {
    log.iter().find(|c| c.gc.as_ref().is_some_and(|g| g.versions.iter().any(|(p, v)| p == partition && v == version)))
}

/// The state after commit `as_of` (all of `log` when `None`).
pub fn fold(log: &[Commit], as_of: Option<u64>) -> Snapshot {
    let mut snap = Snapshot::default();
    log.iter().take_while(|c| as_of.is_none_or(|n| c.commit <= n)).for_each(|c| snap.apply(c));
    snap
}

impl Snapshot {
    /// The state after `c`, the commit following this state.
    pub fn apply(&mut self, c: &Commit) {
        for (p, v) in &c.partitions {
            match v {
                Some(v) => self.partitions.insert(p.clone(), v.clone()),
                None => self.partitions.remove(p),
            };
        }
        self.commit = c.commit;
    }
}

/// `key=value`, with a value that is safe as one path segment.
pub fn validate_partition(p: &str) -> Result<(), SluiceError> {
    let bad = || {
        SluiceError::Usage(format!("invalid partition '{p}': expected KEY=VALUE, letters, digits, '_', '-', '.', ':' only"))
    };
    let (k, v) = p.split_once('=').ok_or_else(bad)?;
    let ok_key = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let ok_val = !v.is_empty()
        && v != "."
        && v != ".."
        && v.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
    if ok_key && ok_val {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Run ids name folders: letters, digits, '-', '_' and '.', not '.' or '..'.
pub fn validate_run_id(id: &str) -> Result<(), SluiceError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SluiceError::Usage(format!("invalid run id '{id}': letters, digits, '-', '_', '.' only")))
    }
}

/// A new run id: UTC time plus 32 random bits, sortable by start time.
pub fn new_run_id() -> String {
    format!("{}-{:08x}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string().replace('.', ""), rand::random::<u32>())
}

/// Datasets and commit requests for the store's tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// An empty dataset in a fresh temporary folder.
    pub(crate) fn temp_dataset(tag: &str) -> (Dataset, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("sluice-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Dataset::open(Storage::open(dir.to_str().unwrap(), None).unwrap()).unwrap(), dir)
    }

    /// Publish `run`'s version of partition `p`, made of `files`, decided on `base`.
    pub(crate) fn publish<'a>(base: u64, run: &'a str, p: &str, files: Vec<String>) -> CommitRequest<'a> {
        let v = PartitionVersion {
            version: run.into(),
            files,
            rows: 1,
            fingerprint: format!("fp-{run}"),
            manifest: String::new(),
            published_in: 0,
            checks: None,
        };
        CommitRequest::new(base, Operation::Publish, run, BTreeMap::from([(p.to_string(), Some(v))]), &[])
    }
}

#[cfg(test)]
mod tests {
    use super::testing::temp_dataset;
    use super::*;

    fn publish<'a>(base: u64, run: &'a str, p: &str) -> CommitRequest<'a> {
        super::testing::publish(base, run, p, vec![])
    }

    #[test]
    fn racing_writers_on_one_partition_one_wins_the_other_conflicts() {
        let (ds, dir) = temp_dataset("race");
        assert_eq!(ds.commit(publish(0, "a", "d=1")).unwrap(), CommitOutcome::Committed(1));
        // a second writer decided on base 0 too and touches the same partition
        let e = ds.commit(publish(0, "b", "d=1")).unwrap_err();
        assert!(matches!(e, SluiceError::Conflict { .. }), "{e}");
        // a writer on another partition retries on top
        assert_eq!(ds.commit(publish(0, "c", "d=2")).unwrap(), CommitOutcome::Committed(2));
        // another attempt of run "a", decided on base 0: the run is already published
        assert_eq!(ds.commit(publish(0, "a", "d=1")).unwrap(), CommitOutcome::AlreadyPublished(1));
        let snap = ds.snapshot(None).unwrap();
        assert_eq!(snap.commit, 2);
        assert_eq!(snap.partitions["d=1"].version, "a");
        assert_eq!(snap.partitions["d=1"].published_in, 1);
        assert_eq!(ds.snapshot(Some(1)).unwrap().partitions.len(), 1);
        let log = ds.log().unwrap();
        assert_eq!(published_by(&log, "c").map(|c| c.commit), Some(2));
        assert_eq!(touched_since(&log, 0, "a", &["d=2"]).map(|c| c.commit), Some(2));
        assert!(touched_since(&log, 0, "a", &["d=1"]).is_none(), "its own commit is not a change by another run");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn threads_racing_for_the_same_commit_number_yield_exactly_one_winner() {
        let (ds, dir) = temp_dataset("threads");
        let ds = std::sync::Arc::new(ds);
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let ds = ds.clone();
                std::thread::spawn(move || ds.commit(publish(0, &format!("r{i}"), "d=1")))
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, SluiceError::Conflict { .. })));
        assert_eq!(ds.log().unwrap().len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn partition_and_run_id_validation_refuses_path_escapes() {
        assert!(validate_partition("date=2013-01-15").is_ok());
        for bad in ["date=..", "date=../x", "=1", "date", "date=a/b", "da te=1"] {
            assert!(validate_partition(bad).is_err(), "{bad}");
        }
        assert!(validate_run_id(&new_run_id()).is_ok());
        assert!(validate_run_id("../etc").is_err());
    }
}
