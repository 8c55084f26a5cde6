//! A sluice commit as Delta actions, and back.
//!
//! Written: `commitInfo` (sluice's record under the key `sluice`: run id, attempt, the
//! operation and its fields, command, version), a `txn` whose `appId` is the run id (a
//! publish: it survives checkpoints), `protocol`/`metaData` when the table changes (new
//! columns, pins, gc's retention), then a `remove` for every file of a version a partition
//! stops pointing to and an `add` for every file of the version it points to now. Each
//! `add` carries the version's lineage in `tags` (`sluice.*`), so the state a checkpoint
//! holds is enough to rebuild sluice's view of every partition.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use deltalake_core::kernel::{Action, Add, CommitInfo, Remove, Transaction};
use serde_json::{json, Value};

use super::commit::{Change, Commit, CommitRequest, PartitionVersion};
use super::table::TableMeta;
use crate::error::SluiceError;
use crate::types::{CheckTally, FileStats};

const RECORD: &str = "sluice";
const TAG_VERSION: &str = "sluice.version";
const TAG_FINGERPRINT: &str = "sluice.fingerprint";
const TAG_MANIFEST: &str = "sluice.manifest";
const TAG_PUBLISHED_IN: &str = "sluice.publishedIn";
const TAG_CHECKS: &str = "sluice.checks";
const TAG_FILE: &str = "sluice.file";
const TAG_MODEL: &str = "sluice.model";

fn encoding(e: impl std::fmt::Display) -> SluiceError {
    SluiceError::Store(format!("encoding a commit: {e}"))
}

/// The actions of `record` (made from `req`) as version `next`.
pub(super) fn encode(req: &CommitRequest<'_>, record: &Commit) -> Result<Vec<Action>, SluiceError> {
    let now = record.timestamp.timestamp_millis();
    let mut actions = vec![Action::CommitInfo(commit_info(req, record)?)];
    if req.change == Change::Publish {
        actions.push(Action::Txn(Transaction::new_with_last_update(req.run_id, record.commit as i64, Some(now))));
    }
    if let Some(new) = table_change(req, record.commit, record.timestamp)? {
        if req.table.as_ref().is_some_and(|old| old.protocol() != new.protocol()) {
            actions.push(new.protocol_action()?);
        }
        actions.push(new.action()?);
    }
    for (p, v) in &req.partitions {
        let old = req.replaced(p);
        if old.zip(v.as_ref()).is_some_and(|(old, v)| old.files == v.files) {
            continue; // the same files: nothing changes
        }
        if let Some(old) = old {
            actions.extend(old.files.iter().zip(stats_of(old)).map(|(f, s)| Action::Remove(remove(p, f, s, now))));
        }
        if let Some(v) = v {
            for (i, (f, s)) in v.files.iter().zip(stats_of(v)).enumerate() {
                actions.push(Action::Add(add(p, v, i, f, s, now)?));
            }
        }
    }
    Ok(actions)
}

/// The table's new metaData, if this commit changes it.
pub(super) fn table_change(req: &CommitRequest<'_>, next: u64, now: DateTime<Utc>) -> Result<Option<TableMeta>, SluiceError> {
    let Some(t) = &req.table else { return Ok(None) };
    match (&req.change, &req.schema) {
        (Change::Publish, Some(schema)) => t.evolve(schema),
        (Change::Pin { pins }, _) => Ok(Some(t.with_pin_changes(pins, next, now))),
        (Change::Gc { gc }, _) => Ok(t.with_retention(gc.retain_s)),
        _ => Ok(None),
    }
}

/// Version 0: the table's protocol and metaData, and a record that sluice created it.
pub(super) fn create(table: &TableMeta) -> Result<Vec<Action>, SluiceError> {
    let info = CommitInfo {
        timestamp: Some(Utc::now().timestamp_millis()),
        operation: Some("CREATE TABLE".into()),
        engine_info: Some(engine()),
        ..Default::default()
    };
    Ok(vec![Action::CommitInfo(info), table.protocol_action()?, table.action()?])
}

fn engine() -> String {
    format!("sluice/{}", env!("CARGO_PKG_VERSION"))
}

fn commit_info(req: &CommitRequest<'_>, record: &Commit) -> Result<CommitInfo, SluiceError> {
    let params = HashMap::from([
        ("runId".to_string(), json!(req.run_id)),
        ("partitions".to_string(), json!(req.partitions.keys().collect::<Vec<_>>())),
    ]);
    Ok(CommitInfo {
        timestamp: Some(record.timestamp.timestamp_millis()),
        operation: Some(format!("sluice {}", record.operation().as_str())),
        operation_parameters: Some(params),
        read_version: Some(req.base),
        is_blind_append: Some(false),
        engine_info: Some(engine()),
        info: HashMap::from([(RECORD.to_string(), serde_json::to_value(record).map_err(encoding)?)]),
        ..Default::default()
    })
}

/// A version's file stats, one per file (empty ones where it has none).
fn stats_of(v: &PartitionVersion) -> impl Iterator<Item = FileStats> + '_ {
    (0..v.files.len()).map(|i| v.file_stats.get(i).cloned().unwrap_or_default())
}

fn partition_values(p: &str) -> HashMap<String, Option<String>> {
    let (k, v) = p.split_once('=').unwrap_or((p, ""));
    HashMap::from([(k.to_string(), Some(v.to_string()))])
}

fn remove(p: &str, file: &str, s: FileStats, now: i64) -> Remove {
    Remove {
        path: file.to_string(),
        data_change: true,
        deletion_timestamp: Some(now),
        extended_file_metadata: Some(true),
        partition_values: Some(partition_values(p)),
        size: Some(s.size as i64),
        ..Default::default()
    }
}

fn add(p: &str, v: &PartitionVersion, index: usize, file: &str, s: FileStats, now: i64) -> Result<Add, SluiceError> {
    let mut tags = HashMap::from([
        (TAG_VERSION.to_string(), Some(v.version.clone())),
        (TAG_FINGERPRINT.to_string(), Some(v.fingerprint.clone())),
        (TAG_MANIFEST.to_string(), Some(v.manifest.clone())),
        (TAG_PUBLISHED_IN.to_string(), Some(v.published_in.to_string())),
        (TAG_FILE.to_string(), Some(index.to_string())),
    ]);
    if let Some(m) = &v.model {
        tags.insert(TAG_MODEL.to_string(), Some(m.clone()));
    }
    if let Some(c) = &v.checks {
        tags.insert(TAG_CHECKS.to_string(), Some(serde_json::to_string(c).map_err(encoding)?));
    }
    let stats = s.stats.unwrap_or_else(|| json!({"numRecords": s.rows}).to_string());
    Ok(Add {
        path: file.to_string(),
        partition_values: partition_values(p),
        size: s.size as i64,
        modification_time: now,
        data_change: true,
        stats: Some(stats),
        tags: Some(tags),
        ..Default::default()
    })
}

/// What a version of the log is to sluice.
pub(super) enum Decoded {
    /// A commit sluice wrote.
    Sluice(Box<Commit>),
    /// Another engine's commit that adds or removes no file (nothing sluice reads changes).
    NoData { operation: String },
    /// Another engine's commit that adds or removes files: sluice stops (see [`super::dataset`]).
    Foreign { operation: String },
}

/// Read version `v`'s actions.
pub(super) fn decode(v: u64, actions: &[Action]) -> Result<Decoded, String> {
    let info = actions.iter().find_map(|a| match a {
        Action::CommitInfo(i) => Some(i),
        _ => None,
    });
    let data = actions.iter().any(|a| matches!(a, Action::Add(_) | Action::Remove(_)));
    let operation = info.and_then(|i| i.operation.clone()).unwrap_or_else(|| "an unnamed operation".into());
    let Some(record) = info.and_then(|i| i.info.get(RECORD)) else {
        return Ok(if data { Decoded::Foreign { operation } } else { Decoded::NoData { operation } });
    };
    let mut c: Commit = serde_json::from_value(record.clone()).map_err(|e| format!("sluice's record: {e}"))?;
    if c.commit != v {
        return Err(format!("sluice's record says commit {}", c.commit));
    }
    for a in actions {
        if let Action::Remove(r) = a {
            c.partitions.entry(partition_of(r.partition_values.as_ref(), &r.path)).or_insert(None);
        }
    }
    let adds = actions.iter().filter_map(|a| match a {
        Action::Add(a) => Some(a),
        _ => None,
    });
    for (p, pv) in versions_of_adds(adds)? {
        c.partitions.insert(p, Some(pv));
    }
    Ok(Decoded::Sluice(Box::new(c)))
}

/// `key=value` of a file's partition values (its folder when it has none).
fn partition_of(values: Option<&HashMap<String, Option<String>>>, path: &str) -> String {
    match values.and_then(|m| m.iter().next()) {
        Some((k, Some(v))) => format!("{k}={v}"),
        _ => path.split('/').next().unwrap_or_default().to_string(),
    }
}

/// The partition versions that `adds` (sluice's, with their tags) make up.
pub(super) fn versions_of_adds<'a>(adds: impl Iterator<Item = &'a Add>) -> Result<BTreeMap<String, PartitionVersion>, String> {
    let mut files: BTreeMap<String, Vec<(usize, &Add)>> = BTreeMap::new();
    for a in adds {
        let tags = a.tags.as_ref().ok_or_else(|| format!("file {} has no sluice tags", a.path))?;
        let index = tag(tags, TAG_FILE).and_then(|i| i.parse().ok()).ok_or_else(|| format!("file {} has no sluice tags", a.path))?;
        files.entry(partition_of(Some(&a.partition_values), &a.path)).or_default().push((index, a));
    }
    let mut out = BTreeMap::new();
    for (p, mut adds) in files {
        adds.sort_by_key(|(i, _)| *i);
        out.insert(p, version_of(&adds)?);
    }
    Ok(out)
}

fn tag<'a>(tags: &'a HashMap<String, Option<String>>, key: &str) -> Option<&'a str> {
    tags.get(key).and_then(|v| v.as_deref())
}

fn version_of(adds: &[(usize, &Add)]) -> Result<PartitionVersion, String> {
    let first = adds[0].1;
    let tags = first.tags.as_ref().ok_or_else(|| format!("file {} has no sluice tags", first.path))?;
    let need = |key| tag(tags, key).map(str::to_string).ok_or_else(|| format!("file {} has no tag {key}", first.path));
    let file_stats: Vec<FileStats> = adds.iter().map(|(_, a)| FileStats { size: a.size as u64, rows: rows_of(a), stats: a.stats.clone() }).collect();
    let checks: Option<CheckTally> = tag(tags, TAG_CHECKS).and_then(|c| serde_json::from_str(c).ok());
    Ok(PartitionVersion {
        version: need(TAG_VERSION)?,
        files: adds.iter().map(|(_, a)| a.path.clone()).collect(),
        rows: file_stats.iter().map(|s| s.rows).sum(),
        file_stats,
        fingerprint: need(TAG_FINGERPRINT)?,
        manifest: need(TAG_MANIFEST)?,
        published_in: need(TAG_PUBLISHED_IN)?.parse().map_err(|_| format!("file {}: a bad {TAG_PUBLISHED_IN}", first.path))?,
        model: tag(tags, TAG_MODEL).map(str::to_string),
        checks,
    })
}

fn rows_of(a: &Add) -> u64 {
    a.stats.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok()).and_then(|v| v["numRecords"].as_u64()).unwrap_or(0)
}
