use thiserror::Error;

/// Everything that can go wrong while locating, listing or reading objects.
#[derive(Debug, Error)]
pub enum ExtractError {
    #[error("invalid location '{uri}': {reason}")]
    InvalidLocation { uri: String, reason: String },
    #[error("unsupported URI scheme '{scheme}' in '{uri}' (this build reads local paths and file:// URIs)")]
    UnsupportedScheme { scheme: String, uri: String },
    #[error("template '{template}' uses '{{{var}}}' but no value was given for it")]
    MissingTemplateValue { template: String, var: String },
    #[error("no input object at {uri}")]
    NotFound { uri: String },
    /// The object is not the version seen when planning (ETag, size or modification time).
    #[error("{uri} changed since it was listed ({detail}); re-run to process the new version")]
    Changed { uri: String, detail: String },
    #[error("object already exists at {uri}")]
    AlreadyExists { uri: String },
    #[error("storage error at {uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: object_store::Error,
    },
    #[error("could not start the I/O runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

impl ExtractError {
    pub(crate) fn store(uri: impl Into<String>, source: object_store::Error) -> Self {
        let uri = uri.into();
        match source {
            object_store::Error::NotFound { .. } => ExtractError::NotFound { uri },
            object_store::Error::AlreadyExists { .. } => ExtractError::AlreadyExists { uri },
            object_store::Error::Precondition { source, .. } => ExtractError::Changed { uri, detail: source.to_string() },
            source => ExtractError::Store { uri, source },
        }
    }
}
