//! Train / validation / test partitioning.
//!
//! Two things are held out for the test split: entities (each entity kind is partitioned) and
//! question templates (the last template of every family is reserved for test). A held-out
//! template is a new sentence built from words the training text uses (a test checks this):
//! a model that learns language only from this world cannot know a word it never read, and
//! the split is meant to measure generalisation to new phrasings, not vocabulary. Validation uses
//! its own entities with the training templates, so it measures generalisation to new entities
//! and test measures generalisation to new entities *and* new phrasings. All entities still
//! appear in the pretraining corpus: the held-out part is the question, not the fact.

use super::WorldConfig;
use keel_core::rng::KeelRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many of `n` items go to (validation, test); each non-zero fraction gets at least one.
pub fn held_out_counts(n: usize, cfg: &WorldConfig) -> (usize, usize) {
    let k = |f: f64| {
        if f <= 0.0 {
            0
        } else {
            ((n as f64 * f).round() as usize).max(1)
        }
    };
    (k(cfg.validation_fraction), k(cfg.test_fraction))
}

/// A random split label for each of `n` items.
pub fn assign_splits(n: usize, cfg: &WorldConfig, rng: &mut KeelRng) -> Vec<Split> {
    let (v, t) = held_out_counts(n, cfg);
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(rng);
    let mut out = vec![Split::Train; n];
    for &i in &idx[..t] {
        out[i] = Split::Test;
    }
    for &i in &idx[t..t + v] {
        out[i] = Split::Validation;
    }
    out
}

/// The templates of `family` that `split` may use, with their index in the family.
/// The last template is test-only; the others serve train and validation.
pub fn templates_for<'a>(split: Split, family: &[&'a str]) -> Vec<(usize, &'a str)> {
    debug_assert!(
        family.len() >= 2,
        "a template family needs a held-out member"
    );
    let last = family.len() - 1;
    match split {
        Split::Test => vec![(last, family[last])],
        _ => family[..last].iter().copied().enumerate().collect(),
    }
}

/// Scale a per-train-split count to `split` by the ratio of the split fractions, so validation
/// and test banks stay proportionate to their share of entities.
pub fn scaled(count: usize, split: Split, cfg: &WorldConfig) -> usize {
    let train = (1.0 - cfg.validation_fraction - cfg.test_fraction).max(1e-9);
    let f = match split {
        Split::Train => return count,
        Split::Validation => cfg.validation_fraction,
        Split::Test => cfg.test_fraction,
    };
    ((count as f64 * f / train).ceil() as usize).min(count)
}
