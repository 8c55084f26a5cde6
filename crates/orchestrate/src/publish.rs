//! Publishing what a run staged: account for every row, hold bad input to the pipeline's
//! limit, write each partition's manifest and create one commit, all through the run's
//! [`Attempt`].

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_extract::par::map_ordered;
use sluice_extract::ObjectRef;
use sluice_transform::ingest::first_bad_row;

use crate::audit::{self, CheckResult, CheckStatus, CheckTally};
use crate::execute::{InputRecord, Written};
use crate::store::{self, Attempt, CommitOutcome, CommitRequest, Commit, Dataset, Operation, PartitionVersion};
use crate::summary::{PartitionSummary, RunSummary};
use crate::{Pipeline, SluiceError};

/// What a run (or one shard of it) made of one partition, before it is published: the
/// files it wrote and the counts and lineage its manifest will hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedPartition {
    pub fingerprint: String,
    pub files: Vec<String>,
    pub quarantine_files: Vec<String>,
    pub rows_in: u64,
    pub rows_out: u64,
    pub filtered_by: BTreeMap<String, u64>,
    pub quarantined: u64,
    /// The first quarantined row, for the error when there are too many.
    pub first_bad_row: Option<String>,
    pub inputs: Vec<InputRecord>,
    pub schema: Vec<(String, String)>,
}

impl StagedPartition {
    pub(crate) fn new(fingerprint: String, w: Written) -> Self {
        StagedPartition {
            fingerprint,
            quarantined: w.quarantine.as_ref().map_or(0, |q| q.height() as u64),
            first_bad_row: w.quarantine.as_ref().and_then(first_bad_row).map(|e| e.to_string()),
            quarantine_files: w.quarantine_file.into_iter().collect(),
            files: w.files,
            rows_in: w.rows_in,
            rows_out: w.rows_out,
            filtered_by: w.filtered,
            inputs: w.inputs,
            schema: w.schema,
        }
    }

    /// Nothing yet: the start of a merge of shards' shares.
    pub(crate) fn empty(fingerprint: &str, schema: &[(String, String)]) -> Self {
        StagedPartition {
            fingerprint: fingerprint.to_string(),
            files: Vec::new(),
            quarantine_files: Vec::new(),
            rows_in: 0,
            rows_out: 0,
            filtered_by: BTreeMap::new(),
            quarantined: 0,
            first_bad_row: None,
            inputs: Vec::new(),
            schema: schema.to_vec(),
        }
    }

    /// Add another shard's share of the same partition.
    pub(crate) fn merge(&mut self, s: &StagedPartition) {
        self.files.extend(s.files.iter().cloned());
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
    }

    pub(crate) fn summary(&self, dataset: &Dataset, part: &str, run_id: &str) -> PartitionSummary {
        PartitionSummary {
            partition: part.to_string(),
            version: run_id.to_string(),
            rows_in: self.rows_in,
            rows_out: self.rows_out,
            rows_filtered: self.filtered_by.values().sum(),
            rows_quarantined: self.quarantined,
            files: self.files.iter().map(|f| dataset.uri_of(f)).collect(),
            quarantine_files: self.quarantine_files.iter().map(|f| dataset.uri_of(f)).collect(),
            manifest: None,
            checks: Vec::new(),
        }
    }

    /// Every row is accounted for, and bad rows are within the pipeline's limit.
    fn check(&self, p: &Pipeline, part: &str) -> Result<(), SluiceError> {
        let filtered: u64 = self.filtered_by.values().sum();
        if self.rows_in != self.rows_out + filtered + self.quarantined {
            return Err(SluiceError::other(
                format!("partition {part}"),
                format!(
                    "row accounting mismatch: {} in != {} out + {filtered} filtered + {} quarantined",
                    self.rows_in, self.rows_out, self.quarantined
                ),
            ));
        }
        if self.rows_in > 0 && self.quarantined as f64 / self.rows_in as f64 > p.source.max_bad_fraction {
            return Err(SluiceError::TooManyBadRows {
                partition: part.to_string(),
                rows: self.rows_in,
                quarantined: self.quarantined,
                fraction: 100.0 * self.quarantined as f64 / self.rows_in as f64,
                limit: 100.0 * p.source.max_bad_fraction,
                first: self.first_bad_row.clone().unwrap_or_default(),
            });
        }
        Ok(())
    }
}

/// What [`publish_staged`] records in each manifest and the commit.
pub(crate) struct Publication<'a> {
    pub p: &'a Pipeline,
    pub dataset: &'a Dataset,
    pub model_dir: String,
    pub model_id: &'a str,
    pub dim_refs: &'a [ObjectRef],
    pub command: &'a [String],
    pub stages: serde_json::Value,
    pub started_at: chrono::DateTime<Utc>,
    /// The commit the run's decisions were made on.
    pub base_commit: u64,
    /// The partitions' current versions (what the checks compare with).
    pub current: &'a BTreeMap<String, PartitionVersion>,
    /// `--override-checks`: publish even if `error` checks fail, recording this reason.
    pub override_checks: Option<&'a str>,
}

/// How a publication ended.
pub(crate) enum Published {
    /// This attempt committed.
    Committed { commit: u64, partitions: Vec<PartitionSummary> },
    /// Another attempt of the same run id committed first; nothing of this one is referenced.
    AlreadyPublished { commit: u64 },
}

/// Check each partition, write its manifest and publish them all in one commit.
pub(crate) fn publish_staged(
    attempt: &Attempt,
    publication: &Publication<'_>,
    staged: &BTreeMap<String, StagedPartition>,
) -> Result<Published, SluiceError> {
    let Publication { p, dataset, model_dir, model_id, dim_refs, command, stages, started_at, base_commit, override_checks, .. } =
        publication;
    let run_id = attempt.run_id();
    let audits = audit_all(publication, run_id, staged)?;
    let mut versions = BTreeMap::new();
    let mut summaries = Vec::new();
    for (part, s) in staged {
        let checks = &audits[part];
        let manifest = json!({
            "dataset": dataset.uri(),
            "partition": part,
            "version": run_id,
            "run_id": run_id,
            "attempt": attempt.nonce(),
            "fingerprint": s.fingerprint,
            "base_commit": base_commit,
            "inputs": s.inputs,
            "dimensions": dim_refs,
            "pipeline": {"name": p.name, "path": p.path.display().to_string(), "sha256": p.sha256},
            "model": {"path": model_dir, "id": model_id},
            "sluice_version": env!("CARGO_PKG_VERSION"),
            "command": command,
            "rows": {"in": s.rows_in, "out": s.rows_out, "filtered": s.filtered_by.values().sum::<u64>(),
                     "filtered_by": s.filtered_by, "quarantined": s.quarantined},
            "schema": s.schema.iter().map(|(n, t)| json!({"name": n, "type": t})).collect::<Vec<_>>(),
            "files": s.files,
            "quarantine_files": s.quarantine_files,
            "checks": checks,
            "override_checks": override_checks,
            "stages": stages,
            "started_at": started_at,
            "finished_at": Utc::now(),
        });
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| SluiceError::other("encoding the manifest", e))?;
        let manifest = attempt.put_manifest(part, Bytes::from(body))?;
        summaries.push(PartitionSummary {
            manifest: Some(dataset.uri_of(&manifest)),
            checks: checks.clone(),
            ..s.summary(dataset, part, run_id)
        });
        versions.insert(
            part.clone(),
            Some(PartitionVersion {
                version: run_id.to_string(),
                files: s.files.clone(),
                rows: s.rows_out,
                fingerprint: s.fingerprint.clone(),
                manifest,
                published_in: 0,
                checks: CheckTally::of(checks, *override_checks),
            }),
        );
    }
    let req = CommitRequest::new(*base_commit, Operation::Publish, run_id, versions, command);
    Ok(match attempt.commit(dataset, req)? {
        CommitOutcome::Committed(commit) => Published::Committed { commit, partitions: summaries },
        CommitOutcome::AlreadyPublished(commit) => Published::AlreadyPublished { commit },
    })
}

/// Account for every partition's rows, then run the checks on each: a failed `error`
/// check stops the publication ([`SluiceError::ChecksFailed`]) unless overridden.
fn audit_all(
    publication: &Publication<'_>,
    run_id: &str,
    staged: &BTreeMap<String, StagedPartition>,
) -> Result<BTreeMap<String, Vec<CheckResult>>, SluiceError> {
    let Publication { p, dataset, current, override_checks, .. } = publication;
    let started = std::time::Instant::now();
    // each partition's files read back and measured in parallel, one partition per core at
    // a time (not on rayon's pool: see map_ordered); accounted for and reported in
    // partition order
    let parts: Vec<(&String, &StagedPartition)> = staged.iter().collect();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let measured: Vec<Result<Vec<CheckResult>, SluiceError>> =
        map_ordered(&parts, workers, |(part, s)| audit::run(&p.checks, dataset, s, current.get(*part)));
    let mut audits = BTreeMap::new();
    for ((part, s), results) in parts.into_iter().zip(measured) {
        s.check(p, part)?;
        let results = results?;
        for r in results.iter().filter(|r| r.status == CheckStatus::Fail) {
            tracing::warn!(partition = %part, check = %r.name, value = ?r.value, expected = %r.expected, severity = ?r.severity, "check failed");
        }
        audits.insert(part.clone(), results);
    }
    tracing::debug!(partitions = staged.len(), checks_s = started.elapsed().as_secs_f64(), "checks run");
    let failed: Vec<(String, CheckResult)> =
        audits.iter().flat_map(|(part, rs)| rs.iter().filter(|r| r.blocks()).map(|r| (part.clone(), r.clone()))).collect();
    match (failed.is_empty(), override_checks) {
        (true, _) => Ok(audits),
        (false, Some(reason)) => {
            tracing::warn!(reason, checks = failed.len(), "publishing despite failed checks (--override-checks)");
            Ok(audits)
        }
        (false, None) => {
            let staged_at = staged
                .values()
                .filter_map(|s| s.files.first().and_then(|f| store::attempt_dir(f)).map(|d| dataset.uri_of(&d)))
                .collect();
            Err(SluiceError::ChecksFailed { run_id: run_id.to_string(), pipeline: p.path.display().to_string(), failed, staged_at })
        }
    }
}

/// The summary of a run id that is already published: `up_to_date`, naming its commit and
/// what that commit published.
pub(crate) fn already_published(dataset: &Dataset, c: &Commit, started: std::time::Instant) -> RunSummary {
    tracing::info!(run_id = %c.run_id, commit = c.commit, "this run id is already published; nothing to do");
    let parts = c
        .partitions
        .iter()
        .filter_map(|(part, v)| v.as_ref().map(|v| PartitionSummary::of_version(dataset, part, v)))
        .collect();
    RunSummary::new("up_to_date", &c.run_id, dataset, started).with_partitions(parts).with_commit(c.commit)
}

