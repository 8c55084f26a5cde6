//! [`Dataset`]: a versioned dataset at a storage root, and reading its Delta log: the
//! current state from the newest checkpoint ([`Head`]), or the whole history as sluice's
//! commits. Committing is [`super::committer`].

use bytes::Bytes;
use sluice_extract::Storage;

use super::actions::{decode, Decoded};
use super::commit::{Change, Commit, PartitionVersion, Snapshot};
use super::delta::DeltaLog;
use super::head::{ForeignFile, Head};
use super::layout::{self, partition_dir};
use crate::error::SluiceError;

/// A versioned dataset at a storage root.
pub struct Dataset {
    storage: Storage,
    pub(super) delta: DeltaLog,
}

impl Dataset {
    /// A dataset at `storage`'s root. Plain HTTP is refused: it cannot commit.
    pub fn open(storage: Storage) -> Result<Self, SluiceError> {
        if !storage.is_writable() {
            return Err(sluice_extract::ExtractError::ReadOnly { uri: storage.uri().to_string() }.into());
        }
        let delta = DeltaLog::new(&storage)?;
        Ok(Dataset { storage, delta })
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

    /// The folder of `partition`'s data files, where a run puts its new ones (for plans).
    pub fn partition_dir_uri(&self, partition: &str) -> String {
        format!("{}/", self.storage.uri_of(&partition_dir(partition)))
    }

    pub(super) fn err(&self, what: &str, e: impl std::fmt::Display) -> SluiceError {
        SluiceError::Store(format!("{}: {what}: {e}", self.uri()))
    }

    /// The versions of the log, in order; they must be contiguous from 0.
    fn versions(&self) -> Result<Vec<u64>, SluiceError> {
        let mut numbers: Vec<u64> = self.storage.list(layout::DELTA_LOG)?.iter().filter_map(|(rel, _)| layout::numbered(rel)).collect();
        numbers.sort_unstable();
        if numbers.is_empty() && self.has_legacy_log()? {
            return Err(self.legacy_refusal());
        }
        for (i, n) in numbers.iter().enumerate() {
            if *n != i as u64 {
                return Err(self.err("Delta log", format!("version {i} is missing (found {n}); sluice needs the whole log")));
            }
        }
        Ok(numbers)
    }

    /// Every commit after version 0 (the table's creation), in order: sluice's, and other
    /// engines' commits that change no data file. Another engine's file change stops here.
    pub fn log(&self) -> Result<Vec<Commit>, SluiceError> {
        let versions = self.versions()?;
        let mut out = Vec::with_capacity(versions.len());
        for v in versions.into_iter().filter(|v| *v > 0) {
            out.push(self.read_commit(v)?);
        }
        Ok(out)
    }

    /// Commit (version) `n`, `n` > 0.
    pub fn read_commit(&self, n: u64) -> Result<Commit, SluiceError> {
        Ok(self.read_version(n)?.0)
    }

    /// Version `n` as a commit, and whether it wrote the table's metaData.
    pub(super) fn read_version(&self, n: u64) -> Result<(Commit, bool), SluiceError> {
        let actions = self.delta.read(n)?.ok_or_else(|| self.err("Delta log", format!("version {n} does not exist")))?;
        let changes_table = actions.iter().any(|a| matches!(a, deltalake_core::kernel::Action::Metadata(_)));
        let commit = match decode(n, &actions).map_err(|e| self.err(&format!("version {n}"), e))? {
            Decoded::Sluice(c) => *c,
            Decoded::NoData { operation } => external(n, &actions, operation),
            Decoded::Foreign { operation } => return Err(self.foreign(n, operation)),
        };
        Ok((commit, changes_table))
    }

    fn foreign(&self, version: u64, operation: String) -> SluiceError {
        SluiceError::ForeignCommit { dataset: self.uri().to_string(), version, before: version.saturating_sub(1), operation }
    }

    /// The state after commit `as_of` (default: the latest), through Delta's log replay
    /// from the newest checkpoint at or before it.
    pub fn snapshot(&self, as_of: Option<u64>) -> Result<Snapshot, SluiceError> {
        match as_of {
            None => Ok(self.head()?.snapshot()),
            Some(n) => Ok(self.head_at(Some(n))?.snapshot()),
        }
    }

    /// The current state, from the newest checkpoint.
    pub fn head(&self) -> Result<Head, SluiceError> {
        self.head_at(None)
    }

    /// The state as of `version` (the latest when `None`): from the head cache when it
    /// holds that version, else through Delta's replay.
    pub fn head_at(&self, version: Option<u64>) -> Result<Head, SluiceError> {
        if let Some(head) = self.cached_head(version) {
            tracing::debug!(version = head.version, "read the Delta log's head from the cache");
            return Ok(head);
        }
        self.replayed_head(version)
    }

    /// [`Dataset::head_at`] through Delta's replay, whatever the cache holds.
    pub(super) fn replayed_head(&self, version: Option<u64>) -> Result<Head, SluiceError> {
        let Some(table) = self.delta.table(version)? else {
            return match self.has_legacy_log()? {
                true => Err(self.legacy_refusal()),
                false => Ok(Head::default()),
            };
        };
        match Head::of(&self.delta, table)? {
            Ok(head) => {
                tracing::debug!(version = head.version, "read the Delta log");
                Ok(head)
            }
            Err(ForeignFile(path)) => Err(self.foreign_file(&path)),
        }
    }

    /// The error for a data file another engine added: names the version that added it.
    fn foreign_file(&self, path: &str) -> SluiceError {
        let found = self.versions().ok().and_then(|vs| {
            vs.into_iter().rev().find_map(|v| {
                let actions = self.delta.read(v).ok()??;
                let adds = actions.iter().any(|a| matches!(a, deltalake_core::kernel::Action::Add(a) if a.path == path));
                adds.then(|| match decode(v, &actions) {
                    Ok(Decoded::Foreign { operation }) => (v, operation),
                    _ => (v, "unknown".to_string()),
                })
            })
        });
        let (v, operation) = found.unwrap_or((0, format!("it added {path}")));
        self.foreign(v, operation)
    }

    /// The commits after `base`, up to `head`'s latest.
    pub fn commits_after(&self, head: &Head, base: u64) -> Result<Vec<Commit>, SluiceError> {
        (base + 1..=head.latest()).map(|n| self.read_commit(n)).collect()
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

/// Another engine's commit that changes no data file, as a commit of the history.
fn external(n: u64, actions: &[deltalake_core::kernel::Action], operation: String) -> Commit {
    let ms = actions.iter().find_map(|a| match a {
        deltalake_core::kernel::Action::CommitInfo(i) => i.timestamp,
        _ => None,
    });
    Commit {
        commit: n,
        timestamp: ms.and_then(chrono::DateTime::from_timestamp_millis).unwrap_or_default(),
        change: Change::External { engine_operation: operation },
        run_id: String::new(),
        attempt: None,
        partitions: Default::default(),
        sluice_version: String::new(),
        command: Vec::new(),
    }
}
