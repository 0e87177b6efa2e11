//! Confidence intervals and agreement statistics.
//!
//! - proportions (pass rates, refusal rates, attack success rates) use the Wilson score
//!   interval: unlike the normal approximation it stays inside [0, 1] and behaves at 0/n
//!   and n/n, which is exactly where safety metrics live;
//! - means of continuous scores (MC2, judge ratings) use a percentile bootstrap with a
//!   seeded ChaCha8 stream, so the same results file always gives the same interval;
//! - Cohen's kappa measures agreement between two classifiers beyond chance.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A point estimate with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Wilson score interval for `successes` out of `n` at normal quantile `z`.
/// `None` when `n == 0` (no evidence: no interval, rather than a fake 0%).
pub fn wilson(successes: u64, n: u64, z: f64) -> Option<Estimate> {
    if n == 0 || successes > n {
        return None;
    }
    let n_f = n as f64;
    let p = successes as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = z * ((p * (1.0 - p) / n_f) + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    Some(Estimate {
        value: p,
        lo: (centre - half).max(0.0),
        hi: (centre + half).min(1.0),
    })
}

/// Percentile bootstrap interval of the mean of `values` (`iters` resamples, level `1 - alpha`),
/// drawn from `keel_core::rng::rng_for(seed, "bootstrap")`.
pub fn bootstrap_mean(values: &[f64], iters: usize, alpha: f64, seed: u64) -> Option<Estimate> {
    if values.is_empty() || iters == 0 {
        return None;
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut rng = keel_core::rng::rng_for(seed, "bootstrap");
    let mut means: Vec<f64> = (0..iters)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        let idx = ((p * (iters - 1) as f64).round() as usize).min(iters - 1);
        means[idx]
    };
    Some(Estimate {
        value: mean,
        lo: q(alpha / 2.0),
        hi: q(1.0 - alpha / 2.0),
    })
}

/// Agreement between two labelings of the same items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Items both raters labeled.
    pub n: usize,
    /// Fraction of those with identical labels.
    pub observed: f64,
    /// Cohen's kappa; `None` when chance agreement is 1 (both raters constant and equal),
    /// where kappa is undefined.
    pub kappa: Option<f64>,
    /// The label set, in the order used by `confusion`.
    pub labels: Vec<String>,
    /// `confusion[i][j]` = items rater A labeled `labels[i]` and rater B `labels[j]`.
    pub confusion: Vec<Vec<u64>>,
}

/// Cohen's kappa over pairs; pairs where either side is `None` (unscored) are left out.
pub fn cohen_kappa<L: Ord + Clone + ToString>(pairs: &[(Option<L>, Option<L>)]) -> Agreement {
    let both: Vec<(&L, &L)> = pairs
        .iter()
        .filter_map(|(a, b)| Some((a.as_ref()?, b.as_ref()?)))
        .collect();
    let mut labels: Vec<L> = both
        .iter()
        .flat_map(|(a, b)| [(*a).clone(), (*b).clone()])
        .collect();
    labels.sort();
    labels.dedup();
    let k = labels.len();
    let idx = |l: &L| labels.binary_search(l).unwrap_or(0);
    let mut confusion = vec![vec![0u64; k]; k];
    for (a, b) in &both {
        confusion[idx(a)][idx(b)] += 1;
    }
    let n = both.len();
    let (observed, kappa) = if n == 0 {
        (0.0, None)
    } else {
        let nf = n as f64;
        let po = (0..k).map(|i| confusion[i][i]).sum::<u64>() as f64 / nf;
        let pe: f64 = (0..k)
            .map(|i| {
                let row: u64 = confusion[i].iter().sum();
                let col: u64 = (0..k).map(|r| confusion[r][i]).sum();
                (row as f64 / nf) * (col as f64 / nf)
            })
            .sum();
        let kappa = if (1.0 - pe).abs() < 1e-12 {
            None
        } else {
            Some((po - pe) / (1.0 - pe))
        };
        (po, kappa)
    };
    Agreement {
        n,
        observed,
        kappa,
        labels: labels.iter().map(|l| l.to_string()).collect(),
        confusion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    #[test]
    fn wilson_known_values() {
        // Reference values (95%): 0/10 -> [0, 0.2775]; 5/10 -> [0.2366, 0.7634];
        // 10/10 -> [0.7225, 1]; 81/263 -> [0.2553, 0.3662] (Wilson 1927 / Newcombe 1998 method 3).
        let e = wilson(0, 10, Z95).unwrap();
        assert!(
            close(e.lo, 0.0, 1e-12) && close(e.hi, 0.27753, 1e-4),
            "{e:?}"
        );
        let e = wilson(5, 10, Z95).unwrap();
        assert!(
            close(e.lo, 0.23659, 1e-4) && close(e.hi, 0.76341, 1e-4),
            "{e:?}"
        );
        let e = wilson(10, 10, Z95).unwrap();
        assert!(
            close(e.lo, 0.72247, 1e-4) && close(e.hi, 1.0, 1e-12),
            "{e:?}"
        );
        let e = wilson(81, 263, Z95).unwrap();
        assert!(close(e.value, 0.30798, 1e-4));
        assert!(
            close(e.lo, 0.25528, 1e-3) && close(e.hi, 0.36619, 1e-3),
            "{e:?}"
        );
        assert!(wilson(0, 0, Z95).is_none());
        assert!(wilson(3, 2, Z95).is_none());
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_mean() {
        let v: Vec<f64> = (0..50).map(|i| (i % 7) as f64 / 7.0).collect();
        let a = bootstrap_mean(&v, 2000, 0.05, 11).unwrap();
        let b = bootstrap_mean(&v, 2000, 0.05, 11).unwrap();
        assert_eq!(a, b);
        assert!(a.lo < a.value && a.value < a.hi);
        let c = bootstrap_mean(&v, 2000, 0.05, 12).unwrap();
        assert_ne!(a.lo, c.lo);
        // Constant data: zero-width interval.
        let k = bootstrap_mean(&[0.5; 10], 100, 0.05, 1).unwrap();
        assert_eq!((k.lo, k.hi), (0.5, 0.5));
    }

    #[test]
    fn kappa_textbook_example() {
        // Classic 2x2 example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no:
        // po = 0.7, pe = 0.5, kappa = 0.4.
        let mut pairs = Vec::new();
        pairs.extend(std::iter::repeat_n((Some("y"), Some("y")), 20));
        pairs.extend(std::iter::repeat_n((Some("y"), Some("n")), 5));
        pairs.extend(std::iter::repeat_n((Some("n"), Some("y")), 10));
        pairs.extend(std::iter::repeat_n((Some("n"), Some("n")), 15));
        pairs.push((None, Some("y"))); // unscored: ignored
        let a = cohen_kappa(&pairs);
        assert_eq!(a.n, 50);
        assert!(close(a.observed, 0.7, 1e-12));
        assert!(close(a.kappa.unwrap(), 0.4, 1e-12));
        assert_eq!(a.labels, vec!["n", "y"]);
        assert_eq!(a.confusion, vec![vec![15, 10], vec![5, 20]]);
        // Both constant and equal: kappa undefined, not 1 or NaN.
        let same = cohen_kappa(&[(Some(1), Some(1)), (Some(1), Some(1))]);
        assert_eq!(same.kappa, None);
    }
}
