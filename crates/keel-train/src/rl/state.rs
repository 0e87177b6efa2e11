//! RL state beyond what every trainer checkpoints: PPO's value head and the (adaptive) KL
//! coefficient.
//!
//! A checkpoint directory stays a plain policy model directory (chat with it, export it), so
//! these live beside it in `checkpoints/rl-step-N/`, written whole under a temporary name
//! and renamed into place *before* the policy checkpoint: whenever `latest` names step N, the
//! matching `rl-step-N` is complete.

use super::forward::ValueHead;
use crate::checkpoint::load_tensors;
use crate::error::{Result, TrainError};
use candle_core::Tensor;
use keel_core::artifact::{read_json, write_json_atomic};
use keel_core::CoreError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RlState {
    pub kl_coef: f64,
}

fn dir_for(run_dir: &Path, step: u64) -> PathBuf {
    run_dir
        .join("checkpoints")
        .join(format!("rl-step-{step:08}"))
}

/// Write the value head (if any) and `state` for `step`.
pub fn save(run_dir: &Path, step: u64, head: Option<&ValueHead>, state: &RlState) -> Result<()> {
    let final_dir = dir_for(run_dir, step);
    let root = final_dir.parent().expect("has a parent");
    let tmp = root.join(format!(".tmp-rl-{step:08}-{}", std::process::id()));
    let io = |p: &Path, e| TrainError::from(CoreError::io(p, e));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    if let Some(h) = head {
        let t: HashMap<String, Tensor> = h
            .named_vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        candle_core::safetensors::save(&t, tmp.join("value_head.safetensors"))?;
    }
    write_json_atomic(&tmp.join("rl_state.json"), state)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| io(&final_dir, e))
}

/// Restore step `step`'s state, loading the value head's weights into `head`.
pub fn load(run_dir: &Path, step: u64, head: Option<&ValueHead>) -> Result<RlState> {
    let dir = dir_for(run_dir, step);
    if !dir.is_dir() {
        return Err(TrainError::Checkpoint {
            path: dir,
            message: "missing: the RL state of the checkpoint being resumed".into(),
        });
    }
    if let Some(h) = head {
        let file = dir.join("value_head.safetensors");
        let tensors = load_tensors(&file)?;
        for (name, var) in h.named_vars() {
            let t = tensors.get(&name).ok_or_else(|| TrainError::Checkpoint {
                path: file.clone(),
                message: format!("missing tensor {name}"),
            })?;
            if t.dims() != var.dims() {
                return Err(TrainError::Checkpoint {
                    path: file.clone(),
                    message: format!("{name} has shape {:?}, expected {:?}", t.dims(), var.dims()),
                });
            }
            var.set(t)?;
        }
    }
    Ok(read_json(&dir.join("rl_state.json"))?)
}

/// Remove `rl-step-N` directories whose policy checkpoint `step-N` is gone (pruned, or never
/// written because the run stopped in between).
pub fn prune(run_dir: &Path) -> Result<()> {
    let root = run_dir.join("checkpoints");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(());
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(rest) = name.strip_prefix("rl-") {
            if !root.join(rest).is_dir() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}
