//! Helpers for checkpoint-independent tests: a tiny random Llama, a byte-level BPE
//! tokenizer built without any downloaded file, and writers for the HF and GGUF layouts.
#![allow(dead_code)]

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use keel_model::gguf::{hf_name, permute_qk};
use keel_model::gguf_tokenizer::tokenizer_from_metadata;
use keel_model::llama::parameter_shapes;
use keel_model::{Llama, LlamaConfig};
use std::collections::HashMap;
use std::path::Path;

pub const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// GPT-2's byte → printable-char table, so the toy vocabulary covers every byte.
fn byte_symbols() -> Vec<String> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut pairs: Vec<(u32, u32)> = bs.into_iter().zip(cs).collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(_, c)| char::from_u32(c).unwrap().to_string())
        .collect()
}

/// Tokenizer metadata as llama.cpp stores it: 3 control tokens, 256 byte symbols, a few merges.
pub fn tokenizer_metadata() -> Vec<(String, Value)> {
    let s = |x: &str| Value::String(x.to_string());
    let mut tokens = vec![
        "<|endoftext|>".to_string(),
        "<|im_start|>".into(),
        "<|im_end|>".into(),
    ];
    tokens.extend(byte_symbols());
    let merges = ["h e", "l l", "he ll", "Ġ w", "o r", "Ġw or"];
    for m in merges {
        tokens.push(m.replace(' ', ""));
    }
    let types: Vec<Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, _)| Value::I32(if i < 3 { 3 } else { 1 }))
        .collect();
    vec![
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("smollm")),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(merges.iter().map(|m| s(m)).collect()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        ("tokenizer.chat_template".into(), s(CHATML)),
    ]
}

pub fn tokenizer() -> tokenizers::Tokenizer {
    let md: HashMap<String, Value> = tokenizer_metadata().into_iter().collect();
    tokenizer_from_metadata(&md).unwrap().0
}

pub fn vocab_size() -> usize {
    3 + 256 + 6
}

/// A tiny GQA config matching the toy tokenizer.
pub fn config(tied: bool) -> LlamaConfig {
    let mut c = LlamaConfig::tiny(vocab_size(), 32, 2, 4);
    c.num_key_value_heads = Some(2);
    c.intermediate_size = 64;
    c.tie_word_embeddings = tied;
    c.max_position_embeddings = 128;
    c
}

/// Random weights by HF name, plus the model built from them.
pub fn random_model(c: &LlamaConfig, seed: u64) -> (HashMap<String, Tensor>, Llama) {
    let (varmap, model) = Llama::init(c, seed).unwrap();
    let data = varmap.data().lock().unwrap();
    let weights = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    (weights, model)
}

pub fn logits(m: &Llama, ids: &[u32]) -> Vec<Vec<f32>> {
    let x = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    m.forward(&x, None)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap()
}

/// Inverse of the importer's mapping, for writing test GGUF files.
fn gguf_name(hf: &str, c: &LlamaConfig) -> String {
    for cand in ["token_embd.weight", "output_norm.weight", "output.weight"] {
        if hf_name(cand).as_deref() == Some(hf) {
            return cand.to_string();
        }
    }
    for l in 0..c.num_hidden_layers {
        for part in [
            "attn_norm",
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_norm",
            "ffn_gate",
            "ffn_up",
            "ffn_down",
        ] {
            let g = format!("blk.{l}.{part}.weight");
            if hf_name(&g).as_deref() == Some(hf) {
                return g;
            }
        }
    }
    panic!("no GGUF name for {hf}");
}

/// Write `weights` as llama.cpp would: GGUF names, Q/K rows permuted for interleaved RoPE,
/// matrices in `dtype` (norms stay f32).
pub fn write_gguf(
    path: &Path,
    c: &LlamaConfig,
    weights: &HashMap<String, Tensor>,
    dtype: GgmlDType,
) {
    let mut md = tokenizer_metadata();
    let u = |x: usize| Value::U32(x as u32);
    md.extend([
        (
            "general.architecture".to_string(),
            Value::String("llama".into()),
        ),
        ("llama.block_count".into(), u(c.num_hidden_layers)),
        ("llama.context_length".into(), u(c.max_position_embeddings)),
        ("llama.embedding_length".into(), u(c.hidden_size)),
        ("llama.feed_forward_length".into(), u(c.intermediate_size)),
        (
            "llama.attention.head_count".into(),
            u(c.num_attention_heads),
        ),
        ("llama.attention.head_count_kv".into(), u(c.kv_heads())),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(c.rms_norm_eps as f32),
        ),
        (
            "llama.rope.freq_base".into(),
            Value::F32(c.rope_theta as f32),
        ),
        ("llama.rope.dimension_count".into(), u(c.head_dim())),
    ]);
    let mut qts = Vec::new();
    for (name, _) in parameter_shapes(c) {
        let mut t = weights[&name].clone();
        if name.ends_with("q_proj.weight") {
            t = permute_qk(&t, c.num_attention_heads).unwrap();
        } else if name.ends_with("k_proj.weight") {
            t = permute_qk(&t, c.kv_heads()).unwrap();
        }
        let dt = if t.rank() == 1 { GgmlDType::F32 } else { dtype };
        qts.push((gguf_name(&name, c), QTensor::quantize(&t, dt).unwrap()));
    }
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = qts.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
}
