//! A value a run makes on a thread of its own while it goes on: the dimension tables
//! ([`super::dimensions`]) and the model ([`super::execute`]). Only some stages need them,
//! and not first: a daily run reads the Delta log, plans, starts its stages and reads and
//! types its input while they load, and the stage that needs one waits for it
//! ([`Pending::wait`]). The load's error is the run's only if the run executes, and it is
//! the run's error as it is, not a stage's ([`Pending::take_error`]). A run that did not
//! need the value still waits for the load before it ends (it may be writing a cache).

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crate::error::SluiceError;
use crate::runtime::panic_message;

/// A value that may still be loading; cheap to clone (workers share one load). Whoever runs
/// the stages asks [`Pending::take_error`] before their outcome.
pub(crate) struct Pending<T>(Arc<Inner<T>>);

impl<T> Clone for Pending<T> {
    fn clone(&self) -> Self {
        Pending(self.0.clone())
    }
}

struct Inner<T> {
    /// What is loading, for errors ("the dimension tables").
    what: &'static str,
    loading: Mutex<Option<JoinHandle<Result<T, SluiceError>>>>,
    /// The value, or `Err` when it failed (the error is in `error` until taken).
    done: OnceLock<Result<T, ()>>,
    error: Mutex<Option<SluiceError>>,
}

impl<T: Send + 'static> Pending<T> {
    /// Start `load` on a thread named `thread`.
    pub(crate) fn spawn(thread: &str, what: &'static str, load: impl FnOnce() -> Result<T, SluiceError> + Send + 'static) -> Self {
        match std::thread::Builder::new().name(thread.into()).spawn(load) {
            Ok(handle) => Pending(Arc::new(Inner { what, loading: Mutex::new(Some(handle)), done: OnceLock::new(), error: Mutex::new(None) })),
            Err(e) => Self::ready(what, Err(SluiceError::other(format!("starting the thread for {what}"), e))),
        }
    }

    /// A value already loaded (or failed).
    pub(crate) fn ready(what: &'static str, loaded: Result<T, SluiceError>) -> Self {
        let inner = Inner { what, loading: Mutex::new(None), done: OnceLock::new(), error: Mutex::new(None) };
        let _ = inner.done.set(inner.store(loaded));
        Pending(Arc::new(inner))
    }

    /// The value, once loaded. On failure, an error that says only that: the load's own is
    /// the run's ([`Pending::take_error`]).
    pub(crate) fn wait(&self) -> Result<&T, SluiceError> {
        let done = self.0.done.get_or_init(|| {
            let handle = self.0.loading.lock().unwrap_or_else(|p| p.into_inner()).take();
            let loaded = match handle {
                Some(h) => h.join().unwrap_or_else(|panic| Err(SluiceError::Panic(panic_message(panic.as_ref())))),
                None => Err(SluiceError::other(format!("loading {}", self.0.what), "no load was started")),
            };
            self.0.store(loaded)
        });
        done.as_ref().map_err(|()| SluiceError::other(self.0.what, "they did not load (the run says why)"))
    }

    /// The load's error, once it ended, if it failed (the first caller takes it).
    pub(crate) fn take_error(&self) -> Option<SluiceError> {
        self.wait().err()?;
        self.0.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl<T> Inner<T> {
    fn store(&self, loaded: Result<T, SluiceError>) -> Result<T, ()> {
        loaded.map_err(|e| *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e))
    }
}

impl<T> Drop for Inner<T> {
    /// A run that never needed the value (up to date, a dry run) still waits for its load
    /// before it ends: it may be writing a cache entry.
    fn drop(&mut self) {
        if let Some(handle) = self.loading.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loads_own_error_is_kept_for_the_run_and_waiting_says_only_that_it_failed() {
        let failed: Pending<u32> = Pending::ready("the tables", Err(SluiceError::Usage("weather.csv: no such dimension".into())));
        let worker = failed.clone();
        assert!(worker.wait().is_err());
        assert!(matches!(failed.take_error(), Some(SluiceError::Usage(m)) if m.contains("weather.csv")), "the run gets the load's error");
        assert!(failed.take_error().is_none(), "once");
        let loaded = Pending::ready("the tables", Ok(7u32));
        assert!(loaded.wait().is_ok_and(|v| *v == 7) && loaded.take_error().is_none());
    }

    #[test]
    fn a_load_on_its_thread_is_waited_for_and_its_failure_or_panic_kept() {
        let loaded = Pending::spawn("sluice-test", "a value", || Ok(String::from("x")));
        assert_eq!(loaded.wait().unwrap(), "x");
        let failed: Pending<u32> = Pending::spawn("sluice-test", "a value", || Err(SluiceError::Usage("broken".into())));
        assert!(failed.wait().is_err());
        assert!(matches!(failed.take_error(), Some(SluiceError::Usage(_))));
        let panicked: Pending<u32> = Pending::spawn("sluice-test", "a value", || panic!("in the load"));
        assert!(matches!(panicked.take_error(), Some(SluiceError::Panic(m)) if m.contains("in the load")));
    }
}
