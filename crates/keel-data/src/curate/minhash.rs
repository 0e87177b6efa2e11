//! Near-duplicate detection: MinHash signatures with LSH banding, confirmed by exact Jaccard.
//!
//! Each row's word shingles are hashed by `bands × rows_per_band` seeded universal hash
//! functions `(a·x + b) mod (2^61 − 1)`; a signature keeps each function's minimum. Two rows
//! whose signatures agree on every value of some band land in the same bucket and become
//! candidates (probability `1 − (1 − J^r)^b` for Jaccard `J`). Candidates are then compared on
//! their exact shingle sets, so the threshold is applied exactly and LSH only saves the
//! all-pairs comparison: there are no false positives, only the (rare) missed pair whose
//! signatures share no band.

use super::text::{hash_u64s, jaccard};
use keel_core::rng::rng_for;
use rand::Rng;
use std::collections::HashMap;

const PRIME: u64 = (1 << 61) - 1;

/// Index of kept rows for near-duplicate queries.
pub struct LshIndex {
    a: Vec<u64>,
    b: Vec<u64>,
    bands: usize,
    rows: usize,
    threshold: f64,
    buckets: HashMap<(usize, u64), Vec<usize>>,
    /// Shingle sets of inserted rows, by insertion id.
    sets: Vec<Vec<u64>>,
}

impl LshIndex {
    /// `bands × rows` hash functions drawn from the seeded stream "curate/minhash".
    pub fn new(seed: u64, bands: usize, rows: usize, threshold: f64) -> Self {
        let (bands, rows) = (bands.max(1), rows.max(1));
        let mut rng = rng_for(seed, "curate/minhash");
        let n = bands * rows;
        let a = (0..n).map(|_| rng.random_range(1..PRIME)).collect();
        let b = (0..n).map(|_| rng.random_range(0..PRIME)).collect();
        LshIndex {
            a,
            b,
            bands,
            rows,
            threshold,
            buckets: HashMap::new(),
            sets: Vec::new(),
        }
    }

    fn signature(&self, set: &[u64]) -> Vec<u64> {
        self.a
            .iter()
            .zip(&self.b)
            .map(|(&a, &b)| {
                set.iter()
                    .map(|&x| {
                        ((u128::from(a) * u128::from(x % PRIME) + u128::from(b))
                            % u128::from(PRIME)) as u64
                    })
                    .min()
                    .unwrap_or(u64::MAX)
            })
            .collect()
    }

    fn band_keys(&self, sig: &[u64]) -> Vec<(usize, u64)> {
        sig.chunks(self.rows)
            .take(self.bands)
            .enumerate()
            .map(|(i, band)| (i, hash_u64s(band)))
            .collect()
    }

    /// `Err((id, jaccard))` with the earliest inserted row at least `threshold`-similar to
    /// `set`; otherwise inserts `set` and returns `Ok(its id)`. Rows are thus kept first-come.
    pub fn check_and_insert(&mut self, set: Vec<u64>) -> Result<usize, (usize, f64)> {
        let keys = self.band_keys(&self.signature(&set));
        let mut best: Option<(usize, f64)> = None;
        for k in &keys {
            for &cand in self.buckets.get(k).map(Vec::as_slice).unwrap_or(&[]) {
                if best.is_some_and(|(b, _)| b <= cand) {
                    continue;
                }
                let j = jaccard(&set, &self.sets[cand]);
                if j >= self.threshold {
                    best = Some((cand, j));
                }
            }
        }
        if let Some(hit) = best {
            return Err(hit);
        }
        let id = self.sets.len();
        for k in keys {
            self.buckets.entry(k).or_default().push(id);
        }
        self.sets.push(set);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curate::text::{shingles, words};

    #[test]
    fn finds_near_duplicates_and_keeps_distinct_rows() {
        let mut idx = LshIndex::new(7, 16, 8, 0.7);
        let base = "the quick brown fox jumps over the lazy dog near the river bank today";
        let near = "the quick brown fox jumps over the lazy dog near the river bank tonight";
        let other = "an entirely different sentence about markets and towns in the north";
        let s = |t: &str| shingles(&words(t), 3);
        assert_eq!(idx.check_and_insert(s(base)), Ok(0));
        let hit = idx.check_and_insert(s(near)).unwrap_err();
        assert_eq!(hit.0, 0);
        assert!(hit.1 >= 0.7 && hit.1 < 1.0, "{hit:?}");
        assert_eq!(idx.check_and_insert(s(other)), Ok(1));
    }
}
