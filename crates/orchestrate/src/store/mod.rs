//! The dataset store: immutable versioned Parquet files in a Delta Lake table, published by
//! put-if-absent commits to its `_delta_log` (sluice's commit N is Delta version N), which
//! every engine with a Delta reader reads without sluice. This module is the only code that
//! knows the on-disk layout: [`layout`] names every path.
//!
//! The layout under the dataset root (local path or object store, always through
//! `Arc<dyn ObjectStore>`) is [`layout`]'s alone.
//!
//! A run id names one logical run; each process working for it is an *attempt* with a
//! random nonce, and every object an attempt writes is created put-if-absent under a path
//! that holds that nonce ([`Attempt`]). So two attempts never write the same object, and
//! nothing is ever overwritten.
//!
//! The commit protocol, as a state machine:
//! 1. *write*: an attempt writes its files under its own folders. Readers never look there
//!    unless a commit points to it, so a crash here leaves only unreferenced debris.
//! 2. *read state*: the current state is Delta's replay of the log (its `add` and `remove`
//!    actions, from the newest checkpoint: [`Head`]), or the state its last writer cached
//!    for that exact log file (`head_cache`). Readers find versions only this way, never by
//!    listing data folders.
//! 3. *commit*: create commit N+1 with put-if-absent, built on the state the caller read
//!    (`base`). If N+1 already exists another writer won: read it. If it is a publish by the
//!    same run id, the run is already published ([`CommitOutcome::AlreadyPublished`]); if it
//!    touched one of our partitions it is a [`Conflict`] (exit 4, retrying may help);
//!    otherwise retry as N+2, and so on. A failed commit write whose outcome is unknown (an
//!    I/O error or timeout on the write itself) is [`CommitUnknown`]: the attempt keeps its
//!    files, since the commit may have landed.
//!
//! A multi-partition run is one commit, so readers see all of it or none. Rollback is a new
//! commit that re-points partitions to earlier versions (their files must still exist):
//! reversible, and recorded in the history. `snapshot(Some(n))` reads the state as of
//! commit `n` (time travel).
//!
//! [`Conflict`]: crate::error::SluiceError::Conflict
//! [`CommitUnknown`]: crate::error::SluiceError::CommitUnknown
//!
//! The rooms: [`layout`] (paths), [`table`] (metaData: schema, pins, properties) <
//! [`commit`] (records and folds) < `actions` (a commit as Delta actions and back),
//! `delta` (the log through deltalake-core), [`stats`] (file statistics) < [`head`] (the
//! current state) < [`dataset`] (reading the log), `head_cache` (the state after a commit) <
//! `committer` (the commit loop) <
//! [`attempt`] (a run's writes); `legacy` (an older sluice's log, for `sluice convert`);
//! [`ids`] validates run ids (they name folders).

mod actions;
pub mod attempt;
mod by_model;
pub mod commit;
mod committer;
pub mod dataset;
mod delta;
pub mod head;
mod head_cache;
pub mod ids;
pub mod layout;
mod legacy;
pub mod stats;
pub mod table;
#[cfg(test)]
pub(crate) mod testing;

pub use attempt::Attempt;
pub use commit::{
    collected_by, fold, published_by, touched_since, versions_of, Change, Commit, CommitOutcome, CommitRequest, GcRecord, Operation,
    PartitionVersion, Snapshot,
};
pub use head::Head;
pub use table::{Pin, PinChange, TableMeta};
pub use dataset::Dataset;
pub use ids::{new_run_id, validate_run_id};
pub use layout::attempt_dir;

#[cfg(test)]
mod tests {
    use super::testing::temp_dataset;
    use super::*;
    use crate::error::SluiceError;

    fn publish<'a>(base: u64, run: &'a str, p: &str) -> CommitRequest<'a> {
        super::testing::publish(base, run, p, vec![])
    }

    #[test]
    fn racing_writers_on_one_partition_one_wins_the_other_conflicts() {
        let (ds, dir) = temp_dataset("race");
        assert_eq!(ds.commit(publish(0, "a", "d=1")).unwrap(), CommitOutcome::Committed(1));
        // a second writer decided on base 0 too and touches the same partition
        let e = ds.commit(publish(0, "b", "d=1")).unwrap_err();
        assert!(matches!(e, SluiceError::Conflict { .. }), "{e}");
        // a writer on another partition retries on top
        assert_eq!(ds.commit(publish(0, "c", "d=2")).unwrap(), CommitOutcome::Committed(2));
        // another attempt of run "a", decided on base 0: the run is already published
        assert_eq!(ds.commit(publish(0, "a", "d=1")).unwrap(), CommitOutcome::AlreadyPublished(1));
        let snap = ds.snapshot(None).unwrap();
        assert_eq!(snap.commit, 2);
        assert_eq!(snap.partitions["d=1"].version, "a");
        assert_eq!(snap.partitions["d=1"].published_in, 1);
        assert_eq!(ds.snapshot(Some(1)).unwrap().partitions.len(), 1);
        let log = ds.log().unwrap();
        assert_eq!(published_by(&log, "c").map(|c| c.commit), Some(2));
        assert_eq!(touched_since(&log, 0, "a", &["d=2"]).map(|c| c.commit), Some(2));
        assert!(touched_since(&log, 0, "a", &["d=1"]).is_none(), "its own commit is not a change by another run");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn threads_racing_for_the_same_commit_number_yield_exactly_one_winner() {
        let (ds, dir) = temp_dataset("threads");
        let ds = std::sync::Arc::new(ds);
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let ds = ds.clone();
                std::thread::spawn(move || ds.commit(publish(0, &format!("r{i}"), "d=1")))
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, SluiceError::Conflict { .. })));
        assert_eq!(ds.log().unwrap().len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn partition_and_run_id_validation_refuses_path_escapes() {
        assert!(validate_run_id(&new_run_id()).is_ok());
        assert!(validate_run_id("../etc").is_err());
    }
}
