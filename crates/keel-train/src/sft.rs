//! Supervised fine-tuning: full or LoRA fine-tuning of a model on demonstrations, with the
//! loss on assistant tokens only (end-of-turn included). What is trained — every weight, or
//! adapters on a frozen base — is a [`Policy`].
//!
//! Shaped like [`crate::pretrain`] (as TRL's `SFTTrainer` mirrors its base trainer): an
//! [`SftConfig`] with documented defaults and one [`sft`] function. The loop shares the
//! optimizer step, NaN guard and run start/resume with pretraining ([`crate::step`]), and
//! writes the same atomic checkpoints, metrics JSONL and progress bar. Examples are seen in
//! seeded epoch-shuffled order, either one per row padded per micro-batch
//! ([`crate::sft_batch`], the default) or packed several to a row by best-fit decreasing
//! ([`crate::sft_pack`], [`PackingMode::Packing`]), where attention is masked at example
//! boundaries so each example trains exactly as it would alone. Packing is done once, before
//! training; epochs then shuffle the packed rows.

use crate::checkpoint::{self, TrainerState};
use crate::error::{Result, TrainError};
use crate::metrics::MetricsLog;
use crate::optim::{AdamW, AdamWConfig};
use crate::policy::Policy;
use crate::pretrain::RunOptions;
use crate::schedule::Schedule;
use crate::sft_batch::{check_example, collate, Batch, EpochOrder};
pub use crate::sft_pack::PackingMode;
use crate::sft_pack::{collate_packed, pack_best_fit};
use crate::step::{accumulate, begin_run_with, clipped_update, ensure_finite};
use candle_nn::VarMap;
use keel_core::rng::{rng_for, save_state};
use keel_data::chat::{fit_length, ChatExample, TokenizedExample, Truncation};
use keel_model::{Llama, LlamaConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// SFT hyper-parameters. Defaults suit the world's tiny models; the learning rate is a
/// third of pretraining's, as fine-tuning should move a trained model, not re-train it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SftConfig {
    /// Longest example in tokens, special tokens included. Default 256.
    pub seq_len: usize,
    /// Rows per micro-batch: examples (padded to the longest) when padding, packed rows of
    /// up to `seq_len` tokens when packing. Default 16.
    pub batch_size: usize,
    /// One example per row (`padding`) or several, attention-masked (`packing`). Default padding.
    pub packing: PackingMode,
    /// Micro-batches per optimizer step. Default 1.
    pub grad_accum: usize,
    /// Optimizer steps. Default 300.
    pub max_steps: u64,
    /// Peak learning rate. Default 1e-3.
    pub lr: f64,
    /// Linear warmup steps. Default 20.
    pub warmup_steps: u64,
    /// Cosine floor as a fraction of `lr`. Default 0.1.
    pub min_lr_ratio: f64,
    pub adamw: AdamWConfig,
    /// Clip the global gradient norm to this; 0 disables. Default 1.0.
    pub grad_clip: f64,
    /// Validation loss every N steps (and at the end); 0 = only at the end. Default 100.
    pub eval_every: u64,
    /// Checkpoint every N steps (and at the end); 0 = only at the end. Default 100.
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk. Default 2.
    pub keep_checkpoints: usize,
    /// What to do with examples longer than `seq_len` ([`sft_chat`] applies it). Default drop.
    pub truncation: Truncation,
    /// Seed for data order and LoRA initialisation. Default 0.
    pub seed: u64,
    /// Train LoRA adapters on a frozen base instead of every weight. Default: none (full).
    pub lora: Option<keel_model::lora::LoraConfig>,
}

impl Default for SftConfig {
    fn default() -> Self {
        SftConfig {
            seq_len: 256,
            batch_size: 16,
            packing: PackingMode::Padding,
            grad_accum: 1,
            max_steps: 300,
            lr: 1e-3,
            warmup_steps: 20,
            min_lr_ratio: 0.1,
            adamw: AdamWConfig::default(),
            grad_clip: 1.0,
            eval_every: 100,
            checkpoint_every: 100,
            keep_checkpoints: 2,
            truncation: Truncation::Drop,
            seed: 0,
            lora: None,
        }
    }
}

impl SftConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(TrainError::Config(m.to_string()));
        if self.seq_len < 2 || self.batch_size == 0 || self.grad_accum == 0 {
            return bad("seq_len must be ≥ 2, batch_size and grad_accum > 0");
        }
        if self.max_steps == 0 {
            return bad("max_steps must be > 0");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr must be a positive number");
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
pub struct SftOutcome {
    pub steps: u64,
    pub final_checkpoint: PathBuf,
    /// Mean masked loss of the last step.
    pub train_loss: f64,
    /// Mean masked loss per trained token on the validation examples, at the end.
    pub val_loss: Option<f64>,
    /// The same before the first step (fresh runs only): what training improved on.
    #[serde(default)]
    pub initial_val_loss: Option<f64>,
    pub train_examples: usize,
    /// Rows the examples were packed into (packing mode only).
    #[serde(default)]
    pub packed_rows: Option<usize>,
    /// Passes over the training examples.
    pub epochs: f64,
    /// Examples dropped for length / shortened by left truncation ([`sft_chat`] only).
    pub dropped_too_long: usize,
    pub truncated: usize,
    /// Non-padding tokens per second.
    pub tokens_per_sec: f64,
    /// Fraction of computed input positions that were padding (this run's steps).
    #[serde(default)]
    pub padding_fraction: f64,
    pub resumed_from: Option<u64>,
}

/// A starting model: a Keel checkpoint directory (or any directory with Keel's
/// `config.json` + `model.safetensors`), loaded as trainable variables.
pub struct BaseModel {
    pub config: LlamaConfig,
    pub varmap: VarMap,
    pub model: Llama,
    /// The directory's `tokenizer.json`, if it has one.
    pub tokenizer_json: Option<Vec<u8>>,
}

pub fn load_base(dir: &Path) -> Result<BaseModel> {
    let cfg_path = dir.join("config.json");
    let config: LlamaConfig = keel_core::artifact::read_json(&cfg_path)?;
    config.validate().map_err(|e| TrainError::Checkpoint {
        path: cfg_path.clone(),
        message: e.to_string(),
    })?;
    let (varmap, model) = Llama::init(&config, 0)?;
    checkpoint::load_weights_into(&config, &varmap, &dir.join("model.safetensors"))?;
    let tok = dir.join("tokenizer.json");
    let tokenizer_json = match tok.exists() {
        true => Some(std::fs::read(&tok).map_err(|e| keel_core::CoreError::io(&tok, e))?),
        false => None,
    };
    Ok(BaseModel {
        config,
        varmap,
        model,
        tokenizer_json,
    })
}

/// Mean loss per trained token over `examples` (in order, batches of 8).
pub fn evaluate(model: &Llama, examples: &[TokenizedExample], pad_id: u32) -> Result<f64> {
    let (mut nats, mut count) = (0f64, 0usize);
    let refs: Vec<&TokenizedExample> = examples.iter().collect();
    for chunk in refs.chunks(8) {
        let b = collate(chunk, pad_id)?;
        let l = model.loss(&b.x, &b.y, Some(&b.mask))?.to_scalar::<f32>()? as f64;
        nats += l * b.trained as f64;
        count += b.trained;
    }
    Ok(nats / count.max(1) as f64)
}

/// Fine-tune the model in `base_dir` on `train` (rendered, length-checked examples),
/// evaluating on `val`, writing checkpoints and metrics under `run_dir`. Checkpoints carry
/// `opts.tokenizer_json`, or the base's tokenizer when that is `None`.
pub fn sft(
    base_dir: &Path,
    cfg: &SftConfig,
    train: &[TokenizedExample],
    val: &[TokenizedExample],
    run_dir: &Path,
    opts: RunOptions,
) -> Result<SftOutcome> {
    cfg.validate()?;
    if train.is_empty() {
        return Err(TrainError::Data("no training examples".into()));
    }
    let mut policy = Policy::load(base_dir, cfg.lora.as_ref(), cfg.seed)?;
    if let Some(t) = opts.tokenizer_json.clone() {
        policy.tokenizer_json = Some(t);
    }
    let policy = policy;
    let mc = &policy.config;
    for (i, ex) in train.iter().chain(val).enumerate() {
        check_example(i, ex)?;
        if ex.len() > cfg.seq_len {
            return Err(TrainError::Data(format!(
                "example {i} has {} tokens, over seq_len {}",
                ex.len(),
                cfg.seq_len
            )));
        }
        if let Some(&id) = ex.ids.iter().find(|&&id| id as usize >= mc.vocab_size) {
            return Err(TrainError::Config(format!(
                "example {i}: token id {id} is outside the model's vocabulary of {}",
                mc.vocab_size
            )));
        }
    }
    if cfg.seq_len > mc.max_position_embeddings + 1 {
        return Err(TrainError::Config(format!(
            "seq_len {} exceeds the model's max_position_embeddings {}",
            cfg.seq_len, mc.max_position_embeddings
        )));
    }
    // Padding sits after every real token (causal attention never sees it) with mask 0, so
    // its id is irrelevant; 0 is Keel's <|pad|>.
    let pad_id = 0;
    let model = policy.model();
    let params = policy.params()?;
    let mut opt = AdamW::new(params.clone(), cfg.adamw);
    let metrics = MetricsLog::new(&run_dir.join("metrics.jsonl"));
    // The run's identity: config, starting weights and data. Resuming with any of them
    // changed would silently train a different model.
    let cfg_json = serde_json::json!({
        "sft": cfg,
        "base_weights_sha256": policy.source_sha256()?,
        "train_sha256": fingerprint(train),
    });
    let start = begin_run_with(
        run_dir,
        opts.resume,
        |dir, opt| policy.restore_checkpoint(dir, opt),
        &mut opt,
        &cfg_json,
        &metrics,
    )?;
    let mut last_checkpoint = start.last_checkpoint;
    let (mut step, mut tokens_seen) = (0u64, 0u64);
    let resumed_from = start.resumed.map(|s| {
        step = s.step;
        tokens_seen = s.tokens_seen;
        s.step
    });
    // Packed rows (example indices) are a pure function of the data and seed, so a resumed
    // run packs identically.
    let packed = match cfg.packing {
        PackingMode::Padding => None,
        PackingMode::Packing => {
            let lens: Vec<usize> = train.iter().map(|e| e.len()).collect();
            Some(pack_best_fit(&lens, cfg.seq_len, cfg.seed)?)
        }
    };
    let units = packed.as_ref().map_or(train.len(), Vec::len);
    // Order depends only on (seed, position); the stored generator state records its stream.
    let order_rng = rng_for(cfg.seed, "sft-order");
    let mut order = EpochOrder::new(units, cfg.seed);
    let batch_at = |order: &mut EpochOrder, first: u64| -> Result<Batch> {
        let picks = (0..cfg.batch_size as u64).map(|j| order.at(first + j));
        match &packed {
            None => collate(&picks.map(|i| &train[i]).collect::<Vec<_>>(), pad_id),
            Some(rows) => {
                let rows: Vec<Vec<&TokenizedExample>> = picks
                    .map(|i| rows[i].iter().map(|&e| &train[e]).collect())
                    .collect();
                collate_packed(&rows, pad_id)
            }
        }
    };

    let schedule = cfg.schedule();
    let end = opts
        .stop_after
        .map_or(cfg.max_steps, |s| s.min(cfg.max_steps));
    let bar = crate::progress::bar(cfg.max_steps, "sft", opts.show_progress);
    bar.set_position(step);
    let per_step = (cfg.batch_size * cfg.grad_accum) as u64;
    let (started, start_tokens) = (Instant::now(), tokens_seen);
    let (mut run_tokens, mut run_positions) = (0usize, 0usize);
    let (mut last_loss, mut val_loss) = (f64::NAN, None);
    // Validation loss before training, so a run shows what it improved on (a fine-tune whose
    // loss only wobbles within one epoch is otherwise unreadable).
    let mut initial_val_loss = None;
    if step == 0 && !val.is_empty() {
        model.set_lora_dropout_key(None);
        let v = evaluate(model, val, pad_id)?;
        metrics.append(&serde_json::json!({ "step": 0, "val_loss": v }))?;
        initial_val_loss = Some(v);
    }

    let save = |step: u64, tokens_seen: u64, opt: &AdamW| {
        let state = TrainerState {
            step,
            tokens_seen,
            data_rng: save_state(&order_rng),
            optimizer_t: opt.t,
            trainer_config: cfg_json.clone(),
        };
        policy.save_checkpoint(run_dir, opt, &state, cfg.keep_checkpoints)
    };

    while step < end {
        let mut acc = None;
        let (mut loss_sum, mut trained, mut tokens, mut positions) = (0f64, 0, 0, 0);
        for micro in 0..cfg.grad_accum {
            let first = step * per_step + (micro * cfg.batch_size) as u64;
            let b = batch_at(&mut order, first)?;
            // LoRA dropout masks keyed by (step, micro-batch): a resumed run draws the same.
            model.set_lora_dropout_key(Some(step * cfg.grad_accum as u64 + micro as u64));
            let loss = model.loss_packed(&b.x, &b.y, Some(&b.mask), b.segs.as_ref())?;
            let l = loss.to_scalar::<f32>()? as f64;
            ensure_finite("loss", l, step + 1, &last_checkpoint)?;
            loss_sum += l;
            trained += b.trained;
            tokens += b.tokens;
            positions += b.positions;
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
        run_tokens += tokens;
        run_positions += positions;
        last_loss = loss_sum / cfg.grad_accum as f64;
        let tps = (tokens_seen - start_tokens) as f64 / started.elapsed().as_secs_f64().max(1e-9);
        metrics.append(&serde_json::json!({
            "step": step, "loss": last_loss, "lr": lr, "grad_norm": norm,
            "tokens": tokens_seen, "trained_tokens": trained, "tokens_per_sec": tps,
            "padding_fraction": 1.0 - tokens as f64 / positions.max(1) as f64,
        }))?;
        bar.set_position(step);
        bar.set_message(format!("loss {last_loss:.3} · {tps:.0} tok/s"));

        let is_last = step == end;
        if !val.is_empty()
            && ((cfg.eval_every > 0 && step.is_multiple_of(cfg.eval_every)) || is_last)
        {
            model.set_lora_dropout_key(None);
            let v = evaluate(model, val, pad_id)?;
            let mut rec = serde_json::json!({ "step": step, "val_loss": v });
            if let Some(sampler) = opts.sampler {
                rec["samples"] = serde_json::json!(sampler(model));
            }
            metrics.append(&rec)?;
            val_loss = Some(v);
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
    Ok(SftOutcome {
        steps: step,
        final_checkpoint,
        train_loss: last_loss,
        val_loss,
        initial_val_loss,
        train_examples: train.len(),
        packed_rows: packed.as_ref().map(Vec::len),
        epochs: (step * per_step) as f64 / units as f64,
        dropped_too_long: 0,
        truncated: 0,
        tokens_per_sec: (tokens_seen - start_tokens) as f64 / elapsed,
        padding_fraction: 1.0 - run_tokens as f64 / run_positions.max(1) as f64,
        resumed_from,
    })
}

/// Render conversations with the base model's chat template (Keel's, or its own Jinja one),
/// apply `cfg.truncation` at `cfg.seq_len`, and run [`sft`]. What the demo calls.
pub fn sft_chat(
    base_dir: &Path,
    cfg: &SftConfig,
    train: &[ChatExample],
    val: &[ChatExample],
    run_dir: &Path,
    opts: RunOptions,
) -> Result<SftOutcome> {
    let renderer = crate::chat_render::ChatRenderer::for_path(base_dir)?;
    let (mut dropped, mut truncated) = (0, 0);
    let mut render = |exs: &[ChatExample], count: bool| -> Result<Vec<TokenizedExample>> {
        let mut out = Vec::with_capacity(exs.len());
        for ex in exs {
            let mut t = renderer.render(ex)?;
            match fit_length(&mut t, cfg.seq_len, cfg.truncation) {
                Ok(cut) => {
                    truncated += usize::from(cut && count);
                    out.push(t);
                }
                Err(_) => dropped += usize::from(count),
            }
        }
        Ok(out)
    };
    let train_t = render(train, true)?;
    let val_t = render(val, false)?;
    if dropped > 0 {
        tracing::warn!(
            "{dropped} training examples longer than seq_len {} dropped",
            cfg.seq_len
        );
    }
    let mut out = sft(base_dir, cfg, &train_t, &val_t, run_dir, opts)?;
    out.dropped_too_long = dropped;
    out.truncated = truncated;
    Ok(out)
}

/// SHA-256 of the examples' ids and masks.
fn fingerprint(examples: &[TokenizedExample]) -> String {
    let mut bytes = Vec::new();
    for e in examples {
        bytes.extend((e.ids.len() as u32).to_le_bytes());
        for &id in &e.ids {
            bytes.extend(id.to_le_bytes());
        }
        bytes.extend(&e.mask);
    }
    keel_core::artifact::sha256_hex(&bytes)
}
