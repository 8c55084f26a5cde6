//! [`Attempt`]: one process working for a run id, and everything it writes to a dataset.
//!
//! Schedulers retry with the same run id, sometimes while the first attempt is still alive,
//! so a run id alone cannot name files. Each attempt draws a random nonce and creates every
//! object put-if-absent under a path that holds it:
//!
//! ```text
//! <partition>/part-00000.<run_id>.<nonce>.parquet
//! _sluice/versions/<run_id>/<nonce>/<partition>.manifest.json, <partition>.quarantine.parquet
//! _sluice/runs/<run_id>/shard-00000-of-00004.<nonce>.json
//! ```
//!
//! (`store::layout` spells these paths.)
//!
//! The attempt remembers what it created and [`Attempt::discard`] removes exactly that,
//! never anything found by listing. Once a write that publishes (a commit, a shard's staging
//! record) has been tried and its outcome is not a definite "not written", the files may be
//! referenced, and `discard` keeps them. Debris of attempts that died (SIGKILL, OOM) is
//! never referenced by a commit and is left for garbage collection; a retry ignores it.

use std::io::Write;
use std::sync::Mutex;

use bytes::Bytes;
use sluice_extract::upload::{Uploaded, Uploads, PART_SIZE};
use sluice_extract::{PutOutcome, Storage};

use super::commit::{CommitOutcome, CommitRequest};
use super::dataset::Dataset;
use super::layout;
use crate::error::SluiceError;

/// Whether the attempt may still remove what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seal {
    /// Nothing it wrote can be referenced: discard removes it.
    Open,
    /// A publishing write succeeded or may have: its files stay.
    Sealed,
}

/// Data files and manifests created in the background at once, per attempt.
const UPLOADS_IN_FLIGHT: usize = 8;

pub struct Attempt {
    storage: Storage,
    run_id: String,
    nonce: String,
    created: Mutex<Vec<String>>,
    /// Creates still running; every publishing write waits for them first.
    uploads: Mutex<Uploads>,
    seal: Mutex<Seal>,
}

impl Attempt {
    /// Start an attempt of `run_id` on `dataset`: a fresh nonce, nothing written yet.
    pub fn begin(dataset: &Dataset, run_id: &str) -> Self {
        Attempt {
            storage: dataset.storage().clone(),
            run_id: run_id.to_string(),
            nonce: format!("{:016x}", rand::random::<u64>()),
            created: Mutex::new(Vec::new()),
            uploads: Mutex::new(Uploads::new(UPLOADS_IN_FLIGHT)),
            seal: Mutex::new(Seal::Open),
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The random id of this attempt.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// Create `rel` (put-if-absent). Only this attempt writes under its nonce, so an object
    /// already there is this attempt's own write, found by a retry of a request whose answer
    /// was lost.
    fn create(&self, rel: String, bytes: Bytes) -> Result<String, SluiceError> {
        let outcome = self.storage.put_if_absent(&rel, bytes)?;
        self.created(rel, outcome)
    }

    fn created(&self, rel: String, outcome: PutOutcome) -> Result<String, SluiceError> {
        if outcome == PutOutcome::AlreadyExists {
            tracing::info!(file = %rel, "already written by this attempt (a retried request)");
        }
        tracing::debug!(file = %rel, "created");
        if let Ok(mut c) = self.created.lock() {
            c.push(rel.clone());
        }
        Ok(rel)
    }

    /// Create `rel` in the background; its outcome is recorded by a later call or by
    /// [`Attempt::wait`] (on the local disk, at once: see [`Uploads::start`]).
    fn create_later(&self, rel: String, bytes: Bytes) -> Result<String, SluiceError> {
        let done = self.uploads.lock().map_err(|_| poisoned())?.start(&self.storage, rel.clone(), bytes)?;
        self.record(done)?;
        Ok(rel)
    }

    /// Record finished background creates; the first failure is returned.
    fn record(&self, done: Vec<Uploaded>) -> Result<(), SluiceError> {
        let mut first_error = None;
        for (rel, outcome) in done {
            match outcome {
                Ok(o) => {
                    self.created(rel, o)?;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), |e| Err(e.into()))
    }

    /// Wait until every file started in the background exists (or failed).
    pub fn wait(&self) -> Result<(), SluiceError> {
        let done = self.uploads.lock().map_err(|_| poisoned())?.wait_all();
        self.record(done)
    }

    /// Data file `index` of `partition`, from its encoded bytes: one conditional put in the
    /// background, or, above [`PART_SIZE`], a multipart upload through an `ObjectWriter`, now.
    pub fn put_data(&self, partition: &str, index: usize, bytes: Bytes) -> Result<String, SluiceError> {
        let rel = layout::data_file(partition, &self.run_id, &self.nonce, index);
        if bytes.len() <= PART_SIZE {
            return self.create_later(rel, bytes);
        }
        let mut w = self.storage.writer(&rel)?;
        w.write_all(&bytes).map_err(|e| SluiceError::other(format!("writing {rel}"), e))?;
        let outcome = w.finish()?;
        self.created(rel, outcome)
    }

    /// The quarantined rows of `partition`.
    pub fn put_quarantine(&self, partition: &str, bytes: Bytes) -> Result<String, SluiceError> {
        self.create(layout::quarantine_file(partition, &self.run_id, &self.nonce), bytes)
    }

    /// The lineage of `partition`'s version.
    pub fn put_manifest(&self, partition: &str, bytes: Bytes) -> Result<String, SluiceError> {
        self.create_later(layout::manifest_file(partition, &self.run_id, &self.nonce), bytes)
    }

    /// Stage a shard's share of the run: once this record exists the shard is done, so the
    /// attempt keeps its files from here on, even if the write failed in an unknown way.
    pub fn put_shard_record(&self, index: usize, count: usize, bytes: Bytes) -> Result<String, SluiceError> {
        self.wait()?;
        self.seal();
        let rel = layout::shard_record_path(&self.run_id, index, count, &self.nonce);
        self.create(rel, bytes)
    }

    /// Publish: see [`Dataset::commit`]. Unless the commit definitely did not land (a
    /// conflict, or another attempt of the run published first) the files stay.
    pub fn commit(&self, dataset: &Dataset, req: CommitRequest<'_>) -> Result<CommitOutcome, SluiceError> {
        self.wait()?;
        self.seal();
        let req = CommitRequest { attempt: Some(&self.nonce), run_id: &self.run_id, ..req };
        let outcome = dataset.commit(req);
        let not_ours = match &outcome {
            Ok(CommitOutcome::AlreadyPublished(_)) => true,
            Ok(CommitOutcome::Committed(_)) | Err(SluiceError::CommitUnknown { .. }) => false,
            Err(_) => true, // a conflict, or a failure reading others' commits: ours was not written
        };
        if not_ours {
            self.unseal();
        }
        outcome
    }

    fn seal(&self) {
        if let Ok(mut s) = self.seal.lock() {
            *s = Seal::Sealed;
        }
    }

    fn unseal(&self) {
        if let Ok(mut s) = self.seal.lock() {
            *s = Seal::Open;
        }
    }

    /// Remove what this attempt created, unless it is sealed. Best effort: what is left is
    /// unreferenced debris that readers never see.
    pub fn discard(&self) {
        // files still being created are recorded (or failed) before anything is removed
        let _ = self.wait();
        if self.seal.lock().map_or(true, |s| *s == Seal::Sealed) {
            tracing::info!(attempt = %self.nonce, "keeping this attempt's files: a publishing write may have landed");
            return;
        }
        let created = self.created.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default();
        for rel in created.iter().rev() {
            if let Err(e) = self.storage.delete(rel) {
                tracing::warn!(file = %rel, error = %e, "could not remove an unpublished file");
            }
        }
        if !created.is_empty() {
            tracing::info!(attempt = %self.nonce, files = created.len(), "removed this attempt's unpublished files");
        }
    }
}

fn poisoned() -> SluiceError {
    SluiceError::Store("the attempt's list of uploads was poisoned by a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{publish, temp_dataset as dataset};

    #[test]
    fn two_attempts_of_one_run_never_share_a_file_and_each_discards_only_its_own() {
        let (ds, dir) = dataset("own");
        let (a, b) = (Attempt::begin(&ds, "run-1"), Attempt::begin(&ds, "run-1"));
        let fa = a.put_data("d=1", 0, Bytes::from_static(b"a")).unwrap();
        let fb = b.put_data("d=1", 0, Bytes::from_static(b"b")).unwrap();
        assert_ne!(fa, fb);
        assert!(fa.starts_with("d=1/part-00000.run-1.") && fa.contains(a.nonce()), "{fa}");
        a.discard();
        b.wait().unwrap(); // its file is created in the background
        assert!(!ds.storage().exists(&fa).unwrap());
        assert_eq!(&ds.storage().get(&fb).unwrap()[..], b"b", "the other attempt's file is untouched");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn after_a_commit_the_files_stay_and_after_losing_it_they_go() {
        let (ds, dir) = dataset("seal");
        let winner = Attempt::begin(&ds, "run-1");
        let f1 = winner.put_data("d=1", 0, Bytes::from_static(b"w")).unwrap();
        assert_eq!(winner.commit(&ds, publish(0, winner.run_id(), "d=1", vec![f1.clone()])).unwrap(), CommitOutcome::Committed(1));
        winner.discard();
        assert!(ds.storage().exists(&f1).unwrap(), "committed files are never discarded");

        // another attempt of the same run, decided on the empty dataset: already published
        let late = Attempt::begin(&ds, "run-1");
        let f2 = late.put_data("d=1", 0, Bytes::from_static(b"l")).unwrap();
        assert_eq!(late.commit(&ds, publish(0, late.run_id(), "d=1", vec![f2.clone()])).unwrap(), CommitOutcome::AlreadyPublished(1));
        late.discard();
        assert!(!ds.storage().exists(&f2).unwrap());

        // another run on the same partition, decided on the empty dataset: a conflict
        let other = Attempt::begin(&ds, "run-2");
        let f3 = other.put_data("d=1", 0, Bytes::from_static(b"o")).unwrap();
        assert!(matches!(other.commit(&ds, publish(0, other.run_id(), "d=1", vec![f3.clone()])), Err(SluiceError::Conflict { .. })));
        other.discard();
        assert!(!ds.storage().exists(&f3).unwrap());
        assert!(ds.storage().exists(&f1).unwrap());
        assert_eq!(ds.log().unwrap()[0].attempt.as_deref(), Some(winner.nonce()));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

