//! What stdout gets: the one-line JSON summary (and its copy in `--summary-file`), or lines
//! for a reader that may go away (`sluice versions | head`).

use std::io::Write;
use std::path::Path;

use serde_json::json;
use sluice_orchestrate::report::summary::RunSummary;
use sluice_orchestrate::SluiceError;

/// The summary line of a command's outcome: the summary, or the error with its exit code,
/// details (failed checks) and the signal that cancelled it. `None` for a command that
/// printed its own lines, or failed without writing summaries.
pub fn summary_line(result: Result<Option<RunSummary>, SluiceError>, code: u8, writes_summary: bool, signal: Option<&str>) -> Option<serde_json::Value> {
    match result {
        Ok(Some(summary)) => Some(serde_json::to_value(&summary).unwrap_or_else(|e| json!({"status": summary.status, "error": e.to_string()}))),
        Ok(None) => None,
        Err(e) => {
            tracing::error!("{e}");
            let mut line = json!({"status": e.status(), "error": e.to_string(), "exit_code": code});
            if let (Some(details), Some(obj)) = (e.details(), line.as_object_mut()) {
                obj.extend(details.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v.clone())));
            }
            if let (SluiceError::Cancelled, Some(signal)) = (&e, signal) {
                line["signal"] = json!(signal);
            }
            writes_summary.then_some(line)
        }
    }
}

/// Write the summary line to stdout and, if asked, to a file. The outcome is the exit
/// code: a line nobody reads (a closed stdout) changes nothing.
pub fn emit(line: &serde_json::Value, summary_file: Option<&Path>) {
    if let Some(path) = summary_file {
        if let Err(e) = write_summary_file(path, line) {
            tracing::error!("writing the summary to {}: {e}", path.display());
        }
    }
    if let Err(e) = write_line(line) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::error!("writing the summary line: {e}");
        }
    }
}

/// One line on stdout; the caller decides what a closed pipe means.
pub fn write_line(line: &dyn std::fmt::Display) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// The summary line in a file: written beside it, then renamed over it, so a reader sees
/// the whole line or the previous file.
fn write_summary_file(path: &Path, line: &serde_json::Value) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, format!("{line}\n"))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Print lines for a reader; a reader that went away (`| head`) ends the output quietly.
pub fn print_lines(lines: impl IntoIterator<Item = String>) -> Result<Option<RunSummary>, SluiceError> {
    for line in lines {
        match write_line(&line) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(None),
            Err(e) => return Err(SluiceError::other("writing to stdout", e)),
        }
    }
    Ok(None)
}
