//! Publishing what a run staged: account for every row, hold bad input to the pipeline's
//! limit, write each partition's manifest and create one commit, all through the run's
//! [`Attempt`].

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use sluice_extract::par::map_ordered;
use sluice_extract::ObjectRef;

use super::audit;
use super::manifest::{Manifest, ModelRef, PipelineRef, Rows, SchemaColumn, Stages};
use crate::report::summary::{PartitionSummary, RunStatus, RunSummary};
use crate::store::{Attempt, Change, Commit, CommitOutcome, CommitRequest, Dataset, Head, PartitionVersion, Snapshot, TableMeta};
use crate::types::{CheckResult, CheckStatus, CheckTally, StagedPartition};
use crate::error::SluiceError;
use crate::pipeline::Pipeline;

/// Every row of `s` is accounted for, and bad rows are within the pipeline's limit.
fn account(s: &StagedPartition, p: &Pipeline, part: &str) -> Result<(), SluiceError> {
    let filtered: u64 = s.filtered_by.values().sum();
    if s.rows_in != s.rows_out + filtered + s.quarantined {
        return Err(SluiceError::other(
            format!("partition {part}"),
            format!(
                "row accounting mismatch: {} in != {} out + {filtered} filtered + {} quarantined",
                s.rows_in, s.rows_out, s.quarantined
            ),
        ));
    }
    if s.rows_in > 0 && s.quarantined as f64 / s.rows_in as f64 > p.source.max_bad_fraction {
        return Err(SluiceError::TooManyBadRows {
            partition: part.to_string(),
            rows: s.rows_in,
            quarantined: s.quarantined,
            fraction: 100.0 * s.quarantined as f64 / s.rows_in as f64,
            limit: 100.0 * p.source.max_bad_fraction,
            first: s.first_bad_row.clone().unwrap_or_default(),
        });
    }
    Ok(())
}

/// What [`publish_staged`] records in each manifest and the commit.
pub(crate) struct Publication<'a> {
    pub p: &'a Pipeline,
    pub dataset: &'a Dataset,
    pub model_dir: String,
    pub model_id: &'a str,
    pub dim_refs: &'a [ObjectRef],
    pub command: &'a [String],
    pub stages: Stages,
    pub started_at: chrono::DateTime<Utc>,
    /// The commit the run's decisions were made on.
    pub base_commit: u64,
    /// The partitions' current versions (what the checks compare with, what the commit
    /// replaces).
    pub current: &'a BTreeMap<String, PartitionVersion>,
    /// The table's metaData as read (`None`: no table yet).
    pub table: Option<&'a TableMeta>,
    /// `--override-checks`: publish even if `error` checks fail, recording this reason.
    pub override_checks: Option<&'a str>,
}

/// The one flow of `sluice run` and `sluice publish`, in three steps:
/// - [`published_before`]: a run id already published is done (`up_to_date`, naming it);
/// - [`up_to_date`]: nothing new to publish (same fingerprints);
/// - [`publish_run`]: check, write the manifests and commit through the run's attempt.
///
/// The run id's publish commit, if the log (`head`) has one: every attempt of it is then
/// done, even if its inputs are gone by now.
pub(crate) fn published_before(dataset: &Dataset, head: &Head, run_id: &str, started: Instant) -> Result<Option<RunSummary>, SluiceError> {
    match head.published_by(run_id)? {
        Some(n) => Ok(Some(already_published(dataset, &dataset.read_commit(n)?, started))),
        None => Ok(None),
    }
}

/// Nothing to publish: the current versions of `partitions` as an `up_to_date` summary.
pub(crate) fn up_to_date(dataset: &Dataset, snapshot: &Snapshot, partitions: &[String], run_id: &str, started: Instant) -> RunSummary {
    tracing::info!(dataset = dataset.uri(), "already up to date: same inputs, pipeline and model; nothing published (use --force to rebuild)");
    let current = partitions.iter().filter_map(|part| snapshot.partitions.get(part).map(|v| PartitionSummary::of_version(dataset, part, v)));
    RunSummary::new(RunStatus::UpToDate, run_id, dataset, started).with_partitions(current.collect()).with_commit(snapshot.commit)
}

/// Publish `staged` through `attempt`: the summary of this attempt's commit, or, when
/// another attempt of the run id committed first, that commit's (`up_to_date`) and this
/// attempt's files are removed. On a failure the caller discards the attempt (a held run
/// first keeps it).
pub(crate) fn publish_run(
    attempt: &Attempt,
    publication: &Publication<'_>,
    staged: &BTreeMap<String, StagedPartition>,
    started: Instant,
) -> Result<RunSummary, SluiceError> {
    let dataset = publication.dataset;
    let (outcome, partitions) = publish_staged(attempt, publication, staged)?;
    match outcome {
        CommitOutcome::Committed(commit) => {
            Ok(RunSummary::new(RunStatus::Published, attempt.run_id(), dataset, started).with_partitions(partitions).with_commit(commit))
        }
        CommitOutcome::AlreadyPublished(commit) => {
            attempt.discard();
            Ok(already_published(dataset, &dataset.read_commit(commit)?, started))
        }
    }
}

/// Check each partition, write its manifest and publish them all in one commit.
fn publish_staged(
    attempt: &Attempt,
    publication: &Publication<'_>,
    staged: &BTreeMap<String, StagedPartition>,
) -> Result<(CommitOutcome, Vec<PartitionSummary>), SluiceError> {
    let Publication { p, dataset, model_dir, model_id, dim_refs, command, stages, started_at, base_commit, override_checks, current, table } =
        publication;
    let run_id = attempt.run_id();
    let audits = audit_all(publication, run_id, staged)?;
    let mut versions = BTreeMap::new();
    let mut summaries = Vec::new();
    for (part, s) in staged {
        let checks = &audits[part];
        let manifest = Manifest {
            dataset: dataset.uri(),
            partition: part,
            version: run_id,
            run_id,
            attempt: attempt.nonce(),
            fingerprint: &s.fingerprint,
            base_commit: *base_commit,
            inputs: &s.inputs,
            dimensions: dim_refs,
            pipeline: PipelineRef { name: &p.name, path: p.path.display().to_string(), sha256: &p.sha256 },
            model: ModelRef { path: model_dir, id: model_id, precision: p.model.kind.precision().as_str() },
            sluice_version: env!("CARGO_PKG_VERSION"),
            command,
            rows: Rows {
                rows_in: s.rows_in,
                out: s.rows_out,
                filtered: s.filtered_by.values().sum(),
                filtered_by: &s.filtered_by,
                quarantined: s.quarantined,
            },
            schema: s.schema.iter().map(|(name, dtype)| SchemaColumn { name, dtype }).collect(),
            files: &s.files,
            quarantine_files: &s.quarantine_files,
            checks,
            override_checks: *override_checks,
            stages,
            started_at: *started_at,
            finished_at: Utc::now(),
        };
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| SluiceError::other("encoding the manifest", e))?;
        let manifest = attempt.put_manifest(part, Bytes::from(body))?;
        summaries.push(PartitionSummary {
            manifest: Some(dataset.uri_of(&manifest)),
            checks: checks.clone(),
            ..PartitionSummary::of_staged(dataset, part, run_id, s)
        });
        versions.insert(
            part.clone(),
            Some(PartitionVersion {
                version: run_id.to_string(),
                files: s.files.clone(),
                file_stats: s.file_stats.clone(),
                rows: s.rows_out,
                fingerprint: s.fingerprint.clone(),
                manifest,
                published_in: 0,
                model: Some(model_id.to_string()),
                checks: CheckTally::of(checks, *override_checks),
            }),
        );
    }
    let schema = staged.values().map(|s| &s.table_schema).find(|s| !s.is_null()).cloned();
    let mut req = CommitRequest::new(*base_commit, Change::Publish, run_id, versions, command).on(current, *table);
    req.schema = schema;
    Ok((attempt.commit(dataset, req)?, summaries))
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
    // measured by the run as it wrote them; else (a shard's share) each partition's files
    // read back and measured in parallel, one partition per core at a time (not on rayon's
    // pool: see map_ordered); accounted for and reported in partition order
    let parts: Vec<(&String, &StagedPartition)> = staged.iter().collect();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let measured: Vec<Result<Vec<CheckResult>, SluiceError>> = map_ordered(&parts, workers, |(part, s)| match &s.checks {
        Some(done) => Ok(done.clone()),
        None => audit::run(&p.checks, dataset.storage(), s, current.get(*part)),
    });
    let mut audits = BTreeMap::new();
    for ((part, s), results) in parts.into_iter().zip(measured) {
        account(s, p, part)?;
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
            let staged_at = staged.values().flat_map(|s| s.files.iter().map(|f| dataset.uri_of(f))).collect();
            Err(SluiceError::ChecksFailed { run_id: run_id.to_string(), pipeline: p.path.display().to_string(), failed, staged_at })
        }
    }
}

/// The summary of a run id that is already published: `up_to_date`, naming its commit and
/// what that commit published.
fn already_published(dataset: &Dataset, c: &Commit, started: Instant) -> RunSummary {
    tracing::info!(run_id = %c.run_id, commit = c.commit, "this run id is already published; nothing to do");
    let parts = c
        .partitions
        .iter()
        .filter_map(|(part, v)| v.as_ref().map(|v| PartitionSummary::of_version(dataset, part, v)))
        .collect();
    RunSummary::new(RunStatus::UpToDate, &c.run_id, dataset, started).with_partitions(parts).with_commit(c.commit)
}

