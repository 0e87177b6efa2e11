//! Trainable classifiers: a hashed n-gram linear model ([`linear`]) and a MiniLM sentence
//! embedding with a logistic head ([`minilm`]). Both are one-vs-rest logistic heads, one per
//! category, Platt-calibrated on a held-out split so a score of 0.8 means roughly 80%.

pub mod data;
pub mod features;
pub mod linear;
pub mod logistic;
pub mod minilm;

pub use data::{read_jsonl, Example};

use serde::{Deserialize, Serialize};

/// A trained scorer the engine can consult.
pub trait TextClassifier: Send + Sync {
    /// The detector name policies use for it: `linear` or `minilm`.
    fn name(&self) -> &str;
    /// Category codes, in the order [`TextClassifier::predict`] returns probabilities.
    fn categories(&self) -> &[String];
    /// Calibrated probability per category.
    fn predict(&self, text: &str) -> Vec<f32>;
}

/// Element-wise maximum of per-view score vectors (each `n` long).
pub fn max_per_category(scores: impl IntoIterator<Item = Vec<f32>>, n: usize) -> Vec<f32> {
    scores.into_iter().fold(vec![0.0; n], |mut m, s| {
        for (a, b) in m.iter_mut().zip(s) {
            *a = a.max(b);
        }
        m
    })
}

/// Held-out quality of one category head at the 0.5 decision threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryMetrics {
    pub category: String,
    pub support: usize,
    pub precision: f32,
    pub recall: f32,
    /// Expected calibration error over 10 bins, on the held-out split.
    pub ece: f32,
}

/// Precision/recall/ECE of probabilities `p` against `y`.
pub fn metrics(category: &str, p: &[f32], y: &[bool]) -> CategoryMetrics {
    let (mut tp, mut fp, mut fne) = (0usize, 0usize, 0usize);
    for (&pi, &yi) in p.iter().zip(y) {
        match (pi >= 0.5, yi) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fne += 1,
            _ => {}
        }
    }
    let div = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    let mut bins = [(0f32, 0f32, 0usize); 10];
    for (&pi, &yi) in p.iter().zip(y) {
        let b = ((pi * 10.0) as usize).min(9);
        bins[b].0 += pi;
        bins[b].1 += yi as u8 as f32;
        bins[b].2 += 1;
    }
    let n = p.len().max(1) as f32;
    let ece = bins
        .iter()
        .filter(|b| b.2 > 0)
        .map(|b| (b.0 - b.1).abs() / n)
        .sum();
    CategoryMetrics {
        category: category.to_string(),
        support: tp + fne,
        precision: div(tp, tp + fp),
        recall: div(tp, tp + fne),
        ece,
    }
}
