//! Running a pipeline: `sluice run` and `sluice publish`.
//!
//! - [`job`]: one `sluice run`: plan, decide, execute, publish one commit.
//! - [`plan`]: partitions, input objects, fingerprints and the state decisions are made on.
//! - [`execute`]: extract -> transform -> infer -> write, on the runtime; with
//!   [`transform_stage`], [`features`] (columns -> model inputs), [`parquet_out`],
//!   [`models`] (model URIs -> local folders), [`dimensions`] (the dimension tables, loading
//!   on their own thread, as the model does: [`pending`]) and [`dimcache`] (them cached
//!   between runs).
//! - [`audit`]: `[[checks]]` on the staged versions before the commit (write-audit-publish).
//! - [`publish`]: row accounting, manifests ([`manifest`]), the commit.
//! - [`shards`]: `--shard I/N` stages a share of a run; `sluice publish` commits them all.
//! - [`hooks`]: test hooks at named points of a run (hold, panic).

pub mod audit;
mod dimcache;
mod dimensions;
pub mod execute;
pub mod features;
mod hooks;
pub mod job;
pub mod manifest;
pub mod models;
mod parquet_out;
mod pending;
pub(crate) mod plan;
pub mod publish;
pub mod shards;
mod transform_stage;

pub use job::{run, scored_by};
pub use plan::open_dataset;
pub use shards::publish;
