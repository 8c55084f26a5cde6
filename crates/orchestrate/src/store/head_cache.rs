//! The head cache: the state after commit N, kept at `_sluice/heads/<N>.json` so that a
//! run reads the current state with a listing and three small reads instead of Delta's
//! replay of the newest checkpoint and the commits after it (~11 ms of a ~35 ms daily run
//! on a 30-commit log, and the kernel's threads).
//!
//! Written put-if-absent, best effort, by the writer that created commit N on top of a
//! state it had read whole at N-1: that state with N's own actions applied, the way
//! [`super::fold`] applies a commit. It names the sha256 of N's log file. A reader takes it
//! only for the version it wants (the latest, found as Delta finds it: `_last_checkpoint`,
//! then the log listed from there) and only when N's log file hashes to it; anything else
//! (no cache file, another engine's commit, a log rewritten at the same path, a file it
//! cannot read or parse) is a miss, and the reader replays the log through deltalake as
//! before. Nothing is decided on the cache alone: it is keyed by an immutable log file, and
//! a writer that loses a commit race reads the winner's commit from the log.

use std::collections::BTreeMap;

use bytes::Bytes;
use deltalake_core::kernel::Action;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::actions::{decode, Decoded};
use super::commit::{PartitionVersion, Snapshot};
use super::dataset::Dataset;
use super::head::Head;
use super::layout::{self, head_file, log_file, numbered};
use super::table::TableMeta;
use crate::error::SluiceError;

/// The cache file's format; another number is a miss.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Cached {
    format: u32,
    /// The commit this is the state after.
    commit: u64,
    /// sha256 of that commit's log file.
    log_sha256: String,
    table: TableMeta,
    partitions: BTreeMap<String, PartitionVersion>,
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Dataset {
    /// The state after commit `version` (the latest when `None`) from the cache; `None` on
    /// a miss.
    pub(super) fn cached_head(&self, version: Option<u64>) -> Option<Head> {
        let n = match version {
            Some(n) => n,
            None => self.latest_version().map_err(|e| tracing::debug!(error = %e, "head cache: listing the log")).ok()??,
        };
        let read = self.storage().get_many_opt(&[head_file(n), log_file(n)]);
        let (cached, log) = match read.as_deref() {
            Ok([Some(cached), Some(log)]) => (cached, log),
            Ok(_) => return None,
            Err(e) => {
                tracing::debug!(error = %e, commit = n, "head cache: unreadable");
                return None;
            }
        };
        let c: Cached = serde_json::from_slice(cached).map_err(|e| tracing::debug!(error = %e, commit = n, "head cache: unparsable")).ok()?;
        if c.format != FORMAT || c.commit != n || c.log_sha256 != sha256(log) {
            tracing::debug!(commit = n, "head cache: not for this log file");
            return None;
        }
        Some(Head::cached(&self.delta, n, c.table, c.partitions))
    }

    /// The newest version of the log, found as Delta finds it (its files listed from the
    /// newest checkpoint); `None` when the log has none, or a gap (the kernel explains it).
    fn latest_version(&self) -> Result<Option<u64>, SluiceError> {
        let from = self.storage().get_opt(layout::LAST_CHECKPOINT)?.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let from = from.and_then(|v| v["version"].as_u64()).unwrap_or(0);
        let after = format!("{}/{from:020}", layout::DELTA_LOG);
        let listed = self.storage().list_after(layout::DELTA_LOG, Some(after.as_str()))?;
        let mut versions: Vec<u64> = listed.iter().filter_map(|(rel, _)| numbered(rel)).collect();
        versions.sort_unstable();
        let contiguous = versions.first() == Some(&from) && versions.windows(2).all(|w| w[1] == w[0] + 1);
        Ok(versions.last().copied().filter(|_| contiguous))
    }

    /// Cache the state after commit `n`, which this call created from `actions` (stored as
    /// `log`) on top of `base`, the whole state at commit `n - 1`, whose table was `table`.
    /// Best effort: a miss only costs the next reader a replay.
    pub(super) fn cache_head(&self, n: u64, log: &Bytes, actions: &[Action], base: &BTreeMap<String, PartitionVersion>, table: Option<&TableMeta>) {
        let Ok(Decoded::Sluice(commit)) = decode(n, actions) else { return };
        let new_table = actions.iter().find_map(|a| match a {
            Action::Metadata(m) => Some(TableMeta::of_action(m)),
            _ => None,
        });
        let table = match new_table {
            Some(t) => t.ok(),
            None => table.cloned(),
        };
        let Some(table) = table else { return };
        let mut state = Snapshot { commit: n - 1, partitions: base.clone() };
        state.apply(&commit);
        state.partitions.values_mut().for_each(PartitionVersion::drop_column_stats);
        let cached = Cached { format: FORMAT, commit: n, log_sha256: sha256(log), table, partitions: state.partitions };
        let written = serde_json::to_vec(&cached).map_err(|e| e.to_string()).and_then(|body| {
            self.storage().put_if_absent(&head_file(n), Bytes::from(body)).map_err(|e| e.to_string())
        });
        if let Err(e) = written {
            tracing::warn!(commit = n, error = %e, "could not cache the state; the next reader replays the log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::commit::{Change, CommitOutcome, CommitRequest};
    use super::super::table::PinChange;
    use super::super::testing::{publish, schema, temp_dataset};
    use super::*;
    use crate::types::FileStats;

    /// The cached head equals Delta's replay of the same version.
    fn cached_is_replayed(ds: &Dataset) -> Head {
        let cached = ds.cached_head(None).expect("the last commit cached its state");
        let replayed = ds.replayed_head(None).unwrap();
        assert_eq!(cached.version, replayed.version);
        assert_eq!(cached.partitions, replayed.partitions, "commit {}", cached.version);
        assert_eq!(cached.table, replayed.table, "commit {}", cached.version);
        cached
    }

    /// `req` decided on the whole of `head`.
    fn on<'a>(req: CommitRequest<'a>, head: &Head) -> CommitRequest<'a> {
        req.on(&head.partitions, head.table.as_ref())
    }

    fn with_stats(mut req: CommitRequest<'_>, rows: u64) -> CommitRequest<'_> {
        let stats = format!(r#"{{"numRecords":{rows},"minValues":{{"x":1}},"maxValues":{{"x":{rows}}},"nullCount":{{"x":0}}}}"#);
        for v in req.partitions.values_mut().flatten() {
            v.file_stats = vec![FileStats { size: 100 + rows, rows, stats: Some(stats.clone()) }; v.files.len()];
            v.rows = rows;
        }
        req
    }

    #[test]
    fn the_cached_state_is_delta_s_replay_after_every_kind_of_commit() {
        let (ds, dir) = temp_dataset("head-cache");
        let mut head = ds.head().unwrap();
        // publishes of new and replaced partitions, past two checkpoints (10 and 20)
        for i in 0..21u64 {
            let run = format!("r{i}");
            let req = with_stats(publish(head.version, &run, &format!("d={}", i % 7), vec![]), i + 1);
            assert_eq!(ds.commit(on(req, &head)).unwrap(), CommitOutcome::Committed(i + 1));
            head = cached_is_replayed(&ds);
        }
        // a rollback to an earlier version, a removed partition, a pin, a new column
        let earlier = ds.replayed_head(Some(3)).unwrap().partitions["d=2"].clone();
        let moves = BTreeMap::from([("d=2".to_string(), Some(earlier)), ("d=3".to_string(), None)]);
        let previous = BTreeMap::from([("d=2".to_string(), Some("r16".to_string())), ("d=3".to_string(), Some("r17".to_string()))]);
        ds.commit(on(CommitRequest::new(head.version, Change::Rollback { previous }, "rb", moves, &[]), &head)).unwrap();
        head = cached_is_replayed(&ds);
        assert_eq!(head.partitions["d=2"].version, "r2");
        assert!(!head.partitions.contains_key("d=3"));
        let pin = PinChange { partition: "d=2".into(), version: "r2".into(), pinned: true, note: Some("audit".into()) };
        ds.commit(on(CommitRequest::new(head.version, Change::Pin { pins: vec![pin] }, "pin", BTreeMap::new(), &[]), &head)).unwrap();
        head = cached_is_replayed(&ds);
        assert_eq!(head.pins().len(), 1);
        let mut wider = with_stats(publish(head.version, "wide", "d=9", vec![]), 4);
        let mut fields = schema()["fields"].as_array().unwrap().clone();
        fields.push(serde_json::json!({"name": "y", "type": "double", "nullable": true, "metadata": {}}));
        wider.schema = Some(serde_json::json!({"type": "struct", "fields": fields}));
        ds.commit(on(wider, &head)).unwrap();
        head = cached_is_replayed(&ds);
        assert!(head.table.as_ref().unwrap().schema_string.contains("\"y\""));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_cache_is_taken_only_for_its_own_log_file() {
        let (ds, dir) = temp_dataset("head-cache-miss");
        let head = ds.head().unwrap();
        ds.commit(on(publish(0, "a", "d=1", vec![]), &head)).unwrap();
        assert_eq!(ds.cached_head(None).map(|h| h.version), Some(1));
        // a writer that lost the race to commit 2 commits 3: it did not read 2, so no cache
        ds.commit(on(publish(1, "b", "d=2", vec![]), &ds.head().unwrap())).unwrap();
        assert_eq!(ds.commit(on(publish(1, "c", "d=3", vec![]), &head)).unwrap(), CommitOutcome::Committed(3));
        assert!(ds.cached_head(None).is_none(), "commit 3 was not made on the state at 2");
        assert_eq!(ds.head().unwrap().partitions.len(), 3, "the replay answers");
        // commit 2's log file rewritten (a log made again at the same path): its cache is not taken
        let log2 = dir.join(log_file(2));
        assert!(ds.cached_head(Some(2)).is_some());
        let mut bytes = std::fs::read(&log2).unwrap();
        bytes.push(b'\n');
        std::fs::write(&log2, bytes).unwrap();
        assert!(ds.cached_head(Some(2)).is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
