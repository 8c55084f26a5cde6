//! Source templates and the objects of one partition.
//!
//! A template is a URI with `{name}` placeholders filled from the partition's values, e.g.
//! `data/landing/flights/{date}.csv`. If the expanded URI ends with `/` it names a prefix and
//! every object under it (sorted by path) belongs to the partition.

use std::collections::VecDeque;
use std::path::{Path as FsPath, PathBuf};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{ExtractError, Location, Storage};

/// Fill `{name}` placeholders from `vars`. Unknown placeholders are an error.
pub fn expand_template(template: &str, vars: &[(String, String)]) -> Result<String, ExtractError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return Ok(out);
        };
        let var = &after[..close];
        match vars.iter().find(|(k, _)| k == var) {
            Some((_, v)) => out.push_str(v),
            None => {
                return Err(ExtractError::MissingTemplateValue { template: template.to_string(), var: var.to_string() })
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The placeholders a template uses, in order.
pub fn template_vars(template: &str) -> Vec<String> {
    let mut vars = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        vars.push(after[..close].to_string());
        rest = &after[close + 1..];
    }
    vars
}

/// An input object as recorded in lineage: where, how big, which version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub uri: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

/// An object's bytes and their sha256 (hex).
#[derive(Debug, Clone)]
pub struct RawObject {
    pub object: ObjectRef,
    pub bytes: Bytes,
    pub sha256: String,
}

/// One object of a partition, with the storage that serves it.
#[derive(Debug, Clone)]
pub struct SourceObject {
    storage: Storage,
    rel: String,
    pub meta: ObjectRef,
}

impl SourceObject {
    /// Read the object, at the version it was listed with (see [`Storage::get_version`]),
    /// and checksum it.
    /// Its path under the source prefix (folders kept), or its file name for a single object.
    pub fn name(&self) -> &str {
        match self.rel.is_empty() {
            true => self.meta.uri.rsplit('/').next().unwrap_or("object"),
            false => &self.rel,
        }
    }

    pub fn fetch(&self) -> Result<RawObject, ExtractError> {
        self.storage.block_on(self.fetch_async())?
    }

    async fn fetch_async(&self) -> Result<RawObject, ExtractError> {
        let bytes = self.storage.get_version_async(&self.rel, &self.meta).await?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        tracing::debug!(uri = %self.meta.uri, bytes = bytes.len(), "fetched");
        Ok(RawObject { object: self.meta.clone(), bytes, sha256 })
    }
}

/// Fetch objects concurrently, yielding them in order: at most `max_in_flight` reads, and
/// at most `max_bytes` (by listed size) fetched but not yet taken, are outstanding; one
/// object is always allowed, however large. Dropping the iterator cancels what is left.
/// An object on the local disk is read when it is taken, on the caller's thread: a read
/// from the page cache is shorter than the hops to the I/O runtime and back.
pub struct Prefetch {
    pending: VecDeque<SourceObject>,
    running: VecDeque<(u64, tokio::task::JoinHandle<Result<RawObject, ExtractError>>)>,
    max_in_flight: usize,
    max_bytes: u64,
}

pub fn prefetch(objects: Vec<SourceObject>, max_in_flight: usize, max_bytes: u64) -> Prefetch {
    Prefetch { pending: objects.into(), running: VecDeque::new(), max_in_flight: max_in_flight.max(1), max_bytes }
}

impl Prefetch {
    fn start_more(&mut self) -> Result<(), ExtractError> {
        while self.running.len() < self.max_in_flight {
            let held: u64 = self.running.iter().map(|(n, _)| n).sum();
            match self.pending.front() {
                Some(o) if o.storage.is_local() => break, // read when taken (`next`)
                Some(o) if self.running.is_empty() || held + o.meta.size <= self.max_bytes => {
                    let rt = crate::config::runtime()?;
                    let Some(o) = self.pending.pop_front() else { break };
                    self.running.push_back((o.meta.size, rt.spawn(async move { o.fetch_async().await })));
                }
                _ => break,
            }
        }
        Ok(())
    }
}

impl Iterator for Prefetch {
    type Item = Result<RawObject, ExtractError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.start_more() {
            return Some(Err(e));
        }
        if self.running.is_empty() {
            let local = self.pending.pop_front()?;
            return Some(local.fetch());
        }
        let (_, handle) = self.running.pop_front()?;
        let rt = match crate::config::runtime() {
            Ok(rt) => rt,
            Err(e) => return Some(Err(e)),
        };
        let out = rt.block_on(handle).unwrap_or_else(|e| Err(ExtractError::Runtime(std::io::Error::other(e))));
        // keep the pipe full while the caller works on this one
        if let Err(e) = self.start_more() {
            return Some(Err(e));
        }
        Some(out)
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.running.iter().for_each(|(_, h)| h.abort());
    }
}

/// One partition's listing.
pub type Listed = Result<Vec<SourceObject>, ExtractError>;

/// A source: a URI template, resolved against `base` when it is a relative local path.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub template: String,
    pub base: Option<PathBuf>,
}

impl SourceSpec {
    pub fn new(template: impl Into<String>, base: Option<&FsPath>) -> Self {
        SourceSpec { template: template.into(), base: base.map(FsPath::to_path_buf) }
    }

    /// The URI for one partition.
    pub fn uri_for(&self, vars: &[(String, String)]) -> Result<String, ExtractError> {
        let expanded = expand_template(&self.template, vars)?;
        Ok(Location::parse(&expanded, self.base.as_deref())?.uri)
    }

    /// [`SourceSpec::list`] for many partitions, up to `concurrency` listings at once (each is
    /// a request or more: on a bucket their latency adds up over a backfill). In order.
    pub fn list_many(&self, vars: &[Vec<(String, String)>], concurrency: usize) -> Vec<Listed> {
        crate::par::map_ordered(vars, concurrency, |v| self.list(v))
    }

    /// The objects of one partition, sorted by URI; empty when there are none.
    pub fn list(&self, vars: &[(String, String)]) -> Result<Vec<SourceObject>, ExtractError> {
        let expanded = expand_template(&self.template, vars)?;
        Self::list_in(Location::parse(&expanded, self.base.as_deref())?)
    }

    /// The objects at `loc` (every one under it when it names a prefix), sorted by URI.
    pub fn list_in(loc: Location) -> Result<Vec<SourceObject>, ExtractError> {
        let is_prefix = loc.is_prefix;
        let storage = Storage::new(loc)?;
        let entries = if is_prefix {
            storage.list("")?
        } else {
            match storage.head("") {
                Ok(meta) => vec![(String::new(), meta)],
                Err(ExtractError::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(e),
            }
        };
        Ok(entries
            .into_iter()
            .map(|(rel, meta)| SourceObject {
                meta: ObjectRef {
                    uri: storage.uri_of(&rel),
                    size: meta.size,
                    e_tag: meta.e_tag.clone(),
                    last_modified: meta.last_modified,
                },
                storage: storage.clone(),
                rel,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn vars(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.to_string(), v.to_string())]
    }

    #[test]
    fn templates_expand_and_report_missing_values() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(expand_template("a/{date}.csv", &vars("date", "2013-01-15"))?, "a/2013-01-15.csv");
        let e = expand_template("a/{day}.csv", &vars("date", "x")).unwrap_err();
        assert!(e.to_string().contains("{day}"), "{e}");
        assert_eq!(template_vars("s/{a}/{b}.csv"), vec!["a", "b"]);
        Ok(())
    }

    #[test]
    fn lists_and_fetches_real_files_with_checksums() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("sluice-extract-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("p"))?;
        std::fs::write(dir.join("p/b.csv"), b"x\n2\n")?;
        std::fs::write(dir.join("p/a.csv"), b"x\n1\n")?;
        let spec = SourceSpec::new(format!("{}/{{k}}/", dir.display()), None);
        let objs = spec.list(&vars("k", "p"))?;
        assert_eq!(objs.len(), 2);
        assert!(objs[0].meta.uri.ends_with("/p/a.csv"), "{}", objs[0].meta.uri);
        let raw = objs[0].fetch()?;
        assert_eq!(&raw.bytes[..], b"x\n1\n");
        assert_eq!(raw.sha256, hex::encode(Sha256::digest(b"x\n1\n")));
        assert!(spec.list(&vars("k", "missing"))?.is_empty());
        let single = SourceSpec::new(format!("{}/p/{{k}}.csv", dir.display()), None);
        assert_eq!(single.list(&vars("k", "b"))?.len(), 1);
        assert!(single.list(&vars("k", "zzz"))?.is_empty());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// A file that grew after it was listed, or whose size lies (`/proc`'s say 0 bytes), is
    /// an error when read, never a short copy.
    #[test]
    fn a_file_that_is_not_its_listed_size_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("sluice-extract-grow-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("day.csv");
        std::fs::write(&file, b"x\n1\n")?;
        let listed = SourceSpec::new(file.to_str().unwrap_or_default(), None).list(&[])?;
        std::fs::OpenOptions::new().append(true).open(&file)?.write_all(b"2\n")?;
        let e = listed[0].fetch().unwrap_err();
        assert!(matches!(e, ExtractError::Changed { .. }), "{e}");
        let proc_file = SourceSpec::new("/proc/self/status", None).list(&[])?;
        assert_eq!(proc_file[0].meta.size, 0, "/proc reports no size");
        let e = proc_file[0].fetch().unwrap_err();
        assert!(matches!(e, ExtractError::Changed { .. }), "{e}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
