//! Hugging Face checkpoint directories: `config.json` + `model.safetensors` (or a sharded
//! `model.safetensors.index.json`) + `tokenizer.json` [+ `tokenizer_config.json`,
//! `generation_config.json`], read and written.
//!
//! candle's safetensors loader reports corrupt files vaguely, so headers, dtypes and
//! offsets are checked here first (through the `safetensors` crate's validating parser) and
//! every error names the file and the tensor.

use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use candle_core::{DType, Device, Tensor};
use keel_core::artifact::{write_atomic, write_json_atomic};
use safetensors::{Dtype, SafeTensors};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// What an HF directory provides besides the weights' values.
pub struct HfCheckpoint {
    pub config: LlamaConfig,
    pub weights: HashMap<String, Tensor>,
    pub tokenizer: Tokenizer,
    pub chat_template: Option<String>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

fn read_json_file(path: &Path) -> Result<Json> {
    let bytes =
        std::fs::read(path).map_err(|e| ModelError::file(path, format!("cannot read: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| ModelError::file(path, format!("invalid JSON: {e}")))
}

/// Ids from a JSON number or list of numbers (HF allows both for `eos_token_id`).
fn ids_of(v: Option<&Json>) -> Vec<u32> {
    match v {
        Some(Json::Number(n)) => n
            .as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .into_iter()
            .collect(),
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .filter_map(|x| u32::try_from(x).ok())
            .collect(),
        _ => vec![],
    }
}

/// Parse `config.json`, refusing settings Keel's Llama would silently ignore.
pub fn read_config(path: &Path) -> Result<(LlamaConfig, Vec<u32>)> {
    let mut js = read_json_file(path)?;
    let bad = |m: String| Err(ModelError::file(path, m));
    let obj = match js.as_object_mut() {
        Some(o) => o,
        None => return bad("expected a JSON object".into()),
    };
    // `eos_token_id` may be a list in HF configs; LlamaConfig keeps one id.
    let eos = ids_of(obj.get("eos_token_id"));
    obj.insert(
        "eos_token_id".into(),
        eos.first().map(|&x| json!(x)).unwrap_or(Json::Null),
    );
    if let Some(s) = obj.get("rope_scaling").filter(|v| !v.is_null()) {
        return bad(format!("rope_scaling {s} is not supported"));
    }
    for flag in ["attention_bias", "mlp_bias"] {
        if obj.get(flag).and_then(|v| v.as_bool()) == Some(true) {
            return bad(format!(
                "{flag} = true is not supported (Keel's Llama has no biases)"
            ));
        }
    }
    let head_dim = obj.get("head_dim").and_then(|v| v.as_u64());
    let config: LlamaConfig = serde_json::from_value(js.clone())
        .map_err(|e| ModelError::file(path, format!("not a Llama config: {e}")))?;
    config
        .validate()
        .map_err(|e| ModelError::file(path, e.to_string()))?;
    if let Some(hd) = head_dim {
        if hd as usize != config.head_dim() {
            return bad(format!(
                "head_dim {hd} differs from hidden_size / num_attention_heads = {}",
                config.head_dim()
            ));
        }
    }
    Ok((config, eos))
}

fn dtype_of(d: Dtype) -> Option<DType> {
    match d {
        Dtype::F32 => Some(DType::F32),
        Dtype::F16 => Some(DType::F16),
        Dtype::BF16 => Some(DType::BF16),
        Dtype::F64 => Some(DType::F64),
        _ => None,
    }
}

/// Read every tensor of one safetensors file as f32, with validated header and offsets.
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let err = |m: String| ModelError::file(path, m);
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if bytes.len() < 8 {
        return Err(err(format!(
            "truncated: {} bytes, a safetensors file has an 8-byte header length",
            bytes.len()
        )));
    }
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| err(format!("corrupt or truncated safetensors: {e}")))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let dt = dtype_of(view.dtype()).ok_or_else(|| {
            err(format!(
                "tensor {name}: dtype {:?} is not a float type Keel can load",
                view.dtype()
            ))
        })?;
        let t = Tensor::from_raw_buffer(view.data(), dt, view.shape(), &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F32))
            .map_err(|e| err(format!("tensor {name}: {e}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

/// Weights of a directory: `model.safetensors`, or the shards named by
/// `model.safetensors.index.json`.
fn read_dir_weights(dir: &Path) -> Result<HashMap<String, Tensor>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return read_safetensors(&single);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        return Err(ModelError::file(
            dir,
            "no model.safetensors or model.safetensors.index.json",
        ));
    }
    let js = read_json_file(&index)?;
    let map = js
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| ModelError::file(&index, "missing object weight_map"))?;
    let mut shards: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
    shards.sort();
    shards.dedup();
    let mut out = HashMap::new();
    for shard in shards {
        if shard.contains('/') || shard.contains("..") {
            return Err(ModelError::file(
                &index,
                format!("shard name {shard:?} leaves the directory"),
            ));
        }
        out.extend(read_safetensors(&dir.join(shard))?);
    }
    for name in map.keys() {
        if !out.contains_key(name) {
            return Err(ModelError::file(
                &index,
                format!("tensor {name} is listed but not in its shard"),
            ));
        }
    }
    Ok(out)
}

/// A token string from tokenizer_config.json: either `"<s>"` or `{"content": "<s>", …}`.
fn token_str(v: Option<&Json>) -> Option<String> {
    match v {
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Object(o)) => o.get("content").and_then(|c| c.as_str()).map(String::from),
        _ => None,
    }
}

/// `chat_template` is a string, or a list of `{name, template}` (pick "default").
fn chat_template_of(v: Option<&Json>) -> Option<String> {
    match v {
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Array(list)) => {
            let pick = |name: &str| {
                list.iter()
                    .find(|e| e.get("name").and_then(|n| n.as_str()) == Some(name))
                    .and_then(|e| e.get("template").and_then(|t| t.as_str()))
            };
            pick("default")
                .or_else(|| {
                    list.first()
                        .and_then(|e| e.get("template"))
                        .and_then(|t| t.as_str())
                })
                .map(String::from)
        }
        _ => None,
    }
}

/// Load an HF checkpoint directory. Weights are validated against the config by the caller
/// ([`crate::load::check_weights`]).
pub fn read_hf_dir(dir: &Path) -> Result<HfCheckpoint> {
    if !dir.is_dir() {
        return Err(ModelError::file(dir, "not a directory"));
    }
    let (mut config, mut eos) = read_config(&dir.join("config.json"))?;
    let tok_path = dir.join("tokenizer.json");
    if !tok_path.exists() {
        return Err(ModelError::file(
            &tok_path,
            "missing (the tokenizer is required)",
        ));
    }
    let tokenizer = Tokenizer::from_file(&tok_path)
        .map_err(|e| ModelError::file(&tok_path, format!("not a valid tokenizer.json: {e}")))?;
    let mut chat_template = None;
    let mut bos = config.bos_token_id;
    let tc_path = dir.join("tokenizer_config.json");
    if tc_path.exists() {
        let tc = read_json_file(&tc_path)?;
        chat_template = chat_template_of(tc.get("chat_template"));
        if let Some(id) = token_str(tc.get("bos_token")).and_then(|t| tokenizer.token_to_id(&t)) {
            bos = bos.or(Some(id));
        }
        if let Some(id) = token_str(tc.get("eos_token")).and_then(|t| tokenizer.token_to_id(&t)) {
            if !eos.contains(&id) {
                eos.push(id);
            }
        }
    }
    // Newer HF repos keep the template in its own file.
    let jinja = dir.join("chat_template.jinja");
    if chat_template.is_none() && jinja.exists() {
        chat_template = Some(
            std::fs::read_to_string(&jinja)
                .map_err(|e| ModelError::file(&jinja, format!("cannot read: {e}")))?,
        );
    }
    let gen_path = dir.join("generation_config.json");
    if gen_path.exists() {
        let g = read_json_file(&gen_path)?;
        for id in ids_of(g.get("eos_token_id")) {
            if !eos.contains(&id) {
                eos.push(id);
            }
        }
    }
    config.bos_token_id = bos;
    config.eos_token_id = eos.first().copied();
    let weights = read_dir_weights(dir)?;
    Ok(HfCheckpoint {
        config,
        weights,
        tokenizer,
        chat_template,
        bos_token_id: bos,
        eos_token_ids: eos,
    })
}

/// What [`export_hf`] writes besides the weights.
pub struct ExportMeta<'a> {
    pub config: &'a LlamaConfig,
    pub tokenizer: &'a Tokenizer,
    pub chat_template: Option<&'a str>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: &'a [u32],
}

/// Write an HF checkpoint directory loadable by `transformers` and by [`read_hf_dir`]:
/// `model.safetensors` (f32, HF names), `tokenizer.json`, `tokenizer_config.json` (with the
/// chat template), `generation_config.json` and, last, `config.json` — so an interrupted
/// export is never mistaken for a complete one. Each file is written atomically.
pub fn export_hf(
    out_dir: &Path,
    weights: &HashMap<String, Tensor>,
    meta: &ExportMeta,
) -> Result<Vec<PathBuf>> {
    let c = meta.config;
    crate::load::check_weights(out_dir, c, weights)?;
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        if name == "lm_head.weight" && c.tie_word_embeddings {
            continue;
        }
        let t = weights[name].to_dtype(DType::F32)?.contiguous()?;
        tensors.push((name.clone(), t));
    }
    let st_meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let st_path = out_dir.join("model.safetensors");
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(st_meta))
        .map_err(|e| ModelError::file(&st_path, format!("cannot serialise: {e}")))?;
    write_atomic(&st_path, &bytes)?;
    drop(bytes);

    let tok_path = out_dir.join("tokenizer.json");
    let tok_json = meta
        .tokenizer
        .to_string(true)
        .map_err(|e| ModelError::file(&tok_path, format!("cannot serialise tokenizer: {e}")))?;
    write_atomic(&tok_path, tok_json.as_bytes())?;

    let tok_name = |id: Option<u32>| id.and_then(|i| meta.tokenizer.id_to_token(i));
    let mut tc = BTreeMap::new();
    tc.insert("tokenizer_class", json!("PreTrainedTokenizerFast"));
    tc.insert("clean_up_tokenization_spaces", json!(false));
    tc.insert("model_max_length", json!(c.max_position_embeddings));
    tc.insert("add_bos_token", json!(false));
    if let Some(t) = tok_name(meta.bos_token_id) {
        tc.insert("bos_token", json!(t));
    }
    if let Some(t) = tok_name(meta.eos_token_ids.first().copied()) {
        tc.insert("eos_token", json!(t));
    }
    if let Some(t) = meta.chat_template {
        tc.insert("chat_template", json!(t));
    }
    write_json_atomic(&out_dir.join("tokenizer_config.json"), &tc)?;

    let eos_json = match meta.eos_token_ids {
        [] => Json::Null,
        [one] => json!(one),
        many => json!(many),
    };
    let gen = json!({"bos_token_id": meta.bos_token_id, "eos_token_id": eos_json});
    write_json_atomic(&out_dir.join("generation_config.json"), &gen)?;

    let mut cfg = c.clone();
    cfg.bos_token_id = meta.bos_token_id;
    cfg.eos_token_id = meta.eos_token_ids.first().copied();
    cfg.torch_dtype = Some("float32".into());
    write_json_atomic(&out_dir.join("config.json"), &cfg)?;
    Ok([
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "config.json",
    ]
    .iter()
    .map(|f| out_dir.join(f))
    .collect())
}
