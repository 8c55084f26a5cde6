//! What a run staged for one partition, before it is published: written by the run, kept
//! in a shard's staging record by the store's attempt, read by the checks and the publish.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_extract::ObjectRef;

use super::CheckResult;

/// An input object as recorded in lineage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputRecord {
    #[serde(flatten)]
    pub object: ObjectRef,
    pub sha256: String,
}

/// What a table format records of a data file besides its path: Delta's `add` action holds
/// these (`size`, `stats` with `numRecords`, per-column `minValues`/`maxValues`/`nullCount`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileStats {
    pub size: u64,
    pub rows: u64,
    /// Delta's per-file statistics, as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
}

/// What a run (or one shard of it) made of one partition, before it is published: the
/// files it wrote and the counts and lineage its manifest will hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedPartition {
    pub fingerprint: String,
    pub files: Vec<String>,
    /// One per file of `files`, in the same order.
    #[serde(default)]
    pub file_stats: Vec<FileStats>,
    /// The table schema of the files, as a Delta schema (`{"type":"struct","fields":[..]}`).
    #[serde(default)]
    pub table_schema: serde_json::Value,
    pub quarantine_files: Vec<String>,
    pub rows_in: u64,
    pub rows_out: u64,
    pub filtered_by: BTreeMap<String, u64>,
    pub quarantined: u64,
    /// The first quarantined row, for the error when there are too many.
    pub first_bad_row: Option<String>,
    pub inputs: Vec<InputRecord>,
    pub schema: Vec<(String, String)>,
    /// The `[[checks]]` as the run measured them on the files it wrote; `None` (a shard's
    /// share, merged or read from its record): measured at publication.
    #[serde(skip)]
    pub checks: Option<Vec<CheckResult>>,
}

impl StagedPartition {
    /// Nothing yet: the start of a merge of shards' shares.
    pub fn empty(fingerprint: &str, schema: &[(String, String)]) -> Self {
        StagedPartition {
            fingerprint: fingerprint.to_string(),
            files: Vec::new(),
            file_stats: Vec::new(),
            table_schema: serde_json::Value::Null,
            quarantine_files: Vec::new(),
            rows_in: 0,
            rows_out: 0,
            filtered_by: BTreeMap::new(),
            quarantined: 0,
            first_bad_row: None,
            inputs: Vec::new(),
            schema: schema.to_vec(),
            checks: None,
        }
    }

    /// Add another shard's share of the same partition.
    pub fn merge(&mut self, s: &StagedPartition) {
        self.files.extend(s.files.iter().cloned());
        self.file_stats.extend(s.file_stats.iter().cloned());
        if self.table_schema.is_null() {
            self.table_schema = s.table_schema.clone();
        }
        self.quarantine_files.extend(s.quarantine_files.iter().cloned());
        self.rows_in += s.rows_in;
        self.rows_out += s.rows_out;
        for (rule, k) in &s.filtered_by {
            *self.filtered_by.entry(rule.clone()).or_default() += k;
        }
        self.quarantined += s.quarantined;
        if self.first_bad_row.is_none() {
            self.first_bad_row = s.first_bad_row.clone();
        }
        self.inputs.extend(s.inputs.iter().cloned());
        self.checks = None; // measured on the whole partition
    }
}
