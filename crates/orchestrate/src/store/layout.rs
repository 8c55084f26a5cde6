//! Where everything of a dataset lives, relative to its root: the one place that spells
//! the store's paths.
//!
//! ```text
//! _delta_log/00000000000000000000.json                       version 0: the table (protocol, metaData)
//! _delta_log/00000000000000000001.json                       commit 1, created put-if-absent
//! _delta_log/00000000000000000100.checkpoint.parquet         Delta checkpoints, every 100 commits
//! _delta_log/_last_checkpoint                                the newest checkpoint
//! _sluice/runs/<run_id>/shard-00000-of-00004.<attempt>.json  a shard attempt's staging record
//! _sluice/versions/<key>=<value>/<run_id>/<attempt>/manifest.json       a version's lineage
//! _sluice/versions/<key>=<value>/<run_id>/<attempt>/quarantine.parquet  its quarantined rows
//! <key>=<value>/<run_id>/<attempt>/part-00000.parquet        a version's data files
//! ```
//!
//! Only data files lie outside `_`-folders: every engine treats `_`-prefixed folders as
//! not part of the table (Delta's vacuum included), and the data folder's `key=value`
//! names the partition the way Hive-style readers expect.

/// The log of datasets written before the Delta log (read only by `sluice convert`).
const LEGACY_COMMITS_DIR: &str = "_sluice/commits";

/// Commit `n` of a dataset written before the Delta log.
pub(crate) fn legacy_commit(n: u64) -> String {
    format!("{LEGACY_COMMITS_DIR}/{n:020}.json")
}

/// The Delta log folder (its files are named by deltalake-core).
pub(crate) const DELTA_LOG: &str = "_delta_log";
const RUNS_DIR: &str = "_sluice/runs";
const VERSIONS_DIR: &str = "_sluice/versions";

/// Delta's pointer to the newest checkpoint.
pub(crate) const LAST_CHECKPOINT: &str = "_delta_log/_last_checkpoint";

/// The commit file of version `v`.
pub(crate) fn log_file(v: u64) -> String {
    format!("{DELTA_LOG}/{v:020}.json")
}

/// The version of a log commit file (`_delta_log/00000000000000000042.json`).
pub(crate) fn numbered(rel: &str) -> Option<u64> {
    rel.rsplit('/').next()?.strip_suffix(".json")?.parse().ok()
}

/// Where the attempts of `run_id` put their files for `partition`.
pub(crate) fn run_dir(partition: &str, run_id: &str) -> String {
    format!("{partition}/{run_id}")
}

/// One attempt's folder for `partition`.
pub(crate) fn attempt_dir_of(partition: &str, run_id: &str, nonce: &str) -> String {
    format!("{}/{nonce}", run_dir(partition, run_id))
}

/// Data file `index` of a version, in its attempt folder `dir`.
pub(crate) fn data_file(dir: &str, index: usize) -> String {
    format!("{dir}/part-{index:05}.parquet")
}

/// A version's quarantined rows, for its attempt folder `dir`.
pub(crate) fn quarantine_file(dir: &str) -> String {
    format!("{VERSIONS_DIR}/{dir}/quarantine.parquet")
}

/// A version's manifest, for its attempt folder `dir`.
pub(crate) fn manifest_file(dir: &str) -> String {
    format!("{VERSIONS_DIR}/{dir}/manifest.json")
}

/// The staging records of every shard attempt of `run_id` lie under this prefix.
pub(crate) fn shard_records_prefix(run_id: &str) -> String {
    format!("{RUNS_DIR}/{run_id}/")
}

/// A shard attempt's staging record.
pub(crate) fn shard_record_path(run_id: &str, index: usize, count: usize, nonce: &str) -> String {
    format!("{}shard-{index:05}-of-{count:05}.{nonce}.json", shard_records_prefix(run_id))
}

/// The attempt folder (`<partition>/<run_id>/<attempt>`) of a file an attempt wrote: a
/// data file, or its manifest or quarantine under `_sluice/versions/`.
pub fn attempt_dir(file: &str) -> Option<String> {
    let file = file.strip_prefix(VERSIONS_DIR).and_then(|f| f.strip_prefix('/')).unwrap_or(file);
    let parts: Vec<&str> = file.split('/').collect();
    (parts.len() == 4 && !parts[0].starts_with('_')).then(|| parts[..3].join("/"))
}


/// What an object found by listing a dataset is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// A staging record of a shard attempt of this run id.
    ShardRecord { run_id: String },
    /// A file of one attempt (data, quarantine or manifest), in this attempt folder.
    AttemptFile { dir: String },
    /// The log, a checkpoint, or anything else.
    Other,
}

/// Sort a listed object (a dataset-relative path) by what it is, for gc.
pub fn classify(rel: &str) -> Listed {
    if let Some(run) = rel.strip_prefix(RUNS_DIR).and_then(|r| r.strip_prefix('/')).and_then(|r| r.split('/').next()) {
        return Listed::ShardRecord { run_id: run.to_string() };
    }
    match attempt_dir(rel) {
        Some(dir) => Listed::AttemptFile { dir },
        None => Listed::Other,
    }
}
