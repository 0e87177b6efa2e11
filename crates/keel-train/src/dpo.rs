//! Direct preference optimisation and its relatives (`keel dpo --loss …`): sigmoid DPO (with
//! cDPO label smoothing), IPO, SimPO, ORPO and KTO, as TRL's `DPOTrainer`/`CPOTrainer`/
//! `ORPOTrainer`/`KTOTrainer`. Shaped like [`crate::sft`]: [`DpoConfig`] with documented
//! defaults, [`dpo`] / [`dpo_unpaired`], the shared step, NaN guard, exact resume, atomic
//! checkpoints ([`crate::checkpoint`]), metrics JSONL with TRL's names, progress bar.
//!
//! The reference model is the starting checkpoint. Its log-probs are computed once, before
//! the first update, for every training and validation sequence, and cached in
//! `<run>/reference_logps.json` (keyed by base weights, data and length limit) so a resumed
//! run reuses them rather than recomputing them with already-trained weights. No second copy
//! of the model is kept. Log-probs are sums over completion tokens only (the reply and its
//! `<|end|>`); the prompt is context.

use crate::checkpoint::{self, TrainerState};
use crate::error::{Result, TrainError};
use crate::metrics::MetricsLog;
use crate::optim::{AdamW, AdamWConfig};
use crate::preference_batch::{collate_seqs, logps_no_grad, PairTokenizer, TokenizeReport};
use crate::preference_loss::{self as pl, PairLogps};
use crate::pretrain::RunOptions;
use crate::schedule::Schedule;
use crate::sft::load_base;
use crate::sft_batch::EpochOrder;
use crate::step::{accumulate, begin_run, clipped_update, ensure_finite};
use candle_core::{Device, Tensor};
use keel_core::rng::{rng_for, save_state};
use keel_data::preference::{split_pair, PreferencePair, UnpairedExample};
use keel_data::tokenizer::KeelTokenizer;
use keel_model::Llama;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// Seed for data order. Default 0.
    pub seed: u64,
}

impl Default for DpoConfig {
    fn default() -> Self {
        DpoConfig {
            loss: DpoLoss::Sigmoid,
            beta: 0.1,
            label_smoothing: 0.0,
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
        if !(self.desirable_weight >= 0.0 && self.undesirable_weight >= 0.0) {
            return bad("KTO weights must be ≥ 0");
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

/// Held-out pair metrics of a policy against the reference (the starting model).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PreferenceEval {
    /// Fraction of pairs whose implicit reward β·log(π/π_ref) is higher for chosen.
    pub accuracy: f64,
    /// Mean implicit reward of chosen, rejected, and their difference.
    pub chosen_reward: f64,
    pub rejected_reward: f64,
    pub margin: f64,
    /// Mean summed completion log-probs under the policy.
    pub logps_chosen: f64,
    pub logps_rejected: f64,
    /// Fraction of pairs where the policy itself gives chosen the higher log-prob per token.
    pub logp_accuracy: f64,
    pub pairs: usize,
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

/// One training item: two (prompt, completion) sequences. Pairs: chosen, rejected. KTO: the
/// example, then its prompt with another example's completion (for the KL baseline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Item {
    a: (Vec<u32>, Vec<u32>),
    b: (Vec<u32>, Vec<u32>),
    desirable: bool,
}

impl Item {
    fn seqs<'a>(items: &[&'a Item]) -> Vec<(&'a [u32], &'a [u32])> {
        let a = items.iter().map(|i| (&i.a.0[..], &i.a.1[..]));
        let b = items.iter().map(|i| (&i.b.0[..], &i.b.1[..]));
        a.chain(b).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RefCache {
    key: String,
    train: Vec<[f32; 2]>,
    val: Vec<[f32; 2]>,
}

/// Train on preference pairs (KTO: each pair becomes a desirable and an undesirable example).
pub fn dpo(
    base_dir: &Path,
    cfg: &DpoConfig,
    train: &[PreferencePair],
    val: &[PreferencePair],
    run_dir: &Path,
    opts: RunOptions,
) -> Result<DpoOutcome> {
    if cfg.loss == DpoLoss::Kto {
        let unpaired: Vec<UnpairedExample> = train.iter().flat_map(split_pair).collect();
        return dpo_unpaired(base_dir, cfg, &unpaired, val, run_dir, opts);
    }
    cfg.validate()?;
    let tok = tokenizer(base_dir)?;
    let pt = PairTokenizer::new(&tok, cfg.max_len)?;
    let (t, report) = pt.pairs(train);
    let items = t
        .into_iter()
        .map(|p| Item {
            a: (p.prompt.clone(), p.chosen),
            b: (p.prompt, p.rejected),
            desirable: true,
        })
        .collect();
    run(
        base_dir,
        cfg,
        items,
        val_items(&pt, val),
        report,
        run_dir,
        opts,
    )
}

/// KTO on unpaired examples; `val` pairs measure the result as for the paired losses.
pub fn dpo_unpaired(
    base_dir: &Path,
    cfg: &DpoConfig,
    train: &[UnpairedExample],
    val: &[PreferencePair],
    run_dir: &Path,
    opts: RunOptions,
) -> Result<DpoOutcome> {
    cfg.validate()?;
    if cfg.loss != DpoLoss::Kto {
        return Err(TrainError::Config(format!(
            "unpaired examples train only with the kto loss, not {:?}",
            cfg.loss
        )));
    }
    let tok = tokenizer(base_dir)?;
    let pt = PairTokenizer::new(&tok, cfg.max_len)?;
    let (t, report) = pt.unpaired(train);
    if t.iter().all(|e| e.desirable) || t.iter().all(|e| !e.desirable) {
        tracing::warn!("KTO data has only one label; its loss then ignores one of its weights");
    }
    let n = t.len();
    let mut items = Vec::with_capacity(n);
    for (i, e) in t.iter().enumerate() {
        // KL baseline: this prompt with the next example's completion (a mismatched pair, as
        // TRL's shifted batch), fitted to max_len by cutting the prompt from the left.
        let other = &t[(i + 1) % n].completion;
        let mut p = e.prompt.clone();
        let room = pt.max_len.saturating_sub(other.len()).max(2);
        if p.len() > room {
            p.drain(1..1 + p.len() - room);
        }
        let other = other[..other.len().min(pt.max_len - p.len())].to_vec();
        items.push(Item {
            a: (e.prompt.clone(), e.completion.clone()),
            b: (p, other),
            desirable: e.desirable,
        });
    }
    run(
        base_dir,
        cfg,
        items,
        val_items(&pt, val),
        report,
        run_dir,
        opts,
    )
}

fn tokenizer(base_dir: &Path) -> Result<KeelTokenizer> {
    KeelTokenizer::from_file(&base_dir.join("tokenizer.json"))
        .map_err(|e| TrainError::Data(e.to_string()))
}

fn val_items(pt: &PairTokenizer, val: &[PreferencePair]) -> Vec<Item> {
    pt.pairs(val)
        .0
        .into_iter()
        .map(|p| Item {
            a: (p.prompt.clone(), p.chosen),
            b: (p.prompt, p.rejected),
            desirable: true,
        })
        .collect()
}

/// Reference log-probs of every item's two sequences, `batch` items at a time.
fn reference_logps(model: &Llama, items: &[Item], batch: usize) -> Result<Vec<[f32; 2]>> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch.max(1)) {
        let refs: Vec<&Item> = chunk.iter().collect();
        let lp = logps_no_grad(model, &Item::seqs(&refs), 2 * chunk.len())?;
        let n = chunk.len();
        out.extend((0..n).map(|i| [lp[i], lp[n + i]]));
    }
    Ok(out)
}

/// Metrics of `model` on pair items against cached reference log-probs.
fn evaluate(
    model: &Llama,
    items: &[Item],
    refs: &[[f32; 2]],
    beta: f64,
    batch: usize,
) -> Result<PreferenceEval> {
    let pol = reference_logps(model, items, batch)?;
    let n = items.len().max(1) as f64;
    let mut e = PreferenceEval {
        accuracy: 0.0,
        chosen_reward: 0.0,
        rejected_reward: 0.0,
        margin: 0.0,
        logps_chosen: 0.0,
        logps_rejected: 0.0,
        logp_accuracy: 0.0,
        pairs: items.len(),
    };
    for ((p, r), it) in pol.iter().zip(refs).zip(items) {
        let (rc, rr) = (beta * (p[0] - r[0]) as f64, beta * (p[1] - r[1]) as f64);
        e.accuracy += f64::from(u8::from(rc > rr)) / n;
        e.chosen_reward += rc / n;
        e.rejected_reward += rr / n;
        e.margin += (rc - rr) / n;
        e.logps_chosen += p[0] as f64 / n;
        e.logps_rejected += p[1] as f64 / n;
        let per_tok = |lp: f32, len: usize| lp as f64 / len as f64;
        e.logp_accuracy += f64::from(u8::from(
            per_tok(p[0], it.a.1.len()) > per_tok(p[1], it.b.1.len()),
        )) / n;
    }
    Ok(e)
}

fn fingerprint(items: &[Item]) -> String {
    let bytes = serde_json::to_vec(items).unwrap_or_default();
    keel_core::artifact::sha256_hex(&bytes)
}

fn mean_where(v: &[f32], keep: impl Fn(usize) -> bool) -> f64 {
    let (s, n) = v
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .fold((0f64, 0usize), |(s, n), (_, &x)| (s + x as f64, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    base_dir: &Path,
    cfg: &DpoConfig,
    items: Vec<Item>,
    val: Vec<Item>,
    report: TokenizeReport,
    run_dir: &Path,
    opts: RunOptions,
) -> Result<DpoOutcome> {
    if items.is_empty() {
        return Err(TrainError::Data(format!(
            "no training items ({} dropped as longer than max_len {})",
            report.dropped, cfg.max_len
        )));
    }
    let base = load_base(base_dir)?;
    let mc = &base.config;
    if cfg.max_len > mc.max_position_embeddings {
        return Err(TrainError::Config(format!(
            "max_len {} exceeds the model's max_position_embeddings {}",
            cfg.max_len, mc.max_position_embeddings
        )));
    }
    let base_sha = keel_core::artifact::sha256_file(&base_dir.join("model.safetensors"))?;
    let (train_fp, val_fp) = (fingerprint(&items), fingerprint(&val));
    // Reference pass, before any checkpoint is restored into the weights.
    std::fs::create_dir_all(run_dir).map_err(|e| keel_core::CoreError::io(run_dir, e))?;
    let cache_path = run_dir.join("reference_logps.json");
    let key = keel_core::artifact::sha256_hex(
        format!(
            "{base_sha}/{train_fp}/{val_fp}/{}",
            cfg.loss.uses_reference()
        )
        .as_bytes(),
    );
    let cached = keel_core::artifact::read_json::<RefCache>(&cache_path)
        .ok()
        .filter(|c| c.key == key);
    let ref_started = Instant::now();
    let (refs, reference_secs) = match cached {
        Some(c) => (c, 0.0),
        None => {
            let train = match cfg.loss.uses_reference() {
                true => reference_logps(&base.model, &items, cfg.batch_size)?,
                false => vec![[0.0; 2]; items.len()],
            };
            let c = RefCache {
                key,
                train,
                val: reference_logps(&base.model, &val, cfg.batch_size)?,
            };
            keel_core::artifact::write_json_atomic(&cache_path, &c)?;
            (c, ref_started.elapsed().as_secs_f64())
        }
    };
    if refs.train.len() != items.len() || refs.val.len() != val.len() {
        return Err(TrainError::Checkpoint {
            path: cache_path,
            message: "reference cache does not match the data".into(),
        });
    }
    let tokenizer_json = opts.tokenizer_json.clone().or(base.tokenizer_json.clone());
    let params = checkpoint::named_vars(mc, &base.varmap)?;
    let mut opt = AdamW::new(params.clone(), cfg.adamw);
    let metrics = MetricsLog::new(&run_dir.join("metrics.jsonl"));
    let cfg_json = serde_json::json!({ "dpo": cfg, "base_weights_sha256": base_sha, "train_sha256": train_fp });
    let val_before = match val.is_empty() || opts.resume {
        true => None,
        false => Some(evaluate(
            &base.model,
            &val,
            &refs.val,
            cfg.beta,
            cfg.batch_size,
        )?),
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
    let (mut step, mut tokens_seen) = (0u64, 0u64);
    let resumed_from = start.resumed.map(|s| {
        step = s.step;
        tokens_seen = s.tokens_seen;
        s.step
    });
    let order_rng = rng_for(cfg.seed, "dpo-order");
    let mut order = EpochOrder::new(items.len(), cfg.seed);
    let schedule = cfg.schedule();
    let end = opts
        .stop_after
        .map_or(cfg.max_steps, |s| s.min(cfg.max_steps));
    let bar = crate::progress::bar(cfg.max_steps, "dpo", opts.show_progress);
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
        checkpoint::save(
            run_dir,
            mc,
            &base.varmap,
            opt,
            &state,
            tokenizer_json.as_deref(),
            cfg.keep_checkpoints,
        )
    };
    let dev = &Device::Cpu;
    while step < end {
        let mut acc = None;
        let mut loss_sum = 0f64;
        let mut tokens = 0usize;
        let (mut rc_all, mut rr_all, mut lc_all, mut lr_all, mut des_all) =
            (vec![], vec![], vec![], vec![], vec![]);
        let mut kl_sum = 0f64;
        for micro in 0..cfg.grad_accum {
            let first = step * per_step + (micro * cfg.batch_size) as u64;
            let idx: Vec<usize> = (0..cfg.batch_size as u64)
                .map(|j| order.at(first + j))
                .collect();
            let rows: Vec<&Item> = idx.iter().map(|&i| &items[i]).collect();
            let b = collate_seqs(&Item::seqs(&rows))?;
            tokens += b.tokens;
            let n = rows.len();
            let lp = base.model.sequence_logprobs(&b.x, &b.y, &b.mask)?;
            let (pa, pb) = (lp.narrow(0, 0, n)?, lp.narrow(0, n, n)?);
            let (la, lb) = (b.lens.narrow(0, 0, n)?, b.lens.narrow(0, n, n)?);
            let ra = Tensor::from_vec(
                idx.iter().map(|&i| refs.train[i][0]).collect::<Vec<_>>(),
                n,
                dev,
            )?;
            let rb = Tensor::from_vec(
                idx.iter().map(|&i| refs.train[i][1]).collect::<Vec<_>>(),
                n,
                dev,
            )?;
            let p = PairLogps {
                policy_chosen: &pa,
                policy_rejected: &pb,
                ref_chosen: &ra,
                ref_rejected: &rb,
                len_chosen: &la,
                len_rejected: &lb,
            };
            let (loss, rew_a, rew_b) = match cfg.loss {
                DpoLoss::Kto => {
                    let kl = pl::kto_kl(&pb.detach(), &rb)?;
                    kl_sum += kl;
                    let des: Vec<f32> = rows
                        .iter()
                        .map(|r| f32::from(u8::from(r.desirable)))
                        .collect();
                    des_all.extend(rows.iter().map(|r| r.desirable));
                    let des = Tensor::from_vec(des, n, dev)?;
                    let (loss, rew) = pl::kto(
                        &pa,
                        &ra,
                        &des,
                        kl,
                        cfg.beta,
                        cfg.desirable_weight,
                        cfg.undesirable_weight,
                    )?;
                    (loss, rew, Tensor::zeros(n, candle_core::DType::F32, dev)?)
                }
                other => {
                    let o = match other {
                        DpoLoss::Sigmoid => pl::dpo_sigmoid(&p, cfg.beta, cfg.label_smoothing)?,
                        DpoLoss::Ipo => pl::ipo(&p, cfg.beta)?,
                        DpoLoss::Simpo => pl::simpo(&p, cfg.beta, cfg.simpo_gamma)?,
                        _ => pl::orpo(&p, cfg.beta)?,
                    };
                    (o.loss, o.chosen_rewards, o.rejected_rewards)
                }
            };
            let l = loss.to_scalar::<f32>()? as f64;
            ensure_finite("loss", l, step + 1, &last_checkpoint)?;
            loss_sum += l;
            rc_all.extend(rew_a.to_vec1::<f32>()?);
            rr_all.extend(rew_b.to_vec1::<f32>()?);
            lc_all.extend(pa.detach().to_vec1::<f32>()?);
            lr_all.extend(pb.detach().to_vec1::<f32>()?);
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
        let tps = (tokens_seen - start_tokens) as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let mut rec = serde_json::json!({ "step": step, "loss": last_loss, "lr": lr, "grad_norm": norm, "tokens": tokens_seen, "tokens_per_sec": tps });
        if cfg.loss == DpoLoss::Kto {
            rec["rewards/chosen"] = serde_json::json!(mean_where(&rc_all, |i| des_all[i]));
            rec["rewards/rejected"] = serde_json::json!(mean_where(&rc_all, |i| !des_all[i]));
            rec["logps/chosen"] = serde_json::json!(mean_where(&lc_all, |i| des_all[i]));
            rec["logps/rejected"] = serde_json::json!(mean_where(&lc_all, |i| !des_all[i]));
            rec["kl"] = serde_json::json!(kl_sum / cfg.grad_accum as f64);
        } else {
            let all = |_| true;
            let acc = rc_all.iter().zip(&rr_all).filter(|(a, b)| a > b).count() as f64
                / rc_all.len() as f64;
            rec["rewards/chosen"] = serde_json::json!(mean_where(&rc_all, all));
            rec["rewards/rejected"] = serde_json::json!(mean_where(&rr_all, all));
            rec["rewards/margins"] =
                serde_json::json!(mean_where(&rc_all, all) - mean_where(&rr_all, all));
            rec["rewards/accuracies"] = serde_json::json!(acc);
            rec["logps/chosen"] = serde_json::json!(mean_where(&lc_all, all));
            rec["logps/rejected"] = serde_json::json!(mean_where(&lr_all, all));
        }
        metrics.append(&rec)?;
        bar.set_position(step);
        bar.set_message(format!("loss {last_loss:.3} · {tps:.0} tok/s"));
        let is_last = step == end;
        if !val.is_empty()
            && ((cfg.eval_every > 0 && step.is_multiple_of(cfg.eval_every)) || is_last)
        {
            let v = evaluate(&base.model, &val, &refs.val, cfg.beta, cfg.batch_size)?;
            metrics.append(&serde_json::json!({
                "step": step, "eval/rewards/accuracies": v.accuracy, "eval/rewards/margins": v.margin,
                "eval/rewards/chosen": v.chosen_reward, "eval/rewards/rejected": v.rejected_reward,
                "eval/logps/chosen": v.logps_chosen, "eval/logps/rejected": v.logps_rejected,
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
    Ok(DpoOutcome {
        steps: step,
        final_checkpoint,
        train_loss: last_loss,
        val_before,
        val: val_eval,
        train_items: items.len(),
        tokenize: report,
        reference_secs,
        tokens_per_sec: (tokens_seen - start_tokens) as f64 / elapsed,
        resumed_from,
    })
}
