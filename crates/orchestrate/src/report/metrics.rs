//! `--metrics-file`: the outcome of a run in Prometheus text format, for node_exporter's
//! textfile collector. Written atomically (a temporary file in the same folder, then a
//! rename), so the collector never reads half a file.

use std::fmt::Write as _;
use std::path::Path;

use super::summary::RunSummary;
use crate::types::RunStatus;
use crate::error::SluiceError;

/// The facts of one run, whatever its outcome.
pub struct RunMetrics<'a> {
    pub pipeline: &'a str,
    pub status: RunStatus,
    pub exit_code: u8,
    pub summary: Option<&'a RunSummary>,
    pub duration_s: f64,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The metrics as Prometheus text exposition format.
pub fn render(m: &RunMetrics<'_>, now_unix_s: f64) -> String {
    let labels = format!("pipeline=\"{}\"", escape(m.pipeline));
    let rows = m.summary.map(|s| s.rows).unwrap_or_default();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, labels: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{labels}}} {value}");
    };
    gauge("sluice_run_success", "1 if the last run succeeded (published, up to date, staged or nothing to do), else 0.", &labels, f64::from(u8::from(m.exit_code == 0 || m.exit_code == 99)));
    gauge("sluice_run_exit_code", "Exit code of the last run.", &labels, f64::from(m.exit_code));
    gauge("sluice_run_status", "Outcome of the last run (label status).", &format!("{labels},status=\"{}\"", escape(m.status.as_str())), 1.0);
    gauge("sluice_run_duration_seconds", "Wall time of the last run.", &labels, m.duration_s);
    gauge("sluice_run_timestamp_seconds", "When the last run ended (Unix time).", &labels, now_unix_s);
    gauge("sluice_rows_in", "Rows read by the last run.", &labels, rows.rows_in as f64);
    gauge("sluice_rows_out", "Rows written by the last run.", &labels, rows.out as f64);
    gauge("sluice_rows_filtered", "Rows dropped by the pipeline's filter rules in the last run.", &labels, rows.filtered as f64);
    gauge("sluice_rows_quarantined", "Rows quarantined as bad input in the last run.", &labels, rows.quarantined as f64);
    gauge("sluice_partitions", "Partitions in the last run's summary.", &labels, m.summary.map_or(0, |s| s.partitions.len()) as f64);
    if let Some(commit) = m.summary.filter(|s| s.status == RunStatus::Published).and_then(|s| s.commit) {
        gauge("sluice_last_published_commit", "Commit number the last run published.", &labels, commit as f64);
    }
    out
}

/// Write `render(m)` to `path` atomically.
pub fn write(path: &Path, m: &RunMetrics<'_>) -> Result<(), SluiceError> {
    let now = chrono::Utc::now();
    let text = render(m, now.timestamp_millis() as f64 / 1000.0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("metrics.prom");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let io = |e: std::io::Error| SluiceError::other(format!("writing metrics to {}", path.display()), e);
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_renders_status_and_exit_code_without_a_commit() {
        let m = RunMetrics { pipeline: "flight\"delays", status: RunStatus::Failed, exit_code: 3, summary: None, duration_s: 1.5 };
        let text = render(&m, 1_700_000_000.0);
        assert!(text.contains("sluice_run_success{pipeline=\"flight\\\"delays\"} 0\n"), "{text}");
        assert!(text.contains("sluice_run_exit_code{pipeline=\"flight\\\"delays\"} 3\n"));
        assert!(text.contains("status=\"failed\"} 1\n"));
        assert!(!text.contains("sluice_last_published_commit"));
        // every sample has its HELP and TYPE
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, text.lines().filter(|l| l.starts_with("# TYPE")).count());
    }
}
