use thiserror::Error;

/// Everything that can go wrong while locating, listing or reading objects.
#[derive(Debug, Error)]
pub enum ExtractError {
    #[error("invalid location '{uri}': {reason}")]
    InvalidLocation { uri: String, reason: String },
    #[error("unsupported URI scheme '{scheme}' in '{uri}' (sluice reads local paths, file://, s3://, gs://, az://, abfss:// and http(s):// URIs)")]
    UnsupportedScheme { scheme: String, uri: String },
    #[error("template '{template}' uses '{{{var}}}' but no value was given for it")]
    MissingTemplateValue { template: String, var: String },
    #[error("no input object at {uri}")]
    NotFound { uri: String },
    /// The object is not the version seen when planning (ETag, size or modification time).
    #[error("{uri} changed since it was listed ({detail}); re-run to process the new version")]
    Changed { uri: String, detail: String },
    /// The location is not one this extract may use ([`crate::policy::Policy`]).
    #[error("{uri} is refused: {rule}")]
    Refused { uri: String, rule: String },
    #[error("object already exists at {uri}")]
    AlreadyExists { uri: String },
    /// Writing is refused: the location is plain HTTP(S), which serves reads only.
    #[error("{uri} is read-only (plain HTTP cannot store objects); use a local path, s3://, az:// or gs://")]
    ReadOnly { uri: String },
    /// Any other store error; `message` is object_store's text with secrets redacted.
    #[error("storage error at {uri}: {message}")]
    Store { uri: String, message: String },
    #[error("could not start the I/O runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

impl ExtractError {
    pub(crate) fn store(uri: impl Into<String>, source: object_store::Error) -> Self {
        let uri = uri.into();
        match source {
            object_store::Error::NotFound { .. } => ExtractError::NotFound { uri },
            object_store::Error::AlreadyExists { .. } => ExtractError::AlreadyExists { uri },
            object_store::Error::Precondition { source, .. } => {
                ExtractError::Changed { uri, detail: crate::redact::redact_text(&source.to_string()) }
            }
            source => ExtractError::Store { uri, message: crate::redact::redact_text(&source.to_string()) },
        }
    }
}
