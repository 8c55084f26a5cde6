//! sluice-extract: sources -> raw objects. Lambda-sized: no Polars, Arrow, Parquet or candle.
//!
//! - [`location`]: parse a URI or local path into a store plus a prefix ([`Location`]).
//! - [`storage`]: [`Storage`], a small blocking facade over `Arc<dyn ObjectStore>` that the
//!   rest of sluice (and the dataset store) uses, so local disk and object stores are one code path.
//! - [`source`]: expand a source template (`.../flights/{date}.csv`) for one partition, list
//!   its objects with size and ETag ([`ObjectRef`]) and fetch them with a sha256 ([`RawObject`]).
//! - [`copy`]: copy one partition's objects to a landing location (the `sluice-extract` binary).
//! - [`policy`]: which locations a copy may read and write (any for the CLI; object stores,
//!   optionally under listed prefixes, for the Lambda function).
//!
//! - [`lambda`] (feature `lambda`): the AWS Lambda function's events and responses.
//! - [`config`]: retries, timeouts and the one I/O runtime of the process.
//! - [`redact`]: URIs and error texts without passwords or query strings.
//! - [`par`]: blocking work over a few plain threads, results in order ([`par::map_ordered`]).
//!
//! Local paths, `file://`, `s3://`, `gs://`, `az://`/`abfss://` and `http(s)://` (read-only)
//! are one code path: object_store's clients behind [`Storage`].

pub mod config;
pub mod copy;
pub mod error;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod location;
pub mod par;
pub mod policy;
pub mod redact;
pub mod source;
pub mod storage;
pub mod upload;

pub use error::ExtractError;
pub use location::{set_store_options, Location, StoreKind};
pub use policy::{Policy, Role};
pub use source::{expand_template, ObjectRef, RawObject, SourceSpec};
pub use storage::{PutOutcome, Storage};
