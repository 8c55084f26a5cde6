//! Commit records and what folding them gives: the state of a dataset as of a commit, the
//! versions a partition had, pins, and which run published what.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::layout::attempt_dir;
use super::table::{PinChange, TableMeta};
use crate::types::{CheckTally, FileStats};

/// One version of one partition: the files a reader opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionVersion {
    /// The id of the run that wrote the files.
    pub version: String,
    /// Dataset-relative paths of the Parquet data files.
    pub files: Vec<String>,
    /// One per file of `files`: what its Delta `add` action says of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_stats: Vec<FileStats>,
    pub rows: u64,
    /// The run fingerprint that produced this version (inputs + pipeline + model + parameters).
    pub fingerprint: String,
    /// Dataset-relative path of the version's manifest.
    pub manifest: String,
    /// The commit that first published this version.
    pub published_in: u64,
    /// The id of the model that scored it (`None` for a version converted from an older log:
    /// its manifest says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The pipeline's checks on it, counted (and an override's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<CheckTally>,
}

impl PartitionVersion {
    /// Forget the files' column statistics (Delta's `stats` beyond the row count).
    pub fn drop_column_stats(&mut self) {
        self.file_stats.iter_mut().for_each(|s| s.stats = None);
    }
}

/// What a commit does, with the fields only that operation has. Written flat into the
/// commit record: `"operation": "rollback", "previous": {...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum Change {
    /// Publishes versions: a run, the shards of one, or a held run.
    Publish,
    /// Re-points partitions; `previous`: what each pointed to before.
    Rollback {
        #[serde(default)]
        previous: BTreeMap<String, Option<String>>,
    },
    /// Pins or unpins versions; the state does not change.
    Pin {
        #[serde(default)]
        pins: Vec<PinChange>,
    },
    /// Records what gc deletes, before it deletes it.
    Gc { gc: GcRecord },
    /// A commit another engine wrote that changes no data file (a vacuum's record, a
    /// table property): it changes nothing sluice reads. Never written by sluice.
    External { engine_operation: String },
}

impl Change {
    pub fn operation(&self) -> Operation {
        match self {
            Change::Publish => Operation::Publish,
            Change::Rollback { .. } => Operation::Rollback,
            Change::Pin { .. } => Operation::Pin,
            Change::Gc { .. } => Operation::Gc,
            Change::External { .. } => Operation::External,
        }
    }

    /// The pins a pin commit sets or removes (none for the others).
    pub fn pins(&self) -> &[PinChange] {
        match self {
            Change::Pin { pins } => pins,
            _ => &[],
        }
    }

    /// What a gc commit collects.
    pub fn gc(&self) -> Option<&GcRecord> {
        match self {
            Change::Gc { gc } => Some(gc),
            _ => None,
        }
    }

    /// What a rollback found `partition` pointing to (`Some(None)`: it did not exist).
    pub fn previous(&self, partition: &str) -> Option<&Option<String>> {
        match self {
            Change::Rollback { previous } => previous.get(partition),
            _ => None,
        }
    }
}

/// A commit's operation, without its fields (for history lines and comparisons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Publish,
    Rollback,
    Pin,
    Gc,
    External,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Publish => "publish",
            Operation::Rollback => "rollback",
            Operation::Pin => "pin",
            Operation::Gc => "gc",
            Operation::External => "external",
        }
    }
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
    #[serde(flatten)]
    pub change: Change,
    /// The run that published, or the id of the rollback, pin or gc action.
    pub run_id: String,
    /// The attempt of the run that wrote this commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
    /// From the commit's `add` and `remove` actions, not from sluice's record.
    #[serde(skip)]
    pub partitions: BTreeMap<String, Option<PartitionVersion>>,
    pub sluice_version: String,
    #[serde(default)]
    pub command: Vec<String>,
}

impl Commit {
    pub fn operation(&self) -> Operation {
        self.change.operation()
    }
}

/// What to commit, and on which state it was decided.
#[derive(Debug, Clone)]
pub struct CommitRequest<'a> {
    /// The last commit the caller read before deciding.
    pub base: u64,
    pub change: Change,
    pub run_id: &'a str,
    pub attempt: Option<&'a str>,
    pub partitions: BTreeMap<String, Option<PartitionVersion>>,
    pub command: &'a [String],
    /// The table's metaData at `base` (`None`: there is no table yet).
    pub table: Option<TableMeta>,
    /// A publish: the schema of its files, as a Delta struct type.
    pub schema: Option<serde_json::Value>,
    /// The commit's time (now, unless a converted history says otherwise).
    pub at: Option<DateTime<Utc>>,
    /// Every partition's version at `base` ([`CommitRequest::on`]): the files of those this
    /// commit replaces get `remove` actions, and the writer caches the state after its
    /// commit (see `head_cache`).
    pub state: Option<BTreeMap<String, PartitionVersion>>,
}

impl<'a> CommitRequest<'a> {
    pub fn new(base: u64, change: Change, run_id: &'a str, partitions: BTreeMap<String, Option<PartitionVersion>>, command: &'a [String]) -> Self {
        CommitRequest { base, change, run_id, attempt: None, partitions, command, table: None, schema: None, at: None, state: None }
    }

    /// Decided on `current`, the whole state at `base` (every partition's version), of a
    /// table with `table` as its metaData.
    pub fn on(mut self, current: &BTreeMap<String, PartitionVersion>, table: Option<&TableMeta>) -> Self {
        self.table = table.cloned();
        self.state = Some(current.clone());
        self
    }

    /// What `partition` is at `base`, which this commit replaces.
    pub(super) fn replaced(&self, partition: &str) -> Option<&PartitionVersion> {
        self.state.as_ref()?.get(partition)
    }

    /// The (partition, version) pairs and attempt keys (see `layout::attempt_dir`) this commit relies on existing.
    pub(super) fn relies_on(&self) -> (Vec<(String, String)>, Vec<String>) {
        let mut versions: Vec<(String, String)> =
            self.partitions.iter().filter_map(|(p, v)| v.as_ref().map(|v| (p.clone(), v.version.clone()))).collect();
        versions.extend(self.change.pins().iter().filter(|c| c.pinned).map(|c| (c.partition.clone(), c.version.clone())));
        let dirs = self.partitions.values().flatten().filter_map(|v| v.files.first().and_then(|f| attempt_dir(f))).collect();
        (versions, dirs)
    }
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

/// The publish commit of `run_id`, if the log has one: a run id names one logical run, and
/// once it is published every later attempt of it has nothing to do.
pub fn published_by<'a>(log: &'a [Commit], run_id: &str) -> Option<&'a Commit> {
    log.iter().find(|c| c.change == Change::Publish && c.run_id == run_id)
}

/// Whether a commit after `base`, by another run, touched one of `partitions`: then a
/// decision made on `base` about them is stale.
pub fn touched_since<'a>(log: &'a [Commit], base: u64, run_id: &str, partitions: &[&str]) -> Option<&'a Commit> {
    log.iter()
        .filter(|c| c.commit > base && c.run_id != run_id)
        .find(|c| c.partitions.keys().any(|p| partitions.contains(&p.as_str())))
}

/// The gc commit that collected `version` of `partition`, if one did.
pub fn collected_by<'a>(log: &'a [Commit], partition: &str, version: &str) -> Option<&'a Commit> {
    log.iter().find(|c| c.change.gc().is_some_and(|g| g.versions.iter().any(|(p, v)| p == partition && v == version)))
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

/// Every version a partition ever had, in the order they were first published.
pub fn versions_of(log: &[Commit], partition: &str) -> Vec<PartitionVersion> {
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
