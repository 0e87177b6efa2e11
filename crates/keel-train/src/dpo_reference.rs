//! The DPO family's reference side: training items as (prompt, completion) id pairs, the
//! reference model's log-probs (computed once and cached in `<run>/reference_logps.json`), and
//! held-out preference metrics of a policy against them.
//!
//! The reference is the starting model: for full fine-tuning its weights before the first
//! update, for LoRA the frozen base with its adapters switched off (TRL's `null_ref_context`),
//! so no second copy of the model is ever kept. The cache is keyed by starting weights, data
//! and whether the reference is used at all, so a resumed run reuses it rather than
//! recomputing it with already-trained weights.

use crate::error::{Result, TrainError};
use crate::preference_batch::logps_no_grad;
use keel_model::Llama;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

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

/// One training item: two (prompt, completion) sequences. Pairs: chosen, rejected. KTO: the
/// example, then its prompt with another example's completion (for the KL baseline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Item {
    pub a: (Vec<u32>, Vec<u32>),
    pub b: (Vec<u32>, Vec<u32>),
    pub desirable: bool,
}

impl Item {
    /// Every item's first sequence, then every item's second: one batch for the model.
    pub fn seqs<'a>(items: &[&'a Item]) -> Vec<(&'a [u32], &'a [u32])> {
        let a = items.iter().map(|i| (&i.a.0[..], &i.a.1[..]));
        let b = items.iter().map(|i| (&i.b.0[..], &i.b.1[..]));
        a.chain(b).collect()
    }

    /// The largest token id in the item.
    pub fn max_id(&self) -> Option<u32> {
        [&self.a.0, &self.a.1, &self.b.0, &self.b.1]
            .into_iter()
            .flatten()
            .copied()
            .max()
    }
}

/// Cached reference log-probs of every item's two sequences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RefCache {
    pub key: String,
    pub train: Vec<[f32; 2]>,
    pub val: Vec<[f32; 2]>,
}

/// SHA-256 of the items, for the run's identity and the cache key.
pub(crate) fn fingerprint(items: &[Item]) -> String {
    let bytes = serde_json::to_vec(items).unwrap_or_default();
    keel_core::artifact::sha256_hex(&bytes)
}

/// Summed completion log-probs of every item's two sequences, `batch` items at a time.
pub(crate) fn item_logps(model: &Llama, items: &[Item], batch: usize) -> Result<Vec<[f32; 2]>> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch.max(1)) {
        let refs: Vec<&Item> = chunk.iter().collect();
        let lp = logps_no_grad(model, &Item::seqs(&refs), 2 * chunk.len())?;
        let n = chunk.len();
        out.extend((0..n).map(|i| [lp[i], lp[n + i]]));
    }
    Ok(out)
}

/// The reference log-probs for `train` and `val` from `<run_dir>/reference_logps.json` when it
/// was written under `key`, else computed with `model` — adapters switched off, dropout off —
/// and written there atomically. `train` is skipped (zeros) when `train_needed` is false
/// (reference-free losses). Returns the cache and the seconds spent computing it (0 if read).
pub(crate) fn reference_cache(
    model: &Llama,
    key: String,
    train: &[Item],
    val: &[Item],
    train_needed: bool,
    batch: usize,
    run_dir: &Path,
) -> Result<(RefCache, f64)> {
    let path = run_dir.join("reference_logps.json");
    let cached = keel_core::artifact::read_json::<RefCache>(&path)
        .ok()
        .filter(|c| c.key == key);
    let (refs, secs) = match cached {
        Some(c) => (c, 0.0),
        None => {
            let started = Instant::now();
            model.set_lora_dropout_key(None);
            model.set_lora_enabled(false);
            let logps = |items: &[Item]| item_logps(model, items, batch);
            let computed = (|| {
                let train = match train_needed {
                    true => logps(train)?,
                    false => vec![[0.0; 2]; train.len()],
                };
                Ok::<_, TrainError>(RefCache {
                    key,
                    train,
                    val: logps(val)?,
                })
            })();
            model.set_lora_enabled(true);
            let c = computed?;
            keel_core::artifact::write_json_atomic(&path, &c)?;
            (c, started.elapsed().as_secs_f64())
        }
    };
    if refs.train.len() != train.len() || refs.val.len() != val.len() {
        return Err(TrainError::Checkpoint {
            path,
            message: "reference cache does not match the data".into(),
        });
    }
    Ok((refs, secs))
}

/// Metrics of `model` (dropout off) on pair items against cached reference log-probs.
pub(crate) fn evaluate(
    model: &Llama,
    items: &[Item],
    refs: &[[f32; 2]],
    beta: f64,
    batch: usize,
) -> Result<PreferenceEval> {
    model.set_lora_dropout_key(None);
    let pol = item_logps(model, items, batch)?;
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
