//! Error types. Two layers on purpose:
//! - [`GenError`]: one call to a target or judge failed. The harness turns these into an
//!   *unscored* item (never a pass or a fail), so they must say whether a retry could help.
//! - [`EvalError`]: the harness itself cannot go on (bad spec file, unreadable data, I/O).
//!   These name the file, line and field so a user can fix their input.

use std::path::PathBuf;

/// A failed generation / log-likelihood / judge call.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum GenError {
    /// The server answered with a non-success HTTP status.
    #[error("HTTP {status} from {url}: {body}")]
    Http {
        status: u16,
        url: String,
        body: String,
    },
    /// Connection refused, reset, DNS, TLS, timeout ...
    #[error("transport error calling {url}: {message}")]
    Transport { url: String, message: String },
    /// The server answered 200 but the body is not the JSON we expect.
    #[error("malformed response from {url}: {message}")]
    Malformed { url: String, message: String },
    /// The target does not implement this operation (e.g. log-likelihood on a chat-only API).
    #[error("{what} is not supported by {generator}")]
    Unsupported { generator: String, what: String },
    /// A judge answered, but not in a form we can read (e.g. no verdict token).
    #[error("unparseable judge output: {0}")]
    Unparseable(String),
    /// Anything else, e.g. a test generator's deliberate failure.
    #[error("{0}")]
    Other(String),
}

impl GenError {
    /// Whether the same request might succeed later (rate limits, server hiccups,
    /// network trouble). Malformed or unsupported answers will not fix themselves.
    pub fn is_retryable(&self) -> bool {
        match self {
            GenError::Http { status, .. } => *status == 429 || *status >= 500,
            GenError::Transport { .. } => true,
            _ => false,
        }
    }
}

/// Errors that stop the harness.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Bad input data: names the file, the line (1-based, 0 when not line-oriented) and what is wrong.
    #[error("{path}:{line}: {message}")]
    Data {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Bad suite spec.
    #[error("suite spec {path}: {message}")]
    Spec { path: PathBuf, message: String },
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Core(#[from] keel_core::CoreError),
    #[error(transparent)]
    Gen(#[from] GenError),
}

impl EvalError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
    pub fn data(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        EvalError::Data {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
    pub fn spec(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        EvalError::Spec {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;
