//! One entry point for real models: [`load_model`] takes a GGUF file or an HF-style
//! checkpoint directory (Keel's own exports included) and returns the model, tokenizer,
//! chat template and special tokens; [`load_trainable`] does the same with every weight a
//! `Var` in a `VarMap`, so trainers can fine-tune imported models.

use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::llama::{parameter_shapes, Llama};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// A model ready to run, with what is needed to talk to it.
pub struct LoadedModel {
    pub config: LlamaConfig,
    pub model: Llama,
    pub tokenizer: Tokenizer,
    /// Jinja chat template, when the checkpoint has one.
    pub chat_template: Option<String>,
    pub bos_token_id: Option<u32>,
    /// Ids that end generation (EOS and, for chat models, the end-of-turn token).
    pub eos_token_ids: Vec<u32>,
    /// The f32 weights by HF name. They share storage with `model` (and with the `VarMap`
    /// from [`load_trainable`]), so they reflect training and can be exported.
    pub weights: HashMap<String, Tensor>,
    /// The file or directory it came from.
    pub source: PathBuf,
}

impl LoadedModel {
    /// Compile the chat template, with the model's BOS/EOS strings bound for templates
    /// that reference `bos_token` / `eos_token`.
    pub fn chat_template(&self) -> Result<Option<ChatTemplate>> {
        let Some(src) = &self.chat_template else {
            return Ok(None);
        };
        let name = |id: Option<u32>| id.and_then(|i| self.tokenizer.id_to_token(i));
        let origin = format!("{} (chat template)", self.source.display());
        ChatTemplate::new(
            src.clone(),
            origin,
            name(self.bos_token_id),
            name(self.eos_token_ids.first().copied()),
        )
        .map(Some)
    }

    /// Render `messages` with the model's chat template (generation prompt appended) and
    /// tokenise the result. Errors when the model has no template.
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let tmpl = self.chat_template()?.ok_or_else(|| {
            ModelError::file(
                &self.source,
                "the model has no chat template; use a plain prompt instead",
            )
        })?;
        let text = tmpl.render(messages, true)?;
        self.encode(&text)
    }

    /// Tokenise `text` (special-token strings such as `<|im_start|>` map to their ids).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| ModelError::Config(format!("tokenizer: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Export as an HF checkpoint directory (see [`crate::hf::export_hf`]).
    pub fn export_hf(&self, out_dir: &Path) -> Result<Vec<PathBuf>> {
        let meta = crate::hf::ExportMeta {
            config: &self.config,
            tokenizer: &self.tokenizer,
            chat_template: self.chat_template.as_deref(),
            bos_token_id: self.bos_token_id,
            eos_token_ids: &self.eos_token_ids,
        };
        crate::hf::export_hf(out_dir, &self.weights, &meta)
    }
}

/// Check that `weights` hold exactly the tensors `config` needs, with the right shapes.
/// `file` names the checkpoint in the error. Harmless extras (an `lm_head` copy in a tied
/// model, RoPE buffers) are tolerated; anything else is a mismatch with the config.
pub fn check_weights(
    file: &Path,
    config: &LlamaConfig,
    weights: &HashMap<String, Tensor>,
) -> Result<()> {
    let err = |m: String| Err(ModelError::file(file, m));
    let expected = parameter_shapes(config);
    let known: HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    for (name, shape) in &expected {
        match weights.get(name) {
            None => {
                return err(format!(
                "missing tensor {name} (config expects shape {shape:?}; {} layers, hidden_size {})",
                config.num_hidden_layers, config.hidden_size
            ))
            }
            Some(t) if t.dims() != shape.as_slice() => {
                return err(format!(
                    "tensor {name}: expected shape {shape:?} from the config, found {:?}",
                    t.dims()
                ))
            }
            _ => {}
        }
    }
    let mut extra: Vec<&String> = weights
        .keys()
        .filter(|n| !known.contains(n.as_str()))
        .filter(|n| !(n.as_str() == "lm_head.weight" && config.tie_word_embeddings))
        .filter(|n| !n.ends_with("rotary_emb.inv_freq"))
        .collect();
    extra.sort();
    if let Some(first) = extra.first() {
        return err(format!(
            "{} tensor(s) the config does not account for, e.g. {first} (does num_hidden_layers = {} match the weights?)",
            extra.len(),
            config.num_hidden_layers
        ));
    }
    Ok(())
}

/// Everything read from disk, before a model is built.
struct Parts {
    config: LlamaConfig,
    weights: HashMap<String, Tensor>,
    tokenizer: Tokenizer,
    chat_template: Option<String>,
    bos: Option<u32>,
    eos: Vec<u32>,
}

fn read_parts(path: &Path) -> Result<Parts> {
    if !path.exists() {
        return Err(ModelError::file(path, "does not exist"));
    }
    let parts = if path.is_dir() {
        let ck = crate::hf::read_hf_dir(path)?;
        check_weights(path, &ck.config, &ck.weights)?;
        Parts {
            config: ck.config,
            weights: ck.weights,
            tokenizer: ck.tokenizer,
            chat_template: ck.chat_template,
            bos: ck.bos_token_id,
            eos: ck.eos_token_ids,
        }
    } else {
        let g = crate::gguf::read_gguf(path)?;
        check_weights(path, &g.config, &g.weights)?;
        let mut config = g.config;
        config.bos_token_id = g.special.bos;
        config.eos_token_id = g.special.eos;
        Parts {
            config,
            weights: g.weights,
            tokenizer: g.tokenizer,
            chat_template: g.chat_template,
            bos: g.special.bos,
            eos: g.special.eos.into_iter().collect(),
        }
    };
    let vocab = parts.tokenizer.get_vocab_size(true);
    if vocab > parts.config.vocab_size {
        return Err(ModelError::file(
            path,
            format!(
                "tokenizer has {vocab} tokens but the model's vocab_size is {}",
                parts.config.vocab_size
            ),
        ));
    }
    Ok(parts)
}

fn finish(path: &Path, p: Parts, model: Llama, weights: HashMap<String, Tensor>) -> LoadedModel {
    LoadedModel {
        config: p.config,
        model,
        tokenizer: p.tokenizer,
        chat_template: p.chat_template,
        bos_token_id: p.bos,
        eos_token_ids: p.eos,
        weights,
        source: path.to_path_buf(),
    }
}

/// Load a `.gguf` file or an HF checkpoint directory for inference. A LoRA adapter directory
/// (PEFT's `adapter_config.json` + `adapter_model.safetensors`) loads its base model and
/// returns it with the adapter merged in.
pub fn load_model(path: &Path) -> Result<LoadedModel> {
    if path.join(ADAPTER_CONFIG).is_file() {
        return load_merged_adapter(path);
    }
    let mut p = read_parts(path)?;
    let weights = std::mem::take(&mut p.weights);
    let vb = VarBuilder::from_tensors(weights.clone(), DType::F32, &Device::Cpu);
    let model = Llama::load(&p.config, vb).map_err(|e| ModelError::file(path, e.to_string()))?;
    Ok(finish(path, p, model, weights))
}

/// Load with every parameter a trainable `Var` (names are HF's, as in
/// [`parameter_shapes`]); the returned model reads those same Vars.
pub fn load_trainable(path: &Path) -> Result<(VarMap, LoadedModel)> {
    let mut p = read_parts(path)?;
    let loaded = std::mem::take(&mut p.weights);
    let varmap = VarMap::new();
    let mut weights = HashMap::new();
    {
        let mut data = varmap
            .data()
            .lock()
            .map_err(|_| ModelError::Config("VarMap lock poisoned".into()))?;
        for (name, _) in parameter_shapes(&p.config) {
            // check_weights guaranteed presence and shape.
            let var = Var::from_tensor(&loaded[&name])?;
            weights.insert(name.clone(), var.as_tensor().clone());
            data.insert(name, var);
        }
    }
    drop(loaded);
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = Llama::load(&p.config, vb).map_err(|e| ModelError::file(path, e.to_string()))?;
    Ok((varmap, finish(path, p, model, weights)))
}

/// PEFT's adapter file names.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// An adapter directory's config, and its base model's path (a relative
/// `base_model_name_or_path` is taken relative to the adapter directory).
pub fn read_adapter_config(dir: &Path) -> Result<(crate::lora::LoraConfig, PathBuf)> {
    let file = dir.join(ADAPTER_CONFIG);
    let text =
        std::fs::read_to_string(&file).map_err(|e| ModelError::file(&file, e.to_string()))?;
    let cfg: crate::lora::LoraConfig =
        serde_json::from_str(&text).map_err(|e| ModelError::file(&file, e.to_string()))?;
    cfg.validate()
        .map_err(|e| ModelError::file(&file, e.to_string()))?;
    if cfg.base_model_name_or_path.is_empty() {
        return Err(ModelError::file(
            &file,
            "base_model_name_or_path is empty: the adapter does not say which model it adapts",
        ));
    }
    let base = PathBuf::from(&cfg.base_model_name_or_path);
    let base = if base.is_relative() {
        dir.join(base)
    } else {
        base
    };
    Ok((cfg, base))
}

/// Load an adapter directory's base model with the adapter attached (not merged): the
/// adapter's tensors are trainable `Var`s in the returned `VarMap`, the base stays frozen.
pub fn load_with_adapter(dir: &Path) -> Result<(VarMap, crate::lora::LoraConfig, LoadedModel)> {
    let (cfg, base) = read_adapter_config(dir)?;
    let mut loaded = load_model(&base)?;
    let file = dir.join(ADAPTER_WEIGHTS);
    let tensors = candle_core::safetensors::load(&file, &Device::Cpu).map_err(|e| {
        ModelError::file(
            &file,
            format!("not a readable safetensors file (corrupt or truncated?): {e}"),
        )
    })?;
    let shapes = crate::llama::lora_shapes(&loaded.config);
    let adapters = crate::lora::adapters_from_tensors(&cfg, &shapes, &tensors)
        .map_err(|m| ModelError::file(&file, m))?;
    loaded.model.attach_lora(&cfg, &adapters)?;
    loaded.source = dir.to_path_buf();
    Ok((adapters, cfg, loaded))
}

/// An adapter directory as a plain model: base + adapter, merged (`W + (α/r)·B·A`).
fn load_merged_adapter(dir: &Path) -> Result<LoadedModel> {
    let (_, _, mut loaded) = load_with_adapter(dir)?;
    for (name, w) in loaded.model.merge_lora()? {
        loaded.weights.insert(name, w);
    }
    Ok(loaded)
}
