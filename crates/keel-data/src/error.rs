//! Errors of keel-data. Each variant that concerns a file names it, and row-level variants name
//! the 1-based line and, where known, the field, so a bad dataset row can be fixed by hand.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Core(#[from] keel_core::CoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line that is not valid JSON (or not UTF-8).
    #[error("{path}:{line}: invalid JSON: {message}")]
    Json {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A line that is valid JSON but does not fit the expected row type.
    #[error("{path}:{line}: field `{field}`: {message}")]
    Field {
        path: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
    /// A file-level problem (empty corpus, unreadable tokenizer, ...).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("invalid world config: {0}")]
    Config(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
