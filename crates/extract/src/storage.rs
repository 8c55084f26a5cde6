//! [`Storage`]: blocking access to one location's objects through `Arc<dyn ObjectStore>`.
//!
//! sluice's stages run on plain threads; this facade blocks on the process's I/O runtime
//! ([`config::runtime`]) for each call (a local disk's calls run on the caller's thread),
//! so callers never see async. Every path given to a
//! method is relative to the storage root.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::{config, ExtractError, Location, ObjectRef, StoreKind};

pub use crate::upload::ObjectWriter;

/// Whether a put-if-absent created the object or found one already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    AlreadyExists,
}

#[derive(Debug, Clone)]
pub struct Storage {
    root: Location,
}

impl Storage {
    pub fn open(uri: &str, base: Option<&std::path::Path>) -> Result<Self, ExtractError> {
        Self::new(Location::parse(uri, base)?)
    }

    pub fn new(root: Location) -> Result<Self, ExtractError> {
        Ok(Storage { root })
    }

    /// Run `f` and wait for it: on the local disk right here, on this thread (object_store's
    /// `LocalFileSystem` does its file calls inline outside a runtime); elsewhere on the I/O
    /// runtime. A daily run's dozen small reads and writes each cost a hop to a blocking
    /// thread and back on the runtime, and starting it (threads) was part of every run.
    pub(crate) fn block_on<F: Future>(&self, f: F) -> Result<F::Output, ExtractError> {
        if self.is_local() {
            return Ok(futures::executor::block_on(f));
        }
        Ok(config::runtime()?.block_on(f))
    }

    /// On the local disk: its calls run on the caller's thread ([`Storage::block_on`]).
    pub fn is_local(&self) -> bool {
        self.root.kind == StoreKind::Local
    }

    fn local_err(&self, rel: &str, e: std::io::Error) -> ExtractError {
        ExtractError::Store { uri: self.uri_of(rel), message: e.to_string() }
    }

    /// Whether objects can be written here (plain HTTP cannot).
    pub fn is_writable(&self) -> bool {
        self.root.is_writable()
    }

    fn writable(&self, rel: &str) -> Result<(), ExtractError> {
        match self.is_writable() {
            true => Ok(()),
            false => Err(ExtractError::ReadOnly { uri: self.uri_of(rel) }),
        }
    }

    /// The root URI, as given (normalised).
    pub fn uri(&self) -> &str {
        self.root.uri.trim_end_matches('/')
    }

    /// The root as a folder URL on [`Storage::store`] (see [`Location::folder_url`]).
    pub fn folder_url(&self) -> Result<url::Url, ExtractError> {
        self.root.folder_url()
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.root.store
    }

    /// The full store path of a root-relative path.
    pub fn full_path(&self, rel: &str) -> Path {
        let mut p = self.root.path.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }

    /// The URI a plain reader (Polars, DuckDB, pyarrow) opens for a root-relative path.
    pub fn uri_of(&self, rel: &str) -> String {
        self.root.uri_of(&self.full_path(rel))
    }

    pub fn get(&self, rel: &str) -> Result<Bytes, ExtractError> {
        let path = self.full_path(rel);
        self.block_on(async { self.root.store.get(&path).await?.bytes().await })?
            .map_err(|e| ExtractError::store(self.uri_of(rel), e))
    }

    /// Read several objects at once (concurrently); `None` for each that does not exist.
    pub fn get_many_opt(&self, rels: &[String]) -> Result<Vec<Option<Bytes>>, ExtractError> {
        let reads = rels.iter().map(|rel| async move {
            let path = self.full_path(rel);
            match async { self.root.store.get(&path).await?.bytes().await }.await {
                Ok(b) => Ok(Some(b)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(ExtractError::store(self.uri_of(rel), e)),
            }
        });
        self.block_on(futures::future::join_all(reads))?.into_iter().collect()
    }

    /// Read an object only if it is still the version seen when it was listed: `If-Match`
    /// on its ETag (on local disk the ETag is inode, modification time and size), or
    /// `If-Unmodified-Since` where the store gives no ETag; the store's answer must carry
    /// the same ETag (a server may ignore `If-Match`), and it must be exactly `size` bytes
    /// (on local disk: no byte past them either, for a file whose size lies, such as
    /// `/proc`'s, or one still being written). Anything else is [`ExtractError::Changed`].
    pub fn get_version(&self, rel: &str, seen: &ObjectRef) -> Result<Bytes, ExtractError> {
        self.block_on(self.get_version_async(rel, seen))?
    }

    /// [`Storage::get_version`], for callers that run several reads at once.
    pub async fn get_version_async(&self, rel: &str, seen: &ObjectRef) -> Result<Bytes, ExtractError> {
        let path = self.full_path(rel);
        let opts = GetOptions {
            if_match: seen.e_tag.clone(),
            if_unmodified_since: seen.e_tag.is_none().then_some(seen.last_modified),
            ..Default::default()
        };
        let changed = |detail: String| ExtractError::Changed { uri: self.uri_of(rel), detail };
        let err = |e| ExtractError::store(self.uri_of(rel), e);
        let got = self.root.store.get_opts(&path, opts).await.map_err(err)?;
        if let (Some(listed), Some(now)) = (&seen.e_tag, &got.meta.e_tag) {
            if !same_etag(listed, now) {
                return Err(changed(format!("ETag {now}, {listed} when listed")));
            }
        }
        let bytes = got.bytes().await.map_err(err)?;
        if bytes.len() as u64 != seen.size {
            return Err(changed(format!("{} bytes read, {} when listed", bytes.len(), seen.size)));
        }
        if self.root.kind == StoreKind::Local && has_bytes_past(&path, seen.size).map_err(|e| self.local_err(rel, e))? {
            return Err(changed(format!("the file holds more than the {} bytes its size says", seen.size)));
        }
        Ok(bytes)
    }

    /// Read an object if it exists.
    pub fn get_opt(&self, rel: &str) -> Result<Option<Bytes>, ExtractError> {
        match self.get(rel) {
            Ok(b) => Ok(Some(b)),
            Err(ExtractError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn head(&self, rel: &str) -> Result<ObjectMeta, ExtractError> {
        let path = self.full_path(rel);
        self.block_on(self.root.store.head(&path))?
            .map_err(|e| ExtractError::store(self.uri_of(rel), e))
    }

    pub fn exists(&self, rel: &str) -> Result<bool, ExtractError> {
        match self.head(rel) {
            Ok(_) => Ok(true),
            Err(ExtractError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Write (or replace) an object. Data files are never replaced: they live under paths
    /// unique to their run; this is for those and for scratch objects.
    pub fn put(&self, rel: &str, data: Bytes) -> Result<(), ExtractError> {
        self.writable(rel)?;
        let path = self.full_path(rel);
        self.block_on(self.root.store.put(&path, PutPayload::from(data)))?
            .map(|_| ())
            .map_err(|e| ExtractError::store(self.uri_of(rel), e))
    }

    /// Create an object only if nothing is at `rel` yet (create-new on local disk,
    /// `If-None-Match: *` on S3 and Azure). Exactly one of two racing writers gets `Created`.
    pub fn put_if_absent(&self, rel: &str, data: Bytes) -> Result<PutOutcome, ExtractError> {
        self.block_on(self.put_if_absent_async(rel, data))?
    }

    /// [`Storage::put_if_absent`], for callers that run several writes at once.
    pub async fn put_if_absent_async(&self, rel: &str, data: Bytes) -> Result<PutOutcome, ExtractError> {
        self.writable(rel)?;
        let path = self.full_path(rel);
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.root.store.put_opts(&path, PutPayload::from(data), opts).await {
            Ok(_) => Ok(PutOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(PutOutcome::AlreadyExists),
            Err(e) => Err(ExtractError::store(self.uri_of(rel), e)),
        }
    }

    /// Every object under a root-relative prefix, sorted by path. Paths returned are
    /// root-relative.
    pub fn list(&self, rel_prefix: &str) -> Result<Vec<(String, ObjectMeta)>, ExtractError> {
        self.list_after(rel_prefix, None)
    }

    /// [`Storage::list`], only the paths that sort after `after` (root-relative) when given:
    /// one request from there on S3 (`start-after`), not the whole prefix.
    pub fn list_after(&self, rel_prefix: &str, after: Option<&str>) -> Result<Vec<(String, ObjectMeta)>, ExtractError> {
        let prefix = self.full_path(rel_prefix);
        let root = self.root.path.as_ref().to_string();
        let stream = match after {
            Some(after) => self.root.store.list_with_offset(Some(&prefix), &self.full_path(after)),
            None => self.root.store.list(Some(&prefix)),
        };
        let mut metas: Vec<ObjectMeta> = match self.block_on(stream.try_collect::<Vec<_>>())? {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(ExtractError::store(self.uri_of(rel_prefix), e)),
        };
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(metas
            .into_iter()
            .map(|m| {
                let full = m.location.as_ref();
                let rel = full.strip_prefix(root.as_str()).unwrap_or(full).trim_start_matches('/').to_string();
                (rel, m)
            })
            .collect())
    }

    pub fn delete(&self, rel: &str) -> Result<(), ExtractError> {
        self.writable(rel)?;
        let path = self.full_path(rel);
        self.block_on(self.root.store.delete(&path))?
            .map_err(|e| ExtractError::store(self.uri_of(rel), e))
    }

    /// A writer that creates `rel` when finished: one put-if-absent when it stays under a
    /// part's size, otherwise a multipart upload of bounded parts (see [`ObjectWriter`]).
    pub fn writer(&self, rel: &str) -> Result<ObjectWriter, ExtractError> {
        self.writable(rel)?;
        Ok(ObjectWriter::new(self.clone(), rel.to_string(), self.full_path(rel)))
    }
}

/// Whether two ETags name the same version: Azure lists them bare and answers a read with
/// them quoted, and a weak one (`W/"…"`) names the same version as its strong form.
fn same_etag(a: &str, b: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").trim_matches('"').to_string();
    bare(a) == bare(b)
}

/// Whether the local file at `path` (a store path, mapped to the file system as the local
/// store maps it) has a byte at offset `size`, its listed size.
fn has_bytes_past(path: &Path, size: u64) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let file = object_store::local::LocalFileSystem::new().path_to_filesystem(path).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::open(file)?;
    f.seek(SeekFrom::Start(size))?;
    Ok(f.read(&mut [0u8; 1])? > 0)
}

#[cfg(test)]
mod tests {
    use super::{same_etag, Storage};

    #[test]
    fn a_listing_after_a_path_starts_past_it() {
        let dir = std::env::temp_dir().join(format!("sluice-list-after-{}", std::process::id()));
        let s = Storage::open(dir.to_str().unwrap(), None).unwrap();
        for name in ["log/01.json", "log/02.checkpoint", "log/02.json", "log/03.json", "other/04.json"] {
            s.put(name, bytes::Bytes::from_static(b"x")).unwrap();
        }
        let names = |after| s.list_after("log", after).unwrap().into_iter().map(|(rel, _)| rel).collect::<Vec<_>>();
        assert_eq!(names(Some("log/02")), ["log/02.checkpoint", "log/02.json", "log/03.json"]);
        assert_eq!(names(None).len(), 4);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn etags_compare_without_quotes_or_weakness() {
        assert!(same_etag("0x1D8AFAF85287BC0", "\"0x1D8AFAF85287BC0\""));
        assert!(same_etag("W/\"abc\"", "\"abc\""));
        assert!(!same_etag("\"abc\"", "\"abd\""));
    }
}
