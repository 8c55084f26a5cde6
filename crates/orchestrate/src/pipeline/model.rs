//! The model a pipeline scores with, typed by its kind: a tabular model has features and a
//! batch size, an embedding model a text column and a token budget, and neither carries the
//! other's fields.

pub use sluice_infer::Precision;

/// A validated `[model]`.
#[derive(Debug, Clone)]
pub struct Model {
    /// The model's folder: an absolute local path or an object store URI.
    pub uri: String,
    /// The column the score or embedding is written to.
    pub output: String,
    pub kind: ModelKind,
}

/// What a model reads and how it is batched.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelKind {
    /// Scores rows from these feature columns (the model's declared inputs, in order),
    /// `batch_rows` rows per forward pass.
    TabularMlp { features: Vec<String>, batch_rows: usize },
    /// Embeds a text column (a null text gets a null embedding), `max_tokens` padded tokens
    /// per forward pass.
    SentenceEmbedding { text_column: String, max_tokens: usize, precision: Precision },
}

impl ModelKind {
    /// The arithmetic the model runs in (a tabular model: f32).
    pub fn precision(&self) -> Precision {
        match self {
            ModelKind::TabularMlp { .. } => Precision::F32,
            ModelKind::SentenceEmbedding { precision, .. } => *precision,
        }
    }

    /// The feature columns of a tabular model (none for an embedding model).
    pub fn features(&self) -> &[String] {
        match self {
            ModelKind::TabularMlp { features, .. } => features,
            ModelKind::SentenceEmbedding { .. } => &[],
        }
    }
}
