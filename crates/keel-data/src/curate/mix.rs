//! Mixing by ratio: downsample categories so the kept rows match target proportions.
//!
//! The mix is the largest one the data allows without repeating rows: with target ratio `r_c`
//! and `a_c` rows available per category, the total is `N = min_c ⌊a_c / r_c⌋` and category
//! `c` keeps `⌊r_c · N⌉` rows (never more than it has), chosen by a seeded shuffle
//! ("curate/mix") and returned in their original order. Categories without a ratio are left
//! out entirely.

use crate::error::{DataError, Result};
use keel_core::rng::rng_for;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;

/// Which of `cats` (one category per row) to keep. `Ok(keep)` has one flag per row.
pub fn select(cats: &[&str], ratios: &BTreeMap<String, f64>, seed: u64) -> Result<Vec<bool>> {
    let total: f64 = ratios.values().sum();
    if ratios.is_empty() || total <= 0.0 || ratios.values().any(|r| !r.is_finite() || *r < 0.0) {
        return Err(DataError::Config(format!(
            "mix ratios must be non-negative with a positive sum, got {ratios:?}"
        )));
    }
    let mut by_cat: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in cats.iter().enumerate() {
        by_cat.entry(c).or_default().push(i);
    }
    let mut n = f64::INFINITY;
    for (c, r) in ratios {
        let r = r / total;
        if r > 0.0 {
            let avail = by_cat.get(c.as_str()).map_or(0, Vec::len) as f64;
            n = n.min((avail / r).floor());
        }
    }
    let mut keep = vec![false; cats.len()];
    let mut rng = rng_for(seed, "curate/mix");
    for (c, r) in ratios {
        let Some(rows) = by_cat.get_mut(c.as_str()) else {
            continue;
        };
        let want = ((r / total * n).round() as usize).min(rows.len());
        rows.shuffle(&mut rng);
        for &i in &rows[..want] {
            keep[i] = true;
        }
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_mix_at_the_ratio() {
        let mut cats = vec!["a"; 60];
        cats.extend(vec!["b"; 10]);
        cats.extend(vec!["c"; 5]);
        let ratios = BTreeMap::from([("a".to_string(), 0.8), ("b".to_string(), 0.2)]);
        let keep = select(&cats, &ratios, 1).unwrap();
        let count = |c: &str| {
            cats.iter()
                .zip(&keep)
                .filter(|(x, &k)| **x == c && k)
                .count()
        };
        // b limits: 10 / 0.2 = 50 rows in all, 40 of a.
        assert_eq!((count("a"), count("b"), count("c")), (40, 10, 0));
        assert_eq!(keep, select(&cats, &ratios, 1).unwrap());
        assert_ne!(keep, select(&cats, &ratios, 2).unwrap());
        assert!(select(&cats, &BTreeMap::new(), 1).is_err());
    }
}
