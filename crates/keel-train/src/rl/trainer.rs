//! The RL loop. One iteration: pick prompts (seeded epoch order) → sample k completions each
//! with the KV cache → score them → one no-grad pass of the policy, the frozen reference (and
//! the value head) over the rollouts → KL and advantages → `num_ppo_epochs` passes of clipped
//! updates in minibatches → adaptive KL update → log → periodically evaluate and checkpoint.
//!
//! Shared with the other trainers: [`begin_run`] (resume), [`clipped_update`] and
//! [`ensure_finite`] (NaN guard), atomic checkpoints, the metrics JSONL and the progress bar.
//! Everything random is a pure function of (seed, step), so a resumed run repeats the
//! uninterrupted one exactly.

use super::advantages::{self, Scored, Targets};
use super::config::{Algo, RlConfig};
use super::forward::{logprobs_and_entropy, response_hidden, token_logprobs, SeqBatch, ValueHead};
use super::losses::{k3_kl, ppo_policy_loss, value_loss, AdaptiveKl};
use super::reward_source::{Candidate, RewardSource, RlPrompt};
use super::rollout::{completion_seed, sample_group, Completion, RolloutParams};
use super::state::{self, RlState};
use crate::checkpoint::{self, TrainerState};
use crate::error::{Result, TrainError};
use crate::metrics::MetricsLog;
use crate::optim::AdamW;
use crate::pretrain::RunOptions;
use crate::sft::load_base;
use crate::sft_batch::EpochOrder;
use crate::step::{accumulate, begin_run, clipped_update, ensure_finite};
use candle_core::{Device, Tensor};
use keel_core::rng::{rng_for, save_state};
use keel_model::Llama;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokenizers::Tokenizer;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RlOutcome {
    pub steps: u64,
    pub final_checkpoint: PathBuf,
    /// Mean score of greedy answers to the validation prompts before training (fresh runs).
    pub eval_score_before: Option<f64>,
    /// The same at the end.
    pub eval_score_after: Option<f64>,
    /// Mean sampled score (`objective/scores`) of this invocation's first and last iteration.
    pub train_score_first: f64,
    pub train_score_last: f64,
    /// Mean per-sequence KL to the reference at the last iteration.
    pub kl_last: f64,
    /// The KL coefficient at the end (moves when adaptive).
    pub kl_coef: f64,
    /// Completion tokens sampled per second of wall time, whole loop.
    pub tokens_per_sec: f64,
    pub seconds: f64,
    pub resumed_from: Option<u64>,
}

/// The model's stop ids: Keel's end-of-turn and EOS tokens, whichever the tokenizer has.
fn stop_ids(tok: &Tokenizer) -> Result<Vec<u32>> {
    let ids: Vec<u32> = [keel_data::tokenizer::END, keel_data::tokenizer::EOS]
        .iter()
        .filter_map(|t| tok.token_to_id(t))
        .collect();
    if ids.is_empty() {
        return Err(TrainError::Data(
            "tokenizer has neither <|end|> nor <|eos|>: completions could never finish".into(),
        ));
    }
    Ok(ids)
}

fn check_prompts(what: &str, prompts: &[RlPrompt], model: &Llama) -> Result<()> {
    let (vocab, max_pos) = (
        model.config.vocab_size,
        model.config.max_position_embeddings,
    );
    for (i, p) in prompts.iter().enumerate() {
        if p.ids.is_empty() || p.ids.len() + 1 >= max_pos {
            return Err(TrainError::Data(format!(
                "{what} prompt {i}: {} tokens; needs 1..{} to leave room for an answer",
                p.ids.len(),
                max_pos - 1
            )));
        }
        if let Some(&id) = p.ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(TrainError::Data(format!(
                "{what} prompt {i}: token id {id} is outside the vocabulary of {vocab}"
            )));
        }
    }
    Ok(())
}

fn score_all(
    reward: &dyn RewardSource,
    prompts: &[&RlPrompt],
    comps: &[Completion],
) -> Result<Vec<f64>> {
    let cands: Vec<Candidate> = prompts
        .iter()
        .zip(comps)
        .map(|(p, c)| Candidate {
            prompt: p,
            text: &c.text,
            ids: &c.ids,
            finished: c.finished,
        })
        .collect();
    let s = reward.score(&cands)?;
    if s.len() != cands.len() {
        return Err(TrainError::Data(format!(
            "reward source {} returned {} scores for {} completions",
            reward.name(),
            s.len(),
            cands.len()
        )));
    }
    Ok(s)
}

/// Mean greedy score on the first `cfg.eval_prompts` validation prompts, with two samples.
fn evaluate(
    model: &Llama,
    tok: &Tokenizer,
    cfg: &RlConfig,
    val: &[RlPrompt],
    reward: &dyn RewardSource,
    stop: &[u32],
) -> Result<(f64, Vec<String>)> {
    let params = RolloutParams {
        max_new_tokens: cfg.max_new_tokens,
        temperature: 0.0,
        stop_ids: stop.to_vec(),
    };
    let take = &val[..cfg.eval_prompts.min(val.len())];
    let mut comps = Vec::with_capacity(take.len());
    for p in take {
        comps.extend(sample_group(model, tok, &p.ids, &params, &[0])?);
    }
    let prompts: Vec<&RlPrompt> = take.iter().collect();
    let s = score_all(reward, &prompts, &comps)?;
    let samples = comps.iter().take(2).map(|c| c.text.clone()).collect();
    Ok((s.iter().sum::<f64>() / s.len().max(1) as f64, samples))
}

/// Run RL on the model in `base_dir` (it is also the frozen reference) over `train` prompts,
/// scored by `reward`, evaluating greedily on `val`, writing checkpoints and metrics under
/// `run_dir`. Checkpoints carry `opts.tokenizer_json`, or the base's tokenizer.
pub fn rl(
    base_dir: &Path,
    cfg: &RlConfig,
    train: &[RlPrompt],
    val: &[RlPrompt],
    reward: &dyn RewardSource,
    run_dir: &Path,
    opts: RunOptions,
) -> Result<RlOutcome> {
    cfg.validate()?;
    if train.is_empty() {
        return Err(TrainError::Data("no training prompts".into()));
    }
    let base = load_base(base_dir)?;
    let reference = load_base(base_dir)?.model;
    let policy = &base.model;
    let mc = &base.config;
    check_prompts("training", train, policy)?;
    check_prompts("validation", val, policy)?;
    let tokenizer_json = opts.tokenizer_json.clone().or(base.tokenizer_json.clone());
    let tok_bytes = tokenizer_json.as_deref().ok_or_else(|| {
        TrainError::Data(format!(
            "{}: no tokenizer.json (needed to decode completions for the reward)",
            base_dir.display()
        ))
    })?;
    let tok = Tokenizer::from_bytes(tok_bytes)
        .map_err(|e| TrainError::Data(format!("tokenizer.json: {e}")))?;
    let stop = stop_ids(&tok)?;

    let head = match cfg.algo {
        Algo::Ppo => Some(ValueHead::zeros(mc.hidden_size)?),
        _ => None,
    };
    let mut params = checkpoint::named_vars(mc, &base.varmap)?;
    if let Some(h) = &head {
        params.extend(h.named_vars());
    }
    let mut opt = AdamW::new(params.clone(), cfg.adamw);
    let metrics = MetricsLog::new(&run_dir.join("metrics.jsonl"));
    let cfg_json = serde_json::json!({
        "rl": cfg,
        "base_weights_sha256": keel_core::artifact::sha256_file(&base_dir.join("model.safetensors"))?,
        "prompts_sha256": fingerprint(train),
        "reward": reward.name(),
    });
    let start = begin_run(
        run_dir,
        opts.resume,
        mc,
        &base.varmap,
        &mut opt,
        &cfg_json,
        &metrics,
    )?;
    let mut last_checkpoint = start.last_checkpoint;
    let mut kl_ctl = AdaptiveKl {
        value: cfg.kl_coef,
        target: cfg.kl_target.unwrap_or(0.0),
        horizon: cfg.kl_horizon,
    };
    let (mut step, mut tokens_seen) = (0u64, 0u64);
    let mut resumed_from = None;
    if let Some(s) = &start.resumed {
        kl_ctl.value = state::load(run_dir, s.step, head.as_ref())?.kl_coef;
        (step, tokens_seen, resumed_from) = (s.step, s.tokens_seen, Some(s.step));
    }
    let order_rng = rng_for(cfg.seed, "rl-order");
    let mut order = EpochOrder::new(train.len(), cfg.seed);
    let schedule = cfg.schedule();
    let end = opts
        .stop_after
        .map_or(cfg.max_steps, |s| s.min(cfg.max_steps));
    let bar = crate::progress::bar(cfg.max_steps, "rl", opts.show_progress);
    bar.set_position(step);
    let started = Instant::now();
    let start_tokens = tokens_seen;
    let rollout = RolloutParams {
        max_new_tokens: cfg.max_new_tokens,
        temperature: cfg.temperature,
        stop_ids: stop.clone(),
    };

    let save = |step: u64, tokens_seen: u64, opt: &AdamW, kl_coef: f64| -> Result<PathBuf> {
        state::save(run_dir, step, head.as_ref(), &RlState { kl_coef })?;
        let st = TrainerState {
            step,
            tokens_seen,
            data_rng: save_state(&order_rng),
            optimizer_t: opt.t,
            trainer_config: cfg_json.clone(),
        };
        let dir = checkpoint::save(
            run_dir,
            mc,
            &base.varmap,
            opt,
            &st,
            tokenizer_json.as_deref(),
            cfg.keep_checkpoints,
        )?;
        state::prune(run_dir)?;
        Ok(dir)
    };
    let eval = |step: u64| -> Result<Option<f64>> {
        if val.is_empty() || cfg.eval_prompts == 0 {
            return Ok(None);
        }
        let (s, samples) = evaluate(policy, &tok, cfg, val, reward, &stop)?;
        let mut rec =
            serde_json::json!({ "step": step, "eval/scores": s, "eval/samples": samples });
        if let Some(sampler) = opts.sampler {
            rec["samples"] = serde_json::json!(sampler(policy));
        }
        metrics.append(&rec)?;
        Ok(Some(s))
    };

    let eval_before = if step == 0 { eval(0)? } else { None };
    let mut eval_after = None;
    let (mut first_score, mut last_score, mut last_kl) = (None, f64::NAN, f64::NAN);
    let k = cfg.completions_per_prompt;
    while step < end {
        let lr = schedule.lr_at(step);
        // 1. Rollouts.
        let mut prompts: Vec<&RlPrompt> = Vec::with_capacity(cfg.batch_size());
        let mut comps: Vec<Completion> = Vec::with_capacity(cfg.batch_size());
        for i in 0..cfg.prompts_per_step {
            let p = &train[order.at(step * cfg.prompts_per_step as u64 + i as u64)];
            let seeds: Vec<u64> = (0..k)
                .map(|j| completion_seed(cfg.seed, step, i, j))
                .collect();
            comps.extend(sample_group(policy, &tok, &p.ids, &rollout, &seeds)?);
            prompts.extend(std::iter::repeat_n(p, k));
        }
        // 2. Scores, with the missing-EOS penalty.
        let raw = score_all(reward, &prompts, &comps)?;
        for &s in &raw {
            ensure_finite("reward", s, step + 1, &last_checkpoint)?;
        }
        // 3. No-grad pass: rollout-time log-probs, reference log-probs, entropy, values.
        let mut scored = Vec::with_capacity(comps.len());
        for (chunk_i, chunk) in comps.chunks(cfg.micro_batch_size).enumerate() {
            let first = chunk_i * cfg.micro_batch_size;
            let rows: Vec<(&[u32], &[u32])> = chunk
                .iter()
                .enumerate()
                .map(|(j, c)| (prompts[first + j].ids.as_slice(), c.ids.as_slice()))
                .collect();
            let b = SeqBatch::new(&rows)?;
            let h = response_hidden(policy, &b)?.detach();
            let lp = token_logprobs(&h, policy.lm_head(), &b.targets, cfg.temperature)?;
            let (_, ent) = logprobs_and_entropy(&h, policy.lm_head(), &b.targets, cfg.temperature)?;
            let hr = response_hidden(&reference, &b)?.detach();
            let rlp = token_logprobs(&hr, reference.lm_head(), &b.targets, cfg.temperature)?;
            let values = match &head {
                Some(vh) => Some(vh.forward(&h)?.detach().to_vec1::<f32>()?),
                None => None,
            };
            let (lp, rlp) = (lp.to_vec1::<f32>()?, rlp.to_vec1::<f32>()?);
            let mut off = 0;
            for (j, &n) in b.lens.iter().enumerate() {
                let c = &comps[first + j];
                let pen = if c.finished {
                    0.0
                } else {
                    cfg.missing_eos_penalty
                };
                scored.push(Scored {
                    logp: lp[off..off + n].to_vec(),
                    ref_logp: rlp[off..off + n].to_vec(),
                    entropy: ent[off..off + n].to_vec(),
                    values: values.as_ref().map_or(vec![], |v| v[off..off + n].to_vec()),
                    score: raw[first + j] - pen,
                });
                off += n;
            }
        }
        // 4. KL and advantages.
        let kl = advantages::per_token_kl(cfg, &scored);
        let targets = advantages::compute(cfg, &scored, &kl, kl_ctl.value)?;
        // 5. Updates.
        let upd = update(
            cfg,
            policy,
            head.as_ref(),
            &params,
            &mut opt,
            &prompts,
            &comps,
            &scored,
            &targets,
            kl_ctl.value,
            lr,
            step,
            &last_checkpoint,
        )?;

        // 6. Bookkeeping.
        let n = comps.len() as f64;
        let seq_kl: Vec<f64> = kl.iter().map(|k| k.iter().sum()).collect();
        let mean_kl = seq_kl.iter().sum::<f64>() / n;
        let mean_score = scored.iter().map(|s| s.score).sum::<f64>() / n;
        let tokens: usize = comps.iter().map(|c| c.ids.len()).sum();
        let all_ent: Vec<f32> = scored.iter().flat_map(|s| s.entropy.clone()).collect();
        let entropy = all_ent.iter().map(|&e| e as f64).sum::<f64>() / all_ent.len().max(1) as f64;
        let kl_used = kl_ctl.value;
        if cfg.kl_target.is_some() {
            kl_ctl.update(mean_kl, comps.len());
        }
        step += 1;
        tokens_seen += tokens as u64;
        first_score.get_or_insert(mean_score);
        (last_score, last_kl) = (mean_score, mean_kl);
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        metrics.append(&serde_json::json!({
            "step": step, "episode": step * comps.len() as u64, "lr": lr,
            "grad_norm": upd.grad_norm, "kl_coef": kl_used,
            "objective/kl": mean_kl, "objective/entropy": entropy,
            "objective/scores": mean_score,
            "objective/raw_scores": raw.iter().sum::<f64>() / n,
            "objective/non_score_reward": -kl_used * mean_kl,
            "objective/rlhf_reward": mean_score - kl_used * mean_kl,
            "policy/clipfrac": upd.clipfrac, "policy/approxkl": upd.approx_kl,
            "loss/policy": upd.policy_loss, "loss/value": upd.value_loss,
            "val/clipfrac": upd.value_clipfrac,
            "val/num_eos_tokens": comps.iter().filter(|c| c.finished).count(),
            "completion_length": tokens as f64 / n,
            "tokens_per_sec": (tokens_seen - start_tokens) as f64 / secs,
        }))?;
        bar.set_position(step);
        bar.set_message(format!("score {mean_score:.3} · kl {mean_kl:.3}"));

        let is_last = step == end;
        if (cfg.eval_every > 0 && step.is_multiple_of(cfg.eval_every)) || is_last {
            eval_after = eval(step)?;
        }
        if (cfg.checkpoint_every > 0 && step.is_multiple_of(cfg.checkpoint_every)) || is_last {
            last_checkpoint = Some(save(step, tokens_seen, &opt, kl_ctl.value)?);
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let final_checkpoint = match last_checkpoint {
        Some(p) => p,
        None => save(step, tokens_seen, &opt, kl_ctl.value)?,
    };
    Ok(RlOutcome {
        steps: step,
        final_checkpoint,
        eval_score_before: eval_before,
        eval_score_after: eval_after,
        train_score_first: first_score.unwrap_or(f64::NAN),
        train_score_last: last_score,
        kl_last: last_kl,
        kl_coef: kl_ctl.value,
        tokens_per_sec: (tokens_seen - start_tokens) as f64 / seconds.max(1e-9),
        seconds,
        resumed_from,
    })
}

/// Token-weighted means of one iteration's updates.
#[derive(Default)]
struct UpdateStats {
    policy_loss: f64,
    value_loss: f64,
    clipfrac: f64,
    value_clipfrac: f64,
    approx_kl: f64,
    grad_norm: f64,
}

fn f32_tensor(rows: &[usize], pick: impl Fn(usize) -> Vec<f32>) -> Result<Tensor> {
    let v: Vec<f32> = rows.iter().flat_map(|&i| pick(i)).collect();
    let n = v.len();
    Ok(Tensor::from_vec(v, n, &Device::Cpu)?)
}

/// `num_ppo_epochs` passes over the rollout batch in shuffled minibatches, one optimizer
/// update per minibatch, micro-batched for memory with token-weighted gradient accumulation.
#[allow(clippy::too_many_arguments)]
fn update(
    cfg: &RlConfig,
    policy: &Llama,
    head: Option<&ValueHead>,
    params: &[(String, candle_core::Var)],
    opt: &mut AdamW,
    prompts: &[&RlPrompt],
    comps: &[Completion],
    scored: &[Scored],
    targets: &[Targets],
    kl_coef: f64,
    lr: f64,
    step: u64,
    last_checkpoint: &Option<PathBuf>,
) -> Result<UpdateStats> {
    let b = comps.len();
    let mb_size = b.div_ceil(cfg.num_mini_batches);
    let mut st = UpdateStats::default();
    let (mut weight_total, mut updates) = (0f64, 0usize);
    for epoch in 0..cfg.num_ppo_epochs {
        let mut perm: Vec<usize> = (0..b).collect();
        perm.shuffle(&mut rng_for(
            cfg.seed,
            &format!("rl-minibatch-{step}-{epoch}"),
        ));
        for mb in perm.chunks(mb_size) {
            let mb_tokens: usize = mb.iter().map(|&i| comps[i].ids.len()).sum();
            let mut acc = None;
            for micro in mb.chunks(cfg.micro_batch_size) {
                let rows: Vec<(&[u32], &[u32])> = micro
                    .iter()
                    .map(|&i| (prompts[i].ids.as_slice(), comps[i].ids.as_slice()))
                    .collect();
                let batch = SeqBatch::new(&rows)?;
                let h = response_hidden(policy, &batch)?;
                let logp = token_logprobs(&h, policy.lm_head(), &batch.targets, cfg.temperature)?;
                let old = f32_tensor(micro, |i| scored[i].logp.clone())?;
                let adv = f32_tensor(micro, |i| targets[i].adv.clone())?;
                let pol = ppo_policy_loss(&logp, &old, &adv, cfg.cliprange)?;
                let mut loss = pol.loss.clone();
                let w = batch.tokens() as f64 / mb_tokens as f64;
                let pl = pol.loss.to_scalar::<f32>()? as f64;
                ensure_finite("policy loss", pl, step + 1, last_checkpoint)?;
                st.policy_loss += pl * w;
                st.clipfrac += pol.clipfrac * w;
                st.approx_kl +=
                    0.5 * ((&logp - &old)?.sqr()?.mean_all()?.to_scalar::<f32>()? as f64) * w;
                if let Some(vh) = head {
                    let v = vh.forward(&h)?;
                    let old_v = f32_tensor(micro, |i| scored[i].values.clone())?;
                    let ret = f32_tensor(micro, |i| targets[i].returns.clone())?;
                    let vl = value_loss(&v, &old_v, &ret, cfg.cliprange_value)?;
                    let vv = vl.loss.to_scalar::<f32>()? as f64;
                    ensure_finite("value loss", vv, step + 1, last_checkpoint)?;
                    st.value_loss += vv * w;
                    st.value_clipfrac += vl.clipfrac * w;
                    loss = (loss + (vl.loss * cfg.vf_coef)?)?;
                }
                if cfg.algo == Algo::Grpo && kl_coef > 0.0 {
                    let rlp = f32_tensor(micro, |i| scored[i].ref_logp.clone())?;
                    loss = (loss + (k3_kl(&logp, &rlp)?.mean_all()? * kl_coef)?)?;
                }
                // Token-weighted: the minibatch's gradient is that of its mean over tokens.
                let loss = (loss * w)?;
                accumulate(&mut acc, loss.backward()?, params)?;
            }
            let grads = acc.expect("a minibatch has at least one row");
            st.grad_norm +=
                clipped_update(opt, &grads, 1, cfg.grad_clip, lr, step + 1, last_checkpoint)?;
            weight_total += 1.0;
            updates += 1;
        }
    }
    let d = weight_total.max(1.0);
    st.policy_loss /= d;
    st.value_loss /= d;
    st.clipfrac /= d;
    st.value_clipfrac /= d;
    st.approx_kl /= d;
    st.grad_norm /= updates.max(1) as f64;
    Ok(st)
}

/// SHA-256 of the prompts' ids and golds: the run's data identity.
fn fingerprint(prompts: &[RlPrompt]) -> String {
    let mut bytes = Vec::new();
    for p in prompts {
        bytes.extend((p.ids.len() as u32).to_le_bytes());
        p.ids.iter().for_each(|id| bytes.extend(id.to_le_bytes()));
        bytes.extend(serde_json::to_vec(&p.gold).unwrap_or_default());
    }
    keel_core::artifact::sha256_hex(&bytes)
}
