//! The commit loop: create commit N+1 put-if-absent on the state the caller read; when
//! another writer got there first, read its commit and decide (see [`crate::store`]): the
//! same run already published, a conflict on a shared partition or with gc, or retry as
//! N+2 past a commit on other partitions.

use bytes::Bytes;
use chrono::Utc;
use sluice_extract::PutOutcome;

use super::checkpoint::CHECKPOINT_EVERY;
use super::commit::{Change, Commit, CommitOutcome, CommitRequest};
use super::dataset::Dataset;
use super::layout::commit_path;
use crate::error::SluiceError;

/// A writer that keeps losing the race to writers on other partitions gives up after this
/// many commits (each lost race means the log grew by one).
const MAX_COMMIT_ATTEMPTS: usize = 10_000;

impl Dataset {
    /// Create the next commit on top of `req.base`, retrying past commits that touched
    /// other partitions. Prefer [`super::Attempt::commit`] for a run's files: it also knows
    /// when the attempt may still remove them.
    pub fn commit(&self, mut req: CommitRequest<'_>) -> Result<CommitOutcome, SluiceError> {
        for next in (req.base + 1..).take(MAX_COMMIT_ATTEMPTS) {
            if req.change == Change::Publish {
                req.partitions.values_mut().flatten().for_each(|v| v.published_in = next);
            }
            let body = serde_json::to_vec_pretty(&record(&req, next)).map_err(|e| self.err("encoding commit", e))?;
            match self.storage().put_if_absent(&commit_path(next), Bytes::from(body)) {
                Ok(PutOutcome::Created) => {
                    tracing::info!(dataset = self.uri(), commit = next, run_id = req.run_id, "committed");
                    if next % CHECKPOINT_EVERY == 0 {
                        self.write_checkpoint(next);
                    }
                    return Ok(CommitOutcome::Committed(next));
                }
                Ok(PutOutcome::AlreadyExists) => {}
                Err(e) => {
                    return Err(SluiceError::CommitUnknown { dataset: self.uri().to_string(), commit: next, reason: e.to_string() })
                }
            }
            if let Some(decided) = self.after_lost_race(&req, &self.read_commit(next)?) {
                return decided;
            }
            tracing::info!(commit = next, "lost the race for a commit on other partitions; retrying");
        }
        Err(self.conflict(format!("gave up after {MAX_COMMIT_ATTEMPTS} attempts")))
    }

    /// Another writer created the commit `req` wanted (`theirs`): what that means for
    /// `req`, or `None` to try the next number.
    fn after_lost_race(&self, req: &CommitRequest<'_>, theirs: &Commit) -> Option<Result<CommitOutcome, SluiceError>> {
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
        let shared = theirs.partitions.keys().find(|p| req.partitions.contains_key(*p))?;
        Some(Err(self.conflict(format!(
            "commit {next} (run {}) changed partition {shared} after commit {}, which this run built on; re-run to build on it",
            theirs.run_id, req.base
        ))))
    }

    fn conflict(&self, reason: String) -> SluiceError {
        SluiceError::Conflict { dataset: self.uri().to_string(), reason }
    }
}

/// The record of `req` as commit `next`.
fn record(req: &CommitRequest<'_>, next: u64) -> Commit {
    Commit {
        commit: next,
        timestamp: Utc::now(),
        change: req.change.clone(),
        run_id: req.run_id.to_string(),
        attempt: req.attempt.map(str::to_string),
        partitions: req.partitions.clone(),
        sluice_version: env!("CARGO_PKG_VERSION").to_string(),
        command: req.command.to_vec(),
    }
}
