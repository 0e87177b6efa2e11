//! [`DpoConfig`] (the DPO family's hyper-parameters, TRL's defaults for the loss terms) and
//! [`DpoOutcome`], re-exported from [`crate::dpo`].

use crate::dpo_reference::PreferenceEval;
use crate::error::{Result, TrainError};
use crate::optim::AdamWConfig;
use crate::preference_batch::TokenizeReport;
use crate::schedule::Schedule;
use keel_model::lora::LoraConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which preference loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DpoLoss {
    #[default]
    Sigmoid,
    Ipo,
    Simpo,
    Orpo,
    Kto,
}

impl DpoLoss {
    /// SimPO and ORPO need no reference model.
    pub fn uses_reference(self) -> bool {
        !matches!(self, DpoLoss::Simpo | DpoLoss::Orpo)
    }
}

impl std::str::FromStr for DpoLoss {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_string()))
            .map_err(|_| format!("unknown loss {s:?} (sigmoid, ipo, simpo, orpo, kto)"))
    }
}

/// DPO-family hyper-parameters. Loss parameters default to TRL's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DpoConfig {
    pub loss: DpoLoss,
    /// Inverse temperature β (KL strength; SimPO's reward scale, ORPO's λ). Default 0.1.
    pub beta: f64,
    /// cDPO label smoothing ε for `sigmoid` (assumed label-noise rate). Default 0.
    pub label_smoothing: f64,
    /// RPO weight α of the chosen answers' per-token NLL added to a paired loss (TRL's
    /// `rpo_alpha`; Llama 3 used 0.2). Keeps the chosen answers likely while the margin widens.
    /// Default 0 (off).
    pub rpo_alpha: f64,
    /// SimPO's target margin γ. Default 0.5.
    pub simpo_gamma: f64,
    /// KTO's weights λ_D, λ_U for desirable / undesirable examples. Default 1, 1.
    pub desirable_weight: f64,
    pub undesirable_weight: f64,
    /// Longest prompt + completion in tokens (prompts cut from the left). Default 256.
    pub max_len: usize,
    /// Pairs (KTO: examples) per micro-batch. Default 8.
    pub batch_size: usize,
    /// Micro-batches per optimizer step. Default 1.
    pub grad_accum: usize,
    /// Optimizer steps. Default 100.
    pub max_steps: u64,
    /// Peak learning rate. Default 5e-5 (TRL's 1e-6 is for billion-parameter models; tiny
    /// world models need more to move in a hundred steps).
    pub lr: f64,
    /// Linear warmup steps. Default 10.
    pub warmup_steps: u64,
    /// Cosine floor as a fraction of `lr`. Default 0.1.
    pub min_lr_ratio: f64,
    pub adamw: AdamWConfig,
    /// Global gradient-norm clip; 0 disables. Default 1.0.
    pub grad_clip: f64,
    /// Held-out preference metrics every N steps (and at the end); 0 = end only. Default 50.
    pub eval_every: u64,
    /// Checkpoint every N steps (and at the end); 0 = end only. Default 100.
    pub checkpoint_every: u64,
    /// Checkpoints kept. Default 2.
    pub keep_checkpoints: usize,
    /// Seed for data order and LoRA initialisation. Default 0.
    pub seed: u64,
    /// Train LoRA adapters on a frozen base instead of every weight (the reference is then
    /// the base without adapters). Default: none (full fine-tuning).
    pub lora: Option<LoraConfig>,
}

impl Default for DpoConfig {
    fn default() -> Self {
        DpoConfig {
            loss: DpoLoss::Sigmoid,
            beta: 0.1,
            label_smoothing: 0.0,
            rpo_alpha: 0.0,
            simpo_gamma: 0.5,
            desirable_weight: 1.0,
            undesirable_weight: 1.0,
            max_len: 256,
            batch_size: 8,
            grad_accum: 1,
            max_steps: 100,
            lr: 5e-5,
            warmup_steps: 10,
            min_lr_ratio: 0.1,
            adamw: AdamWConfig {
                weight_decay: 0.0,
                ..AdamWConfig::default()
            },
            grad_clip: 1.0,
            eval_every: 50,
            checkpoint_every: 100,
            keep_checkpoints: 2,
            seed: 0,
            lora: None,
        }
    }
}

impl DpoConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(TrainError::Config(m.to_string()));
        if self.max_len < 4 || self.batch_size == 0 || self.grad_accum == 0 {
            return bad("max_len must be ≥ 4, batch_size and grad_accum > 0");
        }
        if self.max_steps == 0 {
            return bad("max_steps must be > 0");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr must be a positive number");
        }
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return bad("beta must be a positive number");
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return bad("label_smoothing must be in [0, 0.5)");
        }
        if !(self.rpo_alpha.is_finite() && self.rpo_alpha >= 0.0) {
            return bad("rpo_alpha must be a non-negative number");
        }
        if !(self.desirable_weight >= 0.0 && self.undesirable_weight >= 0.0) {
            return bad("KTO weights must be ≥ 0");
        }
        if let Some(l) = &self.lora {
            l.validate()
                .map_err(|e| TrainError::Config(e.to_string()))?;
        }
        Ok(())
    }

    pub fn schedule(&self) -> Schedule {
        Schedule {
            lr: self.lr,
            warmup_steps: self.warmup_steps,
            total_steps: self.max_steps,
            min_lr_ratio: self.min_lr_ratio,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DpoOutcome {
    pub steps: u64,
    pub final_checkpoint: PathBuf,
    pub train_loss: f64,
    /// Held-out metrics at step 0 (policy = reference) and at the end.
    pub val_before: Option<PreferenceEval>,
    pub val: Option<PreferenceEval>,
    pub train_items: usize,
    pub tokenize: TokenizeReport,
    /// Seconds spent on the reference pass (0 when read from the cache).
    pub reference_secs: f64,
    pub tokens_per_sec: f64,
    pub resumed_from: Option<u64>,
}
