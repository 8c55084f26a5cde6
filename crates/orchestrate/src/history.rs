//! Reading a dataset's history and re-pointing it: `versions`, `show`, `rollback`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::{self, Commit, CommitOutcome, CommitRequest, Dataset, Operation, PartitionVersion, Snapshot};
use crate::summary::{PartitionSummary, RunSummary};
use crate::SluiceError;

/// One line of `sluice versions`: a partition's entry in a commit.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub commit: u64,
    pub timestamp: DateTime<Utc>,
    pub operation: Operation,
    pub run_id: String,
    pub partition: String,
    /// `None`: the commit removed the partition.
    pub version: Option<String>,
    pub rows: Option<u64>,
    /// For rollbacks: the version replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

pub fn history(log: &[Commit], partition: Option<&str>) -> Vec<HistoryEntry> {
    let mut out = Vec::new();
    for c in log {
        for (p, v) in &c.partitions {
            if partition.is_some_and(|want| want != p) {
                continue;
            }
            out.push(HistoryEntry {
                commit: c.commit,
                timestamp: c.timestamp,
                operation: c.operation,
                run_id: c.run_id.clone(),
                partition: p.clone(),
                version: v.as_ref().map(|v| v.version.clone()),
                rows: v.as_ref().map(|v| v.rows),
                previous: c.previous.get(p).cloned().flatten(),
            });
        }
    }
    out
}

/// Where to time-travel to: a commit number or an RFC 3339 time.
pub fn snapshot_as_of(ds: &Dataset, as_of: Option<&str>) -> Result<Snapshot, SluiceError> {
    match as_of {
        None => ds.snapshot(None),
        Some(s) => match s.parse::<u64>() {
            Ok(n) => ds.snapshot(Some(n)),
            Err(_) => {
                let t = DateTime::parse_from_rfc3339(s)
                    .map_err(|e| SluiceError::Usage(format!("--as-of '{s}': not a commit number or an RFC 3339 time ({e})")))?;
                ds.snapshot_at(t.with_timezone(&Utc))
            }
        },
    }
}

/// Where to re-point a partition: a version id (`--to`), or the state as of a commit number
/// (`--to-commit`). Separate, so an all-digit run id is never taken for a commit number.
#[derive(Debug, Clone)]
pub enum RollbackTo {
    Version(String),
    Commit(u64),
}

/// What to roll back.
#[derive(Debug, Clone)]
pub enum RollbackTarget {
    /// Re-point one partition to another version.
    Partition { partition: String, to: RollbackTo },
    /// Undo everything one run published (partitions it created are removed).
    Run { run_id: String },
}

pub fn rollback(ds: &Dataset, target: &RollbackTarget, command: &[String]) -> Result<RunSummary, SluiceError> {
    let started = std::time::Instant::now();
    let log = ds.log()?;
    let snap = store::fold(&log, None);
    let mut moves: BTreeMap<String, Option<PartitionVersion>> = BTreeMap::new();
    match target {
        RollbackTarget::Partition { partition, to } => {
            store::validate_partition(partition)?;
            let versions = ds.versions_of(&log, partition);
            if versions.is_empty() {
                return Err(SluiceError::Usage(format!("{}: partition {partition} has no versions", ds.uri())));
            }
            let wanted = match to {
                RollbackTo::Commit(n) if *n > log.len() as u64 => {
                    return Err(SluiceError::Usage(format!("{}: no commit {n} (latest is {})", ds.uri(), log.len())))
                }
                RollbackTo::Commit(n) => store::fold(&log, Some(*n)).partitions.get(partition).cloned().ok_or_else(|| {
                    SluiceError::Usage(format!("partition {partition} did not exist as of commit {n}"))
                })?,
                RollbackTo::Version(to) => versions.iter().find(|v| &v.version == to).cloned().ok_or_else(|| {
                    SluiceError::Usage(format!(
                        "partition {partition} has no version '{to}' (versions: {})",
                        versions.iter().map(|v| v.version.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })?,
            };
            moves.insert(partition.clone(), Some(wanted));
        }
        RollbackTarget::Run { run_id } => {
            let published: Vec<&Commit> =
                log.iter().filter(|c| c.operation == Operation::Publish && &c.run_id == run_id).collect();
            if published.is_empty() {
                return Err(SluiceError::Usage(format!("{}: no commit published run '{run_id}'", ds.uri())));
            }
            for c in published {
                let before = store::fold(&log, Some(c.commit - 1));
                for p in c.partitions.keys() {
                    let is_current = snap.partitions.get(p).is_some_and(|v| &v.version == run_id);
                    if is_current {
                        moves.insert(p.clone(), before.partitions.get(p).cloned());
                    } else {
                        tracing::warn!(partition = %p, "not current any more; left as it is");
                    }
                }
            }
        }
    }
    // drop no-ops; refuse targets whose files are gone
    moves.retain(|p, v| snap.partitions.get(p).map(|c| &c.version) != v.as_ref().map(|v| &v.version));
    for (p, v) in &moves {
        if let Some(v) = v {
            let missing = ds.missing_files(v)?;
            if !missing.is_empty() {
                return Err(SluiceError::Store(format!(
                    "refusing to roll {p} back to version {}: {} of its files are missing ({})",
                    v.version,
                    missing.len(),
                    missing.join(", ")
                )));
            }
        }
    }
    let action_id = format!("rollback-{}", store::new_run_id());
    let summaries: Vec<PartitionSummary> = moves
        .iter()
        .map(|(p, v)| PartitionSummary {
            partition: p.clone(),
            version: v.as_ref().map(|v| v.version.clone()).unwrap_or_default(),
            rows_in: 0,
            rows_out: v.as_ref().map_or(0, |v| v.rows),
            rows_filtered: 0,
            rows_quarantined: 0,
            files: v.iter().flat_map(|v| v.files.iter().map(|f| ds.uri_of(f))).collect(),
            quarantine_files: Vec::new(),
            manifest: v.as_ref().map(|v| ds.uri_of(&v.manifest)),
        })
        .collect();
    if moves.is_empty() {
        return Ok(RunSummary::new("up_to_date", &action_id, ds, started).with_partitions(summaries).with_commit(snap.commit));
    }
    let previous = moves.keys().map(|p| (p.clone(), snap.partitions.get(p).map(|v| v.version.clone()))).collect();
    let req = CommitRequest {
        base: snap.commit,
        operation: Operation::Rollback,
        run_id: &action_id,
        attempt: None,
        partitions: moves,
        previous,
        command,
    };
    let commit = match ds.commit(req)? {
        CommitOutcome::Committed(n) | CommitOutcome::AlreadyPublished(n) => n,
    };
    Ok(RunSummary::new("published", &action_id, ds, started).with_partitions(summaries).with_commit(commit))
}
