//! Errors of the model crate. Loading errors name the file and the tensor at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Core(#[from] keel_core::CoreError),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("config: {0}")]
    Config(String),
}

impl ModelError {
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ModelError::File {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ModelError>;
