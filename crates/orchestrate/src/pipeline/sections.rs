//! Reading every section of a pipeline file on its own (one bad section or array element
//! does not hide the errors of the others), with `[params]` filled into the URIs.

use std::collections::BTreeMap;

use super::config::{CheckConfig, DimensionConfig, ModelConfig, OutputConfig, PartitionConfig, RuntimeConfig, SourceConfig, TypedStep};
use super::doc::Doc;
use crate::types::AlertSpec;

const SECTIONS: [&str; 12] =
    ["name", "params", "source", "partition", "dimensions", "transform", "checks", "model", "output", "runtime", "storage", "alerts"];

/// The sections as written, params filled in; `None` where a required one is missing or
/// does not parse.
pub(super) struct Sections {
    pub name: String,
    pub source: Option<SourceConfig>,
    pub partition: Option<PartitionConfig>,
    pub model: Option<ModelConfig>,
    pub output: Option<OutputConfig>,
    pub runtime: RuntimeConfig,
    /// `[storage."s3://bucket"]`: options for that store's client.
    pub storage: BTreeMap<String, BTreeMap<String, String>>,
    pub dimensions: Vec<DimensionConfig>,
    pub steps: Vec<TypedStep>,
    pub checks: Vec<CheckConfig>,
    pub alerts: Vec<AlertSpec>,
}

impl Sections {
    pub fn read(doc: &Doc<'_>, overrides: &[(String, String)], errors: &mut Vec<String>) -> Self {
        for (key, value) in doc.table.get_ref().iter() {
            if !SECTIONS.contains(&key.get_ref().as_ref()) {
                let expected = SECTIONS.join(", ");
                errors.push(doc.at(value.span(), &format!("unknown top-level key '{}' (expected one of {expected})", key.get_ref())));
            }
        }
        let name = match doc.section::<String>("name", errors, true) {
            Some(s) if s.is_empty() => {
                errors.push("'name' must be a non-empty string".into());
                String::new()
            }
            s => s.unwrap_or_default(),
        };
        let params = params(doc, overrides, errors);
        let fill = |s: &str| substitute(s, &params);
        let mut source: Option<SourceConfig> = doc.section("source", errors, true);
        source.iter_mut().for_each(|s| s.uri = fill(&s.uri));
        let partition = doc.section("partition", errors, true);
        let mut model: Option<ModelConfig> = doc.section("model", errors, true);
        model.iter_mut().for_each(|m| m.path = fill(&m.path));
        let mut output: Option<OutputConfig> = doc.section("output", errors, true);
        output.iter_mut().for_each(|o| o.uri = fill(&o.uri));
        let runtime = doc.section("runtime", errors, false).unwrap_or_default();
        let storage = doc.section("storage", errors, false).unwrap_or_default();
        let mut dimensions: Vec<DimensionConfig> = doc.array("dimensions", errors);
        dimensions.iter_mut().for_each(|d| d.uri = d.uri.as_deref().map(fill));
        let steps = doc.array("transform", errors);
        let checks = doc.array("checks", errors);
        let alerts = doc.array("alerts", errors);
        Sections { name, source, partition, model, output, runtime, storage, dimensions, steps, checks, alerts }
    }
}

/// `[params]`, with the command line's overrides (each must name a param the file has).
fn params(doc: &Doc<'_>, overrides: &[(String, String)], errors: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = doc.section("params", errors, false).unwrap_or_default();
    for (k, v) in overrides {
        if !params.contains_key(k) {
            errors.push(format!("--param {k}: the pipeline has no param '{k}' (params: {:?})", params.keys().collect::<Vec<_>>()));
        }
        params.insert(k.clone(), v.clone());
    }
    params
}

/// Replace `{name}` for every param; other placeholders stay.
fn substitute(s: &str, params: &BTreeMap<String, String>) -> String {
    params.iter().fold(s.to_string(), |acc, (k, v)| acc.replace(&format!("{{{k}}}"), v))
}
