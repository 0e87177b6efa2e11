//! Reward-model training (`keel rm`): the transformer plus a scalar head on the last real
//! token ([`keel_model::reward_head`]), trained with the Bradley–Terry loss on preference
//! pairs, as TRL's `RewardTrainer`. Shaped like [`crate::sft`]: a [`RewardConfig`] with
//! documented defaults, one [`train_reward`] function, the shared optimizer step, NaN guard,
//! exact resume, metrics JSONL and progress bar.
//!
//! A checkpoint is a Hugging Face `LlamaForSequenceClassification` directory: `model.safetensors`
//! holds the `model.*` tensors and `score.weight` `[1, hidden]`; `reward_head.json` records the
//! head (`num_labels` 1, last-non-pad-token pooling). [`crate::reward_model::RewardModel`]
//! loads it for scoring.

use crate::checkpoint::{self, TrainerState};
use crate::error::{Result, TrainError};
use crate::metrics::MetricsLog;
use crate::optim::{AdamW, AdamWConfig};
use crate::preference_batch::{collate_seqs, PairTokenizer, TokenizeReport, TokenizedPair};
use crate::preference_loss::bradley_terry;
use crate::pretrain::RunOptions;
use crate::schedule::Schedule;
use crate::sft::load_base;
use crate::sft_batch::EpochOrder;
use crate::step::{accumulate, begin_run, clipped_update, ensure_finite};
use candle_core::{Tensor, Var};
use keel_core::artifact::{write_atomic, write_json_atomic};
use keel_core::rng::{rng_for, save_state};
use keel_data::preference::PreferencePair;
use keel_data::tokenizer::KeelTokenizer;
use keel_model::reward_head::{init_score, SCORE_WEIGHT};
use keel_model::{Llama, LlamaConfig};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Reward-model hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RewardConfig {
    /// Longest prompt + response in tokens (prompts are cut from the left). Default 256.
    pub max_len: usize,
    /// Pairs per micro-batch (chosen and rejected run as one batch of 2×). Default 8.
    pub batch_size: usize,
    /// Micro-batches per optimizer step. Default 1.
    pub grad_accum: usize,
    /// Optimizer steps. Default 200.
    pub max_steps: u64,
    /// Peak learning rate. Default 2e-4 (TRL's 1e-5 is for billion-parameter models).
    pub lr: f64,
    /// Linear warmup steps. Default 10.
    pub warmup_steps: u64,
    /// Cosine floor as a fraction of `lr`. Default 0.1.
    pub min_lr_ratio: f64,
    pub adamw: AdamWConfig,
    /// Global gradient-norm clip; 0 disables. Default 1.0.
    pub grad_clip: f64,
    /// Weight of the reward-centering term `mean((r_c + r_r)²)`. Default 0 (TRL: off).
    pub center_coef: f64,
    /// Held-out accuracy every N steps (and at the end); 0 = end only. Default 50.
    pub eval_every: u64,
    /// Checkpoint every N steps (and at the end); 0 = end only. Default 100.
    pub checkpoint_every: u64,
    /// Checkpoints kept. Default 2.
    pub keep_checkpoints: usize,
    /// Seed for data order and the head's initialisation. Default 0.
    pub seed: u64,
}

impl Default for RewardConfig {
    fn default() -> Self {
        RewardConfig {
            max_len: 256,
            batch_size: 8,
            grad_accum: 1,
            max_steps: 200,
            lr: 2e-4,
            warmup_steps: 10,
            min_lr_ratio: 0.1,
            adamw: AdamWConfig::default(),
            grad_clip: 1.0,
            center_coef: 0.0,
            eval_every: 50,
            checkpoint_every: 100,
            keep_checkpoints: 2,
            seed: 0,
        }
    }
}

impl RewardConfig {
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
        if !(self.center_coef.is_finite() && self.center_coef >= 0.0) {
            return bad("center_coef must be ≥ 0");
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

/// Held-out pairwise metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairEval {
    /// Fraction of pairs with r(chosen) > r(rejected).
    pub accuracy: f64,
    /// Mean r(chosen) − r(rejected).
    pub margin: f64,
    /// Mean Bradley–Terry loss.
    pub loss: f64,
    pub pairs: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RewardOutcome {
    pub steps: u64,
    pub final_checkpoint: PathBuf,
    pub train_loss: f64,
    /// Held-out accuracy before training (random head) and at the end.
    pub val_before: Option<PairEval>,
    pub val: Option<PairEval>,
    pub train_pairs: usize,
    pub tokenize: TokenizeReport,
    pub tokens_per_sec: f64,
    pub resumed_from: Option<u64>,
}

/// What `reward_head.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardHeadMeta {
    pub architecture: String,
    pub num_labels: usize,
    pub score_tensor: String,
    /// How a sequence's hidden state is picked: its last non-padding token.
    pub pooling: String,
    pub max_len: usize,
}

/// Scores of `pairs` (chosen then rejected per micro-batch), no gradient.
pub fn eval_pairs(
    model: &Llama,
    score: &Tensor,
    pairs: &[TokenizedPair],
    batch: usize,
) -> Result<PairEval> {
    let (mut correct, mut margin, mut loss) = (0usize, 0f64, 0f64);
    for chunk in pairs.chunks(batch.max(1)) {
        let (c, r) = pair_scores(model, score, chunk)?;
        let (c, r) = (c.detach(), r.detach());
        loss += bradley_terry(&c, &r, None, 0.0)?.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        for (a, b) in c.to_vec1::<f32>()?.iter().zip(r.to_vec1::<f32>()?) {
            correct += usize::from(*a > b);
            margin += (*a - b) as f64;
        }
    }
    let n = pairs.len().max(1) as f64;
    Ok(PairEval {
        accuracy: correct as f64 / n,
        margin: margin / n,
        loss: loss / n,
        pairs: pairs.len(),
    })
}

/// Chosen and rejected scores `[b]` each, from one forward pass over both.
fn pair_scores(model: &Llama, score: &Tensor, pairs: &[TokenizedPair]) -> Result<(Tensor, Tensor)> {
    let mut seqs: Vec<(&[u32], &[u32])> = pairs
        .iter()
        .map(|p| (&p.prompt[..], &p.chosen[..]))
        .collect();
    seqs.extend(pairs.iter().map(|p| (&p.prompt[..], &p.rejected[..])));
    let b = collate_seqs(&seqs)?;
    // The head reads the last real token: the input row ends one before the final token, so
    // score the full sequence by feeding ids = x with the final target appended.
    let s = model.reward_scores(
        &full_ids(&b)?,
        &b.last.iter().map(|l| l + 1).collect::<Vec<_>>(),
        score,
    )?;
    let n = pairs.len();
    Ok((s.narrow(0, 0, n)?, s.narrow(0, n, n)?))
}

/// Unshifted ids `[b, t+1]` of a shifted batch: the first input column, then every target.
fn full_ids(b: &crate::preference_batch::SeqBatch) -> Result<Tensor> {
    Ok(Tensor::cat(&[b.x.narrow(1, 0, 1)?, b.y.clone()], 1)?)
}

/// Write a reward checkpoint: model tensors plus `score.weight` in `model.safetensors`,
/// `reward_head.json`, optimizer state and trainer state; atomically, as
/// [`checkpoint::save`].
#[allow(clippy::too_many_arguments)]
fn save_reward(
    run_dir: &Path,
    config: &LlamaConfig,
    varmap: &candle_nn::VarMap,
    score: &Var,
    meta: &RewardHeadMeta,
    opt: &AdamW,
    state: &TrainerState,
    tokenizer_json: Option<&[u8]>,
    keep: usize,
) -> Result<PathBuf> {
    let root = run_dir.join("checkpoints");
    let name = format!("step-{:08}", state.step);
    let final_dir = root.join(&name);
    let tmp = root.join(format!(".tmp-{name}-{}", std::process::id()));
    let io = |p: &Path, e| keel_core::CoreError::io(p, e);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let mut weights: HashMap<String, Tensor> = checkpoint::named_vars(config, varmap)?
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().clone()))
        .collect();
    weights.insert(SCORE_WEIGHT.to_string(), score.as_tensor().clone());
    candle_core::safetensors::save(&weights, tmp.join("model.safetensors"))?;
    let opt_state: HashMap<String, Tensor> = opt.state_tensors()?.into_iter().collect();
    candle_core::safetensors::save(&opt_state, tmp.join("optimizer.safetensors"))?;
    write_json_atomic(&tmp.join("config.json"), config)?;
    write_json_atomic(&tmp.join("reward_head.json"), meta)?;
    write_json_atomic(&tmp.join("trainer_state.json"), state)?;
    if let Some(t) = tokenizer_json {
        write_atomic(&tmp.join("tokenizer.json"), t)?;
    }
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| io(&final_dir, e))?;
    write_atomic(&root.join("latest"), name.as_bytes())?;
    let mut steps: Vec<PathBuf> = std::fs::read_dir(&root)
        .map_err(|e| io(&root, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("step-"))
        })
        .collect();
    steps.sort();
    for p in steps.iter().rev().skip(keep.max(1)) {
        let _ = std::fs::remove_dir_all(p);
    }
    Ok(final_dir)
}

/// Train a reward model from the checkpoint in `base_dir` (which must hold `tokenizer.json`)
/// on `train` pairs, reporting accuracy on `val`, under `run_dir`.
pub fn train_reward(
    base_dir: &Path,
    cfg: &RewardConfig,
    train: &[PreferencePair],
    val: &[PreferencePair],
    run_dir: &Path,
    opts: RunOptions,
) -> Result<RewardOutcome> {
    cfg.validate()?;
    let base = load_base(base_dir)?;
    let mc = &base.config;
    let tok_path = base_dir.join("tokenizer.json");
    let tok = KeelTokenizer::from_file(&tok_path).map_err(|e| TrainError::Data(e.to_string()))?;
    let renderer = crate::chat_render::ChatRenderer::keel(tok)?;
    let pt = PairTokenizer::new(&renderer, cfg.max_len.min(mc.max_position_embeddings));
    let (train_t, report) = pt.pairs(train);
    let (val_t, _) = pt.pairs(val);
    if train_t.is_empty() {
        return Err(TrainError::Data(format!(
            "no training pairs ({} given, {} too long for max_len {})",
            train.len(),
            report.dropped,
            cfg.max_len
        )));
    }
    let tokenizer_json = opts.tokenizer_json.clone().or(base.tokenizer_json.clone());
    let score = Var::from_tensor(&init_score(mc.hidden_size, cfg.seed)?)?;
    let mut params = checkpoint::named_vars(mc, &base.varmap)?;
    params.push((SCORE_WEIGHT.to_string(), score.clone()));
    let mut opt = AdamW::new(params.clone(), cfg.adamw);
    let metrics = MetricsLog::new(&run_dir.join("metrics.jsonl"));
    let cfg_json = serde_json::json!({
        "reward": cfg,
        "base_weights_sha256": keel_core::artifact::sha256_file(&base_dir.join("model.safetensors"))?,
        "train_sha256": fingerprint(&train_t),
    });
    let val_before = match (val_t.is_empty(), opts.resume) {
        (false, false) => Some(eval_pairs(
            &base.model,
            score.as_tensor(),
            &val_t,
            cfg.batch_size,
        )?),
        _ => None,
    };
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
    if let Some(dir) = &last_checkpoint {
        let t = checkpoint::load_tensors(&dir.join("model.safetensors"))?;
        let w = t.get(SCORE_WEIGHT).ok_or_else(|| TrainError::Checkpoint {
            path: dir.join("model.safetensors"),
            message: format!("missing tensor {SCORE_WEIGHT}"),
        })?;
        score.set(w)?;
    }
    let (mut step, mut tokens_seen) = (0u64, 0u64);
    let resumed_from = start.resumed.map(|s| {
        step = s.step;
        tokens_seen = s.tokens_seen;
        s.step
    });
    let order_rng = rng_for(cfg.seed, "reward-order");
    let mut order = EpochOrder::new(train_t.len(), cfg.seed);
    let meta = RewardHeadMeta {
        architecture: "LlamaForSequenceClassification".into(),
        num_labels: 1,
        score_tensor: SCORE_WEIGHT.into(),
        pooling: "last_non_pad_token".into(),
        max_len: pt.max_len,
    };
    let schedule = cfg.schedule();
    let end = opts
        .stop_after
        .map_or(cfg.max_steps, |s| s.min(cfg.max_steps));
    let bar = crate::progress::bar(cfg.max_steps, "rm", opts.show_progress);
    bar.set_position(step);
    let per_step = (cfg.batch_size * cfg.grad_accum) as u64;
    let (started, start_tokens) = (Instant::now(), tokens_seen);
    let (mut last_loss, mut val_eval) = (f64::NAN, None);
    let save = |step: u64, tokens_seen: u64, opt: &AdamW| {
        let state = TrainerState {
            step,
            tokens_seen,
            data_rng: save_state(&order_rng),
            optimizer_t: opt.t,
            trainer_config: cfg_json.clone(),
        };
        save_reward(
            run_dir,
            mc,
            &base.varmap,
            &score,
            &meta,
            opt,
            &state,
            tokenizer_json.as_deref(),
            cfg.keep_checkpoints,
        )
    };
    while step < end {
        let mut acc = None;
        let (mut loss_sum, mut correct, mut margin, mut tokens) = (0f64, 0usize, 0f64, 0usize);
        for micro in 0..cfg.grad_accum {
            let first = step * per_step + (micro * cfg.batch_size) as u64;
            let rows: Vec<TokenizedPair> = (0..cfg.batch_size as u64)
                .map(|j| train_t[order.at(first + j)].clone())
                .collect();
            tokens += rows
                .iter()
                .map(|p| 2 * p.prompt.len() + p.chosen.len() + p.rejected.len())
                .sum::<usize>();
            let (c, r) = pair_scores(&base.model, score.as_tensor(), &rows)?;
            let loss = bradley_terry(&c, &r, None, cfg.center_coef)?;
            let l = loss.to_scalar::<f32>()? as f64;
            ensure_finite("loss", l, step + 1, &last_checkpoint)?;
            loss_sum += l;
            for (a, b) in c.to_vec1::<f32>()?.iter().zip(r.to_vec1::<f32>()?) {
                correct += usize::from(*a > b);
                margin += (*a - b) as f64;
            }
            accumulate(&mut acc, loss.backward()?, &params)?;
        }
        let grads = acc.expect("grad_accum >= 1");
        let lr = schedule.lr_at(step);
        let norm = clipped_update(
            &mut opt,
            &grads,
            cfg.grad_accum,
            cfg.grad_clip,
            lr,
            step + 1,
            &last_checkpoint,
        )?;
        step += 1;
        tokens_seen += tokens as u64;
        last_loss = loss_sum / cfg.grad_accum as f64;
        let n = per_step as f64;
        let tps = (tokens_seen - start_tokens) as f64 / started.elapsed().as_secs_f64().max(1e-9);
        metrics.append(&serde_json::json!({
            "step": step, "loss": last_loss, "accuracy": correct as f64 / n, "margin": margin / n,
            "lr": lr, "grad_norm": norm, "tokens": tokens_seen, "tokens_per_sec": tps,
        }))?;
        bar.set_position(step);
        bar.set_message(format!("loss {last_loss:.3} · {tps:.0} tok/s"));
        let is_last = step == end;
        if !val_t.is_empty()
            && ((cfg.eval_every > 0 && step.is_multiple_of(cfg.eval_every)) || is_last)
        {
            let v = eval_pairs(&base.model, score.as_tensor(), &val_t, cfg.batch_size)?;
            metrics.append(&serde_json::json!({
                "step": step, "eval/accuracy": v.accuracy, "eval/margin": v.margin, "eval/loss": v.loss,
            }))?;
            val_eval = Some(v);
        }
        if (cfg.checkpoint_every > 0 && step.is_multiple_of(cfg.checkpoint_every)) || is_last {
            last_checkpoint = Some(save(step, tokens_seen, &opt)?);
        }
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let final_checkpoint = match last_checkpoint {
        Some(p) => p,
        None => save(step, tokens_seen, &opt)?,
    };
    Ok(RewardOutcome {
        steps: step,
        final_checkpoint,
        train_loss: last_loss,
        val_before,
        val: val_eval,
        train_pairs: train_t.len(),
        tokenize: report,
        tokens_per_sec: (tokens_seen - start_tokens) as f64 / elapsed,
        resumed_from,
    })
}

/// SHA-256 of tokenized pairs, for the run's identity.
pub fn fingerprint(pairs: &[TokenizedPair]) -> String {
    let mut bytes = Vec::new();
    for p in pairs {
        for part in [&p.prompt, &p.chosen, &p.rejected] {
            bytes.extend((part.len() as u32).to_le_bytes());
            part.iter().for_each(|id| bytes.extend(id.to_le_bytes()));
        }
    }
    keel_core::artifact::sha256_hex(&bytes)
}
