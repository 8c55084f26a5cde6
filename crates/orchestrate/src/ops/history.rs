//! Reading a dataset's history and re-pointing it: `versions`, `show`, `rollback`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use serde_json::json;

use crate::report::summary::{PartitionSummary, RunStatus, RunSummary};
use crate::store::{self, Change, Commit, CommitOutcome, CommitRequest, Dataset, Operation, PartitionVersion, PinChange, Snapshot};
use crate::types::{CheckTally, Partition};
use crate::error::SluiceError;

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
    /// For pin commits: pinned (`true`) or unpinned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The pipeline's checks on a published version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<CheckTally>,
    /// The model that scored the version (where the log says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
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
                operation: c.operation(),
                run_id: c.run_id.clone(),
                partition: p.clone(),
                version: v.as_ref().map(|v| v.version.clone()),
                rows: v.as_ref().map(|v| v.rows),
                previous: c.change.previous(p).cloned().flatten(),
                pinned: None,
                note: None,
                checks: v.as_ref().and_then(|v| v.checks.clone()).filter(|_| c.change == Change::Publish),
                model: v.as_ref().and_then(|v| v.model.clone()),
            });
        }
        let entry = |partition: &str, version: &str| HistoryEntry {
            commit: c.commit,
            timestamp: c.timestamp,
            operation: c.operation(),
            run_id: c.run_id.clone(),
            partition: partition.to_string(),
            version: Some(version.to_string()),
            rows: None,
            previous: None,
            pinned: None,
            note: None,
            checks: None,
            model: None,
        };
        let wanted = |p: &str| partition.is_none_or(|want| want == p);
        for pin in c.change.pins().iter().filter(|pin| wanted(&pin.partition)) {
            out.push(HistoryEntry { pinned: Some(pin.pinned), note: pin.note.clone(), ..entry(&pin.partition, &pin.version) });
        }
        for (p, v) in c.change.gc().iter().flat_map(|g| g.versions.iter()).filter(|(p, _)| wanted(p)) {
            out.push(entry(p, v));
        }
    }
    out
}

/// The entries of the versions a model (an id or a unique prefix) scored: their publishes
/// and the rollbacks that made them current again.
pub fn history_of_model(ds: &Dataset, log: &[Commit], prefix: &str) -> Result<Vec<HistoryEntry>, SluiceError> {
    let model = ds.resolve_model(log, prefix)?;
    let mut out = Vec::new();
    for c in log {
        for (p, v) in c.partitions.iter().filter_map(|(p, v)| v.as_ref().map(|v| (p, v))) {
            if ds.model_of(v)?.as_deref() == Some(model.as_str()) {
                out.extend(history(std::slice::from_ref(c), Some(p)).into_iter().map(|e| HistoryEntry { model: Some(model.clone()), ..e }));
            }
        }
    }
    Ok(out)
}

/// Why a version cannot be used any more, if gc collected it.
fn collected_error(log: &[Commit], partition: &str, version: &str) -> Option<SluiceError> {
    store::collected_by(log, partition, version).map(|c| {
        SluiceError::Usage(format!(
            "version {version} of {partition} was collected by gc in commit {} at {} (replaced before {}); its files are gone",
            c.commit,
            c.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            c.change.gc().map(|g| g.cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default()
        ))
    })
}

/// A snapshot whose versions all still have their files; time travel to a state gc
/// collected says which versions and when, instead of listing missing files.
fn check_not_collected(log: &[Commit], snap: &Snapshot) -> Result<(), SluiceError> {
    let gone: Vec<String> = snap.partitions.iter().filter_map(|(p, v)| collected_error(log, p, &v.version)).map(|e| e.to_string()).collect();
    match gone.is_empty() {
        true => Ok(()),
        false => Err(SluiceError::Usage(format!("as of commit {}: {}", snap.commit, gone.join("; ")))),
    }
}

/// Pin (or unpin) a version: gc keeps pinned versions whatever their age.
pub fn pin(ds: &Dataset, partition: &str, version: &str, pinned: bool, note: Option<String>, command: &[String]) -> Result<serde_json::Value, SluiceError> {
    Partition::parse(partition)?;
    let log = ds.log()?;
    if !store::versions_of(&log, partition).iter().any(|v| v.version == version) {
        return Err(SluiceError::Usage(format!("{}: partition {partition} has no version '{version}'", ds.uri())));
    }
    if let Some(e) = collected_error(&log, partition, version).filter(|_| pinned) {
        return Err(e);
    }
    let head = ds.head_at(Some(log.len() as u64))?;
    let is_pinned = head.pins().iter().any(|p| p.partition == partition && p.version == version);
    let status = if pinned { "pinned" } else { "unpinned" };
    let line = |status: &str, commit: u64| json!({"status": status, "dataset": ds.uri(), "partition": partition, "version": version, "commit": commit});
    if is_pinned == pinned {
        return Ok(line("up_to_date", log.len() as u64));
    }
    let id = format!("{}-{}", if pinned { "pin" } else { "unpin" }, store::new_run_id());
    let change = PinChange { partition: partition.to_string(), version: version.to_string(), pinned, note };
    let req = CommitRequest::new(log.len() as u64, Change::Pin { pins: vec![change] }, &id, BTreeMap::new(), command).on(&head.partitions, head.table.as_ref());
    let commit = match ds.commit(req)? {
        CommitOutcome::Committed(n) | CommitOutcome::AlreadyPublished(n) => n,
    };
    Ok(line(status, commit))
}

/// Where to time-travel to: a commit number or an RFC 3339 time.
pub fn snapshot_as_of(ds: &Dataset, as_of: Option<&str>) -> Result<Snapshot, SluiceError> {
    // the current versions are never collected; an earlier state may have been
    let Some(s) = as_of else { return ds.snapshot(None) };
    let log = ds.log()?;
    let n = match s.parse::<u64>() {
        Ok(n) => n,
        Err(_) => {
            let t = DateTime::parse_from_rfc3339(s)
                .map_err(|e| SluiceError::Usage(format!("--as-of '{s}': not a commit number or an RFC 3339 time ({e})")))?;
            // the last commit at or before t
            log.iter().filter(|c| c.timestamp <= t.with_timezone(&Utc)).map(|c| c.commit).max().unwrap_or(0)
        }
    };
    if n > log.len() as u64 {
        return Err(SluiceError::Usage(format!("{}: no commit {n} (latest is {})", ds.uri(), log.len())));
    }
    // the state as Delta's log replay gives it (from the newest checkpoint at or before n)
    let snap = ds.snapshot(Some(n))?;
    check_not_collected(&log, &snap)?;
    Ok(snap)
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
    /// Every partition whose current version this model (an id or a unique prefix) scored
    /// goes back to its latest earlier version scored by another model.
    Model { model: String },
}

/// Roll back: one commit that re-points the target's partitions (see [`RollbackTarget`]).
/// Nothing to move is `up_to_date`; a target whose files gc collected or that are missing
/// is refused. With `dry_run` the summary is the plan (`dry_run`) and nothing is committed.
pub fn rollback(ds: &Dataset, target: &RollbackTarget, dry_run: bool, command: &[String]) -> Result<RunSummary, SluiceError> {
    let started = std::time::Instant::now();
    let log = ds.log()?;
    let snap = store::fold(&log, None);
    let mut unchanged = Vec::new();
    let mut moves = match target {
        RollbackTarget::Partition { partition, to } => partition_move(ds, &log, partition, to)?,
        RollbackTarget::Run { run_id } => run_moves(ds, &log, &snap, run_id)?,
        RollbackTarget::Model { model } => model_moves(ds, &log, &snap, model, &mut unchanged)?,
    };
    // drop no-ops; refuse targets gc collected, or whose files are gone
    moves.retain(|p, v| snap.partitions.get(p).map(|c| &c.version) != v.as_ref().map(|v| &v.version));
    for (p, v) in moves.iter().filter_map(|(p, v)| v.as_ref().map(|v| (p, v))) {
        usable(ds, &log, p, v)?;
    }
    let action_id = format!("rollback-{}", store::new_run_id());
    let summaries: Vec<PartitionSummary> = moves
        .iter()
        .map(|(p, v)| v.as_ref().map_or_else(|| PartitionSummary::removed(p), |v| PartitionSummary::of_version(ds, p, v)))
        .collect();
    let summary = |status| RunSummary { unchanged: unchanged.clone(), ..RunSummary::new(status, &action_id, ds, started) };
    if moves.is_empty() || dry_run {
        let status = if dry_run { RunStatus::DryRun } else { RunStatus::UpToDate };
        return Ok(summary(status).with_partitions(summaries).with_commit(snap.commit));
    }
    let previous = moves.keys().map(|p| (p.clone(), snap.partitions.get(p).map(|v| v.version.clone()))).collect();
    let head = ds.head_at(Some(snap.commit))?;
    let req = CommitRequest::new(snap.commit, Change::Rollback { previous }, &action_id, moves, command).on(&snap.partitions, head.table.as_ref());
    let commit = match ds.commit(req)? {
        CommitOutcome::Committed(n) | CommitOutcome::AlreadyPublished(n) => n,
    };
    Ok(summary(RunStatus::Published).with_partitions(summaries).with_commit(commit))
}

/// Roll back a model: each partition whose current version `prefix`'s model scored goes
/// back to its latest earlier version by another model; those without one are left as
/// they are, in `unchanged`.
fn model_moves(ds: &Dataset, log: &[Commit], snap: &Snapshot, prefix: &str, unchanged: &mut Vec<String>) -> Result<Moves, SluiceError> {
    let model = ds.resolve_model(log, prefix)?;
    let mut moves = Moves::new();
    for p in ds.scored_by(snap, &model)? {
        match ds.before_model(log, &p, &snap.partitions[&p], &model)? {
            Some(v) => {
                moves.insert(p, Some(v));
            }
            None => {
                tracing::warn!(partition = %p, model = %model, "no earlier version by another model; left as it is");
                unchanged.push(p);
            }
        }
    }
    Ok(moves)
}

/// Re-point one partition: to a version it had, or to its version as of a commit.
fn partition_move(ds: &Dataset, log: &[Commit], partition: &str, to: &RollbackTo) -> Result<Moves, SluiceError> {
    Partition::parse(partition)?;
    let versions = store::versions_of(log, partition);
    if versions.is_empty() {
        return Err(SluiceError::Usage(format!("{}: partition {partition} has no versions", ds.uri())));
    }
    let wanted = match to {
        RollbackTo::Commit(n) if *n > log.len() as u64 => {
            return Err(SluiceError::Usage(format!("{}: no commit {n} (latest is {})", ds.uri(), log.len())))
        }
        RollbackTo::Commit(n) => store::fold(log, Some(*n))
            .partitions
            .get(partition)
            .cloned()
            .ok_or_else(|| SluiceError::Usage(format!("partition {partition} did not exist as of commit {n}")))?,
        RollbackTo::Version(to) => versions.iter().find(|v| &v.version == to).cloned().ok_or_else(|| {
            let all: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
            SluiceError::Usage(format!("partition {partition} has no version '{to}' (versions: {})", all.join(", ")))
        })?,
    };
    Ok(Moves::from([(partition.to_string(), Some(wanted))]))
}

/// Undo a run: each partition it published that is still its version goes back to what it
/// was before (removed, if the run created it).
fn run_moves(ds: &Dataset, log: &[Commit], snap: &Snapshot, run_id: &str) -> Result<Moves, SluiceError> {
    let published: Vec<&Commit> = log.iter().filter(|c| c.change == Change::Publish && c.run_id == run_id).collect();
    if published.is_empty() {
        return Err(SluiceError::Usage(format!("{}: no commit published run '{run_id}'", ds.uri())));
    }
    let mut moves = Moves::new();
    for c in published {
        let before = store::fold(log, Some(c.commit - 1));
        for p in c.partitions.keys() {
            if snap.partitions.get(p).is_some_and(|v| v.version == run_id) {
                moves.insert(p.clone(), before.partitions.get(p).cloned());
            } else {
                tracing::warn!(partition = %p, "not current any more; left as it is");
            }
        }
    }
    Ok(moves)
}

/// A version a rollback may point to: not collected by gc, and every file still there.
fn usable(ds: &Dataset, log: &[Commit], p: &str, v: &PartitionVersion) -> Result<(), SluiceError> {
    if let Some(e) = collected_error(log, p, &v.version) {
        return Err(e);
    }
    let missing = ds.missing_files(v)?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(SluiceError::Store(format!(
        "refusing to roll {p} back to version {}: {} of its files are missing ({})",
        v.version,
        missing.len(),
        missing.join(", ")
    )))
}

/// Where each partition goes: a version, or `None` to remove it.
type Moves = BTreeMap<String, Option<PartitionVersion>>;
