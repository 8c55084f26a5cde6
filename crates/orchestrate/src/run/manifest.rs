//! A version's manifest (`manifest.json` beside its files): its lineage, row accounting,
//! schema, checks and the run's stage report. The fields, in the order they are written.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sluice_extract::ObjectRef;

use crate::runtime::RunReport;
use crate::types::{CheckResult, InputRecord};

/// The stage report a version's manifest holds: its run's, or each shard's (by `I/N`; none
/// for a shard that found its partitions up to date). Written as the report itself, or as
/// `{"shards": {...}}`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Stages {
    Run(RunReport),
    Shards { shards: BTreeMap<String, Option<RunReport>> },
}


/// What one manifest records.
#[derive(Debug, Serialize)]
pub struct Manifest<'a> {
    pub dataset: &'a str,
    pub partition: &'a str,
    /// The version id: the run id.
    pub version: &'a str,
    pub run_id: &'a str,
    pub attempt: &'a str,
    pub fingerprint: &'a str,
    /// The commit the run's decisions were made on.
    pub base_commit: u64,
    pub inputs: &'a [InputRecord],
    pub dimensions: &'a [ObjectRef],
    pub pipeline: PipelineRef<'a>,
    pub model: ModelRef<'a>,
    pub sluice_version: &'static str,
    pub command: &'a [String],
    pub rows: Rows<'a>,
    pub schema: Vec<SchemaColumn<'a>>,
    pub files: &'a [String],
    pub quarantine_files: &'a [String],
    pub checks: &'a [CheckResult],
    /// `--override-checks`' reason (null when not overridden).
    pub override_checks: Option<&'a str>,
    /// The run report of the stages (per shard for a sharded run).
    pub stages: &'a Stages,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct PipelineRef<'a> {
    pub name: &'a str,
    pub path: String,
    pub sha256: &'a str,
}

#[derive(Debug, Serialize)]
pub struct ModelRef<'a> {
    /// The model as named: a local folder or an object store URI.
    pub path: &'a str,
    /// The files' sha256, with `+bf16` after it for a model run in bfloat16.
    pub id: &'a str,
    /// `f32` or `bf16`: the arithmetic of the model's linear layers.
    pub precision: &'a str,
}

/// Rows in = out + filtered + quarantined.
#[derive(Debug, Serialize)]
pub struct Rows<'a> {
    #[serde(rename = "in")]
    pub rows_in: u64,
    pub out: u64,
    pub filtered: u64,
    pub filtered_by: &'a BTreeMap<String, u64>,
    pub quarantined: u64,
}

#[derive(Debug, Serialize)]
pub struct SchemaColumn<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub dtype: &'a str,
}
