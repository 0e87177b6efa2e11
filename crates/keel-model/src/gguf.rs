//! Import llama.cpp GGUF files as trainable f32 weights with Hugging Face names.
//!
//! Three things differ between a GGUF llama and the HF layout Keel uses:
//! 1. names (`blk.3.attn_q.weight` ↔ `model.layers.3.self_attn.q_proj.weight`);
//! 2. quantisation: every tensor is dequantised to f32 so it can be fine-tuned;
//! 3. RoPE layout: llama.cpp rotates interleaved pairs (2i, 2i+1), HF rotates halves
//!    (i, i + d/2). `convert_hf_to_gguf.py` therefore permutes the rows of `q_proj` and
//!    `k_proj` per head; [`unpermute_qk`] undoes it so Keel's rotate-half RoPE sees the
//!    original HF rows.

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::gguf_tokenizer::{tokenizer_from_metadata, GgufSpecialTokens};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;
use tokenizers::Tokenizer;

/// Everything a GGUF file provides, already in Keel's (HF) conventions.
pub struct GgufImport {
    pub config: LlamaConfig,
    /// f32 tensors keyed by HF names, Q/K rows un-permuted.
    pub weights: HashMap<String, Tensor>,
    pub tokenizer: Tokenizer,
    pub special: GgufSpecialTokens,
    pub chat_template: Option<String>,
}

/// The HF name of a llama.cpp tensor, or `None` for tensors Keel has no use for.
pub fn hf_name(gguf: &str) -> Option<String> {
    match gguf {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf = match part {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}"))
}

/// Inverse of llama.cpp's `permute(w, n_head)`: rows of each head were reordered from
/// `[2, dh/2]` (HF halves) to `[dh/2, 2]` (interleaved pairs); swap them back.
pub fn unpermute_qk(w: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    if n_head == 0 || rows % (2 * n_head) != 0 {
        candle_core::bail!("cannot un-permute a [{rows}, {cols}] projection into {n_head} heads");
    }
    let half = rows / n_head / 2;
    w.reshape((n_head, half, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))
}

/// The forward permutation (HF → llama.cpp), used by tests to check the round trip.
pub fn permute_qk(w: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    if n_head == 0 || rows % (2 * n_head) != 0 {
        candle_core::bail!("cannot permute a [{rows}, {cols}] projection into {n_head} heads");
    }
    let half = rows / n_head / 2;
    w.reshape((n_head, 2, half, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))
}

fn md_usize(md: &HashMap<String, Value>, key: &str) -> std::result::Result<usize, String> {
    let v = md
        .get(key)
        .ok_or_else(|| format!("metadata key {key} is missing"))?;
    let n = match v {
        Value::U8(x) => *x as u64,
        Value::U16(x) => *x as u64,
        Value::U32(x) => *x as u64,
        Value::U64(x) => *x,
        Value::I32(x) if *x >= 0 => *x as u64,
        Value::I64(x) if *x >= 0 => *x as u64,
        _ => {
            return Err(format!(
                "metadata {key} is not a non-negative integer ({v:?})"
            ))
        }
    };
    usize::try_from(n).map_err(|_| format!("metadata {key} = {n} is too large"))
}

fn md_f64(md: &HashMap<String, Value>, key: &str) -> Option<std::result::Result<f64, String>> {
    md.get(key).map(|v| match v {
        // Shortest decimal that round-trips the f32 (1e-5, not 9.999999747378752e-6), so
        // exported config.json files carry the value the model was trained with.
        Value::F32(x) => Ok(x.to_string().parse::<f64>().unwrap_or(*x as f64)),
        Value::F64(x) => Ok(*x),
        _ => Err(format!("metadata {key} is not a float ({v:?})")),
    })
}

/// Llama config from GGUF metadata. `vocab_size` comes from the token list, which is what
/// the embedding rows index; `tied` says whether the file lacks a separate `output.weight`.
pub fn config_from_metadata(
    md: &HashMap<String, Value>,
    tied: bool,
) -> std::result::Result<LlamaConfig, String> {
    let arch = match md.get("general.architecture") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err("metadata general.architecture is missing".into()),
    };
    if arch != "llama" {
        return Err(format!(
            "architecture {arch:?} is not supported (llama only)"
        ));
    }
    if let Some(Value::String(s)) = md.get("llama.rope.scaling.type") {
        if s != "none" {
            return Err(format!("llama.rope.scaling.type = {s:?} is not supported"));
        }
    }
    if md_usize(md, "llama.expert_count").unwrap_or(0) > 1 {
        return Err("mixture-of-experts GGUF files are not supported".into());
    }
    let vocab_size = match md.get("tokenizer.ggml.tokens") {
        Some(Value::Array(a)) => a.len(),
        _ => md_usize(md, "llama.vocab_size")?,
    };
    let hidden = md_usize(md, "llama.embedding_length")?;
    let heads = md_usize(md, "llama.attention.head_count")?;
    let kv_heads = md_usize(md, "llama.attention.head_count_kv").unwrap_or(heads);
    let mut c = LlamaConfig::tiny(
        vocab_size,
        hidden,
        md_usize(md, "llama.block_count")?,
        heads.max(1),
    );
    c.num_attention_heads = heads;
    c.num_key_value_heads = Some(kv_heads);
    c.intermediate_size = md_usize(md, "llama.feed_forward_length")?;
    c.rms_norm_eps = md_f64(md, "llama.attention.layer_norm_rms_epsilon")
        .transpose()?
        .unwrap_or(1e-5);
    c.rope_theta = md_f64(md, "llama.rope.freq_base")
        .transpose()?
        .unwrap_or(10_000.0);
    c.max_position_embeddings = md_usize(md, "llama.context_length").unwrap_or(2048);
    c.tie_word_embeddings = tied;
    c.torch_dtype = Some("float32".into());
    if heads > 0 && hidden % heads == 0 {
        if let Ok(rope_dim) = md_usize(md, "llama.rope.dimension_count") {
            if rope_dim != hidden / heads {
                return Err(format!(
                    "llama.rope.dimension_count = {rope_dim} differs from head_dim {} (partial RoPE is not supported)",
                    hidden / heads
                ));
            }
        }
    }
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

/// Read a GGUF file: config, dequantised HF-named weights, tokenizer and chat template.
/// Every failure names the file and the problem; nothing here panics on bad input.
/// The sibling directory a small text file names, as a run's `checkpoints/latest` does.
fn pointer_target(path: &Path) -> Option<std::path::PathBuf> {
    if std::fs::metadata(path).ok()?.len() > 256 {
        return None;
    }
    let name = std::fs::read_to_string(path).ok()?;
    let dir = path.parent()?.join(name.trim());
    (!name.trim().is_empty() && dir.is_dir()).then_some(dir)
}

pub fn read_gguf(path: &Path) -> Result<GgufImport> {
    let err = |m: String| ModelError::file(path, m);
    let mut f = std::fs::File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
    let content = Content::read(&mut f).map_err(|e| match pointer_target(path) {
        Some(dir) => err(format!(
            "is a checkpoint pointer, not a model; pass the checkpoint it names: {}",
            dir.display()
        )),
        None => err(format!(
            "not a valid GGUF file ({e}); a model is a .gguf file or a checkpoint directory"
        )),
    })?;
    let md = &content.metadata;
    let tied = !content.tensor_infos.contains_key("output.weight");
    let config = config_from_metadata(md, tied).map_err(err)?;
    let (tokenizer, special) = tokenizer_from_metadata(md).map_err(err)?;
    if tokenizer.get_vocab_size(true) != config.vocab_size {
        return Err(err(format!(
            "tokenizer has {} tokens but the model expects {}",
            tokenizer.get_vocab_size(true),
            config.vocab_size
        )));
    }
    let chat_template = match md.get("tokenizer.chat_template") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };

    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut weights = HashMap::new();
    for name in names {
        let Some(hf) = hf_name(name) else {
            // e.g. `rope_freqs.weight` (Llama 3 scaling) changes the maths: refuse it
            // rather than silently produce a different model.
            return Err(err(format!(
                "tensor {name} has no Keel equivalent; this GGUF variant is not supported"
            )));
        };
        if hf == "lm_head.weight" && config.tie_word_embeddings {
            continue;
        }
        let q = content
            .tensor(&mut f, name, &Device::Cpu)
            .map_err(|e| err(format!("tensor {name}: {e}")))?;
        let mut t = q
            .dequantize(&Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F32))
            .map_err(|e| {
                err(format!(
                    "tensor {name}: cannot dequantise {:?}: {e}",
                    q.dtype()
                ))
            })?;
        if hf.ends_with("q_proj.weight") {
            t = unpermute_qk(&t, config.num_attention_heads)
                .map_err(|e| err(format!("tensor {name}: {e}")))?;
        } else if hf.ends_with("k_proj.weight") {
            t = unpermute_qk(&t, config.kv_heads())
                .map_err(|e| err(format!("tensor {name}: {e}")))?;
        }
        weights.insert(hf, t);
    }
    Ok(GgufImport {
        config,
        weights,
        tokenizer,
        special,
        chat_template,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_hf() {
        assert_eq!(
            hf_name("blk.12.attn_q.weight").unwrap(),
            "model.layers.12.self_attn.q_proj.weight"
        );
        assert_eq!(
            hf_name("blk.0.ffn_norm.weight").unwrap(),
            "model.layers.0.post_attention_layernorm.weight"
        );
        assert_eq!(
            hf_name("token_embd.weight").unwrap(),
            "model.embed_tokens.weight"
        );
        assert!(hf_name("rope_freqs.weight").is_none());
        assert!(hf_name("blk.x.attn_q.weight").is_none());
    }

    #[test]
    fn permutation_round_trips_and_matches_llama_cpp() {
        // 2 heads of dim 4, 1 input column: HF rows per head are [a0 a1 | b0 b1] (halves);
        // llama.cpp wants interleaved pairs [a0 b0 a1 b1].
        let w = Tensor::new(
            &[[0f32], [1.], [2.], [3.], [4.], [5.], [6.], [7.]],
            &Device::Cpu,
        )
        .unwrap();
        let p = permute_qk(&w, 2).unwrap();
        let got: Vec<f32> = p.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got, vec![0., 2., 1., 3., 4., 6., 5., 7.]);
        let back = unpermute_qk(&p, 2).unwrap();
        assert_eq!(
            back.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            (0..8).map(|x| x as f32).collect::<Vec<_>>()
        );
        assert!(unpermute_qk(&w, 3).is_err());
    }
}
