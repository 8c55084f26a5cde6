//! sluice-orchestrate: the stage runtime, the versioned dataset store and the `sluice` CLI.
//!
//! Rooms, bottom up; each imports only rooms below it (`tests/arrows.rs` checks it):
//!
//! ```text
//! bin/sluice   the CLI: one function per command
//!   ops        versions, show, rollback, pin, gc (dataset history)
//!   run        sluice run / publish: plan, execute, audit, publish, shards
//!   report     the summary line, metrics
//!   pipeline   pipeline files, validated as a whole
//!   store      the dataset store: layout, commits, checkpoints, attempts
//!   error      SluiceError and the exit-code contract
//!   types      data several rooms share: checks, staged partitions, run options
//!   runtime    typed stages on threads, bounded channels, cancel, the run report
//! ```
//!
//! - [`runtime`]: typed stages on threads joined by bounded crossbeam channels; first error
//!   cancels all; ordered output; per-stage metrics.
//! - [`types`]: check specs and results, staged partitions, run options and shards.
//! - [`error`]: [`SluiceError`] and the exit-code contract.
//! - [`store`]: the dataset store, the only code that knows its layout: attempts that create
//!   files put-if-absent and remove only their own, put-if-absent commits, snapshots.
//! - [`pipeline`]: pipeline files, validated as a whole ([`Pipeline::load`]).
//! - [`report`]: the JSON summary line and `--metrics-file`.
//! - [`run`]: `sluice run` (plan, decide, execute, publish one commit) and `sluice publish`.
//! - [`ops`]: `versions`, `show` (time travel), `rollback`, pins and `gc`.

pub mod error;
pub mod ops;
pub mod pipeline;
pub mod report;
pub mod run;
pub mod runtime;
pub mod store;
pub mod types;

pub use error::{exit, SluiceError};
pub use pipeline::Pipeline;
