//! Invented names from syllables. Every word handed out is unique across the whole world (and
//! differs from every word of the templates), so a name found in a prompt identifies exactly one
//! entity, which the split tests rely on.

use keel_core::rng::KeelRng;
use rand::Rng;
use std::collections::BTreeSet;

const ONSETS: &[&str] = &[
    "b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "r", "s", "sk", "t",
    "th", "tr", "v", "z", "sh", "q",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "a", "e", "o", "ei", "ou", "y"];
const CODAS: &[&str] = &[
    "", "", "", "n", "l", "r", "s", "th", "k", "m", "nd", "st", "x",
];

/// Hands out unique invented words.
#[derive(Debug, Default, Clone)]
pub struct NameGen {
    used: BTreeSet<String>,
}

impl NameGen {
    /// A generator that will never produce any word in `reserved` (compared lowercase).
    pub fn with_reserved<'a>(reserved: impl IntoIterator<Item = &'a str>) -> Self {
        NameGen {
            used: reserved.into_iter().map(|w| w.to_lowercase()).collect(),
        }
    }

    /// Whether `word` was handed out or reserved.
    pub fn is_used(&self, word: &str) -> bool {
        self.used.contains(&word.to_lowercase())
    }

    /// A fresh lowercase word of `syllables` syllables (2 or more keeps collisions with
    /// English words rare; the reserved set removes the rest).
    pub fn word(&mut self, rng: &mut KeelRng, syllables: usize) -> String {
        loop {
            let mut w = String::new();
            for i in 0..syllables {
                w.push_str(ONSETS[rng.random_range(0..ONSETS.len())]);
                w.push_str(VOWELS[rng.random_range(0..VOWELS.len())]);
                // A coda only at the end or rarely inside keeps names pronounceable.
                if i + 1 == syllables || rng.random_bool(0.25) {
                    w.push_str(CODAS[rng.random_range(0..CODAS.len())]);
                }
            }
            if w.len() >= 4 && w.len() <= 7 && self.used.insert(w.clone()) {
                return w;
            }
        }
    }

    /// Like [`NameGen::word`] but capitalised (proper nouns).
    pub fn proper(&mut self, rng: &mut KeelRng, syllables: usize) -> String {
        capitalise(&self.word(rng, syllables))
    }
}

pub fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::rng::rng_for;

    #[test]
    fn words_are_unique_and_respect_reserved() {
        let mut g = NameGen::with_reserved(["bara"]);
        let mut rng = rng_for(1, "names");
        let mut seen = BTreeSet::new();
        for _ in 0..2000 {
            let w = g.word(&mut rng, 2);
            assert_ne!(w, "bara");
            assert!(seen.insert(w));
        }
    }
}
