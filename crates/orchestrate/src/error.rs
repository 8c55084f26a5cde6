//! sluice's error type and its mapping to exit codes (a contract with cron and Airflow).

use sluice_extract::ExtractError;
use sluice_infer::InferError;
use sluice_transform::TransformError;
use thiserror::Error;

use crate::types::{CheckResult, InvalidPartition, RunStatus};
use crate::runtime::{RuntimeError, StageError};

/// Exit codes: 0 success (or already up to date), 99 nothing to do, 2 usage, pipeline-file or
/// model error, 3 bad input beyond the allowed threshold, 4 a concurrent change (a commit
/// conflict, or an input that changed while the run read it), 1 anything else.
pub mod exit {
    pub const OK: u8 = 0;
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const BAD_INPUT: u8 = 3;
    pub const CONFLICT: u8 = 4;
    pub const NOTHING_TO_DO: u8 = 99;
}

#[derive(Debug, Error)]
pub enum SluiceError {
    /// Every problem found in a pipeline file, one per line.
    #[error("{path}: {} error(s):\n{}", errors.len(), errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Pipeline { path: String, errors: Vec<String> },
    #[error("{0}")]
    Usage(String),
    #[error("no input for partition {partition}: nothing at {uri}")]
    NoInput { partition: String, uri: String },
    #[error("bad input: {0}")]
    BadInput(String),
    #[error("partition {partition}: {quarantined} of {rows} rows quarantined ({fraction:.2}%), above the pipeline's limit of {limit:.2}%; the first: {first}")]
    TooManyBadRows { partition: String, rows: u64, quarantined: u64, fraction: f64, limit: f64, first: String },
    /// `error` checks failed on the staged version: nothing was published; the files stay
    /// for review (see `sluice publish --override-checks`).
    #[error("checks failed on run {run_id}: {}; nothing was published. The staged files are kept for review at {}; to publish them anyway: sluice publish {pipeline} --run {run_id} --override-checks \"<reason>\"",
            failed.iter().map(|(p, r)| format!("{p} {} = {} (expected {})", r.name, r.value.map_or("none".into(), |v| format!("{v:.4}")), r.expected)).collect::<Vec<_>>().join("; "),
            staged_at.join(", "))]
    ChecksFailed { run_id: String, pipeline: String, failed: Vec<(String, CheckResult)>, staged_at: Vec<String> },
    #[error("commit conflict on {dataset}: {reason}")]
    Conflict { dataset: String, reason: String },
    /// The commit write itself failed: it may or may not have landed.
    #[error("{dataset}: writing commit {commit} failed and it may or may not have landed ({reason}); this attempt's files are kept; re-run with the same run id to find out")]
    CommitUnknown { dataset: String, commit: u64, reason: String },
    /// An input, dimension or model changed between planning and reading.
    #[error("{uri} changed while the run was reading it ({detail}); re-run to process the new version")]
    Changed { uri: String, detail: String },
    /// Another engine changed the table's files in a way sluice does not fold.
    #[error("{dataset}: version {version} of the Delta log ({operation}) was written by another engine and adds or removes data files; sluice does not fold other writers' file changes and stops here rather than lose or resurrect data. Undo it with that engine (e.g. RESTORE to version {before}) or publish to a new dataset")]
    ForeignCommit { dataset: String, version: u64, before: u64, operation: String },
    #[error("{0}")]
    Store(String),
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Transform(#[from] TransformError),
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error("{0}")]
    Stage(Box<StageError<SluiceError>>),
    #[error("panicked (a bug in sluice): {0}")]
    Panic(String),
    #[error("injected failure in stage '{0}' (SLUICE_FAIL_STAGE)")]
    Injected(String),
    #[error("cancelled (signal received); nothing was published")]
    Cancelled,
    #[error("{context}: {message}")]
    Other { context: String, message: String },
}

/// A transform error's exit code; a dimension's is its cause's.
fn transform_exit_code(e: &TransformError) -> u8 {
    match e {
        TransformError::MissingColumn { .. }
        | TransformError::EmptyFile { .. }
        | TransformError::BadRow { .. }
        | TransformError::BadValue { .. }
        | TransformError::Parse { .. }
        | TransformError::StepData(_)
        | TransformError::WrongContent { .. } => exit::BAD_INPUT,
        // the pipeline's SQL or checks do not fit the data's columns
        TransformError::Step { .. } | TransformError::Check { .. } | TransformError::RowCountChanged { .. } => exit::USAGE,
        TransformError::Dimension { source, .. } => transform_exit_code(source),
        _ => exit::OTHER,
    }
}

impl SluiceError {
    pub fn other(context: impl Into<String>, message: impl std::fmt::Display) -> Self {
        SluiceError::Other { context: context.into(), message: message.to_string() }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            SluiceError::Pipeline { .. } | SluiceError::Usage(_) | SluiceError::ForeignCommit { .. } => exit::USAGE,
            SluiceError::NoInput { .. } => exit::NOTHING_TO_DO,
            SluiceError::BadInput(_) | SluiceError::TooManyBadRows { .. } | SluiceError::ChecksFailed { .. } => exit::BAD_INPUT,
            SluiceError::Transform(e) => transform_exit_code(e),
            SluiceError::Conflict { .. } | SluiceError::Changed { .. } => exit::CONFLICT,
            SluiceError::Extract(ExtractError::Changed { .. }) => exit::CONFLICT,
            SluiceError::Extract(
                ExtractError::InvalidLocation { .. }
                | ExtractError::UnsupportedScheme { .. }
                | ExtractError::ReadOnly { .. }
                | ExtractError::Refused { .. }
                | ExtractError::MissingTemplateValue { .. },
            ) => exit::USAGE,
            SluiceError::Infer(InferError::MissingFile { .. } | InferError::BadConfig { .. } | InferError::BadModel { .. }) => {
                exit::USAGE
            }
            SluiceError::Stage(s) => s.error.exit_code(),
            _ => exit::OTHER,
        }
    }

    /// Fields the summary line carries besides the message: the failed checks.
    pub fn details(&self) -> Option<serde_json::Value> {
        match self {
            SluiceError::ChecksFailed { run_id, failed, staged_at, .. } => Some(serde_json::json!({
                "run_id": run_id,
                "checks_failed": failed.iter().map(|(p, r)| serde_json::json!({"partition": p, "check": r})).collect::<Vec<_>>(),
                "staged_at": staged_at,
            })),
            SluiceError::Stage(s) => s.error.details(),
            _ => None,
        }
    }

    /// `failed`, or `skipped` for "nothing to do".
    pub fn status(&self) -> RunStatus {
        if self.exit_code() == exit::NOTHING_TO_DO {
            RunStatus::Skipped
        } else {
            RunStatus::Failed
        }
    }
}

impl RuntimeError for SluiceError {
    fn panicked(message: String) -> Self {
        SluiceError::Panic(message)
    }
    fn injected(stage: &str) -> Self {
        SluiceError::Injected(stage.to_string())
    }
    fn cancelled() -> Self {
        SluiceError::Cancelled
    }
}

impl From<InvalidPartition> for SluiceError {
    fn from(e: InvalidPartition) -> Self {
        SluiceError::Usage(e.to_string())
    }
}

impl From<StageError<SluiceError>> for SluiceError {
    fn from(e: StageError<SluiceError>) -> Self {
        match e.error {
            SluiceError::Cancelled => SluiceError::Cancelled,
            _ => SluiceError::Stage(Box::new(e)),
        }
    }
}
