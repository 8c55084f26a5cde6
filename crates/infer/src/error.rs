use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum InferError {
    #[error("model file {path}: {source}")]
    MissingFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model config {path}: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    /// A weights file that cannot be read as a model (truncated, not safetensors, wrong shapes).
    #[error("model weights {path}: {reason}")]
    BadModel { path: PathBuf, reason: String },
    #[error("model input '{name}': {reason}")]
    BadInput { name: String, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("cancelled")]
    Cancelled,
    #[error("training: {0}")]
    Training(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
