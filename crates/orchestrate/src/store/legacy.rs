//! Datasets written before the Delta log: `_sluice/commits/N.json`, each sluice's commit
//! record with the partitions it set. Read only: `sluice convert` ([`crate::ops::convert`])
//! writes the same history as Delta versions; every other command refuses such a dataset
//! and names that command.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::actions::table_change;
use super::commit::{Commit, CommitRequest, PartitionVersion};
use super::dataset::Dataset;
use super::layout::legacy_commit;
use super::table::TableMeta;
use crate::error::SluiceError;

#[derive(Deserialize)]
struct LegacyCommit {
    #[serde(flatten)]
    record: Commit,
    partitions: BTreeMap<String, Option<PartitionVersion>>,
}

impl Dataset {
    /// Whether this dataset has the log of an older sluice.
    pub fn has_legacy_log(&self) -> Result<bool, SluiceError> {
        Ok(self.storage().exists(&legacy_commit(1))?)
    }

    /// The refusal for a dataset with the older log and no Delta log.
    pub(super) fn legacy_refusal(&self) -> SluiceError {
        SluiceError::Usage(format!(
            "{}: this dataset has the commit log of an older sluice (_sluice/commits); convert it to a Delta table once with: sluice convert {}",
            self.uri(),
            self.uri()
        ))
    }

    /// The older log's commits, in order from 1 (read until the first missing number).
    pub fn legacy_log(&self) -> Result<Vec<Commit>, SluiceError> {
        let mut out = Vec::new();
        for n in 1.. {
            let Some(bytes) = self.storage().get_opt(&legacy_commit(n))? else { break };
            let c: LegacyCommit = serde_json::from_slice(&bytes).map_err(|e| self.err(&legacy_commit(n), e))?;
            out.push(Commit { partitions: c.partitions, ..c.record });
        }
        Ok(out)
    }

    /// Whether the Delta log has a version 0 (the table exists).
    pub fn has_table(&self) -> Result<bool, SluiceError> {
        self.delta.exists()
    }
}

impl CommitRequest<'_> {
    /// The table's metaData after this request is committed as `next` at `at`.
    pub fn table_after(&self, next: u64, at: DateTime<Utc>) -> Result<Option<TableMeta>, SluiceError> {
        Ok(table_change(self, next, at)?.or_else(|| self.table.clone()))
    }
}
