//! Model configuration. Field names follow Hugging Face's `LlamaConfig` so a `config.json`
//! from the Hub deserialises directly and Keel's exports load in `transformers`.

use crate::error::{ModelError, Result};
use serde::{Deserialize, Serialize};

fn default_rms_eps() -> f64 {
    1e-5
}
fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_max_pos() -> usize {
    2048
}
fn default_arch() -> Vec<String> {
    vec!["LlamaForCausalLM".to_string()]
}
fn default_model_type() -> String {
    "llama".to_string()
}
fn default_act() -> String {
    "silu".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    #[serde(default = "default_arch")]
    pub architectures: Vec<String>,
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Grouped-query attention: heads share K/V in groups. Defaults to `num_attention_heads`.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub torch_dtype: Option<String>,
}

impl LlamaConfig {
    /// A small Llama for the embedded world and tests. `d` must be divisible by `heads`.
    pub fn tiny(vocab_size: usize, d: usize, layers: usize, heads: usize) -> Self {
        LlamaConfig {
            architectures: default_arch(),
            model_type: default_model_type(),
            vocab_size,
            hidden_size: d,
            intermediate_size: ffn_size(d),
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: Some(heads),
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: 1024,
            tie_word_embeddings: true,
            bos_token_id: None,
            eos_token_id: None,
            hidden_act: default_act(),
            torch_dtype: Some("float32".to_string()),
        }
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Parameter count (embeddings included once when tied).
    pub fn num_params(&self) -> usize {
        let d = self.hidden_size;
        let kv = self.kv_heads() * self.head_dim();
        let per_layer = d * d * 2 + d * kv * 2 + 3 * d * self.intermediate_size + 2 * d;
        let emb = self.vocab_size * d;
        let head = if self.tie_word_embeddings { 0 } else { emb };
        emb + head + self.num_hidden_layers * per_layer + d
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        if self.vocab_size == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return bad("vocab_size, hidden_size and num_hidden_layers must be > 0".into());
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.kv_heads() == 0 || !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(format!(
                "head_dim {} must be even for RoPE",
                self.head_dim()
            ));
        }
        if self.hidden_act != "silu" {
            return bad(format!(
                "hidden_act {:?} is not supported (silu only)",
                self.hidden_act
            ));
        }
        Ok(())
    }
}

/// SwiGLU hidden size as Llama chooses it: 2/3 of 4d, rounded up to a multiple of 64.
pub fn ffn_size(d: usize) -> usize {
    let h = 8 * d / 3;
    h.div_ceil(64) * 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hf_config() {
        let js = r#"{"architectures":["LlamaForCausalLM"],"hidden_size":576,"intermediate_size":1536,
            "num_attention_heads":9,"num_hidden_layers":30,"num_key_value_heads":3,"rms_norm_eps":1e-05,
            "rope_theta":100000,"tie_word_embeddings":true,"vocab_size":49152,"model_type":"llama"}"#;
        let c: LlamaConfig = serde_json::from_str(js).unwrap();
        c.validate().unwrap();
        assert_eq!(c.head_dim(), 64);
        assert_eq!(c.kv_heads(), 3);
    }

    #[test]
    fn rejects_bad_heads() {
        let mut c = LlamaConfig::tiny(100, 30, 1, 4);
        assert!(c.validate().is_err());
        c.hidden_size = 32;
        c.num_key_value_heads = Some(3);
        assert!(c.validate().is_err());
    }
}
