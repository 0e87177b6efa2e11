//! Win rate and length-controlled win rate over pairwise judgements.
//!
//! Judges favour longer answers. The length-controlled (LC) win rate follows the idea of
//! AlpacaEval 2.0's LC win rate in a reduced form, documented here so numbers are
//! interpretable:
//!
//!   P(A beats B) = σ(θ + φ · tanh(Δ / s)),  Δ = len(A) − len(B) in words,  s = sd(Δ)
//!
//! fitted by Newton's method on the soft labels (win 1, tie/inconsistent ½, loss 0) with a
//! small ridge penalty on φ (keeps the fit finite when length separates the outcomes).
//! The LC win rate is σ(θ): the predicted win rate when both answers have equal length.
//! AlpacaEval additionally models per-instruction difficulty; we do not, because Keel's
//! suites compare one model against one baseline. Intervals are seeded bootstraps.

use crate::judge::PairOutcome;
use crate::stats::{bootstrap_mean, Estimate};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One judged pair with the two answers' lengths.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JudgedPair {
    pub outcome: PairOutcome,
    pub len_a: usize,
    pub len_b: usize,
}

impl JudgedPair {
    pub fn new(outcome: PairOutcome, a: &str, b: &str) -> Self {
        JudgedPair {
            outcome,
            len_a: a.split_whitespace().count(),
            len_b: b.split_whitespace().count(),
        }
    }
}

/// Win-rate summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WinRate {
    pub n: usize,
    pub wins: usize,
    pub losses: usize,
    pub ties: usize,
    pub inconsistent: usize,
    pub win_rate: Option<Estimate>,
    pub lc_win_rate: Option<Estimate>,
    /// Fitted length coefficient φ (positive: the judge rewards length).
    pub length_coef: Option<f64>,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Fit (θ, φ) as described in the module docs. Returns `None` for an empty input.
pub fn fit_length_model(pairs: &[JudgedPair]) -> Option<(f64, f64)> {
    if pairs.is_empty() {
        return None;
    }
    let deltas: Vec<f64> = pairs
        .iter()
        .map(|p| p.len_a as f64 - p.len_b as f64)
        .collect();
    let mean = deltas.iter().sum::<f64>() / deltas.len() as f64;
    let sd = (deltas.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / deltas.len() as f64).sqrt();
    let x: Vec<f64> = deltas
        .iter()
        .map(|d| if sd > 0.0 { (d / sd).tanh() } else { 0.0 })
        .collect();
    let y: Vec<f64> = pairs.iter().map(|p| p.outcome.score_a()).collect();
    let lambda = 1e-2; // ridge on φ only
    let lambda0 = 1e-6; // a whisper on θ so all-wins data stays finite
    let (mut t, mut f) = (0.0f64, 0.0f64);
    for _ in 0..100 {
        let (mut g0, mut g1, mut h00, mut h01, mut h11) =
            (lambda0 * t, lambda * f, lambda0, 0.0, lambda);
        for (xi, yi) in x.iter().zip(&y) {
            let p = sigmoid(t + f * xi);
            let w = p * (1.0 - p);
            g0 += p - yi;
            g1 += (p - yi) * xi;
            h00 += w;
            h01 += w * xi;
            h11 += w * xi * xi;
        }
        let det = h00 * h11 - h01 * h01;
        if det.abs() < 1e-300 {
            break;
        }
        let dt = (h11 * g0 - h01 * g1) / det;
        let df = (h00 * g1 - h01 * g0) / det;
        // Damp huge steps (near-separable data) so the iteration cannot overshoot to NaN.
        let scale = 1.0f64.min(5.0 / dt.abs().max(df.abs()).max(1e-12));
        t -= dt * scale;
        f -= df * scale;
        if dt.abs().max(df.abs()) < 1e-10 {
            break;
        }
    }
    Some((t, f))
}

/// Win rate and LC win rate with bootstrap intervals (`iters` resamples, seeded).
pub fn win_rate(pairs: &[JudgedPair], iters: usize, seed: u64) -> WinRate {
    let count = |o: PairOutcome| pairs.iter().filter(|p| p.outcome == o).count();
    let scores: Vec<f64> = pairs.iter().map(|p| p.outcome.score_a()).collect();
    let fit = fit_length_model(pairs);
    let lc_win_rate = fit.map(|(theta, _)| {
        let mut rng = keel_core::rng::rng_for(seed, "lc-bootstrap");
        let mut est: Vec<f64> = (0..iters)
            .filter_map(|_| {
                let sample: Vec<JudgedPair> = (0..pairs.len())
                    .map(|_| pairs[rng.random_range(0..pairs.len())])
                    .collect();
                fit_length_model(&sample).map(|(t, _)| sigmoid(t))
            })
            .collect();
        est.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| {
            est.get(((p * (est.len().max(1) - 1) as f64).round()) as usize)
                .copied()
        };
        let v = sigmoid(theta);
        Estimate {
            value: v,
            lo: q(0.025).unwrap_or(v),
            hi: q(0.975).unwrap_or(v),
        }
    });
    WinRate {
        n: pairs.len(),
        wins: count(PairOutcome::AWins),
        losses: count(PairOutcome::BWins),
        ties: count(PairOutcome::Tie),
        inconsistent: count(PairOutcome::Inconsistent),
        win_rate: bootstrap_mean(&scores, iters, 0.05, seed),
        lc_win_rate,
        length_coef: fit.map(|(_, f)| f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(o: PairOutcome, la: usize, lb: usize) -> JudgedPair {
        JudgedPair {
            outcome: o,
            len_a: la,
            len_b: lb,
        }
    }

    #[test]
    fn raw_win_rate_counts_ties_as_half() {
        let ps = vec![
            pair(PairOutcome::AWins, 10, 10),
            pair(PairOutcome::BWins, 10, 10),
            pair(PairOutcome::Tie, 10, 10),
            pair(PairOutcome::Inconsistent, 10, 10),
        ];
        let w = win_rate(&ps, 200, 1);
        assert_eq!((w.wins, w.losses, w.ties, w.inconsistent), (1, 1, 1, 1));
        assert!((w.win_rate.unwrap().value - 0.5).abs() < 1e-12);
        // No length variation: LC equals the raw rate.
        assert!((w.lc_win_rate.unwrap().value - 0.5).abs() < 1e-6);
    }

    #[test]
    fn length_control_discounts_wins_bought_by_length() {
        // A wins exactly when it is longer; at equal length the record is even.
        let mut ps = Vec::new();
        for _ in 0..30 {
            ps.push(pair(PairOutcome::AWins, 200, 50));
        }
        for _ in 0..10 {
            ps.push(pair(PairOutcome::BWins, 50, 200));
        }
        for _ in 0..10 {
            ps.push(pair(PairOutcome::AWins, 100, 100));
            ps.push(pair(PairOutcome::BWins, 100, 100));
        }
        let w = win_rate(&ps, 100, 3);
        let raw = w.win_rate.unwrap().value;
        let lc = w.lc_win_rate.unwrap().value;
        assert!((raw - 40.0 / 60.0).abs() < 1e-12);
        assert!(lc < raw - 0.1, "lc {lc} raw {raw}");
        assert!(w.length_coef.unwrap() > 1.0);
        assert_eq!(
            win_rate(&ps, 100, 3),
            w,
            "seeded bootstrap is deterministic"
        );
    }
}
