//! keel-core: the pieces every other Keel crate stands on.
//!
//! - [`artifact`]: atomic writes (temp file + rename) and sha256 digests, so an interrupted
//!   run never leaves a half-written checkpoint or dataset behind.
//! - [`manifest`]: the list of files a stage produced, with row counts and digests (lineage).
//! - [`run_log`]: `run.json`, the per-stage record that `keel report` and `keel compare` read.
//! - [`rng`]: one seeded, portable random generator so `--seed` reproduces runs byte for byte.
//! - [`error`]: the shared error type for these operations.

pub mod artifact;
pub mod error;
pub mod manifest;
pub mod rng;
pub mod run_log;

pub use error::{CoreError, Result};
