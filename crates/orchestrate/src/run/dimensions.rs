//! A run's dimension tables, read at the versions the plan's refs saw (through
//! [`super::dimcache`]) on a thread of their own. They do not depend on the dataset's state,
//! and only the transform steps need them: a daily run reads the Delta log, plans, starts
//! its stages and reads and types its input while they load, and the transform stage waits
//! for them ([`PendingDimensions::wait`]) just before its steps. Their error is the run's
//! only if it executes, and it is the run's error as it is, not a stage's. A run that did
//! not need them waits for the load before it ends.

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use sluice_extract::{ObjectRef, Storage};
use sluice_transform::{DimensionSpec, Dimensions, TransformError};

use super::{dimcache, hooks};
use crate::error::SluiceError;
use crate::runtime::{panic_message, Cancel};

/// Dimension tables that may still be loading; cheap to clone (workers share one load).
/// Whoever runs the stages asks [`PendingDimensions::take_error`] before their outcome.
#[derive(Clone)]
pub(crate) struct PendingDimensions(Arc<Pending>);

struct Pending {
    loading: Mutex<Option<JoinHandle<Result<Dimensions, SluiceError>>>>,
    /// The tables, or `Err` when they failed (the error is in `error` until taken).
    done: OnceLock<Result<Dimensions, ()>>,
    error: Mutex<Option<SluiceError>>,
}

impl PendingDimensions {
    /// Start loading `specs` at `refs` (the hold point `dimensions` comes first).
    pub(crate) fn spawn(specs: Vec<DimensionSpec>, refs: Vec<ObjectRef>, cancel: Cancel) -> Self {
        let load = move || {
            hooks::checkpoint("dimensions", &cancel)?;
            load(&specs, &refs)
        };
        match std::thread::Builder::new().name("sluice-dims".into()).spawn(load) {
            Ok(handle) => PendingDimensions(Arc::new(Pending { loading: Mutex::new(Some(handle)), done: OnceLock::new(), error: Mutex::new(None) })),
            Err(e) => Self::ready(Err(SluiceError::other("starting the dimension tables' thread", e))),
        }
    }

    /// Tables already loaded (or failed).
    pub(crate) fn ready(loaded: Result<Dimensions, SluiceError>) -> Self {
        let pending = Pending { loading: Mutex::new(None), done: OnceLock::new(), error: Mutex::new(None) };
        pending.settle(loaded);
        PendingDimensions(Arc::new(pending))
    }

    /// The tables, once loaded. On failure, an error that says only that: the load's own
    /// is the run's ([`PendingDimensions::take_error`]).
    pub(crate) fn wait(&self) -> Result<&Dimensions, SluiceError> {
        let done = self.0.done.get_or_init(|| {
            let handle = self.0.loading.lock().unwrap_or_else(|p| p.into_inner()).take();
            let loaded = match handle {
                Some(h) => h.join().unwrap_or_else(|panic| Err(SluiceError::Panic(panic_message(panic.as_ref())))),
                None => Err(SluiceError::other("loading the dimension tables", "no load was started")),
            };
            self.0.store(loaded)
        });
        done.as_ref().map_err(|()| SluiceError::other("the dimension tables", "they did not load (the run says why)"))
    }

    /// The load's error, once it ended, if it failed (the first caller takes it).
    pub(crate) fn take_error(&self) -> Option<SluiceError> {
        self.wait().err()?;
        self.0.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl Pending {
    fn settle(&self, loaded: Result<Dimensions, SluiceError>) {
        let _ = self.done.set(self.store(loaded));
    }

    fn store(&self, loaded: Result<Dimensions, SluiceError>) -> Result<Dimensions, ()> {
        loaded.map_err(|e| *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e))
    }
}

impl Drop for Pending {
    /// A run that never needed the tables (up to date, a dry run) still waits for their load
    /// before it ends: it may be writing a cache entry.
    fn drop(&mut self) {
        if let Some(handle) = self.loading.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
    }
}

/// Read the dimension tables at the versions `refs` saw (the plan's), and load them.
fn load(specs: &[DimensionSpec], refs: &[ObjectRef]) -> Result<Dimensions, SluiceError> {
    let mut failed = None;
    let derived = |spec: &DimensionSpec, derive: &mut dyn FnMut() -> Result<_, TransformError>| dimcache::derived(spec, specs, refs, derive);
    let dims = Dimensions::build_cached(specs, |spec| {
        let DimensionSpec::Csv { file, .. } = spec else { return Err(not_listed(spec.name())) };
        let r = refs.iter().find(|r| &r.uri == file).ok_or_else(|| not_listed(file))?;
        let read = || {
            let bytes = Storage::open(&r.uri, None)?.get_version("", r)?;
            Ok(spec.read(&bytes)?)
        };
        dimcache::table(spec, r, read).map_err(|e| {
            let reason = e.to_string();
            failed = Some(e);
            TransformError::BadRow { file: file.clone(), line: 0, reason }
        })
    }, derived);
    match (dims, failed) {
        (Ok(d), _) => Ok(d),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(e.into()),
    }
}

fn not_listed(file: &str) -> TransformError {
    TransformError::BadRow { file: file.to_string(), line: 0, reason: "not among the dimension objects the plan listed".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loads_own_error_is_kept_for_the_run_and_waiting_says_only_that_it_failed() {
        let failed = PendingDimensions::ready(Err(SluiceError::Usage("weather.csv: no such dimension".into())));
        let worker = failed.clone();
        assert!(worker.wait().is_err());
        assert!(matches!(failed.take_error(), Some(SluiceError::Usage(m)) if m.contains("weather.csv")), "the run gets the load's error");
        assert!(failed.take_error().is_none(), "once");
        let loaded = PendingDimensions::ready(Ok(Dimensions::default()));
        assert!(loaded.wait().is_ok() && loaded.take_error().is_none());
    }

    #[test]
    fn a_load_on_its_thread_is_waited_for_and_its_failure_kept() {
        let dims = PendingDimensions::spawn(Vec::new(), Vec::new(), Cancel::default());
        assert_eq!(dims.wait().unwrap().tables.len(), 0);
        let spec = DimensionSpec::Sql { name: "means".into(), sql: "SELECT origin FROM weather".into() };
        let dims = PendingDimensions::spawn(vec![spec], Vec::new(), Cancel::default());
        assert!(dims.wait().is_err(), "a dimension over a table that was never loaded");
        assert!(dims.take_error().is_some());
    }
}
