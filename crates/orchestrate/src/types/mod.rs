//! Data types that several layers share, at the bottom of the crate: they import nothing of
//! it above the runtime, so the store, the pipeline file, the run and the reports can all
//! use them without importing each other.
//!
//! - [`alerts`]: `[[alerts]]`: when, where and in which shape to tell people.
//! - [`checks`]: a check's spec, its result, and a version's tally.
//! - [`staged`]: what a run staged for a partition, and the input objects of its lineage.
//! - [`partition`]: `key=value`, validated once.
//! - [`run`]: the options a run was asked with, shards, and how a run ended.

pub mod alerts;
pub mod checks;
pub mod partition;
pub mod run;
pub mod staged;

pub use alerts::{AlertFormat, AlertOn, AlertSpec};
pub use checks::{CheckKind, CheckResult, CheckSpec, CheckStatus, CheckTally, Severity};
pub use partition::{InvalidPartition, Partition};
pub use run::{RunOptions, RunStatus, Shard};
pub use staged::{FileStats, InputRecord, StagedPartition};
