//! [`RlConfig`]: the RL trainer's hyper-parameters, with documented defaults and validation.

use super::losses::KlEstimator;
use crate::error::{Result, TrainError};
use crate::optim::AdamWConfig;
use crate::schedule::Schedule;
use serde::{Deserialize, Serialize};

/// Which policy-gradient algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Algo {
    /// PPO with a value head, GAE, clipped policy and value losses, and the KL penalty to the
    /// reference folded into per-token rewards (Ouyang et al. 2022; TRL `PPOTrainer`).
    #[default]
    Ppo,
    /// Group-relative advantages: each completion's reward normalised by its prompt group's
    /// mean and std, clipped surrogate, k3 KL to the reference as a loss term (Shao et al. 2024).
    Grpo,
    /// REINFORCE leave-one-out: the baseline of each completion is the mean reward of the other
    /// k − 1 in its group; the KL penalty is subtracted from the sequence reward (Ahmadian et al.
    /// 2024; TRL `RLOOTrainer`).
    Rloo,
}

impl std::str::FromStr for Algo {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ppo" => Ok(Algo::Ppo),
            "grpo" => Ok(Algo::Grpo),
            "rloo" => Ok(Algo::Rloo),
            other => Err(format!("unknown RL algorithm {other:?} (ppo, grpo, rloo)")),
        }
    }
}

/// RL hyper-parameters. Names follow TRL where TRL has the knob. Defaults suit the world's
/// tiny models on a laptop CPU: small batches, short completions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RlConfig {
    pub algo: Algo,
    /// Rollout iterations (each: sample, score, then `num_ppo_epochs` passes of updates).
    /// Default 100.
    pub max_steps: u64,
    /// Prompts sampled per iteration. Default 8.
    pub prompts_per_step: usize,
    /// Completions per prompt (the group size k). GRPO and RLOO need ≥ 2. Default 4.
    pub completions_per_prompt: usize,
    /// Longest completion in tokens, end-of-turn included. Default 48.
    pub max_new_tokens: usize,
    /// Sampling temperature (> 0). The trainer's log-probs use the same temperature, so the
    /// ratio compares the distribution that was actually sampled. Default 1.0.
    pub temperature: f64,
    /// Passes over each rollout batch. Default 2.
    pub num_ppo_epochs: usize,
    /// Optimizer updates per pass (the rollout batch split in this many minibatches). Default 1.
    pub num_mini_batches: usize,
    /// Sequences per forward/backward; gradients accumulate up to a minibatch. Memory only,
    /// results do not depend on it beyond float rounding. Default 8.
    pub micro_batch_size: usize,
    /// Peak learning rate. Default 3e-4.
    pub lr: f64,
    /// Linear warmup steps. Default 0.
    pub warmup_steps: u64,
    /// Cosine floor as a fraction of `lr`; 1.0 keeps the rate constant. Default 1.0.
    pub min_lr_ratio: f64,
    /// AdamW; weight decay defaults to 0 here: the KL penalty already anchors the weights.
    pub adamw: AdamWConfig,
    /// Global gradient-norm clip; 0 disables. Default 1.0.
    pub grad_clip: f64,
    /// Policy ratio clip ε. Default 0.2.
    pub cliprange: f64,
    /// Value clip around the rollout-time values (PPO). Default 0.2.
    pub cliprange_value: f64,
    /// Weight of the value loss (PPO). Default 0.1.
    pub vf_coef: f64,
    /// Discount (PPO). Default 1.0: one reward at the end of a short episode.
    pub gamma: f64,
    /// GAE λ (PPO). Default 0.95.
    pub lam: f64,
    /// KL coefficient β (initial value when adaptive); 0 disables the KL term. Default 0.05.
    pub kl_coef: f64,
    /// KL estimator for the per-token penalty (PPO, RLOO). GRPO's loss term is always k3,
    /// the non-negative one. Default k1.
    pub kl_estimator: KlEstimator,
    /// Adaptive KL (Ziegler et al.): steer the per-sequence KL towards this target. Default
    /// `None` (fixed coefficient).
    pub kl_target: Option<f64>,
    /// Adaptive KL horizon in samples. Default 10 000.
    pub kl_horizon: f64,
    /// Subtracted from the score of a completion that hit `max_new_tokens` without ending its
    /// turn (TRL's `missing_eos_penalty`). Default 1.0; 0 disables.
    pub missing_eos_penalty: f64,
    /// Whiten advantages over the batch (PPO, RLOO). Default true.
    pub whiten_advantages: bool,
    /// GRPO: divide by the group's std (false: mean-centre only, Dr. GRPO). Default true.
    pub scale_rewards: bool,
    /// Greedy evaluation on the validation prompts every N steps (and at the start and
    /// end); 0 = start and end only. Default 25.
    pub eval_every: u64,
    /// Validation prompts evaluated (the first N). Default 32.
    pub eval_prompts: usize,
    /// Checkpoint every N steps (and at the end); 0 = only at the end. Default 25.
    pub checkpoint_every: u64,
    /// Checkpoints kept. Default 2.
    pub keep_checkpoints: usize,
    /// Seed for prompt order, sampling and minibatch order. Default 0.
    pub seed: u64,
}

impl Default for RlConfig {
    fn default() -> Self {
        RlConfig {
            algo: Algo::Ppo,
            max_steps: 100,
            prompts_per_step: 8,
            completions_per_prompt: 4,
            max_new_tokens: 48,
            temperature: 1.0,
            num_ppo_epochs: 2,
            num_mini_batches: 1,
            micro_batch_size: 8,
            lr: 3e-4,
            warmup_steps: 0,
            min_lr_ratio: 1.0,
            adamw: AdamWConfig {
                weight_decay: 0.0,
                ..AdamWConfig::default()
            },
            grad_clip: 1.0,
            cliprange: 0.2,
            cliprange_value: 0.2,
            vf_coef: 0.1,
            gamma: 1.0,
            lam: 0.95,
            kl_coef: 0.05,
            kl_estimator: KlEstimator::K1,
            kl_target: None,
            kl_horizon: 10_000.0,
            missing_eos_penalty: 1.0,
            whiten_advantages: true,
            scale_rewards: true,
            eval_every: 25,
            eval_prompts: 32,
            checkpoint_every: 25,
            keep_checkpoints: 2,
            seed: 0,
        }
    }
}

impl RlConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(format!("rl: {m}")));
        let pos = |x: f64| x.is_finite() && x > 0.0;
        let nonneg = |x: f64| x.is_finite() && x >= 0.0;
        if self.max_steps == 0 || self.prompts_per_step == 0 || self.completions_per_prompt == 0 {
            return bad(
                "max_steps, prompts_per_step and completions_per_prompt must be > 0".into(),
            );
        }
        if self.algo != Algo::Ppo && self.completions_per_prompt < 2 {
            return bad(format!(
                "{:?} compares completions within a prompt group: completions_per_prompt must \
                 be ≥ 2, got {}",
                self.algo, self.completions_per_prompt
            ));
        }
        if self.max_new_tokens == 0 || self.micro_batch_size == 0 || self.num_ppo_epochs == 0 {
            return bad("max_new_tokens, micro_batch_size and num_ppo_epochs must be > 0".into());
        }
        let batch = self.prompts_per_step * self.completions_per_prompt;
        if self.num_mini_batches == 0 || self.num_mini_batches > batch {
            return bad(format!(
                "num_mini_batches must be in 1..={batch} (the rollout batch size)"
            ));
        }
        if !pos(self.temperature) {
            return bad("temperature must be > 0 (sampling must be stochastic)".into());
        }
        if !pos(self.lr) || !pos(self.cliprange) || !pos(self.cliprange_value) {
            return bad("lr, cliprange and cliprange_value must be positive numbers".into());
        }
        if !nonneg(self.vf_coef) || !nonneg(self.kl_coef) || !nonneg(self.missing_eos_penalty) {
            return bad("vf_coef, kl_coef and missing_eos_penalty must be ≥ 0".into());
        }
        if !nonneg(self.grad_clip) || !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return bad("grad_clip must be ≥ 0 and min_lr_ratio in [0, 1]".into());
        }
        if !(0.0..=1.0).contains(&self.gamma) || !(0.0..=1.0).contains(&self.lam) {
            return bad("gamma and lam must be in [0, 1]".into());
        }
        if let Some(t) = self.kl_target {
            if !pos(t) || !pos(self.kl_horizon) || self.kl_coef == 0.0 {
                return bad(
                    "adaptive KL needs kl_target > 0, kl_horizon > 0 and kl_coef > 0".into(),
                );
            }
        }
        Ok(())
    }

    /// Rollout batch size: prompts × completions.
    pub fn batch_size(&self) -> usize {
        self.prompts_per_step * self.completions_per_prompt
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        RlConfig::default().validate().unwrap();
        let grpo_k1 = RlConfig {
            algo: Algo::Grpo,
            completions_per_prompt: 1,
            ..Default::default()
        };
        let e = grpo_k1.validate().unwrap_err().to_string();
        assert!(e.contains("completions_per_prompt"), "{e}");
        for bad in [
            RlConfig {
                temperature: 0.0,
                ..Default::default()
            },
            RlConfig {
                num_mini_batches: 1000,
                ..Default::default()
            },
            RlConfig {
                kl_target: Some(1.0),
                kl_coef: 0.0,
                ..Default::default()
            },
            RlConfig {
                lr: f64::NAN,
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!("GRPO".parse::<Algo>().unwrap(), Algo::Grpo);
        assert!("a2c".parse::<Algo>().is_err());
    }
}
