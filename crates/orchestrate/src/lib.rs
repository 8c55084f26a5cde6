//! sluice-orchestrate: the stage runtime, the versioned dataset store and the `sluice` CLI.
//!
//! - [`pipeline`]: pipeline files, validated as a whole ([`Pipeline::load`]).
//! - [`runtime`]: typed stages on threads joined by bounded crossbeam channels; first error
//!   cancels all; ordered output; per-stage metrics.
//! - [`job`]: `sluice run`: extract -> transform -> infer -> write, then one commit; or,
//!   with `--shard`, stage a share of the input for `sluice publish`.
//! - [`metrics`]: `--metrics-file`, Prometheus text for node_exporter's textfile collector.
//! - [`store`]: the dataset store: immutable files, put-if-absent commits, snapshots.
//! - [`history`]: `versions`, `show` (time travel) and `rollback`.
//! - [`features`]: Polars columns -> model inputs.
//! - [`error`]: [`SluiceError`] and the exit-code contract.

pub mod error;
pub mod features;
pub mod history;
pub mod job;
pub mod metrics;
pub mod pipeline;
pub mod runtime;
pub mod store;

pub use error::{exit, SluiceError};
pub use pipeline::Pipeline;
