//! The demo's RLAIF and RLHF stages, both driven by the reward model the demo just trained:
//!
//! - RLAIF (`keel label`): the reward model as an AI judge labels the test split's preference
//!   pairs, and the labels are compared with the world's gold ones;
//! - RLHF (`keel rl --reward reward-model`, optional): PPO, GRPO or RLOO from the SFT model
//!   against the reward model, with a KL leash to the SFT model, on every world task prompt.

use super::align::{quiet_opts, record, rel};
use crate::commands::label::RewardScorer;
use crate::commands::rl::world_split_prompts;
use anyhow::{Context, Result};
use keel_core::run_log::{kinds, DataRecord, StageRecord};
use keel_data::tokenizer::KeelTokenizer;
use keel_data::world::Split;
use keel_eval::label::{label_world, write_label_run, LabelConfig, LabelReport, ScorerJudge};
use keel_train::reward_model::RewardModel;
use keel_train::rl::{rl, RewardModelSource, RlConfig, RlOutcome};
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Label the test split's preference pairs with the reward model (A/B order seeded; a scalar
/// judge sees no order, so no swap is needed); files go to `run_dir/rlaif/`.
pub fn rlaif_stage(run_dir: &Path, world_dir: &Path, rm: &Path, seed: u64) -> Result<LabelReport> {
    let model = RewardModel::load(rm).with_context(|| format!("reward model {}", rm.display()))?;
    let judge = ScorerJudge(RewardScorer {
        model,
        name: format!("reward:{}", rel(run_dir, rm)),
    });
    let cfg = LabelConfig {
        keep_ties: false,
        keep_inconsistent: false,
        concurrency: 1,
    };
    let run = label_world(world_dir, Split::Test, &judge, &cfg, seed)?;
    write_label_run(&run_dir.join("rlaif"), &run)?;
    Ok(run.report)
}

/// RL from the SFT model against the reward model. Validation prompts are a seeded shuffle of
/// the validation split's banks, so the greedy reward before/after covers every kind of task.
pub fn rl_stage(
    run_dir: &Path,
    world_dir: &Path,
    sft: &Path,
    rm: &Path,
    cfg: &RlConfig,
) -> Result<RlOutcome> {
    let t = Instant::now();
    let tok = KeelTokenizer::from_file(&sft.join("tokenizer.json"))?;
    let train = world_split_prompts(world_dir, Split::Train, &tok, false)?;
    let mut val = world_split_prompts(world_dir, Split::Validation, &tok, false)?;
    val.shuffle(&mut keel_core::rng::rng_for(cfg.seed, "demo/rl-validation"));
    let reward = RewardModelSource::load(rm)?;
    let out = rl(
        sft,
        cfg,
        &train,
        &val,
        &reward,
        &run_dir.join("rl"),
        quiet_opts(),
    )?;
    let mut st = StageRecord::new("rl", kinds::RL);
    st.command = Some(format!(
        "keel demo (RL: {:?} against the reward model)",
        cfg.algo
    ));
    st.hyperparameters = serde_json::to_value(cfg)?;
    st.hyperparameters["reward_model"] = serde_json::json!(rel(run_dir, rm));
    st.data.push(DataRecord {
        path: "world/tasks/train (instructions, harmful, benign_sensitive, unanswerable, false_premise)"
            .into(),
        role: Some("prompts".into()),
        sha256: None,
        rows: Some(train.len() as u64),
        dropped: Default::default(),
    });
    st.checkpoint = Some(rel(run_dir, &out.final_checkpoint));
    st.training = BTreeMap::from([
        ("steps".into(), out.steps as f64),
        ("train_score_first".into(), out.train_score_first),
        ("train_score_last".into(), out.train_score_last),
        ("kl_last".into(), out.kl_last),
        ("tokens_per_s".into(), out.tokens_per_sec),
        ("wall_s".into(), t.elapsed().as_secs_f64()),
    ]);
    for (k, v) in [
        ("val_score_before", out.eval_score_before),
        ("val_score", out.eval_score_after),
    ] {
        if let Some(v) = v {
            st.training.insert(k.into(), v);
        }
    }
    record(run_dir, st)?;
    Ok(out)
}
