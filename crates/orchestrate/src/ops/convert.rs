//! `sluice convert`: a dataset written before the Delta log (`_sluice/commits`) becomes a
//! Delta table with the same history: each old commit N is written as Delta version N,
//! with its time, run id, attempt, operation and command, its files' sizes and statistics
//! read from the files themselves. The schema is the current version's. The old log is
//! left where it is (sluice no longer reads it).
//!
//! Killed part way, it resumes: a version already written is checked against the old
//! commit of that number (same run id) and skipped. Files gc deleted before the
//! conversion get no statistics (their rows are counted on their first file).

use std::collections::BTreeMap;
use std::io::Cursor;

use polars::prelude::{ParquetReader, SerReader};
use serde_json::{json, Value};

use crate::error::SluiceError;
use crate::store::{self, stats, Commit, CommitOutcome, CommitRequest, Dataset, PartitionVersion, TableMeta};
use crate::types::FileStats;

/// Convert `ds`; the summary line.
pub fn convert(ds: &Dataset) -> Result<Value, SluiceError> {
    let log = ds.legacy_log()?;
    if log.is_empty() {
        return Err(SluiceError::Usage(format!("{}: no commit log of an older sluice here (_sluice/commits)", ds.uri())));
    }
    let schema = current_schema(ds, &log)?;
    let (mut current, mut table): (BTreeMap<String, PartitionVersion>, Option<TableMeta>) = (BTreeMap::new(), None);
    let mut written = 0;
    let done = if ds.has_table()? { ds.head()?.latest() } else { 0 };
    for c in &log {
        let req = request(ds, c, &current, table.clone(), &schema)?;
        let after = req.table_after(c.commit, c.timestamp)?;
        if c.commit <= done {
            let theirs = ds.read_commit(c.commit)?;
            if theirs.run_id != c.run_id {
                return Err(SluiceError::Conflict { dataset: ds.uri().to_string(), reason: format!("version {} is not the old commit {} (run {}, not {})", c.commit, c.commit, theirs.run_id, c.run_id) });
            }
        } else {
            match ds.commit(req)? {
                CommitOutcome::Committed(n) if n == c.commit => written += 1,
                CommitOutcome::Committed(n) | CommitOutcome::AlreadyPublished(n) => {
                    return Err(SluiceError::Conflict { dataset: ds.uri().to_string(), reason: format!("another writer committed version {n} during the conversion") })
                }
            }
        }
        table = match after {
            Some(t) if table.is_some() => Some(t),
            _ => ds.head_at(Some(c.commit))?.table,
        };
        for (p, v) in &c.partitions {
            match v {
                Some(v) => current.insert(p.clone(), v.clone()),
                None => current.remove(p),
            };
        }
    }
    tracing::info!(dataset = ds.uri(), commits = log.len(), written, "converted to a Delta table");
    Ok(json!({"status": if written > 0 { "converted" } else { "up_to_date" }, "dataset": ds.uri(), "commits": log.len(), "written": written}))
}

/// Old commit `c` as a request on the state before it.
fn request<'a>(ds: &Dataset, c: &'a Commit, current: &BTreeMap<String, PartitionVersion>, table: Option<TableMeta>, schema: &Value) -> Result<CommitRequest<'a>, SluiceError> {
    let mut partitions = c.partitions.clone();
    for (p, v) in partitions.iter_mut().filter_map(|(p, v)| v.as_mut().map(|v| (p, v))) {
        v.file_stats = file_stats(ds, p, v)?;
    }
    let mut req = CommitRequest::new(c.commit - 1, c.change.clone(), &c.run_id, partitions, &c.command).on(current, table.as_ref());
    req.attempt = c.attempt.as_deref();
    req.schema = Some(schema.clone());
    req.at = Some(c.timestamp);
    Ok(req)
}

/// Each file's size and statistics, read from the file; a file gc deleted gets none.
fn file_stats(ds: &Dataset, partition: &str, v: &PartitionVersion) -> Result<Vec<FileStats>, SluiceError> {
    let key = partition.split_once('=').map_or("", |(k, _)| k);
    let mut out = Vec::new();
    for (i, f) in v.files.iter().enumerate() {
        out.push(match ds.storage().get_opt(f)? {
            Some(bytes) => {
                let df = ParquetReader::new(Cursor::new(&bytes)).finish().map_err(|e| SluiceError::other(ds.uri_of(f), e))?;
                stats::file_stats(&df, &bytes, key)
            }
            None => FileStats { size: 0, rows: if i == 0 { v.rows } else { 0 }, stats: None },
        });
    }
    Ok(out)
}

/// The table schema: the current version's (its first partition's first file).
fn current_schema(ds: &Dataset, log: &[Commit]) -> Result<Value, SluiceError> {
    let state = store::fold(log, None);
    let file = state.partitions.values().find_map(|v| v.files.first()).ok_or_else(|| SluiceError::Usage(format!("{}: the old log has no current version to take a schema from", ds.uri())))?;
    let bytes = ds.storage().get(file)?;
    let df = ParquetReader::new(Cursor::new(&bytes)).finish().map_err(|e| SluiceError::other(ds.uri_of(file), e))?;
    stats::table_schema(df.schema())
}
