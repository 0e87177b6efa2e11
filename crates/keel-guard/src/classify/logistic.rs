//! One-vs-rest logistic regression over sparse features, trained with seeded SGD, then
//! Platt-scaled per head on a held-out split (fit `sigmoid(a·z + b)` to the held-out labels),
//! which turns raw margins into probabilities that mean what they say.

use super::{metrics, CategoryMetrics};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub lr: f32,
    pub l2: f32,
    /// Fraction of the training data held out for calibration and metrics.
    pub holdout: f32,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 30,
            lr: 0.5,
            l2: 1e-5,
            holdout: 0.2,
            seed: 7,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogReg {
    pub dim: usize,
    pub heads: usize,
    /// Row-major `[heads][dim]`.
    #[serde(skip)]
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    /// Platt parameters `(a, b)` per head.
    pub platt: Vec<(f32, f32)>,
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl LogReg {
    pub fn margin(&self, head: usize, x: &[(u32, f32)]) -> f32 {
        let row = &self.w[head * self.dim..(head + 1) * self.dim];
        self.b[head] + x.iter().map(|&(i, v)| row[i as usize] * v).sum::<f32>()
    }

    /// Calibrated probability per head.
    pub fn predict(&self, x: &[(u32, f32)]) -> Vec<f32> {
        (0..self.heads)
            .map(|h| self.probability(h, self.margin(h, x)))
            .collect()
    }

    /// Head `head`'s calibrated probability for `margin`.
    pub fn probability(&self, head: usize, margin: f32) -> f32 {
        let (a, b) = self.platt[head];
        sigmoid(a * margin + b)
    }

    /// Train on `xs` with labels `ys[example][head]`; returns the model and held-out metrics.
    pub fn train(
        xs: &[Vec<(u32, f32)>],
        ys: &[Vec<bool>],
        names: &[String],
        dim: usize,
        cfg: &TrainConfig,
    ) -> (LogReg, Vec<CategoryMetrics>) {
        let heads = names.len();
        let mut order: Vec<usize> = (0..xs.len()).collect();
        let mut rng = keel_core::rng::rng_for(cfg.seed, "guard-logreg-split");
        order.shuffle(&mut rng);
        let n_hold = ((xs.len() as f32) * cfg.holdout).round() as usize;
        let (hold, train) = order.split_at(n_hold.min(xs.len()));
        let mut m = LogReg {
            dim,
            heads,
            w: vec![0.0; heads * dim],
            b: vec![0.0; heads],
            platt: vec![(1.0, 0.0); heads],
        };
        let mut train: Vec<usize> = train.to_vec();
        #[allow(clippy::needless_range_loop)] // `h` indexes weights, labels and seeds alike
        for h in 0..heads {
            let pos = train.iter().filter(|&&i| ys[i][h]).count().max(1) as f32;
            let neg = (train.len() as f32 - pos).max(1.0);
            // Rare categories get their positives up-weighted; calibration undoes the bias.
            let wpos = (neg / pos).clamp(1.0, 20.0);
            let mut rng = keel_core::rng::rng_for(cfg.seed, &format!("guard-logreg-head-{h}"));
            for epoch in 0..cfg.epochs {
                train.shuffle(&mut rng);
                let lr = cfg.lr / (1.0 + epoch as f32 * 0.2);
                for &i in &train {
                    let y = ys[i][h] as u8 as f32;
                    let p = sigmoid(m.margin(h, &xs[i]));
                    let g = (p - y) * if y > 0.5 { wpos } else { 1.0 };
                    let row = &mut m.w[h * dim..(h + 1) * dim];
                    for &(j, v) in &xs[i] {
                        let wj = &mut row[j as usize];
                        *wj -= lr * (g * v + cfg.l2 * *wj);
                    }
                    m.b[h] -= lr * g * 0.1;
                }
            }
            let z: Vec<f32> = hold.iter().map(|&i| m.margin(h, &xs[i])).collect();
            let y: Vec<bool> = hold.iter().map(|&i| ys[i][h]).collect();
            m.platt[h] = platt_fit(&z, &y);
        }
        let mut mets = Vec::new();
        for (h, name) in names.iter().enumerate() {
            let p: Vec<f32> = hold.iter().map(|&i| m.predict(&xs[i])[h]).collect();
            let y: Vec<bool> = hold.iter().map(|&i| ys[i][h]).collect();
            mets.push(metrics(name, &p, &y));
        }
        (m, mets)
    }
}

/// Fit Platt scaling by Newton's method on the log loss, with Platt's smoothed targets so a
/// head with few held-out positives does not collapse to 0/1.
pub fn platt_fit(z: &[f32], y: &[bool]) -> (f32, f32) {
    let npos = y.iter().filter(|&&v| v).count() as f64;
    let nneg = y.len() as f64 - npos;
    if npos == 0.0 || nneg == 0.0 {
        return (1.0, 0.0);
    }
    let tp = (npos + 1.0) / (npos + 2.0);
    let tn = 1.0 / (nneg + 2.0);
    let loss = |a: f64, b: f64| -> f64 {
        z.iter()
            .zip(y)
            .map(|(&zi, &yi)| {
                let t = if yi { tp } else { tn };
                let f = a * zi as f64 + b;
                // log(1 + e^f) - t·f, computed stably.
                f.max(0.0) + (-f.abs()).exp().ln_1p() - t * f
            })
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 0.0f64);
    let mut cur = loss(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&zi, &yi) in z.iter().zip(y) {
            let zi = zi as f64;
            let t = if yi { tp } else { tn };
            let p = 1.0 / (1.0 + (-(a * zi + b)).exp());
            let d = p - t;
            let s = p * (1.0 - p);
            ga += d * zi;
            gb += d;
            haa += s * zi * zi;
            hab += s * zi;
            hbb += s;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        // Backtracking: Newton can overshoot when the held-out set is nearly separable.
        let mut step = 1.0;
        let mut improved = false;
        while step > 1e-6 {
            let (na, nb) = (a - step * da, b - step * db);
            let l = loss(na, nb);
            if l.is_finite() && l <= cur {
                a = na;
                b = nb;
                improved = cur - l > 1e-10;
                cur = l;
                break;
            }
            step *= 0.5;
        }
        if !improved {
            break;
        }
    }
    (a as f32, b as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_problem_and_calibrates() {
        // Feature 0 marks positives, feature 1 negatives; some noise features.
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..200u32 {
            let pos = i % 3 == 0;
            xs.push(vec![(if pos { 0 } else { 1 }, 0.8), (2 + i % 7, 0.6)]);
            ys.push(vec![pos]);
        }
        let (m, met) = LogReg::train(&xs, &ys, &["c".into()], 16, &TrainConfig::default());
        assert!(met[0].recall > 0.95 && met[0].precision > 0.95, "{met:?}");
        assert!(m.predict(&[(0, 0.8)])[0] > 0.9);
        assert!(m.predict(&[(1, 0.8)])[0] < 0.1);
    }

    #[test]
    fn platt_recovers_a_known_scale() {
        // Labels drawn (deterministically) from p = sigmoid(2z - 1).
        let mut z = Vec::new();
        let mut y = Vec::new();
        for i in 0..4000 {
            let zi = (i % 200) as f32 / 40.0 - 2.5;
            let p = 1.0 / (1.0 + (-(2.0 * zi - 1.0)).exp());
            z.push(zi);
            y.push(((i / 200) as f32 + 0.5) / 20.0 < p);
        }
        let (a, b) = platt_fit(&z, &y);
        assert!(
            (a - 2.0).abs() < 0.3 && (b + 1.0).abs() < 0.3,
            "a={a} b={b}"
        );
    }
}
