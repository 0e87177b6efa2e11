//! keel-model: a Llama-family decoder on candle.
//!
//! - [`config`]: the model config, compatible with Hugging Face `LlamaForCausalLM` `config.json`.
//! - [`llama`]: the transformer itself, with weight names matching HF safetensors, a training
//!   forward and a KV-cache forward for generation.
//! - [`ops`]: the differentiable building blocks (norm, RoPE, attention, SwiGLU, loss).
//! - [`load`]: real models from GGUF ([`gguf`]) or HF safetensors directories ([`hf`]),
//!   with tokenizer and [`chat_template`]; [`generate`]: KV-cache sampling.

pub mod bench;
pub mod chat_template;
pub mod config;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod gguf_tokenizer;
pub mod hf;
pub mod llama;
pub mod load;
pub mod lora;
pub mod ops;
pub mod reward_head;

pub use config::LlamaConfig;
pub use error::{ModelError, Result};
pub use llama::{KvCache, Llama};
pub use load::{load_model, load_trainable, LoadedModel};
