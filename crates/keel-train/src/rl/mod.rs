//! Reinforcement learning from rewards: PPO, GRPO and RLOO on a Keel checkpoint.
//!
//! Shaped like the other trainers: an [`RlConfig`] with documented defaults and one [`rl`]
//! function taking the base checkpoint (also the frozen reference), prompts, a reward source
//! and a run directory. The parts, each in its own file:
//!
//! - [`losses`]: the maths (GAE, whitening, group and leave-one-out baselines, k1/k3 KL,
//!   adaptive KL, PPO's clipped policy and value losses), unit-tested against hand values;
//! - [`rollout`]: k completions per prompt, batched, with the KV cache and keel-model's sampler;
//! - [`forward`]: the trainer's forward over rollouts (per-token log-probs recomputed, so
//!   sampling and training agree) and PPO's value head;
//! - [`advantages`]: from scores and KL to each algorithm's per-token advantages;
//! - [`reward_source`]: the world verifier, a trained reward model, scoring functions
//!   (judges), [`RewardSource`];
//! - [`state`]: value head and KL coefficient beside each checkpoint, for exact resume.

pub mod advantages;
pub mod config;
pub mod forward;
pub mod losses;
pub mod reward_source;
pub mod rollout;
pub mod state;
mod trainer;

pub use config::{Algo, RlConfig};
pub use losses::KlEstimator;
pub use reward_source::{
    prompts_from_rows, world_prompts, Candidate, FnReward, RewardModelSource, RewardSource,
    RlPrompt, Verifier,
};
pub use trainer::{rl, RlOutcome};
