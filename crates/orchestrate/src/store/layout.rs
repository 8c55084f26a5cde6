//! Where everything of a dataset lives, relative to its root: the one place that spells
//! the store's paths.
//!
//! ```text
//! _sluice/commits/00000000000000000001.json                  commit records
//! _sluice/checkpoints/00000000000000000100.json              the folded log every 100 commits
//! _sluice/runs/<run_id>/shard-00000-of-00004.<attempt>.json  a shard attempt's staging record
//! <key>=<value>/<run_id>/<attempt>/part-00000.parquet        a version's data files
//! <key>=<value>/<run_id>/<attempt>/quarantine.parquet        its quarantined rows
//! <key>=<value>/<run_id>/<attempt>/manifest.json             its lineage
//! ```

pub(crate) const COMMITS_DIR: &str = "_sluice/commits";
pub(crate) const CHECKPOINTS_DIR: &str = "_sluice/checkpoints";
const RUNS_DIR: &str = "_sluice/runs";

/// Commit `n`'s record.
pub(crate) fn commit_path(n: u64) -> String {
    format!("{COMMITS_DIR}/{n:020}.json")
}

/// The checkpoint at commit `n`.
pub(crate) fn checkpoint_path(n: u64) -> String {
    format!("{CHECKPOINTS_DIR}/{n:020}.json")
}

/// The number of a commit or checkpoint file (`…/00000000000000000042.json`).
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

/// A version's quarantined rows, in its attempt folder `dir`.
pub(crate) fn quarantine_file(dir: &str) -> String {
    format!("{dir}/quarantine.parquet")
}

/// A version's manifest, in its attempt folder `dir`.
pub(crate) fn manifest_file(dir: &str) -> String {
    format!("{dir}/manifest.json")
}

/// The staging records of every shard attempt of `run_id` lie under this prefix.
pub(crate) fn shard_records_prefix(run_id: &str) -> String {
    format!("{RUNS_DIR}/{run_id}/")
}

/// A shard attempt's staging record.
pub(crate) fn shard_record_path(run_id: &str, index: usize, count: usize, nonce: &str) -> String {
    format!("{}shard-{index:05}-of-{count:05}.{nonce}.json", shard_records_prefix(run_id))
}

/// The attempt folder (`<partition>/<run_id>/<attempt>`) of a data file's path.
pub fn attempt_dir(file: &str) -> Option<String> {
    let parts: Vec<&str> = file.split('/').collect();
    (parts.len() == 4).then(|| parts[..3].join("/"))
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
        Some(dir) if !rel.starts_with("_sluice/") => Listed::AttemptFile { dir },
        _ => Listed::Other,
    }
}
