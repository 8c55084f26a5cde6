//! The commit loop: create Delta version N+1 put-if-absent on the state the caller read;
//! when another writer got there first, read its commit and decide (see [`crate::store`]):
//! the same run already published, a conflict on a shared partition, with gc or on the
//! table's metaData, or retry as N+2 past a commit on other partitions. The first commit
//! to a dataset creates version 0 first: the table's protocol and metaData.

use chrono::Utc;
use sluice_extract::PutOutcome;

use super::actions::{self, encode, table_change};
use super::commit::{Change, Commit, CommitOutcome, CommitRequest};
use super::dataset::Dataset;
use super::table::{TableMeta, CHECKPOINT_EVERY};
use crate::error::SluiceError;

/// A writer that keeps losing the race to writers on other partitions gives up after this
/// many commits (each lost race means the log grew by one).
const MAX_COMMIT_ATTEMPTS: usize = 10_000;

impl Dataset {
    /// Create the next commit on top of `req.base`, retrying past commits that touched
    /// other partitions. Prefer [`super::Attempt::commit`] for a run's files: it also knows
    /// when the attempt may still remove them.
    pub fn commit(&self, mut req: CommitRequest<'_>) -> Result<CommitOutcome, SluiceError> {
        if req.table.is_none() {
            req.table = Some(self.create_table(&req)?);
        }
        for next in (req.base + 1..).take(MAX_COMMIT_ATTEMPTS) {
            if req.change == Change::Publish {
                req.partitions.values_mut().flatten().for_each(|v| v.published_in = next);
            }
            let actions = encode(&req, &record(&req, next))?;
            let bytes = self.delta.encode(&actions)?;
            match self.delta.create_bytes(next, bytes.clone()) {
                Ok(PutOutcome::Created) => {
                    tracing::info!(dataset = self.uri(), commit = next, run_id = req.run_id, "committed");
                    if let Some(state) = req.state.as_ref().filter(|_| next == req.base + 1) {
                        self.cache_head(next, &bytes, &actions, state, req.table.as_ref());
                    }
                    if next % req.table.as_ref().map_or(CHECKPOINT_EVERY, TableMeta::checkpoint_interval) == 0 {
                        self.write_checkpoint(next);
                    }
                    return Ok(CommitOutcome::Committed(next));
                }
                Ok(PutOutcome::AlreadyExists) => {}
                Err(e) => {
                    return Err(SluiceError::CommitUnknown { dataset: self.uri().to_string(), commit: next, reason: e.to_string() })
                }
            }
            let (theirs, theirs_change_table) = self.read_version(next)?;
            if let Some(decided) = self.after_lost_race(&req, &theirs, theirs_change_table) {
                return decided;
            }
            tracing::info!(commit = next, "lost the race for a commit on other partitions; retrying");
        }
        Err(self.conflict(format!("gave up after {MAX_COMMIT_ATTEMPTS} attempts")))
    }

    /// Version 0, the table, made of the first publish's schema; if another writer created
    /// it first, theirs. Only a publish can create a table.
    fn create_table(&self, req: &CommitRequest<'_>) -> Result<TableMeta, SluiceError> {
        let (Some(schema), Some(partition)) = (&req.schema, req.partitions.keys().next()) else {
            return Err(SluiceError::Usage(format!("{}: no Delta table here yet (nothing was ever published)", self.uri())));
        };
        let key = partition.split_once('=').map_or(partition.as_str(), |(k, _)| k);
        let mine = TableMeta::create(schema, key)?;
        match self.delta.create(0, &actions::create(&mine)?) {
            Ok(PutOutcome::Created) => {
                tracing::info!(dataset = self.uri(), "created the Delta table (version 0)");
                Ok(mine)
            }
            // theirs (or ours, a retried request that landed: the same table either way)
            Ok(PutOutcome::AlreadyExists) | Err(_) => self
                .delta
                .table(Some(0))?
                .and_then(|t| t.snapshot().ok().map(|s| TableMeta::of_action(s.metadata())))
                .transpose()?
                .ok_or_else(|| self.err("Delta log", "version 0 could not be written or read")),
        }
    }

    /// Another writer created the commit `req` wanted (`theirs`, which wrote the table's
    /// metaData if `theirs_change_table`): what that means for `req`, or `None` to try the
    /// next number.
    fn after_lost_race(&self, req: &CommitRequest<'_>, theirs: &Commit, theirs_change_table: bool) -> Option<Result<CommitOutcome, SluiceError>> {
        let next = theirs.commit;
        if req.attempt.is_some() && theirs.attempt.as_deref() == req.attempt && theirs.run_id == req.run_id {
            // our own write landed and a retry of the request found it
            tracing::info!(commit = next, run_id = req.run_id, "commit written by this attempt (a retried request found it)");
            return Some(Ok(CommitOutcome::Committed(next)));
        }
        if req.change == Change::Publish && theirs.change == Change::Publish && theirs.run_id == req.run_id {
            tracing::info!(commit = next, run_id = req.run_id, "another attempt of this run published first");
            return Some(Ok(CommitOutcome::AlreadyPublished(next)));
        }
        if let Some(gc) = theirs.change.gc() {
            let (versions, dirs) = req.relies_on();
            let collected = versions.iter().find(|v| gc.versions.contains(v)).map(|(p, v)| format!("version {v} of {p}"));
            if let Some(hit) = collected.or_else(|| dirs.iter().find(|d| gc.debris.contains(d)).cloned()) {
                return Some(Err(self.conflict(format!("gc (commit {next}) collected {hit}, which this commit needs; re-run"))));
            }
        }
        if matches!(req.change, Change::Gc { .. }) {
            // a gc decides on the whole log: any newer commit means deciding again
            return Some(Err(self.conflict(format!("commit {next} landed while gc planned"))));
        }
        if theirs_change_table && table_change(req, next, Utc::now()).is_ok_and(|t| t.is_some()) {
            return Some(Err(self.conflict(format!("commit {next} changed the table's metaData after commit {}; re-run", req.base))));
        }
        let shared = theirs.partitions.keys().find(|p| req.partitions.contains_key(*p))?;
        Some(Err(self.conflict(format!(
            "commit {next} (run {}) changed partition {shared} after commit {}, which this run built on; re-run to build on it",
            theirs.run_id, req.base
        ))))
    }

    fn conflict(&self, reason: String) -> SluiceError {
        SluiceError::Conflict { dataset: self.uri().to_string(), reason }
    }

    /// Write the checkpoint at commit `n` (best effort: a reader without it reads more).
    fn write_checkpoint(&self, n: u64) {
        match self.delta.checkpoint(n) {
            Ok(()) => tracing::info!(commit = n, "checkpoint written"),
            Err(e) => tracing::warn!(commit = n, error = %e, "could not write a checkpoint; readers read more commits"),
        }
    }
}

/// The record of `req` as commit `next`.
fn record(req: &CommitRequest<'_>, next: u64) -> Commit {
    Commit {
        commit: next,
        timestamp: req.at.unwrap_or_else(Utc::now),
        change: req.change.clone(),
        run_id: req.run_id.to_string(),
        attempt: req.attempt.map(str::to_string),
        partitions: req.partitions.clone(),
        sluice_version: env!("CARGO_PKG_VERSION").to_string(),
        command: req.command.to_vec(),
    }
}
