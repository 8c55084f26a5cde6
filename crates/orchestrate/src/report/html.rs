//! `sluice report DATASET --html FILE`: one self-contained HTML page (inline CSS and SVG,
//! nothing fetched) that people look at: per partition, its version history (run, model,
//! time, rows, checks), the current version's row accounting and quarantine counts by rule,
//! and for each numeric output column the current version's distribution against the
//! previous version's, as an SVG histogram with the PSI, so a drifted model shows at a glance.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Cursor;

use polars::prelude::*;
use serde_json::Value;

use crate::error::SluiceError;
use crate::store::{self, Commit, Dataset, PartitionVersion};

const BINS: usize = 10;
/// A PSI above this reads as drift (the usual rule of thumb; the pipeline's drift check
/// sets its own).
const DRIFT: f64 = 0.25;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page for `partitions` of `ds` (all of its current ones when empty).
pub fn render(ds: &Dataset, partitions: &[String]) -> Result<String, SluiceError> {
    let log = ds.log()?;
    let snap = store::fold(&log, None);
    let wanted: Vec<String> = if partitions.is_empty() { snap.partitions.keys().cloned().collect() } else { partitions.to_vec() };
    let mut body = String::new();
    for p in &wanted {
        body.push_str(&partition_section(ds, &log, p, snap.partitions.get(p))?);
    }
    Ok(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>sluice report: {title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>\
         <p class=\"meta\">commit {commit} · {n} partition(s) · made by sluice {v}</p>{body}</body></html>\n",
        title = esc(ds.uri()),
        commit = snap.commit,
        n = wanted.len(),
        v = env!("CARGO_PKG_VERSION"),
    ))
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}\
h1{font-size:1.3em;word-break:break-all}h2{font-size:1.1em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;font-size:12px}\
.meta{color:#666}.grid{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;border:1px solid #eee;padding:4px}\
figcaption{font-size:12px}.drift{color:#b00;font-weight:bold}.current{background:#eef5ff}";

/// One partition: history, accounting, distributions.
fn partition_section(ds: &Dataset, log: &[Commit], p: &str, current: Option<&PartitionVersion>) -> Result<String, SluiceError> {
    let mut s = format!("<section class=\"partition\"><h2>{}</h2>", esc(p));
    s.push_str(&history_table(ds, log, p, current)?);
    let Some(cur) = current else {
        s.push_str("<p>No current version.</p></section>");
        return Ok(s);
    };
    s.push_str(&accounting(ds, cur)?);
    let versions = store::versions_of(log, p);
    let previous = versions.iter().take_while(|v| v.version != cur.version).last();
    s.push_str(&distributions(ds, p, cur, previous)?);
    s.push_str("</section>");
    Ok(s)
}

fn history_table(ds: &Dataset, log: &[Commit], p: &str, current: Option<&PartitionVersion>) -> Result<String, SluiceError> {
    let mut t = String::from("<table class=\"versions\"><tr><th>commit</th><th>time</th><th>operation</th><th>version (run)</th><th>model</th><th>rows</th><th>checks</th></tr>");
    for c in log.iter().filter(|c| c.partitions.contains_key(p)) {
        let v = c.partitions[p].as_ref();
        let model = v.map(|v| ds.model_of(v)).transpose()?.flatten().map(|m| m.chars().take(12).collect::<String>()).unwrap_or_default();
        let class = if v.is_some_and(|v| current.is_some_and(|cur| cur.version == v.version)) { " class=\"current\"" } else { "" };
        let _ = write!(
            t,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.commit,
            c.timestamp.format("%Y-%m-%d %H:%M:%S"),
            c.operation().as_str(),
            esc(v.map_or("(removed)", |v| v.version.as_str())),
            esc(&model),
            v.map(|v| v.rows.to_string()).unwrap_or_default(),
            esc(&v.and_then(|v| v.checks.as_ref()).map(|c| c.describe()).unwrap_or_default()),
        );
    }
    t.push_str("</table>");
    Ok(t)
}

/// The current version's row accounting (from its manifest) and quarantine counts by rule.
fn accounting(ds: &Dataset, v: &PartitionVersion) -> Result<String, SluiceError> {
    let manifest: Value = match ds.storage().get_opt(&v.manifest)? {
        Some(b) => serde_json::from_slice(&b).map_err(|e| SluiceError::other(ds.uri_of(&v.manifest), e))?,
        None => Value::Null,
    };
    let r = &manifest["rows"];
    let mut s = format!(
        "<table class=\"rows\"><tr><th>rows in</th><th>out</th><th>filtered</th><th>quarantined</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        r["in"], r["out"], r["filtered"], r["quarantined"]
    );
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    for (name, n) in r["filtered_by"].as_object().into_iter().flatten() {
        by_rule.insert(format!("filtered: {name}"), n.as_u64().unwrap_or(0));
    }
    for f in manifest["quarantine_files"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let rules = read(ds, &[f.to_string()])?.column("rule").ok().and_then(|c| c.str().ok().map(|s| s.iter().flatten().map(str::to_string).collect::<Vec<_>>()));
        for rule in rules.unwrap_or_default() {
            *by_rule.entry(format!("quarantined: {rule}")).or_default() += 1;
        }
    }
    if !by_rule.is_empty() {
        s.push_str("<table class=\"rules\"><tr><th>rows set aside by</th><th>rows</th></tr>");
        for (rule, n) in by_rule {
            let _ = write!(s, "<tr><td>{}</td><td>{n}</td></tr>", esc(&rule));
        }
        s.push_str("</table>");
    }
    Ok(s)
}

/// The rows of `files` (dataset-relative) as one frame.
fn read(ds: &Dataset, files: &[String]) -> Result<DataFrame, SluiceError> {
    let mut out: Option<DataFrame> = None;
    for f in files {
        let bytes = ds.storage().get(f)?;
        let df = ParquetReader::new(Cursor::new(bytes)).finish().map_err(|e| SluiceError::other(ds.uri_of(f), e))?;
        out = Some(match out {
            Some(acc) => acc.vstack(&df).map_err(|e| SluiceError::other(ds.uri_of(f), e))?,
            None => df,
        });
    }
    Ok(out.unwrap_or_default())
}

/// One histogram per numeric column: the current version against the previous one.
fn distributions(ds: &Dataset, p: &str, cur: &PartitionVersion, previous: Option<&PartitionVersion>) -> Result<String, SluiceError> {
    let now = read(ds, &cur.files)?;
    let before = previous.map(|v| read(ds, &v.files)).transpose()?;
    let key = p.split_once('=').map_or("", |(k, _)| k);
    let mut s = format!(
        "<p class=\"meta\">distributions: current version (blue){}</p><div class=\"grid\">",
        previous.map(|v| format!(" against {} (grey)", esc(&v.version))).unwrap_or_default()
    );
    for c in now.columns().iter().filter(|c| c.dtype().is_primitive_numeric() && c.name().as_str() != key) {
        let values = |df: &DataFrame| -> Vec<f64> {
            df.column(c.name().as_str()).ok().and_then(|c| c.cast(&DataType::Float64).ok()).map(|c| c.f64().map(|ca| ca.iter().flatten().filter(|x| x.is_finite()).collect()).unwrap_or_default()).unwrap_or_default()
        };
        let (a, b) = (values(&now), before.as_ref().map(values).unwrap_or_default());
        s.push_str(&histogram(c.name().as_str(), &a, &b));
    }
    s.push_str("</div>");
    Ok(s)
}

/// Bin counts of `values` over `[lo, hi]`, as fractions.
fn shares(values: &[f64], lo: f64, hi: f64) -> [f64; BINS] {
    let mut counts = [0.0; BINS];
    let width = (hi - lo).max(f64::EPSILON);
    for x in values {
        counts[(((x - lo) / width) * BINS as f64).clamp(0.0, BINS as f64 - 1.0) as usize] += 1.0;
    }
    let n = values.len().max(1) as f64;
    counts.map(|c| c / n)
}

/// The population stability index of `now` against `before` (fractions per bin).
fn psi(now: &[f64; BINS], before: &[f64; BINS]) -> f64 {
    now.iter().zip(before).map(|(a, b)| (a.max(1e-4), b.max(1e-4))).map(|(a, b)| (a - b) * (a / b).ln()).sum()
}

/// An inline SVG histogram of `now` (and `before`, when there is one) with the PSI.
fn histogram(name: &str, now: &[f64], before: &[f64]) -> String {
    let all = now.iter().chain(before);
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let (a, b) = (shares(now, lo, hi), shares(before, lo, hi));
    let top = a.iter().chain(&b).cloned().fold(0.0, f64::max).max(f64::EPSILON);
    let (w, h, bw) = (240.0, 70.0, 240.0 / BINS as f64);
    let mut bars = String::new();
    for i in 0..BINS {
        let x = i as f64 * bw;
        if !before.is_empty() {
            let _ = write!(bars, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#bbb\"/>", h - b[i] / top * h, bw / 2.0, b[i] / top * h);
        }
        let _ = write!(bars, "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#3a78c2\"/>", x + bw / 2.0, h - a[i] / top * h, bw / 2.0 - 1.0, a[i] / top * h);
    }
    let caption = match before.is_empty() {
        true => format!("{} <span class=\"meta\">(no previous version)</span>", esc(name)),
        false => {
            let d = psi(&a, &b);
            let class = if d > DRIFT { "drift" } else { "meta" };
            format!("{} <span class=\"{class}\">PSI {d:.3}</span>", esc(name))
        }
    };
    format!(
        "<figure data-column=\"{}\"><svg class=\"histogram\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">{bars}</svg>\
         <figcaption>{caption} <span class=\"meta\">{lo:.3} … {hi:.3}</span></figcaption></figure>",
        esc(name),
        esc(name)
    )
}
