//! Pretraining: next-token prediction on a token stream.
//!
//! The loop, top to bottom: sample a batch (seeded) → forward + loss → backward → (repeat for
//! gradient accumulation) → stop on a non-finite loss or gradient → clip → AdamW step at the
//! scheduled learning rate → log → periodically evaluate (validation loss, bits per byte),
//! sample text, and checkpoint. Resume restores weights, optimizer moments, step and the data
//! generator, so a stopped-and-resumed run ends with the same weights as an uninterrupted one.

use crate::checkpoint::{self, TrainerState};
use crate::data::TokenStream;
use crate::error::{Result, TrainError};
use crate::metrics::MetricsLog;
use crate::optim::{AdamW, AdamWConfig};
use crate::schedule::Schedule;
use crate::step::{accumulate, begin_run, clipped_update, ensure_finite};
use candle_core::{Device, Tensor};
use keel_core::rng::{restore_state, rng_for, save_state};
use keel_model::{Llama, LlamaConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Pretraining hyper-parameters. Defaults suit the embedded world's tiny models on a laptop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PretrainConfig {
    /// Tokens per training window. Default 128.
    pub seq_len: usize,
    /// Windows per micro-batch. Default 16.
    pub batch_size: usize,
    /// Micro-batches per optimizer step. Default 1.
    pub grad_accum: usize,
    /// Optimizer steps. Default 600.
    pub max_steps: u64,
    /// Peak learning rate. Default 3e-3 (small models tolerate large rates).
    pub lr: f64,
    /// Linear warmup steps. Default 30.
    pub warmup_steps: u64,
    /// Cosine floor as a fraction of `lr`. Default 0.1.
    pub min_lr_ratio: f64,
    pub adamw: AdamWConfig,
    /// Clip the global gradient norm to this; 0 disables. Default 1.0.
    pub grad_clip: f64,
    /// Evaluate every N steps (and at the end); 0 = only at the end. Default 100.
    pub eval_every: u64,
    /// Validation windows per evaluation. Default 32.
    pub eval_windows: usize,
    /// Checkpoint every N steps (and at the end); 0 = only at the end. Default 200.
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk. Default 2.
    pub keep_checkpoints: usize,
    /// Seed for initialisation and data order. Default 0.
    pub seed: u64,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            seq_len: 128,
            batch_size: 16,
            grad_accum: 1,
            max_steps: 600,
            lr: 3e-3,
            warmup_steps: 30,
            min_lr_ratio: 0.1,
            adamw: AdamWConfig::default(),
            grad_clip: 1.0,
            eval_every: 100,
            eval_windows: 32,
            checkpoint_every: 200,
            keep_checkpoints: 2,
            seed: 0,
        }
    }
}

impl PretrainConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(TrainError::Config(m.to_string()));
        if self.seq_len == 0 || self.batch_size == 0 || self.grad_accum == 0 {
            return bad("seq_len, batch_size and grad_accum must be > 0");
        }
        if self.max_steps == 0 {
            return bad("max_steps must be > 0");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr must be a positive number");
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

/// Produces sample generations from the model being trained.
pub type Sampler<'a> = &'a dyn Fn(&Llama) -> Vec<String>;

/// Options of one invocation (not part of the run's identity).
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Continue from the run directory's latest checkpoint if there is one.
    pub resume: bool,
    /// Stop after this many steps (checkpointing there), as if interrupted.
    pub stop_after: Option<u64>,
    /// Stored in every checkpoint so checkpoints are self-contained model directories.
    pub tokenizer_json: Option<Vec<u8>>,
    /// Called at each evaluation to produce sample generations for the log.
    pub sampler: Option<Sampler<'a>>,
    pub show_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Mean next-token cross-entropy in nats.
    pub loss: f64,
    /// Bits per UTF-8 byte of text: tokenizer-independent, so models with different
    /// vocabularies compare.
    pub bits_per_byte: f64,
    pub tokens: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainOutcome {
    pub steps: u64,
    pub final_checkpoint: PathBuf,
    pub train_loss: f64,
    pub validation: Option<EvalResult>,
    pub tokens_per_sec: f64,
    pub resumed_from: Option<u64>,
}

/// Validation loss and bits-per-byte over consecutive windows of `stream`.
pub fn evaluate(
    model: &Llama,
    stream: &TokenStream,
    seq_len: usize,
    max_windows: usize,
) -> Result<EvalResult> {
    let windows = stream.eval_windows(seq_len, max_windows);
    if windows.is_empty() {
        return Err(TrainError::Data(format!(
            "validation stream of {} tokens is shorter than one window of {seq_len}",
            stream.len()
        )));
    }
    let (mut nats, mut tokens, mut bytes) = (0f64, 0u64, 0u64);
    for chunk in windows.chunks(8) {
        let b = chunk.len();
        let x: Vec<u32> = chunk.iter().flat_map(|w| w.0.iter().copied()).collect();
        let y: Vec<u32> = chunk.iter().flat_map(|w| w.1.iter().copied()).collect();
        let x = Tensor::from_vec(x, (b, seq_len), &Device::Cpu)?;
        let y = Tensor::from_vec(y, (b, seq_len), &Device::Cpu)?;
        let loss = model.loss(&x, &y, None)?.to_scalar::<f32>()? as f64;
        let n = (b * seq_len) as u64;
        nats += loss * n as f64;
        tokens += n;
        bytes += chunk.iter().map(|w| w.2).sum::<u64>();
    }
    Ok(EvalResult {
        loss: nats / tokens as f64,
        bits_per_byte: nats / (std::f64::consts::LN_2 * bytes.max(1) as f64),
        tokens,
    })
}

/// Pretrain a fresh model of `model_cfg` on `train`, evaluating on `val`, in `run_dir`.
pub fn pretrain(
    model_cfg: &LlamaConfig,
    cfg: &PretrainConfig,
    train: &TokenStream,
    val: &TokenStream,
    run_dir: &Path,
    opts: RunOptions,
) -> Result<PretrainOutcome> {
    cfg.validate()?;
    model_cfg.validate()?;
    if let Some(max) = train.ids.iter().max() {
        if *max as usize >= model_cfg.vocab_size {
            return Err(TrainError::Config(format!(
                "token id {max} is outside the model's vocabulary of {}",
                model_cfg.vocab_size
            )));
        }
    }
    std::fs::create_dir_all(run_dir).map_err(|e| keel_core::CoreError::io(run_dir, e))?;
    let (varmap, model) = Llama::init(model_cfg, cfg.seed)?;
    let params = checkpoint::named_vars(model_cfg, &varmap)?;
    let mut opt = AdamW::new(params.clone(), cfg.adamw);
    let mut data_rng = rng_for(cfg.seed, "pretrain-data");
    let mut step = 0u64;
    let mut tokens_seen = 0u64;
    let mut resumed_from = None;
    let metrics = MetricsLog::new(&run_dir.join("metrics.jsonl"));
    let cfg_json = serde_json::to_value(cfg).expect("config serialises");

    let start = begin_run(
        run_dir,
        opts.resume,
        model_cfg,
        &varmap,
        &mut opt,
        &cfg_json,
        &metrics,
    )?;
    let mut last_checkpoint = start.last_checkpoint;
    if let Some(state) = start.resumed {
        step = state.step;
        tokens_seen = state.tokens_seen;
        data_rng = restore_state(&state.data_rng);
        resumed_from = Some(step);
    }

    let schedule = cfg.schedule();
    let end = opts
        .stop_after
        .map_or(cfg.max_steps, |s| s.min(cfg.max_steps));
    let bar = crate::progress::bar(cfg.max_steps, "pretrain", opts.show_progress);
    bar.set_position(step);
    let tokens_per_step = (cfg.batch_size * cfg.seq_len * cfg.grad_accum) as u64;
    let started = Instant::now();
    let start_step = step;
    let mut last_loss = f64::NAN;
    let mut last_eval = None;

    let save = |step: u64, tokens_seen: u64, opt: &AdamW, rng: &keel_core::rng::KeelRng| {
        let state = TrainerState {
            step,
            tokens_seen,
            data_rng: save_state(rng),
            optimizer_t: opt.t,
            trainer_config: cfg_json.clone(),
        };
        checkpoint::save(
            run_dir,
            model_cfg,
            &varmap,
            opt,
            &state,
            opts.tokenizer_json.as_deref(),
            cfg.keep_checkpoints,
        )
    };

    while step < end {
        let mut acc = None;
        let mut loss_sum = 0f64;
        for _ in 0..cfg.grad_accum {
            let (x, y) = train.sample_batch(&mut data_rng, cfg.batch_size, cfg.seq_len)?;
            let loss = model.loss(&x, &y, None)?;
            let l = loss.to_scalar::<f32>()? as f64;
            ensure_finite("loss", l, step + 1, &last_checkpoint)?;
            loss_sum += l;
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
        let accum = cfg.grad_accum as f64;
        step += 1;
        tokens_seen += tokens_per_step;
        last_loss = loss_sum / accum;
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let tps = (step - start_step) as f64 * tokens_per_step as f64 / elapsed;
        metrics.append(&serde_json::json!({
            "step": step, "loss": last_loss, "lr": lr, "grad_norm": norm,
            "tokens": tokens_seen, "tokens_per_sec": tps,
        }))?;
        bar.set_position(step);
        bar.set_message(format!("loss {last_loss:.3} · {tps:.0} tok/s"));

        let is_last = step == end;
        if (cfg.eval_every > 0 && step.is_multiple_of(cfg.eval_every)) || is_last {
            let ev = evaluate(&model, val, cfg.seq_len, cfg.eval_windows)?;
            let mut rec = serde_json::json!({
                "step": step, "val_loss": ev.loss, "val_bpb": ev.bits_per_byte,
            });
            if let Some(sampler) = opts.sampler {
                rec["samples"] = serde_json::json!(sampler(&model));
            }
            metrics.append(&rec)?;
            last_eval = Some(ev);
        }
        if (cfg.checkpoint_every > 0 && step.is_multiple_of(cfg.checkpoint_every)) || is_last {
            last_checkpoint = Some(save(step, tokens_seen, &opt, &data_rng)?);
        }
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let final_checkpoint = match last_checkpoint {
        Some(p) => p,
        None => save(step, tokens_seen, &opt, &data_rng)?,
    };
    Ok(PretrainOutcome {
        steps: step,
        final_checkpoint,
        train_loss: last_loss,
        validation: last_eval,
        tokens_per_sec: (step - start_step) as f64 * tokens_per_step as f64 / elapsed,
        resumed_from,
    })
}
