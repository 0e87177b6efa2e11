//! Errors raised by keel-guard. Policy errors always carry the file, the key and the reason,
//! because a policy author has to find and fix the line that is wrong.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// A policy or profile file is malformed or inconsistent.
    #[error("{file}: key `{key}`: {reason}")]
    Policy {
        file: String,
        key: String,
        reason: String,
    },
    #[error("unknown profile `{0}` (built-in: default, education-minors, region-eu, medical-provider; or pass a path to a .toml file)")]
    UnknownProfile(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Data {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{0}")]
    Model(String),
    #[error("audit log: {0}")]
    Audit(String),
    #[error(transparent)]
    Core(#[from] keel_core::CoreError),
}

impl GuardError {
    pub fn policy(file: &str, key: impl Into<String>, reason: impl Into<String>) -> Self {
        GuardError::Policy {
            file: file.to_string(),
            key: key.into(),
            reason: reason.into(),
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        GuardError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<rusqlite::Error> for GuardError {
    fn from(e: rusqlite::Error) -> Self {
        GuardError::Audit(e.to_string())
    }
}

impl From<candle_core::Error> for GuardError {
    fn from(e: candle_core::Error) -> Self {
        GuardError::Model(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, GuardError>;
