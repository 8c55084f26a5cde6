use polars::error::PolarsError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TransformError {
    /// A declared column is not in the file's header.
    #[error("{file}: missing column '{column}' (header has: {header})")]
    MissingColumn { file: String, column: String, header: String },
    #[error("{file}: empty file (no header line)")]
    EmptyFile { file: String },
    #[error("{file}: line {line}: {reason}")]
    BadRow { file: String, line: u64, reason: String },
    #[error("{file}: line {line}, column '{column}': {reason}: '{value}'")]
    BadValue { file: String, line: u64, column: String, value: String, reason: String },
    #[error("{file}: cannot parse {format}: {source}")]
    Parse {
        file: String,
        format: &'static str,
        #[source]
        source: PolarsError,
    },
    /// A step that fails whatever the rows (it fails on no rows too): the pipeline's SQL
    /// does not fit the input's columns.
    #[error("step '{step}' cannot run on this input's columns: {}", crate::steps::engine_reason(source))]
    Step {
        step: String,
        #[source]
        source: PolarsError,
    },
    /// A step failed on the values of a row (a cast, a date parse, a division): bad input.
    #[error("{}step '{}' failed on {}{}{}: {}", .0.file.as_deref().map(|f| format!("{f}: ")).unwrap_or_default(), .0.step,
            .0.line.map(|l| format!("line {l}")).unwrap_or_else(|| "a row".into()),
            .0.column.as_deref().map(|c| format!(", column '{c}'")).unwrap_or_default(),
            .0.value.as_deref().map(|v| format!(", value '{v}'")).unwrap_or_default(), .0.reason)]
    StepData(Box<crate::steps::Isolated>),
    /// The bytes are not what the format says ("bzip2 data in a CSV file").
    #[error("{file}: {found} in a {format} file (sluice reads plain, gzip- or zstd-compressed objects)")]
    WrongContent { file: String, found: &'static str, format: &'static str },
    #[error("step '{step}' changed the row count from {before} to {after}: SQL steps must keep every row (use a filter rule to drop rows, de-duplicate dimension keys)")]
    RowCountChanged { step: String, before: usize, after: usize },
    /// A check could not be computed (its SQL or column does not fit the output).
    #[error("check '{check}': {message}")]
    Check { check: String, message: String },
    #[error("dimension '{name}': {source}")]
    Dimension {
        name: String,
        #[source]
        source: Box<TransformError>,
    },
    /// sluice's two CSV passes disagree about a file: a bug in sluice, not bad data.
    #[error("{file}: internal error reading the file (a bug in sluice, please report it): {detail}")]
    Internal { file: String, detail: String },
    #[error("{context}: {source}")]
    Polars {
        context: String,
        #[source]
        source: PolarsError,
    },
}

pub(crate) trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, TransformError>;
}

impl<T> Context<T> for Result<T, PolarsError> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, TransformError> {
        self.map_err(|source| TransformError::Polars { context: context(), source })
    }
}
