//! [`ObjectWriter`]: `std::io::Write` into an object, with bounded memory.
//!
//! Bytes are buffered up to [`PART_SIZE`]. A file that stays below it is created with one
//! put-if-absent (`If-None-Match: *` on S3 and Azure, create-new on disk). A larger one
//! becomes a multipart upload: each full part is uploaded as soon as it is buffered, so the
//! writer never holds more than one part, and the upload is completed by [`finish`]
//! (aborted if the writer is dropped unfinished or a part fails). A multipart upload cannot
//! be made conditional on every store, so it is only for paths no other writer can use
//! (the dataset store's files live under a path unique to their attempt).
//!
//! [`finish`]: ObjectWriter::finish

use std::collections::VecDeque;
use std::io::Write;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};

use crate::{config, ExtractError, PutOutcome, Storage};

/// The part size of multipart uploads (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 << 20;

pub struct ObjectWriter {
    storage: Storage,
    rel: String,
    path: Path,
    part_size: usize,
    buf: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
    parts: usize,
}

impl ObjectWriter {
    pub(crate) fn new(storage: Storage, rel: String, path: Path) -> Self {
        ObjectWriter { storage, rel, path, part_size: PART_SIZE, buf: Vec::new(), upload: None, parts: 0 }
    }

    /// Use parts of `bytes` (for tests on stores without a minimum part size).
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(1);
        self
    }

    fn err(&self, e: object_store::Error) -> ExtractError {
        ExtractError::store(self.storage.uri_of(&self.rel), e)
    }

    /// Upload the next part (a part's size of the buffer, or all of it at the end), starting
    /// the upload if needed.
    fn upload_part(&mut self) -> Result<(), ExtractError> {
        if self.upload.is_none() {
            let started = self.storage.block_on(self.storage.store().put_multipart(&self.path))?;
            self.upload = Some(started.map_err(|e| self.err(e))?);
        }
        let rest = self.buf.split_off(self.part_size.min(self.buf.len()));
        let part = PutPayload::from(Bytes::from(std::mem::replace(&mut self.buf, rest)));
        let Some(upload) = self.upload.as_mut() else { return Ok(()) };
        let sent = self.storage.block_on(upload.put_part(part))?;
        sent.map_err(|e| self.err(e))?;
        self.parts += 1;
        Ok(())
    }

    /// The bytes written, if they stayed under a part's size (no upload started): the
    /// caller creates the object itself, e.g. in the background with [`Uploads`].
    pub fn take_small(&mut self) -> Option<Bytes> {
        self.upload.is_none().then(|| Bytes::from(std::mem::take(&mut self.buf)))
    }

    /// Create the object. A small one is put-if-absent and may find the object already
    /// there ([`PutOutcome::AlreadyExists`]); a multipart one is completed.
    pub fn finish(mut self) -> Result<PutOutcome, ExtractError> {
        if self.upload.is_none() {
            let bytes = Bytes::from(std::mem::take(&mut self.buf));
            return self.storage.put_if_absent(&self.rel, bytes);
        }
        if !self.buf.is_empty() {
            self.upload_part()?;
        }
        let Some(mut upload) = self.upload.take() else { return Ok(PutOutcome::Created) };
        match self.storage.block_on(upload.complete())? {
            Ok(_) => {
                tracing::debug!(uri = %self.storage.uri_of(&self.rel), parts = self.parts, "multipart upload completed");
                Ok(PutOutcome::Created)
            }
            Err(e) => {
                let _ = self.storage.block_on(upload.abort());
                Err(self.err(e))
            }
        }
    }
}

/// A finished background create: the object's path and how it went.
pub type Uploaded = (String, Result<PutOutcome, ExtractError>);

/// Objects created in the background (put-if-absent each), at most `max` at once: a writer
/// of many small files does not wait for each request's round trip.
pub struct Uploads {
    max: usize,
    running: VecDeque<(String, tokio::task::JoinHandle<Result<PutOutcome, ExtractError>>)>,
}

impl Uploads {
    pub fn new(max: usize) -> Self {
        Uploads { max: max.max(1), running: VecDeque::new() }
    }

    /// Start creating `rel` (root-relative in `storage`); when `max` are running, first wait
    /// for the oldest. Returns the uploads that finished meanwhile. On the local disk the
    /// object is created now, on this thread: shorter than the hops to the I/O runtime and back.
    pub fn start(&mut self, storage: &Storage, rel: String, bytes: Bytes) -> Result<Vec<Uploaded>, ExtractError> {
        let mut done = Vec::new();
        while self.running.len() >= self.max {
            done.extend(self.wait_oldest());
        }
        if storage.is_local() {
            let created = storage.put_if_absent(&rel, bytes);
            done.push((rel, created));
            return Ok(done);
        }
        let (s, r) = (storage.clone(), rel.clone());
        let handle = config::runtime()?.spawn(async move { s.put_if_absent_async(&r, bytes).await });
        self.running.push_back((rel, handle));
        Ok(done)
    }

    fn wait_oldest(&mut self) -> Option<Uploaded> {
        let (rel, handle) = self.running.pop_front()?;
        let outcome = match config::runtime() {
            Ok(rt) => rt.block_on(handle).unwrap_or_else(|e| Err(ExtractError::Runtime(std::io::Error::other(e)))),
            Err(e) => Err(e),
        };
        Some((rel, outcome))
    }

    /// Wait for every upload still running.
    pub fn wait_all(&mut self) -> Vec<Uploaded> {
        std::iter::from_fn(|| self.wait_oldest()).collect()
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while self.buf.len() >= self.part_size {
            self.upload_part().map_err(std::io::Error::other)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if let Some(mut upload) = self.upload.take() {
            tracing::debug!(uri = %self.storage.uri_of(&self.rel), "aborting an unfinished multipart upload");
            let _ = self.storage.block_on(upload.abort());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use crate::{PutOutcome, Storage};

    #[test]
    fn small_objects_are_one_put_and_large_ones_go_up_in_parts() {
        let dir = std::env::temp_dir().join(format!("sluice-upload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Storage::open(dir.to_str().unwrap(), None).unwrap();
        let mut w = s.writer("small.bin").unwrap().with_part_size(1000);
        w.write_all(&[1u8; 10]).unwrap();
        assert_eq!(w.finish().unwrap(), PutOutcome::Created);
        let mut w = s.writer("small.bin").unwrap();
        w.write_all(b"other").unwrap();
        assert_eq!(w.finish().unwrap(), PutOutcome::AlreadyExists, "a small object is put-if-absent");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = s.writer("large.bin").unwrap().with_part_size(1000);
        for chunk in data.chunks(333) {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.parts, 10, "each full part goes up as soon as it is buffered");
        assert!(w.buf.len() < 1000);
        assert_eq!(w.finish().unwrap(), PutOutcome::Created);
        assert_eq!(std::fs::read(dir.join("large.bin")).unwrap(), data);
        assert_eq!(std::fs::read(dir.join("small.bin")).unwrap(), vec![1u8; 10]);
        // dropped unfinished: nothing appears
        let mut w = s.writer("dropped.bin").unwrap().with_part_size(100);
        w.write_all(&[0u8; 500]).unwrap();
        drop(w);
        assert!(!dir.join("dropped.bin").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
