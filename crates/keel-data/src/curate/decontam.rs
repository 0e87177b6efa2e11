//! Decontamination: drop training rows that share a word n-gram with an evaluation item.
//!
//! As in GPT-3 / Llama / Tülu decontamination, an eval text of at least `n` words (13 by
//! default) contributes its `n`-grams; a shorter one of at least `short_n` words (8) its
//! `short_n`-grams; one shorter still (but at least `min_words`) counts as a whole, so a
//! five-word test question copied into a training prompt is still caught. Matching is on
//! normalised words ([`super::text::words`]), so case and punctuation do not hide a leak.

use super::text::{hash_words, ngram_hashes, words};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// A named evaluation set: the texts a model will be tested on (usually the prompts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalSet {
    pub name: String,
    pub texts: Vec<String>,
}

/// n-gram settings of decontamination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecontamConfig {
    pub n: usize,
    pub short_n: usize,
    pub min_words: usize,
}

impl Default for DecontamConfig {
    fn default() -> Self {
        DecontamConfig {
            n: 13,
            short_n: 8,
            min_words: 4,
        }
    }
}

/// Where a matched n-gram comes from.
#[derive(Debug, Clone, Copy)]
struct Origin {
    set: usize,
    item: usize,
}

/// The n-grams of every eval set, by n-gram length.
pub struct Decontaminator {
    sets: Vec<EvalSet>,
    grams: HashMap<usize, HashMap<u64, Origin>>,
}

/// A training row's overlap with an eval item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contamination {
    pub eval_set: String,
    pub eval_index: usize,
    /// The overlapping words, normalised.
    pub ngram: String,
}

impl Decontaminator {
    pub fn new(sets: &[EvalSet], cfg: DecontamConfig) -> Self {
        let mut grams: HashMap<usize, HashMap<u64, Origin>> = HashMap::new();
        for (s, set) in sets.iter().enumerate() {
            for (i, t) in set.texts.iter().enumerate() {
                let ws = words(t);
                let n = if ws.len() >= cfg.n {
                    cfg.n
                } else if ws.len() >= cfg.short_n {
                    cfg.short_n
                } else if ws.len() >= cfg.min_words.max(1) {
                    ws.len()
                } else {
                    continue;
                };
                let m = grams.entry(n).or_default();
                for h in ngram_hashes(&ws, n) {
                    m.entry(h).or_insert(Origin { set: s, item: i });
                }
            }
        }
        Decontaminator {
            sets: sets.to_vec(),
            grams,
        }
    }

    /// Eval sets and how many texts each holds (for the report).
    pub fn summary(&self) -> Vec<(String, usize)> {
        self.sets
            .iter()
            .map(|s| (s.name.clone(), s.texts.len()))
            .collect()
    }

    /// n-gram lengths in use.
    pub fn lengths(&self) -> BTreeSet<usize> {
        self.grams.keys().copied().collect()
    }

    /// The first eval overlap of `text`, if any (shortest n-gram length checked first).
    pub fn check(&self, text: &str) -> Option<Contamination> {
        let ws = words(text);
        for n in self.lengths() {
            let m = &self.grams[&n];
            for (i, g) in ws.windows(n).enumerate() {
                if let Some(o) = m.get(&hash_words(g)) {
                    // A 64-bit hash match between distinct n-grams is astronomically unlikely,
                    // but confirm against the eval text so a report never shows a false match.
                    let eval_ws = words(&self.sets[o.set].texts[o.item]);
                    if eval_ws.windows(n).any(|e| e == g) {
                        return Some(Contamination {
                            eval_set: self.sets[o.set].name.clone(),
                            eval_index: o.item,
                            ngram: ws[i..i + n].join(" "),
                        });
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_short_and_whole_text_matches() {
        let long =
            "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
        let sets = vec![EvalSet {
            name: "ev".into(),
            texts: vec![
                long.into(),
                "alpha beta gamma delta epsilon zeta eta theta iota".into(),
                "Where is Brell town?".into(),
                "too short".into(),
            ],
        }];
        let d = Decontaminator::new(&sets, DecontamConfig::default());
        assert_eq!(d.lengths(), BTreeSet::from([4, 8, 13]));
        let c = d
            .check(
                "Prefix ONE two three four five six seven eight nine ten eleven twelve thirteen!",
            )
            .unwrap();
        assert_eq!((c.eval_set.as_str(), c.eval_index), ("ev", 0));
        assert!(d
            .check("one two three four five six seven eight nine ten eleven twelve")
            .is_none());
        assert_eq!(
            d.check("x beta gamma delta epsilon zeta eta theta iota y")
                .unwrap()
                .eval_index,
            1
        );
        assert_eq!(
            d.check("So: where is brell town? Tell me.")
                .unwrap()
                .eval_index,
            2
        );
        assert!(d.check("too short").is_none());
    }
}
