//! [`Head`]: the dataset's current state, as Delta's log replay gives it (or the state its
//! last writer cached for the same log file: `super::head_cache`): deltalake-core
//! loads the table from its newest checkpoint (`_last_checkpoint`, the Parquet checkpoint,
//! then at most 9 JSON commits), so opening a 10,000-commit dataset reads no more than a
//! 10-commit one. Everything sluice decides on is in the state a checkpoint keeps: each
//! partition's version from its files' `add` actions and their `sluice.*` tags, the
//! published run ids from `txn` actions, the pins and the schema from `metaData`.
//!
//! A data file without sluice's tags was added by another engine: see
//! [`crate::error::SluiceError::ForeignCommit`].

use std::collections::BTreeMap;

use deltalake_core::DeltaTable;

use super::actions::versions_of_adds;
use super::commit::{PartitionVersion, Snapshot};
use super::delta::DeltaLog;
use super::table::{Pin, TableMeta};
use crate::error::SluiceError;

/// The state of the dataset as of one version of its log.
#[derive(Clone, Default)]
pub struct Head {
    /// The version read (0: no table, or only its creation).
    pub version: u64,
    /// The table's metaData (`None`: no table yet).
    pub table: Option<TableMeta>,
    /// Each partition's version; its files' sizes and row counts, not their column
    /// statistics (they stay in the log: nothing decides on them, and they were most of
    /// the cached state's bytes).
    pub partitions: BTreeMap<String, PartitionVersion>,
    /// The log it was read from (`None`: no table), and the table as deltalake loaded it
    /// (`None` for a head from the cache: loaded when a `txn` must be looked up).
    log: Option<DeltaLog>,
    loaded: Option<DeltaTable>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head").field("version", &self.version).field("partitions", &self.partitions.len()).finish()
    }
}

/// A file of the table that sluice did not add (it has no `sluice.*` tags).
pub(super) struct ForeignFile(pub String);

impl Head {
    /// The state of `table` (loaded by `log`).
    pub(super) fn of(log: &DeltaLog, table: DeltaTable) -> Result<Result<Head, ForeignFile>, SluiceError> {
        let err = |e: &dyn std::fmt::Display| SluiceError::Store(format!("reading the Delta table: {e}"));
        let state = table.snapshot().map_err(|e| err(&e))?;
        let meta = TableMeta::of_action(state.metadata())?;
        #[allow(deprecated)] // the add actions with their tags; the Arrow route has no tags getter
        let adds: Vec<_> = state.log_data().iter().map(|f| f.add_action()).collect();
        if let Some(a) = adds.iter().find(|a| a.tags.as_ref().is_none_or(|t| !t.contains_key("sluice.version"))) {
            return Ok(Err(ForeignFile(a.path.clone())));
        }
        let mut partitions = versions_of_adds(adds.iter()).map_err(|e| err(&e))?;
        partitions.values_mut().for_each(PartitionVersion::drop_column_stats);
        let version = state.version();
        Ok(Ok(Head { version, table: Some(meta), partitions, log: Some(log.clone()), loaded: Some(table) }))
    }

    /// The state after commit `version` of `log`, as the head cache holds it.
    pub(super) fn cached(log: &DeltaLog, version: u64, table: TableMeta, partitions: BTreeMap<String, PartitionVersion>) -> Head {
        Head { version, table: Some(table), partitions, log: Some(log.clone()), loaded: None }
    }

    /// The last commit (0 for an empty dataset).
    pub fn latest(&self) -> u64 {
        self.version
    }

    /// The current state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { commit: self.version, partitions: self.partitions.clone() }
    }

    /// The pins in force.
    pub fn pins(&self) -> Vec<Pin> {
        self.table.as_ref().map(TableMeta::pins).unwrap_or_default()
    }

    /// The commit that published `run_id`, if any (its `txn` action).
    /// A head from the cache loads the table at its version first.
    pub fn published_by(&self, run_id: &str) -> Result<Option<u64>, SluiceError> {
        match (&self.log, &self.loaded) {
            (Some(log), Some(table)) => log.txn(table, run_id),
            (Some(log), None) => match log.table(Some(self.version))? {
                Some(table) => log.txn(&table, run_id),
                None => Ok(None),
            },
            (None, _) => Ok(None),
        }
    }
}
