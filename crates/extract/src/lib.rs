//! sluice-extract: sources -> raw objects. Lambda-sized: no Polars, Arrow, Parquet or candle.
//!
//! - [`location`]: parse a URI or local path into a store plus a prefix ([`Location`]).
//! - [`storage`]: [`Storage`], a small blocking facade over `Arc<dyn ObjectStore>` that the
//!   rest of sluice (and the dataset store) uses, so local disk and object stores are one code path.
//! - [`source`]: expand a source template (`.../flights/{date}.csv`) for one partition, list
//!   its objects with size and ETag ([`ObjectRef`]) and fetch them with a sha256 ([`RawObject`]).
//! - [`copy`]: copy one partition's objects to a landing location (the `sluice-extract` binary).
//!
//! Local paths and `file://` URIs are supported today; other schemes return
//! [`ExtractError::UnsupportedScheme`] until their object_store features are enabled.

pub mod copy;
pub mod error;
pub mod location;
pub mod source;
pub mod storage;

pub use error::ExtractError;
pub use location::Location;
pub use source::{expand_template, ObjectRef, RawObject, SourceSpec};
pub use storage::{PutOutcome, Storage};
