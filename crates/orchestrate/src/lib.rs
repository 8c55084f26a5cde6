//! sluice-orchestrate: the stage runtime, the versioned dataset store and the `sluice` CLI.
//!
//! - [`pipeline`]: pipeline files, validated as a whole ([`Pipeline::load`]).
//! - [`runtime`]: typed stages on threads joined by bounded crossbeam channels; first error
//!   cancels all; ordered output; per-stage metrics.
//! - [`job`]: `sluice run`: plan, decide, execute, publish one commit.
//!   - [`plan`]: partitions, input objects, fingerprints and the state decisions are made on.
//!   - [`execute`]: extract -> transform -> infer -> write, on the runtime.
//!   - [`publish`]: row accounting, manifests, the commit.
//!   - [`audit`]: `[[checks]]` on the staged versions before the commit (write-audit-publish).
//!   - [`shards`]: `--shard I/N` stages a share of a run; `sluice publish` commits them all.
//! - [`summary`]: the JSON summary line.
//! - [`hooks`]: test hooks at named points of a run (hold, panic).
//! - [`metrics`]: `--metrics-file`, Prometheus text for node_exporter's textfile collector.
//! - [`store`]: the dataset store, the only code that knows its layout: attempts that create
//!   files put-if-absent and remove only their own, put-if-absent commits, snapshots.
//! - [`history`]: `versions`, `show` (time travel), `rollback` and pins.
//! - [`gc`]: `sluice gc`: retention, and the protocol that makes it safe during runs.
//! - [`features`]: Polars columns -> model inputs.
//! - [`models`]: model URIs -> local folders (a cache keyed by the objects' ETags).
//! - [`error`]: [`SluiceError`] and the exit-code contract.

pub mod audit;
mod dimcache;
pub mod error;
pub mod execute;
pub mod features;
pub mod gc;
pub mod history;
mod hooks;
pub mod job;
pub mod metrics;
pub mod models;
mod parquet_out;
pub mod pipeline;
pub mod plan;
pub mod publish;
pub mod runtime;
pub mod shards;
pub mod store;
pub mod summary;
mod transform_stage;

pub use error::{exit, SluiceError};
pub use pipeline::Pipeline;
