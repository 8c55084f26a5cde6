//! The one-line JSON summary that `run`, `publish` and `rollback` print last on stdout.

use std::time::Instant;

use serde::Serialize;

use crate::store::{Dataset, PartitionVersion};
pub use crate::types::RunStatus;
use crate::types::{CheckResult, StagedPartition};

/// One partition in the summary line.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionSummary {
    pub partition: String,
    pub version: String,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_filtered: u64,
    pub rows_quarantined: u64,
    /// Paths a plain Parquet reader opens.
    pub files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quarantine_files: Vec<String>,
    /// The version's manifest (its lineage), once it is published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// The pipeline's checks on this version.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
}

impl PartitionSummary {
    /// A published version as it stands (counts other than rows out are not in the commit).
    pub fn of_version(ds: &Dataset, partition: &str, v: &PartitionVersion) -> Self {
        PartitionSummary {
            partition: partition.to_string(),
            version: v.version.clone(),
            rows_in: 0,
            rows_out: v.rows,
            rows_filtered: 0,
            rows_quarantined: 0,
            files: v.files.iter().map(|f| ds.uri_of(f)).collect(),
            quarantine_files: Vec::new(),
            manifest: Some(ds.uri_of(&v.manifest)),
            checks: Vec::new(),
        }
    }

    /// A staged (not yet published) version: the run's counts, no manifest yet.
    pub fn of_staged(ds: &Dataset, partition: &str, run_id: &str, s: &StagedPartition) -> Self {
        PartitionSummary {
            partition: partition.to_string(),
            version: run_id.to_string(),
            rows_in: s.rows_in,
            rows_out: s.rows_out,
            rows_filtered: s.filtered_by.values().sum(),
            rows_quarantined: s.quarantined,
            files: s.files.iter().map(|f| ds.uri_of(f)).collect(),
            quarantine_files: s.quarantine_files.iter().map(|f| ds.uri_of(f)).collect(),
            manifest: None,
            checks: Vec::new(),
        }
    }

    /// A partition a commit removes (a rollback of the run that created it).
    pub fn removed(partition: &str) -> Self {
        PartitionSummary {
            partition: partition.to_string(),
            version: String::new(),
            rows_in: 0,
            rows_out: 0,
            rows_filtered: 0,
            rows_quarantined: 0,
            files: Vec::new(),
            quarantine_files: Vec::new(),
            manifest: None,
            checks: Vec::new(),
        }
    }
}

/// One partition of a `--dry-run` plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedPartition {
    pub partition: String,
    /// The current version has the same fingerprint: a run would publish nothing for it.
    pub up_to_date: bool,
    pub objects: Vec<PlannedObject>,
    pub bytes: u64,
    /// Where this run's files would go.
    pub output: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedObject {
    pub uri: String,
    pub size: u64,
}

/// The one-line JSON summary printed last on stdout.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub status: RunStatus,
    pub run_id: String,
    pub dataset: String,
    pub commit: Option<u64>,
    pub partitions: Vec<PartitionSummary>,
    /// Partitions asked for that have no input (a backfill range with gaps).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Partitions a rollback by model leaves as they are (no earlier version by another model).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<PlannedPartition>>,
    pub duration_s: f64,
    /// Rows in, out, filtered and quarantined over all partitions.
    pub rows: RowCounts,
    /// The stage that bounded the run (the full per-stage report is in each manifest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bottleneck: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RowCounts {
    #[serde(rename = "in")]
    pub rows_in: u64,
    pub out: u64,
    pub filtered: u64,
    pub quarantined: u64,
}

impl RunSummary {
    pub fn new(status: RunStatus, run_id: &str, dataset: &Dataset, started: Instant) -> Self {
        RunSummary {
            status,
            run_id: run_id.to_string(),
            dataset: dataset.uri().to_string(),
            commit: None,
            partitions: Vec::new(),
            skipped: Vec::new(),
            unchanged: Vec::new(),
            shard: None,
            plan: None,
            duration_s: started.elapsed().as_secs_f64(),
            rows: RowCounts::default(),
            bottleneck: None,
        }
    }

    pub fn with_partitions(mut self, partitions: Vec<PartitionSummary>) -> Self {
        for p in &partitions {
            self.rows.rows_in += p.rows_in;
            self.rows.out += p.rows_out;
            self.rows.filtered += p.rows_filtered;
            self.rows.quarantined += p.rows_quarantined;
        }
        self.partitions = partitions;
        self
    }

    pub fn with_commit(mut self, commit: u64) -> Self {
        self.commit = Some(commit);
        self
    }
}
