//! Direct preference optimisation and its relatives (`keel dpo --loss …`): sigmoid DPO (with
//! cDPO label smoothing), IPO, SimPO, ORPO and KTO, as TRL's `DPOTrainer`/`CPOTrainer`/
//! `ORPOTrainer`/`KTOTrainer`. Shaped like [`crate::sft`]: [`DpoConfig`] with documented
//! defaults ([`crate::dpo_config`]), [`dpo`] / [`dpo_unpaired`], the shared step, NaN guard,
//! exact resume, atomic checkpoints, metrics JSONL with TRL's names, progress bar.
//!
//! What is trained is a [`Policy`]: every weight, or LoRA adapters on a frozen base
//! (`cfg.lora`), from a Keel checkpoint, a Hugging Face directory, a GGUF file or a PEFT
//! adapter directory. Pairs are rendered with the model's own chat template
//! ([`ChatRenderer`]: Keel's for Keel models, the Jinja one for imported models).
//!
//! The reference model is the starting model (with LoRA: the base without adapters). Its
//! log-probs are computed once, before the first update, for every training and validation
//! sequence, and cached in `<run>/reference_logps.json` ([`crate::dpo_reference`]). No second
//! copy of the model is kept. Log-probs are sums over completion tokens only (the reply and
//! its end-of-turn marker); the prompt is context.

use crate::chat_render::ChatRenderer;
use crate::checkpoint::TrainerState;
use crate::dpo_reference::{evaluate, fingerprint, reference_cache, Item};
use crate::error::{Result, TrainError};
use crate::metrics::MetricsLog;
use crate::optim::AdamW;
use crate::policy::Policy;
use crate::preference_batch::{collate_seqs, PairTokenizer, TokenizeReport};
use crate::preference_loss::{self as pl, PairLogps};
use crate::pretrain::RunOptions;
use crate::sft_batch::EpochOrder;
use crate::step::{accumulate, begin_run_with, clipped_update, ensure_finite};
use candle_core::{Device, Tensor};
use keel_core::rng::{rng_for, save_state};
use keel_data::preference::{split_pair, PreferencePair, UnpairedExample};
use std::path::Path;
use std::time::Instant;

pub use crate::dpo_config::{DpoConfig, DpoLoss, DpoOutcome};
pub use crate::dpo_reference::PreferenceEval;

/// Train on preference pairs (KTO: each pair becomes a desirable and an undesirable example).
/// `base` is the starting model: a Keel checkpoint, HF directory, GGUF file or adapter
/// directory.
pub fn dpo(
    base: &Path,
    cfg: &DpoConfig,
    train: &[PreferencePair],
    val: &[PreferencePair],
    run_dir: &Path,
    opts: RunOptions,
) -> Result<DpoOutcome> {
    if cfg.loss == DpoLoss::Kto {
        let unpaired: Vec<UnpairedExample> = train.iter().flat_map(split_pair).collect();
        return dpo_unpaired(base, cfg, &unpaired, val, run_dir, opts);
    }
    cfg.validate()?;
    let policy = Policy::load(base, cfg.lora.as_ref(), cfg.seed)?;
    let renderer = ChatRenderer::for_model(&policy.loaded)?;
    let pt = PairTokenizer::new(&renderer, cfg.max_len);
    let (t, report) = pt.pairs(train);
    let items = t
        .into_iter()
        .map(|p| Item {
            a: (p.prompt.clone(), p.chosen),
            b: (p.prompt, p.rejected),
            desirable: true,
        })
        .collect();
    let val = val_items(&pt, val);
    run(policy, cfg, items, val, report, run_dir, opts)
}

/// KTO on unpaired examples; `val` pairs measure the result as for the paired losses.
pub fn dpo_unpaired(
    base: &Path,
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
    let policy = Policy::load(base, cfg.lora.as_ref(), cfg.seed)?;
    let renderer = ChatRenderer::for_model(&policy.loaded)?;
    let pt = PairTokenizer::new(&renderer, cfg.max_len);
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
        let other = other[..other.len().min(pt.max_len.saturating_sub(p.len()))].to_vec();
        items.push(Item {
            a: (e.prompt.clone(), e.completion.clone()),
            b: (p, other),
            desirable: e.desirable,
        });
    }
    let val = val_items(&pt, val);
    run(policy, cfg, items, val, report, run_dir, opts)
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

/// The training loop shared by the paired losses and KTO.
fn run(
    mut policy: Policy,
    cfg: &DpoConfig,
    items: Vec<Item>,
    val: Vec<Item>,
    report: TokenizeReport,
    run_dir: &Path,
    opts: RunOptions,
) -> Result<DpoOutcome> {
    if items.is_empty() {
        return Err(TrainError::Data(format!(
            "no training items ({} dropped as longer than max_len {}, {} not renderable)",
            report.dropped, cfg.max_len, report.unrenderable
        )));
    }
    if let Some(t) = opts.tokenizer_json.clone() {
        policy.tokenizer_json = Some(t);
    }
    let policy = policy;
    let mc = &policy.config;
    if cfg.max_len > mc.max_position_embeddings {
        return Err(TrainError::Config(format!(
            "max_len {} exceeds the model's max_position_embeddings {}",
            cfg.max_len, mc.max_position_embeddings
        )));
    }
    if let Some(id) = items.iter().chain(&val).filter_map(Item::max_id).max() {
        if id as usize >= mc.vocab_size {
            return Err(TrainError::Config(format!(
                "token id {id} is outside the model's vocabulary of {}",
                mc.vocab_size
            )));
        }
    }
    let model = policy.model();
    let base_sha = policy.source_sha256()?;
    let (train_fp, val_fp) = (fingerprint(&items), fingerprint(&val));
    // Reference pass (adapters off), before any checkpoint is restored into the weights.
    std::fs::create_dir_all(run_dir).map_err(|e| keel_core::CoreError::io(run_dir, e))?;
    let key = keel_core::artifact::sha256_hex(
        format!(
            "{base_sha}/{}/{train_fp}/{val_fp}/{}",
            policy.is_lora(),
            cfg.loss.uses_reference()
        )
        .as_bytes(),
    );
    let (refs, reference_secs) = reference_cache(
        model,
        key,
        &items,
        &val,
        cfg.loss.uses_reference(),
        cfg.batch_size,
        run_dir,
    )?;
    let params = policy.params()?;
    let mut opt = AdamW::new(params.clone(), cfg.adamw);
    let metrics = MetricsLog::new(&run_dir.join("metrics.jsonl"));
    let cfg_json = serde_json::json!({ "dpo": cfg, "base_weights_sha256": base_sha, "train_sha256": train_fp });
    // Fresh adapters start at B = 0, so the policy *is* the reference: evaluate it with them
    // off, through exactly the reference's kernels, so step 0 reads margin 0 exactly.
    model.set_lora_enabled(cfg.lora.is_none());
    let val_before = match val.is_empty() || opts.resume {
        true => Ok(None),
        false => evaluate(model, &val, &refs.val, cfg.beta, cfg.batch_size).map(Some),
    };
    model.set_lora_enabled(true);
    let val_before = val_before?;
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
        policy.save_checkpoint(run_dir, opt, &state, cfg.keep_checkpoints)
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
            // LoRA dropout masks keyed by (step, micro-batch): a resumed run draws the same.
            model.set_lora_dropout_key(Some(step * cfg.grad_accum as u64 + micro as u64));
            tokens += b.tokens;
            let n = rows.len();
            let lp = model.sequence_logprobs(&b.x, &b.y, &b.mask)?;
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
                    let loss = if cfg.rpo_alpha > 0.0 {
                        (o.loss + (pl::chosen_nll(&p)? * cfg.rpo_alpha)?)?
                    } else {
                        o.loss
                    };
                    (loss, o.chosen_rewards, o.rejected_rewards)
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
            let v = evaluate(model, &val, &refs.val, cfg.beta, cfg.batch_size)?;
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
