//! Where everything of a dataset lives, relative to its root: the one place that spells
//! the store's paths.
//!
//! ```text
//! _delta_log/00000000000000000000.json                       version 0: the table (protocol, metaData)
//! _delta_log/00000000000000000001.json                       commit 1, created put-if-absent
//! _delta_log/00000000000000000010.checkpoint.parquet         Delta checkpoints, every 10 commits
//! _delta_log/_last_checkpoint                                the newest checkpoint
//! _sluice/runs/<run_id>/shard-00000-of-00004.<attempt>.json  a shard attempt's staging record
//! _sluice/versions/<run_id>/<attempt>/<key>=<value>.manifest.json       a version's lineage
//! _sluice/versions/<run_id>/<attempt>/<key>=<value>.quarantine.parquet  its quarantined rows
//! _sluice/heads/00000000000000000042.json                    the state after commit 42 (a cache)
//! <key>=<value>/part-00000.<run_id>.<attempt>.parquet        a version's data files
//! ```
//!
//! Only data files lie outside `_`-folders: every engine treats `_`-prefixed folders as
//! not part of the table (Delta's vacuum included), and the data folder's `key=value`
//! names the partition the way Hive-style readers expect.
//!
//! A run creates no folder per partition beyond the partition's own (made once per
//! dataset), and two for its manifests: on a local disk every folder is an inode, and a
//! year's backfill made five per partition when each version had folders of its own.
//! Datasets written before kept their files at `<key>=<value>/<run_id>/<attempt>/part-00000.parquet`
//! and `_sluice/versions/<key>=<value>/<run_id>/<attempt>/manifest.json`: the log names
//! every file, so they are read as before, and [`attempt_dir`] knows both layouts.

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
const HEADS_DIR: &str = "_sluice/heads";

/// Delta's pointer to the newest checkpoint.
pub(crate) const LAST_CHECKPOINT: &str = "_delta_log/_last_checkpoint";

/// The commit file of version `v`.
pub(crate) fn log_file(v: u64) -> String {
    format!("{DELTA_LOG}/{v:020}.json")
}

/// The cached state after commit `v` (see `head_cache`).
pub(crate) fn head_file(v: u64) -> String {
    format!("{HEADS_DIR}/{v:020}.json")
}

/// The version of a log commit file (`_delta_log/00000000000000000042.json`), or of a
/// cached state (`_sluice/heads/00000000000000000042.json`).
pub(crate) fn numbered(rel: &str) -> Option<u64> {
    rel.rsplit('/').next()?.strip_suffix(".json")?.parse().ok()
}

/// The folder that holds `partition`'s data files, of every version.
pub(crate) fn partition_dir(partition: &str) -> String {
    partition.to_string()
}

/// Data file `index` of `partition`'s version by `run_id`, written by attempt `nonce`.
pub(crate) fn data_file(partition: &str, run_id: &str, nonce: &str, index: usize) -> String {
    format!("{partition}/part-{index:05}.{run_id}.{nonce}.parquet")
}

fn versions_dir(run_id: &str, nonce: &str) -> String {
    format!("{VERSIONS_DIR}/{run_id}/{nonce}")
}

/// A version's quarantined rows.
pub(crate) fn quarantine_file(partition: &str, run_id: &str, nonce: &str) -> String {
    format!("{}/{partition}.quarantine.parquet", versions_dir(run_id, nonce))
}

/// A version's manifest.
pub(crate) fn manifest_file(partition: &str, run_id: &str, nonce: &str) -> String {
    format!("{}/{partition}.manifest.json", versions_dir(run_id, nonce))
}

/// The staging records of every shard attempt of `run_id` lie under this prefix.
pub(crate) fn shard_records_prefix(run_id: &str) -> String {
    format!("{RUNS_DIR}/{run_id}/")
}

/// A shard attempt's staging record.
pub(crate) fn shard_record_path(run_id: &str, index: usize, count: usize, nonce: &str) -> String {
    format!("{}shard-{index:05}-of-{count:05}.{nonce}.json", shard_records_prefix(run_id))
}

/// The attempt key (`<partition>/<run_id>/<attempt>`) of a file an attempt wrote: a data
/// file, or its manifest or quarantine, in either layout (see the module's doc). gc groups
/// files by it, and its records name debris by it.
pub fn attempt_dir(file: &str) -> Option<String> {
    if let Some(rest) = file.strip_prefix(VERSIONS_DIR).and_then(|f| f.strip_prefix('/')) {
        return versions_attempt(rest);
    }
    let parts: Vec<&str> = file.split('/').collect();
    match parts.as_slice() {
        [p, name] if !p.starts_with('_') => {
            let (index, rest) = name.strip_prefix("part-")?.strip_suffix(".parquet")?.split_once('.')?;
            let (run, nonce) = rest.rsplit_once('.')?;
            let ours = is_digits(index) && is_nonce(nonce) && !run.is_empty();
            ours.then(|| format!("{p}/{run}/{nonce}"))
        }
        [p, run, nonce, _] if !p.starts_with('_') => Some(format!("{p}/{run}/{nonce}")),
        _ => None,
    }
}

/// The attempt key of a file under `_sluice/versions/`, `rest` being the path below it.
fn versions_attempt(rest: &str) -> Option<String> {
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [run, nonce, name] if is_nonce(nonce) => {
            let p = name.strip_suffix(".manifest.json").or_else(|| name.strip_suffix(".quarantine.parquet"))?;
            Some(format!("{p}/{run}/{nonce}"))
        }
        [p, run, nonce, _] => Some(format!("{p}/{run}/{nonce}")),
        _ => None,
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// An attempt's nonce: 16 lowercase hex digits (see `Attempt::begin`).
fn is_nonce(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What an object found by listing a dataset is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// A staging record of a shard attempt of this run id.
    ShardRecord { run_id: String },
    /// A file of one attempt (data, quarantine or manifest), in this attempt folder.
    AttemptFile { dir: String },
    /// The cached state after this commit.
    HeadCache { commit: u64 },
    /// The log, a checkpoint, or anything else.
    Other,
}

/// Sort a listed object (a dataset-relative path) by what it is, for gc.
pub fn classify(rel: &str) -> Listed {
    if let Some(run) = rel.strip_prefix(RUNS_DIR).and_then(|r| r.strip_prefix('/')).and_then(|r| r.split('/').next()) {
        return Listed::ShardRecord { run_id: run.to_string() };
    }
    // the cache file, or a write of it that a kill left behind (`<N>.json#<k>`, object_store's
    // local temporary name)
    if let Some(commit) = rel.strip_prefix(HEADS_DIR).and_then(|r| r.strip_prefix('/')).and_then(|name| name.split_once(".json")?.0.parse().ok()) {
        return Listed::HeadCache { commit };
    }
    match attempt_dir(rel) {
        Some(dir) => Listed::AttemptFile { dir },
        None => Listed::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "0123456789abcdef";

    #[test]
    fn a_files_attempt_key_is_found_in_both_layouts() {
        let key = format!("date=2013-01-01/run.1-a/{NONCE}");
        for file in [
            data_file("date=2013-01-01", "run.1-a", NONCE, 3),
            manifest_file("date=2013-01-01", "run.1-a", NONCE),
            quarantine_file("date=2013-01-01", "run.1-a", NONCE),
            format!("date=2013-01-01/run.1-a/{NONCE}/part-00000.parquet"),
            format!("_sluice/versions/date=2013-01-01/run.1-a/{NONCE}/manifest.json"),
        ] {
            assert_eq!(attempt_dir(&file), Some(key.clone()), "{file}");
            assert_eq!(classify(&file), Listed::AttemptFile { dir: key.clone() }, "{file}");
        }
    }

    #[test]
    fn files_sluice_did_not_name_have_no_attempt() {
        for file in [
            "date=2013-01-01/part-00000-7c1f.c000.snappy.parquet", // another Delta writer
            "date=2013-01-01/part-00000.run.zstd.parquet",
            "date=2013-01-01/part-x.run.0123456789abcdef.parquet",
            "date=2013-01-01/notes.txt",
            "_delta_log/00000000000000000001.json",
            "_sluice/versions/run/short/date=2013-01-01.manifest.json",
        ] {
            assert_eq!(attempt_dir(file), None, "{file}");
        }
        assert_eq!(classify("_sluice/runs/r1/shard-00000-of-00002.x.json"), Listed::ShardRecord { run_id: "r1".into() });
        assert_eq!(classify(&head_file(42)), Listed::HeadCache { commit: 42 });
        assert_eq!(classify(&format!("{}#3", head_file(7))), Listed::HeadCache { commit: 7 }, "a write a kill left");
        assert_eq!(classify("_sluice/heads/notes.json"), Listed::Other);
    }
}
