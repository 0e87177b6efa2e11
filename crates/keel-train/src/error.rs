//! Trainer errors. A non-finite loss is its own variant so callers can tell the user which
//! checkpoint survived.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Core(#[from] keel_core::CoreError),
    #[error(transparent)]
    Model(#[from] keel_model::ModelError),
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error(
        "non-finite {what} ({value}) at step {step}: training stopped; last good checkpoint: {}",
        last_checkpoint.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none written yet".into())
    )]
    NonFinite {
        what: &'static str,
        value: f64,
        step: u64,
        last_checkpoint: Option<PathBuf>,
    },
    #[error("data: {0}")]
    Data(String),
    #[error("config: {0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, TrainError>;
