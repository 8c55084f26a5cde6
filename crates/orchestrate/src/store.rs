//! The dataset store: immutable versioned Parquet files, published by put-if-absent commits.
//!
//! Layout under the dataset root (local path or object store, always through
//! `Arc<dyn ObjectStore>`):
//!
//! ```text
//! _sluice/commits/00000000000000000001.json   commit records, zero-padded, created put-if-absent
//! <key>=<value>/<run_id>/part-00000.parquet    a version's data files, written once, never replaced
//! <key>=<value>/<run_id>/quarantine.parquet    its quarantined rows (file, line, column, value, reason)
//! <key>=<value>/<run_id>/manifest.json         its lineage
//! ```
//!
//! The commit protocol, as a state machine:
//! 1. *write*: a run writes its files under paths unique to its run id. Readers never look
//!    there unless a commit points to it, so a crash here leaves only unreferenced debris.
//! 2. *read state*: the current state is the fold of commits 1..=N, in order (each commit
//!    sets or removes partitions' current versions). Readers find versions only this way,
//!    never by listing data folders.
//! 3. *commit*: create commit N+1 with put-if-absent. If it already exists another writer
//!    won: re-read; if that writer touched one of our partitions it is a [`Conflict`]
//!    (exit 4, retrying may help), otherwise retry as N+2, and so on.
//!
//! A multi-partition run is one commit, so readers see all of it or none. Rollback is a new
//! commit that re-points partitions to earlier versions (their files must still exist):
//! reversible, and recorded in the history. `snapshot(Some(n))` reads the state as of
//! commit `n` (time travel).
//!
//! [`Conflict`]: crate::SluiceError::Conflict

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_extract::{PutOutcome, Storage};

use crate::SluiceError;

pub const COMMITS_DIR: &str = "_sluice/commits";
const MAX_COMMIT_ATTEMPTS: usize = 20;

/// One version of one partition: the files a reader opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionVersion {
    /// The id of the run that wrote the files (also their folder name).
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Publish,
    Rollback,
}

/// A commit record: which partitions now point where (`None` removes a partition).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    pub commit: u64,
    pub timestamp: DateTime<Utc>,
    pub operation: Operation,
    /// The run that published, or the id of the rollback action.
    pub run_id: String,
    pub partitions: BTreeMap<String, Option<PartitionVersion>>,
    /// For rollbacks: what each partition pointed to before.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub previous: BTreeMap<String, Option<String>>,
    pub sluice_version: String,
    #[serde(default)]
    pub command: Vec<String>,
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

impl Dataset {
    pub fn open(storage: Storage) -> Self {
        Dataset { storage }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn uri(&self) -> &str {
        self.storage.uri()
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> SluiceError {
        SluiceError::Store(format!("{}: {what}: {e}", self.uri()))
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

    fn read_commit(&self, n: u64) -> Result<Commit, SluiceError> {
        let bytes = self.storage.get(&commit_path(n))?;
        serde_json::from_slice(&bytes).map_err(|e| self.err(&commit_path(n), e))
    }

    /// The state after commit `as_of` (default: the latest).
    pub fn snapshot(&self, as_of: Option<u64>) -> Result<Snapshot, SluiceError> {
        let log = self.log()?;
        if let Some(n) = as_of {
            if n > log.len() as u64 {
                return Err(SluiceError::Usage(format!("{}: no commit {n} (latest is {})", self.uri(), log.len())));
            }
        }
        Ok(fold(&log, as_of))
    }

    /// The state as of a time: the last commit at or before `t`.
    pub fn snapshot_at(&self, t: DateTime<Utc>) -> Result<Snapshot, SluiceError> {
        let log = self.log()?;
        let n = log.iter().filter(|c| c.timestamp <= t).map(|c| c.commit).max().unwrap_or(0);
        Ok(fold(&log, Some(n)))
    }

    /// Publish `partitions` as one commit, retrying on a lost race that did not touch them.
    /// `base` is the commit the caller's decisions were made on.
    pub fn commit(
        &self,
        base: u64,
        operation: Operation,
        run_id: &str,
        mut partitions: BTreeMap<String, Option<PartitionVersion>>,
        previous: BTreeMap<String, Option<String>>,
        command: &[String],
    ) -> Result<u64, SluiceError> {
        let mut next = base + 1;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            for v in partitions.values_mut().flatten() {
                if operation == Operation::Publish {
                    v.published_in = next;
                }
            }
            let record = Commit {
                commit: next,
                timestamp: Utc::now(),
                operation: operation.clone(),
                run_id: run_id.to_string(),
                partitions: partitions.clone(),
                previous: previous.clone(),
                sluice_version: env!("CARGO_PKG_VERSION").to_string(),
                command: command.to_vec(),
            };
            let body = serde_json::to_vec_pretty(&record).map_err(|e| self.err("encoding commit", e))?;
            match self.storage.put_if_absent(&commit_path(next), Bytes::from(body))? {
                PutOutcome::Created => {
                    tracing::info!(dataset = self.uri(), commit = next, run_id, "committed");
                    return Ok(next);
                }
                PutOutcome::AlreadyExists => {
                    let theirs = self.read_commit(next)?;
                    if let Some(p) = theirs.partitions.keys().find(|p| partitions.contains_key(*p)) {
                        return Err(SluiceError::Conflict {
                            dataset: self.uri().to_string(),
                            reason: format!(
                                "commit {next} (run {}) changed partition {p} while this run was working; re-run to build on it",
                                theirs.run_id
                            ),
                        });
                    }
                    tracing::info!(commit = next, "lost the race for a commit on other partitions; retrying");
                    next += 1;
                }
            }
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
}

/// The state after commit `as_of` (all of `log` when `None`).
pub fn fold(log: &[Commit], as_of: Option<u64>) -> Snapshot {
    let mut snap = Snapshot::default();
    for c in log.iter().take_while(|c| as_of.is_none_or(|n| c.commit <= n)) {
        for (p, v) in &c.partitions {
            match v {
                Some(v) => snap.partitions.insert(p.clone(), v.clone()),
                None => snap.partitions.remove(p),
            };
        }
        snap.commit = c.commit;
    }
    snap
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dataset(tag: &str) -> (Dataset, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("sluice-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Dataset::open(Storage::open(dir.to_str().unwrap(), None).unwrap()), dir)
    }

    fn version(v: &str) -> PartitionVersion {
        PartitionVersion {
            version: v.into(),
            files: vec![],
            rows: 1,
            fingerprint: format!("fp-{v}"),
            manifest: String::new(),
            published_in: 0,
        }
    }

    fn one(p: &str, v: &str) -> BTreeMap<String, Option<PartitionVersion>> {
        BTreeMap::from([(p.to_string(), Some(version(v)))])
    }

    #[test]
    fn racing_writers_on_one_partition_one_wins_the_other_conflicts() {
        let (ds, dir) = temp_dataset("race");
        assert_eq!(ds.commit(0, Operation::Publish, "a", one("d=1", "a"), Default::default(), &[]).unwrap(), 1);
        // a second writer decided on base 0 too and touches the same partition
        let e = ds.commit(0, Operation::Publish, "b", one("d=1", "b"), Default::default(), &[]).unwrap_err();
        assert!(matches!(e, SluiceError::Conflict { .. }), "{e}");
        // a writer on another partition retries on top
        assert_eq!(ds.commit(0, Operation::Publish, "c", one("d=2", "c"), Default::default(), &[]).unwrap(), 2);
        let snap = ds.snapshot(None).unwrap();
        assert_eq!(snap.commit, 2);
        assert_eq!(snap.partitions["d=1"].version, "a");
        assert_eq!(snap.partitions["d=1"].published_in, 1);
        assert_eq!(ds.snapshot(Some(1)).unwrap().partitions.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn threads_racing_for_the_same_commit_number_yield_exactly_one_winner() {
        let (ds, dir) = temp_dataset("threads");
        let ds = std::sync::Arc::new(ds);
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let ds = ds.clone();
                std::thread::spawn(move || ds.commit(0, Operation::Publish, &format!("r{i}"), one("d=1", &format!("r{i}")), Default::default(), &[]))
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
