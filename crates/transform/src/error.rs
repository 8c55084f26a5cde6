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
    #[error("step '{step}': {source}")]
    Step {
        step: String,
        #[source]
        source: PolarsError,
    },
    #[error("step '{step}' changed the row count from {before} to {after}: SQL steps must keep every row (use a filter rule to drop rows, de-duplicate dimension keys)")]
    RowCountChanged { step: String, before: usize, after: usize },
    #[error("dimension '{name}': {source}")]
    Dimension {
        name: String,
        #[source]
        source: Box<TransformError>,
    },
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
