//! keel-model: a Llama-family decoder on candle.
//!
//! - [`config`]: the model config, compatible with Hugging Face `LlamaForCausalLM` `config.json`.
//! - [`llama`]: the transformer itself, with weight names matching HF safetensors, a training
//!   forward and a KV-cache forward for generation.
//! - [`ops`]: the differentiable building blocks (norm, RoPE, attention, SwiGLU, loss).

pub mod config;
pub mod error;
pub mod llama;
pub mod ops;

pub use config::LlamaConfig;
pub use error::{ModelError, Result};
pub use llama::{KvCache, Llama};
