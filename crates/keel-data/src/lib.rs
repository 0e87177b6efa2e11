//! keel-data: Keel's data layer.
//!
//! - [`world`]: the embedded synthetic world (entities with ground truth, a pretraining corpus,
//!   task banks for SFT / preference learning / guard / evaluation, and their splits).
//! - [`jsonl`]: reading and writing JSON-lines files with errors that name file, line and field.
//! - [`tokenizer`]: byte-level BPE training and the [`tokenizer::KeelTokenizer`] wrapper.
//! - [`formats`]: SFT datasets in TRL's JSONL shapes, validated row by row; [`chat`]: Keel's
//!   chat template with its loss mask; [`sft_mix`]: the world's helpful + safety SFT mix.
//! - [`parquet`]: Parquet datasets (Hugging Face `datasets`' on-disk format), read through the
//!   same validation as JSONL.
//! - [`curate`]: filters, exact/near deduplication, decontamination and mixing, with a report.
//! - [`render`]: which tokens an example trains on, for Keel's or a model's Jinja template.
//! - [`error`]: [`DataError`], the error type of this crate.

pub mod chat;
pub mod curate;
pub mod error;
pub mod formats;
pub mod jsonl;
pub mod parquet;
pub mod preference;
pub mod render;
pub mod sft_mix;
pub mod tokenizer;
pub mod world;

pub use error::{DataError, Result};
