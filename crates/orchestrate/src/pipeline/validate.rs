//! Checking each section of a pipeline file on its own (one function each), then against
//! the others: column types, contracts, templates, dimension and model files, check bounds.
//! Every problem is pushed to `errors`, so the file's errors are reported at once.

use std::collections::BTreeMap;
use std::path::Path;

use sluice_extract::{Location, StoreKind};
use sluice_transform::{ColumnType, Contract, Contracts, CsvSpec, DateParts, DimensionSpec, Rule, Step};

use super::config::{
    CheckConfig, DimensionConfig, ModelConfig, ModelKindName, OutputConfig, PartitionConfig, RuntimeConfig, SourceConfig,
    SourceFormat, TypedStep,
};
use super::model::{Model, ModelKind, Precision};
use crate::types::{AlertOn, AlertSpec, CheckKind, CheckSpec};

/// `[source]`: its limits, separator, declared columns and their contracts, and its URI
/// template (only the partition key's placeholder is filled).
pub(super) fn source(s: &SourceConfig, partition: Option<&PartitionConfig>, base: &Path, errors: &mut Vec<String>) -> CsvSpec {
    if s.objects_per_item == 0 {
        errors.push("source.objects_per_item: must be at least 1".into());
    }
    if !(0.0..=1.0).contains(&s.max_bad_fraction) {
        errors.push(format!("source.max_bad_fraction: {} is not between 0 and 1", s.max_bad_fraction));
    }
    let sep = separator(&s.separator, "source.separator", errors);
    let columns = column_types(&s.columns, "source.columns", errors);
    if s.columns.is_empty() && s.format == SourceFormat::Csv {
        errors.push("source.columns: declare at least one column".into());
    }
    if !s.columns.is_empty() && s.format == SourceFormat::Email {
        errors.push("source.columns: an email source has a fixed schema; declare no columns".into());
    }
    if let Some(p) = partition {
        for v in sluice_extract::source::template_vars(&s.uri).iter().filter(|v| *v != &p.key) {
            errors.push(format!("source.uri: unknown placeholder '{{{v}}}' (only '{{{}}}' is filled)", p.key));
        }
    }
    if let Err(e) = Location::parse(&s.uri.replace(['{', '}'], "_"), Some(base)) {
        errors.push(format!("source.uri: {e}"));
    }
    let contracts = contracts(s, &columns, errors);
    CsvSpec { columns, null_values: s.null_values.clone(), separator: sep, contracts }
}

/// `[partition]`: a key that is a plain name.
pub(super) fn partition(p: &PartitionConfig, errors: &mut Vec<String>) {
    if !valid_name(&p.key) {
        errors.push(format!("partition.key: '{}' must be letters, digits and '_'", p.key));
    }
}

/// `[[dimensions]]`: each a CSV object or SQL over the ones before it, under a unique name.
pub(super) fn dimensions(dims: &[DimensionConfig], base: &Path, errors: &mut Vec<String>) -> Vec<DimensionSpec> {
    let mut out = Vec::new();
    let mut tables: Vec<String> = vec!["input".into()];
    for (i, d) in dims.iter().enumerate() {
        let at = format!("dimensions[{i}] '{}'", d.name);
        if !valid_name(&d.name) {
            errors.push(format!("{at}: name must be letters, digits and '_'"));
        }
        if tables.contains(&d.name) {
            errors.push(format!("{at}: the name is already used"));
        }
        tables.push(d.name.clone());
        match (&d.uri, &d.sql) {
            (Some(uri), None) => out.extend(csv_dimension(d, uri, &at, base, errors)),
            (None, Some(sql)) => {
                if !d.columns.is_empty() || !d.unique_on.is_empty() {
                    errors.push(format!("{at}: 'columns' and 'unique_on' apply to a 'uri' dimension, not to 'sql'"));
                }
                out.push(DimensionSpec::Sql { name: d.name.clone(), sql: sql.clone() });
            }
            _ => errors.push(format!("{at}: give exactly one of 'uri' or 'sql'")),
        }
    }
    out
}

/// A dimension read from a CSV object: its columns, key and file.
fn csv_dimension(d: &DimensionConfig, uri: &str, at: &str, base: &Path, errors: &mut Vec<String>) -> Option<DimensionSpec> {
    let columns = column_types(&d.columns, &format!("{at}.columns"), errors);
    for k in d.unique_on.iter().filter(|k| !d.columns.contains_key(*k)) {
        errors.push(format!("{at}.unique_on: '{k}' is not a declared column"));
    }
    let loc = Location::parse(uri, Some(base)).map_err(|e| errors.push(format!("{at}.uri: {e}"))).ok()?;
    if loc.kind == StoreKind::Local && !Path::new(&loc.uri).is_file() {
        errors.push(format!("{at}.uri: no file at {}", loc.uri));
    }
    Some(DimensionSpec::Csv {
        name: d.name.clone(),
        file: loc.uri,
        spec: CsvSpec { columns, null_values: d.null_values.clone(), separator: b',', contracts: Contracts::default() },
        unique_on: d.unique_on.clone(),
    })
}

/// `[[transform]]`: each step checked on its own (its SQL parses, its kind is clear).
pub(super) fn steps(steps: Vec<TypedStep>, errors: &mut Vec<String>) -> Vec<Step> {
    let mut out = Vec::new();
    for (i, TypedStep(step)) in steps.into_iter().enumerate() {
        if let Err(e) = step.check() {
            errors.push(format!("transform[{i}] '{}': {e}", step.name()));
        }
        out.push(step);
    }
    out
}

/// `[[alerts]]`: a webhook named by an environment variable (the URL is a secret, never in
/// the file), at least one event, a threshold where `quarantine` needs one.
pub(super) fn alerts(specs: &[AlertSpec], errors: &mut Vec<String>) {
    for (i, a) in specs.iter().enumerate() {
        if a.webhook_env().is_none() {
            errors.push(format!("alerts[{i}]: webhook must be \"env:NAME\", the environment variable holding the URL (a secret, never written in the file)"));
        }
        if a.on.is_empty() {
            errors.push(format!("alerts[{i}]: 'on' names no event (failure, held, warn, quarantine, published)"));
        }
        let threshold = a.quarantined_above.filter(|f| (0.0..=1.0).contains(f));
        if a.on.contains(&AlertOn::Quarantine) && threshold.is_none() {
            errors.push(format!("alerts[{i}]: 'quarantine' needs quarantined_above, a fraction from 0 to 1"));
        }
    }
}

/// `[[checks]]`: each a spec, under a unique name.
pub(super) fn checks(configs: Vec<CheckConfig>, errors: &mut Vec<String>) -> Vec<CheckSpec> {
    let mut out: Vec<CheckSpec> = Vec::new();
    for (i, c) in configs.into_iter().enumerate() {
        let at = format!("checks[{i}] '{}'", c.name);
        if out.iter().any(|k| k.name == c.name) {
            errors.push(format!("{at}: the name is already used"));
        }
        out.extend(check(c, &at, errors));
    }
    out
}

/// `[model]`: the fields its kind needs (and none of the other kind's), and, for a local
/// folder when `check_files`, its files and declared inputs.
pub(super) fn model(m: &ModelConfig, base: &Path, check_files: bool, errors: &mut Vec<String>) -> Model {
    let remote = m.path.contains("://");
    let uri = if remote { m.path.clone() } else { base.join(&m.path).display().to_string() };
    // a model in object storage is checked when it is downloaded
    let check_files = check_files && !remote;
    let dir = Path::new(&uri);
    let kind = match m.kind {
        ModelKindName::TabularMlp => {
            if m.features.is_empty() {
                errors.push("model.features: a tabular_mlp model needs its feature columns".into());
            }
            if check_files {
                check_model(dir, &m.features, errors);
            }
            if m.precision.as_deref().is_some_and(|p| Precision::parse(p) != Some(Precision::F32)) {
                errors.push("model.precision: a tabular_mlp model runs in f32 only (bf16 is for sentence_embedding)".into());
            }
            ModelKind::TabularMlp { features: m.features.clone(), batch_rows: m.batch_rows }
        }
        ModelKindName::SentenceEmbedding => {
            if m.text_column.is_none() {
                errors.push("model.text_column: a sentence_embedding model needs the text column".into());
            }
            if !m.features.is_empty() {
                errors.push("model.features: a sentence_embedding model reads text_column, not features".into());
            }
            for f in sluice_infer::embed::EMBEDDING_FILES.iter().filter(|f| check_files && !dir.join(f).is_file()) {
                errors.push(format!("model.path: {} is missing {f} (for all-MiniLM-L6-v2: python3 data/fetch_minilm.py)", dir.display()));
            }
            let precision = match m.precision.as_deref().map(|p| (p, Precision::parse(p))) {
                None => Precision::F32,
                Some((_, Some(p))) => p,
                Some((p, None)) => {
                    errors.push(format!("model.precision: '{p}' is not one of f32, bf16"));
                    Precision::F32
                }
            };
            ModelKind::SentenceEmbedding { text_column: m.text_column.clone().unwrap_or_default(), max_tokens: m.max_tokens, precision }
        }
    };
    if m.batch_rows == 0 || m.max_tokens == 0 {
        errors.push("model.batch_rows and model.max_tokens must be at least 1".into());
    }
    Model { uri, output: m.output.clone(), kind }
}

/// `[output]`: a dataset location, and files of at least one row.
pub(super) fn output(o: &OutputConfig, base: &Path, errors: &mut Vec<String>) {
    if let Err(e) = Location::parse(&o.uri, Some(base)) {
        errors.push(format!("output.uri: {e}"));
    }
    if o.max_rows_per_file == 0 {
        errors.push("output.max_rows_per_file: must be at least 1".into());
    }
}

/// `[runtime]`: budgets and worker counts of at least one.
pub(super) fn runtime(r: &RuntimeConfig, errors: &mut Vec<String>) {
    if r.channel_mib == 0 || r.transform_workers == 0 || r.infer_workers == 0 || r.write_workers == 0 {
        errors.push("runtime: channel_mib and worker counts must be at least 1".into());
    }
}

/// One `[[checks]]` entry as a spec; its errors are pushed, prefixed with `at`.
fn check(c: CheckConfig, at: &str, errors: &mut Vec<String>) -> Option<CheckSpec> {
    let CheckConfig { name, severity, sql, row_count_change, null_fraction, drift, bins, min, max } = c;
    let mut err = |m: &str| errors.push(format!("{at}: {m}"));
    let kind = match (sql, row_count_change, null_fraction, drift) {
        (Some(sql), None, None, None) => CheckKind::Sql(sql),
        (None, Some(_), None, None) => CheckKind::RowCountChange,
        (None, None, Some(c), None) => CheckKind::NullFraction(c),
        (None, None, None, Some(column)) => CheckKind::Drift { column, bins: bins.unwrap_or(10) },
        _ => {
            err("give exactly one of 'sql', 'row_count_change', 'null_fraction' or 'drift'");
            return None;
        }
    };
    match &kind {
        CheckKind::Sql(_) | CheckKind::NullFraction(_) if min.is_none() && max.is_none() => err("give 'min', 'max' or both"),
        CheckKind::RowCountChange if row_count_change.is_some_and(|c| c < 0.0) || min.is_some() || max.is_some() => {
            err("row_count_change is the largest allowed relative change (e.g. 0.5 for ±50%); no 'min'/'max'")
        }
        CheckKind::Drift { bins, .. } if max.is_none() || min.is_some() || !(2..=100).contains(bins) => {
            err("drift needs 'max' (the largest allowed PSI, e.g. 0.25), no 'min', and 'bins' between 2 and 100")
        }
        _ => {}
    }
    if bins.is_some() && !matches!(kind, CheckKind::Drift { .. }) {
        err("'bins' applies to a drift check");
    }
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            err(&format!("min {a} is above max {b}"));
        }
    }
    if !valid_name(&name) {
        err("name must be letters, digits and '_'");
    }
    // the allowed change is the bound the measured change is held to
    let max = if kind == CheckKind::RowCountChange { row_count_change } else { max };
    Some(CheckSpec { name, severity, kind, min, max })
}

fn column_types(cols: &BTreeMap<String, String>, at: &str, errors: &mut Vec<String>) -> Vec<(String, ColumnType)> {
    cols.iter()
        .filter_map(|(name, ty)| match ty.parse::<ColumnType>() {
            Ok(t) => Some((name.clone(), t)),
            Err(e) => {
                errors.push(format!("{at}.{name}: {e}"));
                None
            }
        })
        .collect()
}

/// The source's `[source.contracts]` and `valid_dates`, checked against its declared columns.
fn contracts(s: &SourceConfig, columns: &[(String, ColumnType)], errors: &mut Vec<String>) -> Contracts {
    let type_of = |c: &str| columns.iter().find(|(n, _)| n == c).map(|(_, t)| *t);
    let numeric = |t: ColumnType| matches!(t, ColumnType::I32 | ColumnType::I64 | ColumnType::F32 | ColumnType::F64);
    let mut out = Contracts::default();
    for (column, c) in &s.contracts {
        let at = format!("source.contracts.{column}");
        let Some(ty) = type_of(column) else {
            errors.push(format!("{at}: '{column}' is not a declared column (source.columns)"));
            continue;
        };
        let mut rule = |r: Rule| out.rules.push(Contract { column: column.clone(), rule: r });
        if c.not_null {
            rule(Rule::NotNull);
        }
        if (c.min.is_some() || c.max.is_some()) && !numeric(ty) {
            errors.push(format!("{at}: min/max apply to numeric columns; '{column}' is {ty}"));
        }
        if let (Some(a), Some(b)) = (c.min, c.max) {
            if a > b {
                errors.push(format!("{at}: min {a} is above max {b}"));
            }
        }
        if let Some(m) = c.min {
            rule(Rule::Min(m));
        }
        if let Some(m) = c.max {
            rule(Rule::Max(m));
        }
        if let Some(values) = &c.allowed {
            let text: Vec<String> = values
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            if text.is_empty() {
                errors.push(format!("{at}.allowed: list at least one value"));
            }
            rule(Rule::Allowed(text));
        }
        if let Some(r) = &c.regex {
            match regex::Regex::new(r) {
                Ok(_) => rule(Rule::Regex(r.clone())),
                Err(e) => errors.push(format!("{at}.regex: {e}")),
            }
        }
        if !c.not_null && c.min.is_none() && c.max.is_none() && c.allowed.is_none() && c.regex.is_none() {
            errors.push(format!("{at}: no rule (not_null, min, max, allowed, regex)"));
        }
    }
    for (i, parts) in s.valid_dates.iter().enumerate() {
        let at = format!("source.valid_dates[{i}]");
        match parts.as_slice() {
            [y, m, d] => {
                for c in [y, m, d] {
                    match type_of(c) {
                        Some(t) if numeric(t) || t == ColumnType::Str => {}
                        Some(t) => errors.push(format!("{at}: '{c}' is {t}; date parts are integers or text")),
                        None => errors.push(format!("{at}: '{c}' is not a declared column (source.columns)")),
                    }
                }
                out.dates.push(DateParts { year: y.clone(), month: m.clone(), day: d.clone() });
            }
            _ => errors.push(format!("{at}: give the year, month and day columns, e.g. [\"year\", \"month\", \"day\"]")),
        }
    }
    out
}

fn separator(s: &str, at: &str, errors: &mut Vec<String>) -> u8 {
    match s.as_bytes() {
        [b] => *b,
        _ => {
            errors.push(format!("{at}: must be a single byte, got '{s}'"));
            b','
        }
    }
}

pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_model(dir: &Path, features: &[String], errors: &mut Vec<String>) {
    for f in sluice_infer::MODEL_FILES {
        if !dir.join(f).is_file() {
            errors.push(format!("model.path: {} is missing {f}", dir.display()));
        }
    }
    let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else { return };
    match serde_json::from_str::<sluice_infer::MlpConfig>(&text) {
        Ok(cfg) => {
            let declared: Vec<&str> = cfg.inputs.iter().map(|i| i.name.as_str()).collect();
            let listed: Vec<&str> = features.iter().map(String::as_str).collect();
            if declared != listed {
                errors.push(format!(
                    "model.features {listed:?} do not match the model's inputs {declared:?} ({})",
                    dir.join("config.json").display()
                ));
            }
        }
        Err(e) => errors.push(format!("model.path: {}: {e}", dir.join("config.json").display())),
    }
}
