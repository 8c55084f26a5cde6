//! The dataset's Delta log, through deltalake-core on the dataset's own object_store client:
//! loading the table (from its newest checkpoint) at the latest version or at one, looking
//! up `txn`s and writing checkpoints, on a runtime of its own (below). Reading and creating
//! one version's file (JSON lines of actions, parsed and written by deltalake's types) go
//! through sluice's [`Storage`] instead, as deltalake's default log store would make them.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use deltalake_core::kernel::Action;
use deltalake_core::logstore::{default_logstore, get_actions, LogStoreRef, StorageConfig};
use deltalake_core::{DeltaTable, DeltaTableError};
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;
use sluice_extract::{PutOutcome, Storage};

use super::layout;
use crate::error::SluiceError;

/// The runtime deltalake runs on: its own, not sluice-extract's I/O runtime. The kernel
/// runs its work on blocking threads that wait for reads which, on local disk, need
/// blocking threads too: on the I/O runtime's small blocking pool (8) a few concurrent
/// loads took every thread and waited for each other for ever.
fn runtime() -> Result<&'static tokio::runtime::Runtime, SluiceError> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("sluice-delta").enable_all().build().map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| SluiceError::Store(format!("starting the Delta log's runtime: {e}")))
}

/// A dataset's `_delta_log`.
#[derive(Clone)]
pub(crate) struct DeltaLog {
    store: LogStoreRef,
    storage: Storage,
}

impl DeltaLog {
    pub(crate) fn new(storage: &Storage) -> Result<Self, SluiceError> {
        let url = storage.folder_url()?;
        let root: Arc<dyn ObjectStore> = storage.store().clone();
        let prefixed: Arc<dyn ObjectStore> = Arc::new(PrefixStore::new(root.clone(), storage.full_path("")));
        let store = default_logstore(prefixed, root, &url, &StorageConfig::default());
        Ok(DeltaLog { store, storage: storage.clone() })
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> SluiceError {
        SluiceError::Store(sluice_extract::redact::redact_text(&format!("{}: {what}: {e}", self.storage.uri())))
    }

    fn block<F: Future>(&self, f: F) -> Result<F::Output, SluiceError> {
        Ok(runtime()?.block_on(f))
    }

    /// The actions of version `v`, `None` if it does not exist.
    pub(crate) fn read(&self, v: u64) -> Result<Option<Vec<Action>>, SluiceError> {
        let bytes = self.storage.get_opt(&layout::log_file(v)).map_err(|e| self.err(&format!("reading version {v}"), e))?;
        bytes.map(|b| get_actions(v, &b).map_err(|e| self.err(&format!("version {v}"), e))).transpose()
    }

    /// The bytes of a log file holding `actions`, one JSON line each.
    pub(crate) fn encode(&self, actions: &[Action]) -> Result<Bytes, SluiceError> {
        let lines = actions.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>().map_err(|e| self.err("encoding actions", e))?;
        Ok(Bytes::from(lines.join("\n")))
    }

    /// Create version `v` put-if-absent. `Err`: the outcome is unknown (it may have landed).
    pub(crate) fn create(&self, v: u64, actions: &[Action]) -> Result<PutOutcome, SluiceError> {
        self.create_bytes(v, self.encode(actions)?)
    }

    /// [`DeltaLog::create`] with the log file's bytes ([`DeltaLog::encode`]), which end up
    /// stored as given. A put-if-absent of the commit file, as deltalake's default log
    /// store makes it, on sluice's own I/O runtime: a run that reads its head from the
    /// cache never starts the kernel's.
    pub(crate) fn create_bytes(&self, v: u64, bytes: Bytes) -> Result<PutOutcome, SluiceError> {
        self.storage.put_if_absent(&layout::log_file(v), bytes).map_err(|e| self.err(&format!("writing version {v}"), e))
    }

    /// The table at `version` (the latest when `None`), loaded from the newest checkpoint at
    /// or before it; `None` when there is no log yet.
    pub(crate) fn table(&self, version: Option<u64>) -> Result<Option<DeltaTable>, SluiceError> {
        // no log yet: asked first, so that the engine is not asked to load nothing
        if !self.exists()? {
            return Ok(None);
        }
        let mut t = DeltaTable::new(self.store.clone());
        let loaded = self.block(async {
            match version {
                None => t.load().await,
                Some(v) => t.load_version(v).await,
            }
        })?;
        match loaded {
            Ok(()) => Ok(Some(t)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(self.err("loading the Delta log", e)),
        }
    }

    /// Whether the log exists: a checkpoint pointer, or version 0.
    pub(crate) fn exists(&self) -> Result<bool, SluiceError> {
        Ok(self.storage.exists(layout::LAST_CHECKPOINT)? || self.storage.exists(&layout::log_file(0))?)
    }

    /// The version that `app_id` (a run id) recorded in a `txn` action of `table`.
    pub(crate) fn txn(&self, table: &DeltaTable, app_id: &str) -> Result<Option<u64>, SluiceError> {
        let state = table.snapshot().map_err(|e| self.err("the loaded table", e))?;
        let v = self.block(state.transaction_version(self.store.as_ref(), app_id))?.map_err(|e| self.err("reading txn actions", e))?;
        Ok(v.map(|v| v as u64))
    }

    /// Write the Parquet checkpoint of version `v` and point `_last_checkpoint` at it.
    pub(crate) fn checkpoint(&self, v: u64) -> Result<(), SluiceError> {
        let Some(t) = self.table(Some(v))? else { return Ok(()) };
        self.block(deltalake_core::checkpoints::create_checkpoint(&t, None))?.map_err(|e| self.err(&format!("checkpoint {v}"), e))
    }
}
