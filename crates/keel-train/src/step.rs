//! The optimizer step every trainer shares: gradient accumulation, the NaN guard, global-norm
//! clipping and the AdamW update. Kept in one place so pretraining, SFT and later trainers stop
//! on the same conditions and clip the same way.

use crate::error::{Result, TrainError};
use crate::optim::AdamW;
use candle_core::{backprop::GradStore, Var};
use std::path::PathBuf;

/// Add `g` into the accumulator store.
pub fn accumulate(
    acc: &mut Option<GradStore>,
    g: GradStore,
    params: &[(String, Var)],
) -> Result<()> {
    match acc {
        None => *acc = Some(g),
        Some(a) => {
            for (_, v) in params {
                if let Some(new) = g.get(v.as_tensor()) {
                    let sum = match a.get(v.as_tensor()) {
                        Some(old) => (old + new)?,
                        None => new.clone(),
                    };
                    a.insert(v.as_tensor(), sum);
                }
            }
        }
    }
    Ok(())
}

/// The NaN guard: a non-finite `value` stops training, naming the last good checkpoint.
/// `step` is the 1-based step being computed.
pub fn ensure_finite(
    what: &'static str,
    value: f64,
    step: u64,
    last_checkpoint: &Option<PathBuf>,
) -> Result<()> {
    if value.is_finite() {
        return Ok(());
    }
    Err(TrainError::NonFinite {
        what,
        value,
        step,
        last_checkpoint: last_checkpoint.clone(),
    })
}

/// Apply accumulated `grads` (a sum over `accum` micro-batches): average, clip the global norm
/// to `grad_clip` (0 disables) and take an AdamW step at `lr`. Returns the averaged gradient
/// norm before clipping. `step` is the 1-based step being taken, for the NaN guard's message.
pub fn clipped_update(
    opt: &mut AdamW,
    grads: &GradStore,
    accum: usize,
    grad_clip: f64,
    lr: f64,
    step: u64,
    last_checkpoint: &Option<PathBuf>,
) -> Result<f64> {
    let accum = accum as f64;
    let norm = opt.grad_norm(grads)? / accum;
    ensure_finite("gradient norm", norm, step, last_checkpoint)?;
    let clip = if grad_clip > 0.0 && norm > grad_clip {
        grad_clip / norm
    } else {
        1.0
    };
    opt.step(grads, lr, clip / accum)?;
    Ok(norm)
}

/// Where a run starts: the restored state when resuming, and the checkpoint to name if
/// training stops early.
pub struct RunStart {
    pub resumed: Option<crate::checkpoint::TrainerState>,
    pub last_checkpoint: Option<PathBuf>,
}

/// Open `run_dir` for training. With `resume` and a checkpoint present, restore weights and
/// optimizer moments into `varmap`/`opt`, check the trainer config (`config_json`) is the
/// one the run was started with, and cut the metrics log back to the checkpoint's step so it
/// reads as one run. Otherwise start fresh: a new metrics log, and no checkpoint to fall back
/// on (old ones in the directory belong to another run).
pub fn begin_run(
    run_dir: &std::path::Path,
    resume: bool,
    model_cfg: &keel_model::LlamaConfig,
    varmap: &candle_nn::VarMap,
    opt: &mut AdamW,
    config_json: &serde_json::Value,
    metrics: &crate::metrics::MetricsLog,
) -> Result<RunStart> {
    begin_run_with(
        run_dir,
        resume,
        |dir, opt| crate::checkpoint::restore(dir, model_cfg, varmap, opt),
        opt,
        config_json,
        metrics,
    )
}

/// [`begin_run`] with the weight restore supplied by the caller (LoRA adapters, a
/// [`crate::policy::Policy`], extra heads).
pub fn begin_run_with(
    run_dir: &std::path::Path,
    resume: bool,
    restore: impl FnOnce(&std::path::Path, &mut AdamW) -> Result<crate::checkpoint::TrainerState>,
    opt: &mut AdamW,
    config_json: &serde_json::Value,
    metrics: &crate::metrics::MetricsLog,
) -> Result<RunStart> {
    std::fs::create_dir_all(run_dir).map_err(|e| keel_core::CoreError::io(run_dir, e))?;
    let latest = crate::checkpoint::latest(run_dir)?;
    match latest {
        Some(dir) if resume => {
            let state = restore(&dir, opt)?;
            if &state.trainer_config != config_json {
                return Err(TrainError::Checkpoint {
                    path: dir.join("trainer_state.json"),
                    message: "training config differs from the run being resumed".into(),
                });
            }
            metrics.truncate_after(state.step)?;
            tracing::info!("resumed from {} at step {}", dir.display(), state.step);
            Ok(RunStart {
                resumed: Some(state),
                last_checkpoint: Some(dir),
            })
        }
        Some(_) => {
            let _ = std::fs::remove_file(metrics.path());
            Ok(RunStart {
                resumed: None,
                last_checkpoint: None,
            })
        }
        None => {
            if !resume {
                let _ = std::fs::remove_file(metrics.path());
            }
            Ok(RunStart {
                resumed: None,
                last_checkpoint: None,
            })
        }
    }
}
