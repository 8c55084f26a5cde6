//! Pipeline files: parsed, then validated as a whole before anything runs.
//!
//! A pipeline file is TOML with these sections (see `pipelines/flight_delays.toml`):
//! `name`, `[source]` (+ `[source.columns]`, `[source.contracts]`), `[partition]`,
//! `[[dimensions]]`, `[[transform]]`, `[[checks]]`, `[model]`, `[output]`, `[runtime]`,
//! `[storage."<url>"]`. Every table denies unknown fields.
//! [`Pipeline::load`] reports every error it finds at once ([`SluiceError::Pipeline`]):
//! each section and each array element is checked on its own, then the cross-checks run
//! (types, templates, SQL filters, files and the model's inputs).
//!
//! Relative paths in the file are relative to the file's own folder.
//!
//! `[params]` holds named strings that `{name}` placeholders in `source.uri`,
//! `dimensions[].uri`, `model.path` and `output.uri` are replaced with, e.g. a landing
//! zone: `landing = "../data/sample/landing"`. `sluice run --param landing=DIR` overrides
//! one; a relative override is taken from the current directory.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sluice_transform::{CsvSpec, DimensionSpec, Step};

pub mod config;
mod doc;
pub mod model;
mod sections;
mod validate;

pub use config::{Codec, OnBadRows, OutputConfig, PartitionConfig, RuntimeConfig, SourceConfig, SourceFormat};
pub use model::{Model, ModelKind};

use crate::types::{AlertSpec, CheckSpec};
use crate::error::SluiceError;
use doc::Doc;
use sections::Sections;

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub path: PathBuf,
    /// sha256 of the file's bytes.
    pub sha256: String,
    pub name: String,
    pub source: SourceConfig,
    pub csv: CsvSpec,
    pub partition: PartitionConfig,
    pub dimensions: Vec<DimensionSpec>,
    pub steps: Vec<Step>,
    pub model: Model,
    pub output: OutputConfig,
    pub runtime: RuntimeConfig,
    /// `[[checks]]`, run on each staged version before it is published.
    pub checks: Vec<CheckSpec>,
    /// `[[alerts]]`: who is told what after a run.
    pub alerts: Vec<AlertSpec>,
}

/// Absolute form of a param override given on the command line (relative to the current
/// directory), so that it does not get resolved against the pipeline file's folder.
pub fn absolutize_param(value: &str) -> String {
    let p = Path::new(value);
    if value.contains("://") || p.is_absolute() {
        return value.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(p).display().to_string(),
        Err(_) => value.to_string(),
    }
}

impl Pipeline {
    /// Read and validate; every problem is reported in one [`SluiceError::Pipeline`].
    pub fn load(path: &Path) -> Result<Self, SluiceError> {
        Self::load_with(path, &[], true)
    }

    /// [`Pipeline::load`] with `[params]` overrides; `check_model_dir: false` skips the
    /// model's files (for the trainer, which makes the model).
    pub fn load_with(path: &Path, overrides: &[(String, String)], check_model_dir: bool) -> Result<Self, SluiceError> {
        let shown = path.display().to_string();
        let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let fail = |errors: Vec<String>| SluiceError::Pipeline { path: shown.clone(), errors };
        let bytes = std::fs::read(path).map_err(|e| fail(vec![format!("cannot read: {e}")]))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let text = String::from_utf8(bytes).map_err(|_| fail(vec!["not UTF-8".into()]))?;
        let doc = Doc::parse(&text).map_err(|e| fail(vec![e]))?;
        let mut errors = Vec::new();
        let sections = Sections::read(&doc, overrides, &mut errors);
        register_storage_options(&sections, &mut errors);
        match resolve(sections, path, sha256, check_model_dir, &mut errors) {
            Some(p) if errors.is_empty() => Ok(p),
            _ => Err(fail(errors)),
        }
    }

    /// The folder relative paths in the file are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }
}

/// `[storage."s3://bucket"]`: options for that store's clients (they override the
/// environment), registered for the process before any URI of the file is parsed.
fn register_storage_options(sections: &Sections, errors: &mut Vec<String>) {
    for (prefix, options) in &sections.storage {
        if !prefix.contains("://") {
            errors.push(format!("[storage.\"{prefix}\"]: keys are store URLs such as \"s3://bucket\""));
            continue;
        }
        sluice_extract::set_store_options(prefix, options.clone().into_iter().collect());
    }
}

/// Validate each section and make the pipeline of the file at `path` (absolute) with these
/// bytes' `sha256`; `None` when a required section is missing.
fn resolve(s: Sections, path: &Path, sha256: String, check_model_dir: bool, errors: &mut Vec<String>) -> Option<Pipeline> {
    let base = &path.parent().map(Path::to_path_buf).unwrap_or_default();
    let csv = s.source.as_ref().map(|src| validate::source(src, s.partition.as_ref(), base, errors));
    if let Some(p) = &s.partition {
        validate::partition(p, errors);
    }
    let dimensions = validate::dimensions(&s.dimensions, base, errors);
    let steps = validate::steps(s.steps, errors);
    let checks = validate::checks(s.checks, errors);
    let model = s.model.as_ref().map(|m| validate::model(m, base, check_model_dir, errors));
    if let Some(o) = &s.output {
        validate::output(o, base, errors);
    }
    validate::runtime(&s.runtime, errors);
    validate::alerts(&s.alerts, errors);
    Some(Pipeline {
        path: path.to_path_buf(),
        sha256,
        name: s.name,
        source: s.source?,
        csv: csv?,
        partition: s.partition?,
        dimensions,
        steps,
        model: model?,
        output: s.output?,
        runtime: s.runtime,
        checks,
        alerts: s.alerts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_of_a_compressed_object_is_the_extension_under_the_compression() {
        assert_eq!(SourceFormat::of_extension("s3://b/day.CSV.gz"), Some(SourceFormat::Csv));
        assert_eq!(SourceFormat::of_extension("day.jsonl.zst"), Some(SourceFormat::Ndjson));
        assert_eq!(SourceFormat::of_extension("day.parquet"), Some(SourceFormat::Parquet));
        assert_eq!(SourceFormat::of_extension("day.gz"), None);
    }
}
