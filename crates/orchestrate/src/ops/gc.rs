//! `sluice gc`: delete what no reader can need any more, safely while runs publish.
//!
//! What is kept: the current versions; every version that was current at any moment inside
//! the retention window (replaced at or after the cutoff), so `show --as-of` and `rollback`
//! work for the whole window; pinned versions; folders of attempts no commit references
//! whose newest file is younger than the cutoff (the run may still be going).
//! What is collected: versions replaced before the cutoff, the folders of failed or killed
//! attempts older than the cutoff, and the shard staging records of published runs (and of
//! unpublished ones older than the cutoff).
//!
//! The protocol (why a publishing run never loses its files):
//! 1. gc reads the log (commits 1..=N) and lists the dataset;
//! 2. it decides, and writes commit N+1 recording everything it will delete (put-if-absent);
//!    if another commit took N+1, it decides again from step 1;
//! 3. only then it deletes.
//!
//! A run that commits before N+1 is in the log gc decided on, so its files are current and
//! kept. A run that commits after N+1 either planned after it (its files were created after
//! gc listed, so they are not in the record) or its commit loop passes through N+1, reads the
//! record, and refuses to commit files or versions gc collected (exit 4; the retry runs
//! afresh). A rollback or a pin to a collected version is refused the same way. A gc killed
//! while deleting leaves a record of what it was deleting; the next gc deletes the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::layout::{classify, Listed};
use crate::store::{self, attempt_dir, Change, Commit, CommitRequest, Dataset, GcRecord, Pin};
use crate::error::SluiceError;

/// Below this a retention is refused unless asked for explicitly.
pub const MIN_RETENTION: Duration = Duration::from_secs(3600);
const MAX_PLAN_ATTEMPTS: usize = 5;

/// What gc found, decided or did: the summary line.
#[derive(Debug, Clone, Serialize)]
pub struct GcSummary {
    pub status: &'static str,
    pub dataset: String,
    pub cutoff: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<u64>,
    pub files: u64,
    pub bytes: u64,
    /// Versions collected, as `partition@version`.
    pub versions_collected: Vec<String>,
    /// Folders of failed or killed attempts removed.
    pub debris: Vec<String>,
    pub records: Vec<String>,
    /// What is (or would be) deleted, grouped by version, failed run and shard run.
    pub groups: Vec<Group>,
    pub kept: Kept,
    /// Objects that could not be deleted (they are recorded as collected; the next gc retries).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    /// Cached states of commits before the one gc read (or would), deleted outside the
    /// record: no reader needs one, a missing one only means a replay of the log.
    pub stale_head_caches: usize,
}

/// One group of deleted objects.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// `version`, `failed_run` or `shard_records`.
    pub kind: &'static str,
    /// `partition@version`, the attempt key (`<partition>/<run_id>/<attempt>`), or the shard run id.
    pub name: String,
    pub files: usize,
    pub bytes: u64,
}

/// Why versions and folders were kept: counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Kept {
    pub current: usize,
    pub in_window: usize,
    pub pinned: usize,
    pub young_attempts: usize,
}

/// One dataset object gc may delete.
struct Object {
    rel: String,
    size: u64,
}

/// A decision: the record to commit and the objects it covers.
struct Plan {
    record: GcRecord,
    delete: Vec<Object>,
    groups: Vec<Group>,
    kept: Kept,
    /// Cached states of commits before the log's last (see `GcSummary::stale_head_caches`).
    stale_heads: Vec<Object>,
}

/// When each version stopped being current (the latest time, if it was current again).
fn replaced_at(log: &[Commit]) -> BTreeMap<(String, String), DateTime<Utc>> {
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    let mut ended = BTreeMap::new();
    for c in log {
        for (p, v) in &c.partitions {
            let new = v.as_ref().map(|v| v.version.clone());
            if let Some(old) = current.get(p).filter(|old| Some(*old) != new.as_ref()) {
                ended.insert((p.clone(), old.clone()), c.timestamp);
            }
            match new {
                Some(n) => current.insert(p.clone(), n),
                None => current.remove(p),
            };
        }
    }
    ended
}

fn plan(ds: &Dataset, log: &[Commit], pins: &[Pin], cutoff: DateTime<Utc>) -> Result<Plan, SluiceError> {
    let snap = store::fold(log, None);
    let ended = replaced_at(log);
    // every version any commit referenced, by its attempt key
    let mut by_dir: BTreeMap<String, (String, String)> = BTreeMap::new();
    for c in log {
        for (p, v) in c.partitions.iter().filter_map(|(p, v)| v.as_ref().map(|v| (p, v))) {
            if let Some(d) = v.files.first().and_then(|f| attempt_dir(f)) {
                by_dir.insert(d, (p.clone(), v.version.clone()));
            }
        }
    }
    let mut kept = Kept::default();
    let mut record = GcRecord { cutoff, ..Default::default() };
    let mut delete = Vec::new();
    let mut groups = Vec::new();
    let mut group = |kind, name: String, objects: &[(String, u64, DateTime<Utc>)]| {
        groups.push(Group { kind, name, files: objects.len(), bytes: objects.iter().map(|o| o.1).sum() });
    };
    // the dataset's objects, grouped by attempt key; shard records aside
    let mut dirs: BTreeMap<String, Vec<(String, u64, DateTime<Utc>)>> = BTreeMap::new();
    let mut records: BTreeMap<String, Vec<(String, u64, DateTime<Utc>)>> = BTreeMap::new();
    let mut stale_heads = Vec::new();
    for (rel, meta) in ds.storage().list("")? {
        let entry = (rel.clone(), meta.size, meta.last_modified);
        match classify(&rel) {
            Listed::ShardRecord { run_id } => records.entry(run_id).or_default().push(entry),
            Listed::AttemptFile { dir } => dirs.entry(dir).or_default().push(entry),
            Listed::HeadCache { commit } if commit < log.len() as u64 => stale_heads.push(Object { rel, size: meta.size }),
            Listed::HeadCache { .. } | Listed::Other => {}
        }
    }
    for (dir, objects) in dirs {
        let collect = match by_dir.get(&dir) {
            Some((p, v)) => {
                let is_current = snap.partitions.get(p).is_some_and(|c| &c.version == v);
                let pinned = pins.iter().any(|pin| &pin.partition == p && &pin.version == v);
                let in_window = ended.get(&(p.clone(), v.clone())).is_none_or(|t| *t >= cutoff);
                match (is_current, pinned, in_window) {
                    (true, _, _) => kept.current += 1,
                    (_, true, _) => kept.pinned += 1,
                    (_, _, true) => kept.in_window += 1,
                    _ => {
                        record.versions.push((p.clone(), v.clone()));
                        group("version", format!("{p}@{v}"), &objects);
                    }
                }
                !(is_current || pinned || in_window)
            }
            None => {
                let young = objects.iter().any(|(_, _, t)| *t >= cutoff);
                if young {
                    kept.young_attempts += 1;
                } else {
                    record.debris.push(dir.clone());
                    group("failed_run", dir.clone(), &objects);
                }
                !young
            }
        };
        if collect {
            delete.extend(objects.into_iter().map(|(rel, size, _)| Object { rel, size }));
        }
    }
    for (run, objects) in records {
        let published = store::published_by(log, &run).is_some();
        if published || objects.iter().all(|(_, _, t)| *t < cutoff) {
            record.records.extend(objects.iter().map(|(rel, _, _)| rel.clone()));
            group("shard_records", run.clone(), &objects);
            delete.extend(objects.into_iter().map(|(rel, size, _)| Object { rel, size }));
        }
    }
    record.files = delete.len() as u64;
    record.bytes = delete.iter().map(|o| o.size).sum();
    Ok(Plan { record, delete, groups, kept, stale_heads })
}

/// Run gc on `ds`: decide on the log as read now, and with `apply` record the decision in a
/// commit, then delete.
pub fn gc(ds: &Dataset, retain: Duration, apply: bool, now: DateTime<Utc>, command: &[String]) -> Result<GcSummary, SluiceError> {
    let cutoff = now - chrono::Duration::from_std(retain).map_err(|e| SluiceError::Usage(format!("--retain: {e}")))?;
    for _ in 0..MAX_PLAN_ATTEMPTS {
        let log = ds.log()?;
        let base = log.len() as u64;
        let head = ds.head_at(Some(base))?;
        let Plan { mut record, delete, groups, kept, stale_heads } = plan(ds, &log, &head.pins(), cutoff)?;
        record.retain_s = retain.as_secs();
        let mut summary = GcSummary {
            status: if apply { "collected" } else { "dry_run" },
            dataset: ds.uri().to_string(),
            cutoff,
            commit: None,
            files: record.files,
            bytes: record.bytes,
            versions_collected: record.versions.iter().map(|(p, v)| format!("{p}@{v}")).collect(),
            debris: record.debris.clone(),
            records: record.records.clone(),
            groups,
            kept,
            failed: Vec::new(),
            stale_head_caches: stale_heads.len(),
        };
        if apply {
            remove(ds, &stale_heads);
        }
        if !apply || delete.is_empty() {
            return Ok(summary);
        }
        if head.table.is_none() {
            // gc records what it deletes in a commit before deleting (see above); a dataset
            // nothing was ever published to has no table to commit to yet
            tracing::warn!(dataset = ds.uri(), "nothing was ever published here, so gc has no log to record a deletion in; nothing deleted (publish once, then gc)");
            return Ok(GcSummary { status: "dry_run", ..summary });
        }
        let gc_id = format!("gc-{}", store::new_run_id());
        let req = CommitRequest::new(base, Change::Gc { gc: record }, &gc_id, BTreeMap::new(), command).on(&head.partitions, head.table.as_ref());
        match ds.commit(req) {
            Ok(outcome) => {
                let n = match outcome {
                    store::CommitOutcome::Committed(n) | store::CommitOutcome::AlreadyPublished(n) => n,
                };
                summary.commit = Some(n);
                summary.failed = remove(ds, &delete);
                tracing::info!(commit = n, files = summary.files, bytes = summary.bytes, "gc collected");
                return Ok(summary);
            }
            Err(SluiceError::Conflict { reason, .. }) => tracing::info!(%reason, "deciding again"),
            Err(e) => return Err(e),
        }
    }
    Err(SluiceError::Conflict { dataset: ds.uri().to_string(), reason: format!("commits kept landing while gc planned ({MAX_PLAN_ATTEMPTS} tries)") })
}

/// Delete `objects`; the ones that failed.
fn remove(ds: &Dataset, objects: &[Object]) -> Vec<String> {
    let mut failed = BTreeSet::new();
    for o in objects {
        if let Err(e) = ds.storage().delete(&o.rel) {
            tracing::warn!(file = %o.rel, error = %e, "could not delete; the next gc retries");
            failed.insert(o.rel.clone());
        }
    }
    failed.into_iter().collect()
}
