//! Datasets and commit requests for the store's tests.

use std::collections::BTreeMap;

use sluice_extract::Storage;

use super::commit::{Change, CommitRequest, PartitionVersion};
use super::dataset::Dataset;

/// An empty dataset in a fresh temporary folder.
pub(crate) fn temp_dataset(tag: &str) -> (Dataset, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("sluice-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Dataset::open(Storage::open(dir.to_str().unwrap(), None).unwrap()).unwrap(), dir)
}

/// The schema the tests' versions are said to have.
pub(crate) fn schema() -> serde_json::Value {
    serde_json::json!({"type": "struct", "fields": [{"name": "x", "type": "long", "nullable": true, "metadata": {}}]})
}

/// Publish `run`'s version of partition `p`, made of `files` (one named after the run
/// when empty: a version has at least one file), decided on `base`.
pub(crate) fn publish<'a>(base: u64, run: &'a str, p: &str, files: Vec<String>) -> CommitRequest<'a> {
    let files = if files.is_empty() { vec![format!("{p}/{run}/0000000000000000/part-00000.parquet")] } else { files };
    let v = PartitionVersion {
        version: run.into(),
        files,
        file_stats: Vec::new(),
        rows: 1,
        fingerprint: format!("fp-{run}"),
        manifest: String::new(),
        published_in: 0,
        model: None,
        checks: None,
    };
    let mut req = CommitRequest::new(base, Change::Publish, run, BTreeMap::from([(p.to_string(), Some(v))]), &[]);
    req.schema = Some(schema());
    req
}
