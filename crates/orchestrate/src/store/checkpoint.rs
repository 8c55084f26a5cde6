//! Checkpoints of the commit log, so opening a dataset does not read its whole history.
//!
//! Every [`CHECKPOINT_EVERY`] commits, the writer of commit N also writes
//! `_sluice/checkpoints/N.json` (put-if-absent, so racing writers cannot corrupt it; any
//! of them may write it, all would write the same): the state after N, and the run ids
//! published up to N with their commits. [`super::Dataset::head`] reads the latest checkpoint and
//! only the commits after it, by number from N+1 (several at once) until one is missing, so
//! its cost does not grow with the history. (A listing from an offset would too on S3, but
//! object_store's local file system lists the whole folder to apply an offset.) A checkpoint that is
//! missing is simply not used; one that does not parse or does not match its name is
//! skipped with a warning (the previous one, or the log from commit 1, is used instead).
//!
//! Full history (`versions`, time travel, rollback, gc) still reads every commit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::commit::{published_by, Change, Commit, PartitionVersion, Snapshot};

pub const CHECKPOINT_EVERY: u64 = 100;

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

impl Checkpoint {
    /// The checkpoint at commit `n`, from `head` (the latest earlier checkpoint and the
    /// commits after it, up to `n` at least).
    pub fn at(head: Head, n: u64) -> Result<Checkpoint, String> {
        let mut published = head.checkpoint.as_ref().map(|c| c.published.clone()).unwrap_or_default();
        let tail: Vec<Commit> = head.tail.into_iter().filter(|c| c.commit <= n).collect();
        for c in tail.iter().filter(|c| c.change == Change::Publish) {
            published.entry(c.run_id.clone()).or_insert(c.commit);
        }
        let snap = Head { checkpoint: head.checkpoint, tail }.snapshot();
        if snap.commit != n {
            return Err(format!("the log reads up to commit {}, not {n}", snap.commit));
        }
        Ok(Checkpoint { commit: n, partitions: snap.partitions, published })
    }
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
        let in_tail = published_by(&self.tail, run_id).map(|c| c.commit);
        in_tail.or_else(|| self.checkpoint.as_ref().and_then(|c| c.published.get(run_id).copied()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::layout::checkpoint_path;
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
