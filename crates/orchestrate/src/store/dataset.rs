//! [`Dataset`]: a versioned dataset at a storage root, and reading its commit log (whole,
//! or from the newest checkpoint). Committing is [`super::committer`].

use bytes::Bytes;
use sluice_extract::{PutOutcome, Storage};

use super::checkpoint::{Checkpoint, Head};
use super::commit::{fold, Commit, PartitionVersion, Snapshot};
use super::layout::{self, commit_path, run_dir};
use crate::error::SluiceError;

/// A versioned dataset at a storage root.
pub struct Dataset {
    storage: Storage,
}

impl Dataset {
    /// A dataset at `storage`'s root. Plain HTTP is refused: it cannot commit.
    pub fn open(storage: Storage) -> Result<Self, SluiceError> {
        if !storage.is_writable() {
            return Err(sluice_extract::ExtractError::ReadOnly { uri: storage.uri().to_string() }.into());
        }
        Ok(Dataset { storage })
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn uri(&self) -> &str {
        self.storage.uri()
    }

    /// The URI a plain reader opens for a dataset-relative path.
    pub fn uri_of(&self, rel: &str) -> String {
        self.storage.uri_of(rel)
    }

    /// Where the attempts of `run_id` put their files for `partition` (for plans).
    pub fn run_dir_uri(&self, partition: &str, run_id: &str) -> String {
        format!("{}/", self.storage.uri_of(&run_dir(partition, run_id)))
    }

    pub(super) fn err(&self, what: &str, e: impl std::fmt::Display) -> SluiceError {
        SluiceError::Store(format!("{}: {what}: {e}", self.uri()))
    }

    /// Every commit, in order. The log must be contiguous from 1.
    pub fn log(&self) -> Result<Vec<Commit>, SluiceError> {
        let mut numbers: Vec<u64> = self.storage.list(layout::COMMITS_DIR)?.iter().filter_map(|(rel, _)| layout::numbered(rel)).collect();
        numbers.sort_unstable();
        let mut out = Vec::with_capacity(numbers.len());
        for (i, n) in numbers.into_iter().enumerate() {
            if n != i as u64 + 1 {
                return Err(self.err("commit log", format!("commit {} is missing (found {n})", i + 1)));
            }
            out.push(self.read_commit(n)?);
        }
        Ok(out)
    }

    /// Commit `n`.
    pub fn read_commit(&self, n: u64) -> Result<Commit, SluiceError> {
        let bytes = self.storage.get(&commit_path(n))?;
        serde_json::from_slice(&bytes).map_err(|e| self.err(&commit_path(n), e))
    }

    /// The state after commit `as_of` (default: the latest, read from the last checkpoint).
    pub fn snapshot(&self, as_of: Option<u64>) -> Result<Snapshot, SluiceError> {
        match as_of {
            None => Ok(self.head()?.snapshot()),
            Some(n) => self.snapshot_in(&self.log()?, n),
        }
    }

    /// The state after commit `n` of `log` (this dataset's log, as read by the caller).
    pub fn snapshot_in(&self, log: &[Commit], n: u64) -> Result<Snapshot, SluiceError> {
        if n > log.len() as u64 {
            return Err(SluiceError::Usage(format!("{}: no commit {n} (latest is {})", self.uri(), log.len())));
        }
        Ok(fold(log, Some(n)))
    }

    /// Files of `v` that are missing, as dataset-relative paths.
    pub fn missing_files(&self, v: &PartitionVersion) -> Result<Vec<String>, SluiceError> {
        let mut missing = Vec::new();
        for f in &v.files {
            if !self.storage.exists(f)? {
                missing.push(f.clone());
            }
        }
        Ok(missing)
    }

    /// The staging records of every attempt of every shard of `run_id`: (path, bytes).
    pub fn shard_records(&self, run_id: &str) -> Result<Vec<(String, Bytes)>, SluiceError> {
        let mut out = Vec::new();
        for (rel, _) in self.storage.list(&layout::shard_records_prefix(run_id))? {
            if rel.ends_with(".json") {
                let bytes = self.storage.get(&rel)?;
                out.push((self.storage.uri_of(&rel), bytes));
            }
        }
        Ok(out)
    }
}

/// Reading the log from its newest checkpoint ([`super::checkpoint`]), and writing checkpoints.
impl Dataset {
    /// The latest usable checkpoint and the commits after it.
    pub fn head(&self) -> Result<Head, SluiceError> {
        let mut numbers: Vec<u64> = self.storage.list(layout::CHECKPOINTS_DIR)?.iter().filter_map(|(rel, _)| layout::numbered(rel)).collect();
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
        let bytes = self.storage.get(&layout::checkpoint_path(n))?;
        let c: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| self.err(&layout::checkpoint_path(n), e))?;
        match c.commit == n {
            true => Ok(c),
            false => Err(self.err(&layout::checkpoint_path(n), format!("holds commit {}", c.commit))),
        }
    }

    /// Write the checkpoint at commit `n` (best effort: a reader without it reads more).
    pub(super) fn write_checkpoint(&self, n: u64) {
        let written = self.head().and_then(|head| Checkpoint::at(head, n).map_err(|e| self.err("checkpoint", e))).and_then(|c| {
            let body = serde_json::to_vec(&c).map_err(|e| self.err("encoding a checkpoint", e))?;
            Ok(self.storage.put_if_absent(&layout::checkpoint_path(n), Bytes::from(body))?)
        });
        match written {
            Ok(PutOutcome::Created) => tracing::info!(commit = n, "checkpoint written"),
            Ok(PutOutcome::AlreadyExists) => {}
            Err(e) => tracing::warn!(commit = n, error = %e, "could not write a checkpoint; readers read more commits"),
        }
    }
}
