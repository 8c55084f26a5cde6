//! Checkpoints of the commit log, so opening a dataset does not read its whole history.
//!
//! Every [`CHECKPOINT_EVERY`] commits, the writer of commit N also writes
//! `_sluice/checkpoints/N.json` (put-if-absent, so racing writers cannot corrupt it; any
//! of them may write it, all would write the same): the state after N, and the run ids
//! published up to N with their commits. [`Dataset::head`] reads the latest checkpoint and
//! only the commits after it, by number from N+1 (several at once) until one is missing, so
//! its cost does not grow with the history. (A listing from an offset would too on S3, but
//! object_store's local file system lists the whole folder to apply an offset.) A checkpoint that is
//! missing is simply not used; one that does not parse or does not match its name is
//! skipped with a warning (the previous one, or the log from commit 1, is used instead).
//!
//! Full history (`versions`, time travel, rollback, gc) still reads every commit.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_extract::PutOutcome;

use super::{commit_path, Commit, Dataset, Operation, PartitionVersion, Snapshot};
use crate::SluiceError;

pub const CHECKPOINT_EVERY: u64 = 100;
const CHECKPOINTS_DIR: &str = "_sluice/checkpoints";

fn checkpoint_path(n: u64) -> String {
    format!("{CHECKPOINTS_DIR}/{n:020}.json")
}

/// The folded log up to a commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub commit: u64,
    pub partitions: BTreeMap<String, PartitionVersion>,
    /// Every published run id and the commit that published it.
    pub published: BTreeMap<String, u64>,
}

/// What a reader needs of the log: the latest checkpoint and the commits after it.
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub checkpoint: Option<Checkpoint>,
    /// Commits after the checkpoint (or from 1), in order.
    pub tail: Vec<Commit>,
}

impl Head {
    /// The last commit (0 for an empty dataset).
    pub fn latest(&self) -> u64 {
        self.tail.last().map(|c| c.commit).or(self.checkpoint.as_ref().map(|c| c.commit)).unwrap_or(0)
    }

    /// The current state.
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = match &self.checkpoint {
            Some(c) => Snapshot { commit: c.commit, partitions: c.partitions.clone() },
            None => Snapshot::default(),
        };
        self.tail.iter().for_each(|c| snap.apply(c));
        snap
    }

    /// The commit that published `run_id`, if any.
    pub fn published_by(&self, run_id: &str) -> Option<u64> {
        let in_tail = super::published_by(&self.tail, run_id).map(|c| c.commit);
        in_tail.or_else(|| self.checkpoint.as_ref().and_then(|c| c.published.get(run_id).copied()))
    }
}

impl Dataset {
    /// The latest usable checkpoint and the commits after it.
    pub fn head(&self) -> Result<Head, SluiceError> {
        let mut numbers: Vec<u64> = self.storage.list(CHECKPOINTS_DIR)?.iter().filter_map(|(rel, _)| number(rel)).collect();
        numbers.sort_unstable();
        let mut checkpoint = None;
        while let Some(n) = numbers.pop() {
            match self.read_checkpoint(n) {
                Ok(c) => {
                    checkpoint = Some(c);
                    break;
                }
                Err(e) => tracing::warn!(checkpoint = n, error = %e, "skipping a damaged checkpoint"),
            }
        }
        let from = checkpoint.as_ref().map_or(0, |c| c.commit);
        let tail = self.commits_from(from + 1)?;
        tracing::debug!(checkpoint = from, commits_read = tail.len(), "read the log");
        Ok(Head { checkpoint, tail })
    }

    /// Every commit from `first` on. Commits are contiguous (N+1 is only written by a writer
    /// that found N), so they are read by number, in growing batches read at once, up to the
    /// first that does not exist: no listing, whose cost would grow with the history. A
    /// commit that appears while a batch is read may be missed; the state read is then the
    /// log as of an instant earlier, as with any read.
    fn commits_from(&self, first: u64) -> Result<Vec<Commit>, SluiceError> {
        let (mut out, mut next, mut batch) = (Vec::new(), first, 8u64);
        loop {
            let paths: Vec<String> = (next..next + batch).map(commit_path).collect();
            for (i, bytes) in self.storage.get_many_opt(&paths)?.into_iter().enumerate() {
                let Some(bytes) = bytes else { return Ok(out) };
                let c: Commit = serde_json::from_slice(&bytes).map_err(|e| self.err(&paths[i], e))?;
                out.push(c);
            }
            next += batch;
            batch = (batch * 2).min(64);
        }
    }

    /// The commits after `base`, up to `head`'s latest: from the tail, and those before it
    /// (an old base, e.g. a shard's) read one by one.
    pub fn commits_after(&self, head: &Head, base: u64) -> Result<Vec<Commit>, SluiceError> {
        let tail_start = head.tail.first().map_or(head.latest() + 1, |c| c.commit);
        let mut out = Vec::new();
        for n in base + 1..tail_start {
            out.push(self.read_commit(n)?);
        }
        out.extend(head.tail.iter().filter(|c| c.commit > base).cloned());
        Ok(out)
    }

    fn read_checkpoint(&self, n: u64) -> Result<Checkpoint, SluiceError> {
        let bytes = self.storage.get(&checkpoint_path(n))?;
        let c: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| self.err(&checkpoint_path(n), e))?;
        match c.commit == n {
            true => Ok(c),
            false => Err(self.err(&checkpoint_path(n), format!("holds commit {}", c.commit))),
        }
    }

    /// Write the checkpoint at commit `n` (best effort: a reader without it reads more).
    pub(super) fn write_checkpoint(&self, n: u64) {
        let written = self.checkpoint_at(n).and_then(|c| {
            let body = serde_json::to_vec(&c).map_err(|e| self.err("encoding a checkpoint", e))?;
            Ok(self.storage.put_if_absent(&checkpoint_path(n), Bytes::from(body))?)
        });
        match written {
            Ok(PutOutcome::Created) => tracing::info!(commit = n, "checkpoint written"),
            Ok(PutOutcome::AlreadyExists) => {}
            Err(e) => tracing::warn!(commit = n, error = %e, "could not write a checkpoint; readers read more commits"),
        }
    }

    /// The checkpoint at `n`, built from the latest earlier checkpoint and the commits up to `n`.
    fn checkpoint_at(&self, n: u64) -> Result<Checkpoint, SluiceError> {
        let head = self.head()?;
        let mut published = head.checkpoint.as_ref().map(|c| c.published.clone()).unwrap_or_default();
        let tail: Vec<Commit> = head.tail.into_iter().filter(|c| c.commit <= n).collect();
        for c in tail.iter().filter(|c| c.operation == Operation::Publish) {
            published.entry(c.run_id.clone()).or_insert(c.commit);
        }
        let snap = Head { checkpoint: head.checkpoint, tail }.snapshot();
        if snap.commit != n {
            return Err(self.err("checkpoint", format!("the log reads up to commit {}, not {n}", snap.commit)));
        }
        Ok(Checkpoint { commit: n, partitions: snap.partitions, published })
    }
}

fn number(rel: &str) -> Option<u64> {
    rel.rsplit('/').next()?.strip_suffix(".json")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{publish, temp_dataset};
    use super::*;

    #[test]
    fn a_reader_starts_from_the_latest_checkpoint_and_survives_a_damaged_one() {
        let (ds, dir) = temp_dataset("checkpoints");
        for i in 0..(2 * CHECKPOINT_EVERY + 5) {
            ds.commit(publish(i, &format!("r{i}"), &format!("d={}", i % 7), vec![])).unwrap();
        }
        let head = ds.head().unwrap();
        assert_eq!(head.checkpoint.as_ref().map(|c| c.commit), Some(2 * CHECKPOINT_EVERY));
        assert_eq!(head.tail.len(), 5, "only the commits after the checkpoint are read");
        let full = ds.snapshot(None).unwrap();
        assert_eq!(head.snapshot().partitions, full.partitions);
        assert_eq!(head.latest(), full.commit);
        assert_eq!(head.published_by("r3"), Some(4), "found in the checkpoint");
        assert_eq!(head.published_by("r201"), Some(202), "found in the tail");
        // a damaged checkpoint is skipped for the one before it
        std::fs::write(dir.join(checkpoint_path(2 * CHECKPOINT_EVERY)), b"{not json").unwrap();
        let head = ds.head().unwrap();
        assert_eq!(head.checkpoint.as_ref().map(|c| c.commit), Some(CHECKPOINT_EVERY));
        assert_eq!(head.tail.len() as u64, CHECKPOINT_EVERY + 5);
        assert_eq!(head.snapshot().partitions, full.partitions);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
