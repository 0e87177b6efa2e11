//! The world's SFT mix: helpful demonstrations plus safety demonstrations at a chosen ratio.
//!
//! Helpful = every instruction row (fact QA, multi-hop, arithmetic, lists, formats, summaries)
//! plus the honesty rows (abstaining on unanswerables, correcting false premises). Safety =
//! refusals of harmful requests (brief refusal, reason, safer alternative) together with
//! compliant answers to benign-but-sensitive requests, in the proportions of their banks: the
//! benign half is what keeps over-refusal down when the refusal share grows.

use crate::chat::ChatExample;
use crate::error::{DataError, Result};
use crate::world::{Category, Split, TaskRow, World};
use keel_core::rng::rng_for;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A mix of demonstrations and how many of each category it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftMix {
    pub examples: Vec<ChatExample>,
    pub counts: BTreeMap<Category, usize>,
}

/// Demonstrations from `split` where safety rows make up `safety_ratio` of the result
/// (`0 ≤ safety_ratio < 1`). Helpful rows are all used once; safety rows are drawn from a
/// seeded shuffle, cycling through the banks again if the ratio needs more than they hold.
/// The result is shuffled (seeded).
pub fn world_sft_examples(
    world: &World,
    split: Split,
    safety_ratio: f64,
    seed: u64,
) -> Result<SftMix> {
    if !(0.0..1.0).contains(&safety_ratio) {
        return Err(DataError::Config(format!(
            "safety_ratio must be in [0, 1), got {safety_ratio}"
        )));
    }
    let b = world.banks(split);
    let helpful: Vec<&TaskRow> = b
        .instructions
        .iter()
        .chain(&b.unanswerable)
        .chain(&b.false_premise)
        .collect();
    let mut safety: Vec<&TaskRow> = b.harmful.iter().chain(&b.benign_sensitive).collect();
    let mut rng = rng_for(seed, "sft-mix");
    safety.shuffle(&mut rng);
    let want = (safety_ratio / (1.0 - safety_ratio) * helpful.len() as f64).round() as usize;
    if want > 0 && safety.is_empty() {
        return Err(DataError::Config(format!(
            "the {} split has no harmful or benign-sensitive rows to mix in",
            split.as_str()
        )));
    }
    let mut rows: Vec<&TaskRow> = helpful;
    rows.extend((0..want).map(|i| safety[i % safety.len()]));
    rows.shuffle(&mut rng);
    let mut counts = BTreeMap::new();
    for r in &rows {
        *counts.entry(r.category).or_insert(0) += 1;
    }
    let examples = rows
        .iter()
        .map(|r| ChatExample::prompt_completion(None, &r.prompt, &r.completion))
        .collect();
    Ok(SftMix { examples, counts })
}
