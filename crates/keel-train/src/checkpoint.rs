//! Checkpoints: complete, atomic and resumable.
//!
//! Layout under a run directory:
//! ```text
//! checkpoints/step-00000400/  model.safetensors  config.json  tokenizer.json
//!                             optimizer.safetensors  trainer_state.json
//! checkpoints/latest          "step-00000400"
//! ```
//! A checkpoint directory is a Hugging Face model directory too (config.json +
//! model.safetensors + tokenizer.json), so any checkpoint can be loaded, chatted with or
//! exported as is. It is written under a temporary name and renamed into place, and `latest`
//! is replaced atomically afterwards: a crash mid-save leaves the previous checkpoint intact
//! and `latest` pointing at it.

use crate::error::{Result, TrainError};
use crate::optim::AdamW;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use keel_core::artifact::{read_json, write_atomic, write_json_atomic};
use keel_core::rng::RngState;
use keel_model::LlamaConfig;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Everything besides tensors needed to continue a run exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps completed.
    pub step: u64,
    pub tokens_seen: u64,
    /// Data-sampling generator position.
    pub data_rng: RngState,
    pub optimizer_t: u64,
    /// The trainer's config, serialised, for lineage and for checking a resume is compatible.
    pub trainer_config: serde_json::Value,
}

fn ck_err(path: &Path, message: impl Into<String>) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Named model tensors in `parameter_shapes` order.
pub fn named_vars(
    config: &LlamaConfig,
    varmap: &VarMap,
) -> Result<Vec<(String, candle_core::Var)>> {
    let data = varmap.data().lock().expect("varmap lock");
    keel_model::llama::parameter_shapes(config)
        .into_iter()
        .map(|(name, _)| {
            let v = data
                .get(&name)
                .cloned()
                .ok_or_else(|| TrainError::Config(format!("model has no parameter {name}")))?;
            Ok((name, v))
        })
        .collect()
}

/// Write a checkpoint for `state.step`; keep the newest `keep` checkpoints.
pub fn save(
    run_dir: &Path,
    config: &LlamaConfig,
    varmap: &VarMap,
    opt: &AdamW,
    state: &TrainerState,
    tokenizer_json: Option<&[u8]>,
    keep: usize,
) -> Result<PathBuf> {
    let named = named_vars(config, varmap)?;
    save_named(
        run_dir,
        config,
        &named,
        "model.safetensors",
        &[],
        opt,
        state,
        tokenizer_json,
        keep,
    )
}

/// A step-0 checkpoint of freshly initialised weights (new optimizer state, seed-0 data
/// rng): the starting point tests and examples train from, as `keel pretrain` writes one.
pub fn save_initial(
    run_dir: &Path,
    config: &LlamaConfig,
    varmap: &VarMap,
    tokenizer_json: Option<&[u8]>,
) -> Result<PathBuf> {
    let opt = AdamW::new(named_vars(config, varmap)?, Default::default());
    let state = TrainerState {
        step: 0,
        tokens_seen: 0,
        data_rng: keel_core::rng::save_state(&keel_core::rng::rng_for(0, "initial")),
        optimizer_t: 0,
        trainer_config: serde_json::json!({}),
    };
    save(run_dir, config, varmap, &opt, &state, tokenizer_json, 1)
}

/// [`save`] for any set of named trainable tensors (LoRA adapters, a reward head…) written to
/// `weights_file`, plus `extra` files (name, bytes) such as an adapter config.
#[allow(clippy::too_many_arguments)]
pub fn save_named(
    run_dir: &Path,
    config: &LlamaConfig,
    named: &[(String, candle_core::Var)],
    weights_file: &str,
    extra: &[(&str, Vec<u8>)],
    opt: &AdamW,
    state: &TrainerState,
    tokenizer_json: Option<&[u8]>,
    keep: usize,
) -> Result<PathBuf> {
    let root = run_dir.join("checkpoints");
    let name = format!("step-{:08}", state.step);
    let final_dir = root.join(&name);
    let tmp = root.join(format!(".tmp-{name}-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| keel_core::CoreError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| keel_core::CoreError::io(&tmp, e))?;

    let weights: HashMap<String, Tensor> = named
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    candle_core::safetensors::save(&weights, tmp.join(weights_file))?;
    for (name, bytes) in extra {
        write_atomic(&tmp.join(name), bytes)?;
    }
    let opt_state: HashMap<String, Tensor> = opt.state_tensors()?.into_iter().collect();
    candle_core::safetensors::save(&opt_state, tmp.join("optimizer.safetensors"))?;
    write_json_atomic(&tmp.join("config.json"), config)?;
    write_json_atomic(&tmp.join("trainer_state.json"), state)?;
    if let Some(t) = tokenizer_json {
        write_atomic(&tmp.join("tokenizer.json"), t)?;
        if let Some(tc) = keel_tokenizer_config(t) {
            write_atomic(&tmp.join("tokenizer_config.json"), &tc)?;
        }
    }
    // fsync the files' directory entry by renaming the whole directory into place.
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| keel_core::CoreError::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| keel_core::CoreError::io(&final_dir, e))?;
    write_atomic(&root.join("latest"), name.as_bytes())?;
    prune(&root, keep, &name)?;
    Ok(final_dir)
}

/// For a tokenizer with Keel's chat tokens: a `tokenizer_config.json` naming Keel's chat
/// template (as Jinja) and `<|end|>` as the end-of-turn token generation stops on, so the
/// checkpoint chats and evaluates like any Hugging Face model. `None` for other tokenizers.
fn keel_tokenizer_config(tokenizer_json: &[u8]) -> Option<Vec<u8>> {
    use keel_data::tokenizer::{BOS, END, PAD};
    let tok = tokenizers::Tokenizer::from_bytes(tokenizer_json).ok()?;
    let tok = keel_data::tokenizer::KeelTokenizer::from_tokenizer(tok).ok()?;
    keel_data::chat::KeelChatTemplate::new(&tok).ok()?;
    let tc = serde_json::json!({
        "chat_template": keel_data::chat::KeelChatTemplate::JINJA,
        "bos_token": BOS,
        "eos_token": END,
        "pad_token": PAD,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    serde_json::to_vec_pretty(&tc).ok()
}

/// Delete all but the `keep` newest checkpoints. `current` (the one just written, which
/// `latest` names) always survives: a directory reused by a longer earlier run may hold
/// checkpoints with higher step numbers, and those must not outrank it.
fn prune(root: &Path, keep: usize, current: &str) -> Result<()> {
    let mut steps: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| keel_core::CoreError::io(root, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("step-") && n != current)
        })
        .collect();
    steps.sort();
    let keep = keep.max(1) - 1;
    if steps.len() > keep {
        for p in &steps[..steps.len() - keep] {
            let _ = std::fs::remove_dir_all(p);
        }
    }
    Ok(())
}

/// The checkpoint directory `latest` points at, if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    let root = run_dir.join("checkpoints");
    let pointer = root.join("latest");
    if !pointer.exists() {
        return Ok(None);
    }
    let name =
        std::fs::read_to_string(&pointer).map_err(|e| keel_core::CoreError::io(&pointer, e))?;
    let dir = root.join(name.trim());
    if !dir.is_dir() {
        return Err(ck_err(
            &pointer,
            format!("points at {}, which does not exist", dir.display()),
        ));
    }
    Ok(Some(dir))
}

/// Load a safetensors file, turning candle's terse errors into "file: problem".
pub fn load_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(ck_err(path, "file not found"));
    }
    candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
        ck_err(
            path,
            format!("not a readable safetensors file (corrupt or truncated?): {e}"),
        )
    })
}

/// Copy checkpoint weights into the model's variables, checking every name and shape.
pub fn load_weights_into(config: &LlamaConfig, varmap: &VarMap, file: &Path) -> Result<()> {
    load_named_into(&named_vars(config, varmap)?, file)
}

/// Copy tensors from `file` into `named` variables, checking every name and shape.
pub fn load_named_into(named: &[(String, candle_core::Var)], file: &Path) -> Result<()> {
    let tensors = load_tensors(file)?;
    for (name, var) in named {
        let t = tensors
            .get(name)
            .ok_or_else(|| ck_err(file, format!("missing tensor {name}")))?;
        if t.dims() != var.dims() {
            return Err(ck_err(
                file,
                format!(
                    "tensor {name} has shape {:?}, the model expects {:?}",
                    t.dims(),
                    var.dims()
                ),
            ));
        }
        var.set(&t.to_dtype(candle_core::DType::F32)?)?;
    }
    Ok(())
}

/// Read a checkpoint's config and trainer state.
pub fn read_meta(dir: &Path) -> Result<(LlamaConfig, TrainerState)> {
    let config: LlamaConfig = read_json(&dir.join("config.json"))?;
    config
        .validate()
        .map_err(|e| ck_err(&dir.join("config.json"), e.to_string()))?;
    let state: TrainerState = read_json(&dir.join("trainer_state.json"))?;
    Ok((config, state))
}

/// Restore weights and optimizer moments from `dir` into an already-built model/optimizer.
pub fn restore(
    dir: &Path,
    config: &LlamaConfig,
    varmap: &VarMap,
    opt: &mut AdamW,
) -> Result<TrainerState> {
    let named = named_vars(config, varmap)?;
    restore_named(dir, config, &named, "model.safetensors", opt)
}

/// [`restore`] for a checkpoint written by [`save_named`].
pub fn restore_named(
    dir: &Path,
    config: &LlamaConfig,
    named: &[(String, candle_core::Var)],
    weights_file: &str,
    opt: &mut AdamW,
) -> Result<TrainerState> {
    let (saved_cfg, state) = read_meta(dir)?;
    if &saved_cfg != config {
        return Err(ck_err(
            &dir.join("config.json"),
            "model config differs from the run being resumed",
        ));
    }
    load_named_into(named, &dir.join(weights_file))?;
    let opt_file = dir.join("optimizer.safetensors");
    let opt_state = load_tensors(&opt_file)?;
    opt.load_state(state.optimizer_t, &opt_state)
        .map_err(|m| ck_err(&opt_file, m))?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::prune;

    /// A run directory reused by a longer earlier run: its higher-numbered checkpoint must not
    /// outrank (and delete) the one just written.
    #[test]
    fn prune_keeps_the_checkpoint_just_written() {
        let dir = tempfile::tempdir().unwrap();
        for s in ["step-00000100", "step-00000200", "step-00000300"] {
            std::fs::create_dir_all(dir.path().join(s)).unwrap();
        }
        prune(dir.path(), 1, "step-00000200").unwrap();
        assert!(dir.path().join("step-00000200").is_dir());
        assert!(!dir.path().join("step-00000100").exists());
        assert!(!dir.path().join("step-00000300").exists());
        prune(dir.path(), 2, "step-00000200").unwrap();
        assert!(dir.path().join("step-00000200").is_dir());
    }
}
