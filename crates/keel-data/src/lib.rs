//! keel-data: Keel's data layer.
//!
//! - [`world`]: the embedded synthetic world (entities with ground truth, a pretraining corpus,
//!   task banks for SFT / preference learning / guard / evaluation, and their splits).
//! - [`jsonl`]: reading and writing JSON-lines files with errors that name file, line and field.
//! - [`tokenizer`]: byte-level BPE training and the [`tokenizer::KeelTokenizer`] wrapper.
//! - [`error`]: [`DataError`], the error type of this crate.

pub mod error;
pub mod jsonl;
pub mod tokenizer;
pub mod world;

pub use error::{DataError, Result};
