//! keel-train: Keel's trainers.
//!
//! Every trainer is shaped the same way (as in TRL): a `*Config` with documented defaults, a
//! function that takes the model, data and a run directory, and the shared machinery here —
//! [`optim`] (fused AdamW), [`schedule`] (warmup + cosine), [`checkpoint`] (atomic, resumable),
//! [`metrics`] (JSONL log) — so resume, NaN guard and logging behave identically everywhere.

pub mod chat_render;
pub mod checkpoint;
pub mod data;
pub mod dpo;
pub mod dpo_config;
pub mod dpo_reference;
pub mod error;
pub mod metrics;
pub mod optim;
pub mod policy;
pub mod preference_batch;
pub mod preference_loss;
pub mod pretrain;
pub mod progress;
pub mod reward;
pub mod reward_model;
pub mod rl;
pub mod schedule;
pub mod sft;
pub mod sft_batch;
pub mod sft_pack;
pub mod step;

pub use error::{Result, TrainError};
