//! The RL objectives' maths, kept apart from the loop so each piece is checked against values
//! computed by hand.
//!
//! Advantage-side quantities (GAE, whitening, group baselines, KL estimates, the adaptive KL
//! coefficient) carry no gradient and are plain `f64` slices. The losses that do carry one
//! (PPO's clipped policy and value losses, the k3 KL term) are candle tensors over the
//! response tokens of a batch, flattened to 1-D `[n]` so no mask is needed: the trainer
//! gathers exactly the tokens that count before calling them.
//!
//! Conventions follow TRL (`PPOTrainer`, `GRPOTrainer`, `RLOOTrainer`) so logged numbers
//! compare: whitening uses the unbiased variance, GRPO divides by the unbiased group std + 1e-4.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// How the per-token KL to the reference is estimated from a sampled token (Schulman, "Approximating
/// KL divergence"): with `r = ref_logp − logp`, k1 = −r (unbiased, can be negative), k3 =
/// (eʳ − 1) − r (unbiased, always ≥ 0, lower variance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    #[default]
    K1,
    K3,
}

impl KlEstimator {
    pub fn estimate(self, logp: f64, ref_logp: f64) -> f64 {
        let r = ref_logp - logp;
        match self {
            KlEstimator::K1 => -r,
            KlEstimator::K3 => r.exp_m1() - r,
        }
    }
}

/// Generalised advantage estimation over one response (Schulman et al. 2016), terminal after
/// the last token: δₜ = rₜ + γ·Vₜ₊₁ − Vₜ, Aₜ = δₜ + γλ·Aₜ₊₁, returns = A + V.
pub fn gae(rewards: &[f64], values: &[f64], gamma: f64, lam: f64) -> (Vec<f64>, Vec<f64>) {
    let n = rewards.len().min(values.len());
    let mut adv = vec![0.0; n];
    let mut last = 0.0;
    for t in (0..n).rev() {
        let next_v = if t + 1 < n { values[t + 1] } else { 0.0 };
        let delta = rewards[t] + gamma * next_v - values[t];
        last = delta + gamma * lam * last;
        adv[t] = last;
    }
    let returns = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    (adv, returns)
}

/// Per-token rewards of one response: −coef·KLₜ at every token, plus the sequence score at
/// the last token (the reward model / verifier only judges complete responses).
pub fn token_rewards(score: f64, kl: &[f64], coef: f64) -> Vec<f64> {
    let mut r: Vec<f64> = kl.iter().map(|k| -coef * k).collect();
    if let Some(last) = r.last_mut() {
        *last += score;
    }
    r
}

/// Whiten in place: (x − mean) / sqrt(var + 1e-8), with the unbiased variance. With
/// `shift_mean` false the mean is added back (TRL does this for rewards). Fewer than two
/// values are left as they are: their variance is undefined.
pub fn whiten(xs: &mut [f64], shift_mean: bool) {
    let n = xs.len();
    if n < 2 {
        return;
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let inv = 1.0 / (var + 1e-8).sqrt();
    for x in xs.iter_mut() {
        *x = (*x - mean) * inv + if shift_mean { 0.0 } else { mean };
    }
}

fn check_groups(len: usize, k: usize) -> std::result::Result<(), String> {
    if k == 0 || !len.is_multiple_of(k) {
        return Err(format!("{len} rewards do not split into groups of {k}"));
    }
    Ok(())
}

/// GRPO advantages: each reward minus its group's mean, divided by the group's unbiased std
/// plus 1e-4 (`scale` false: the mean only, Dr. GRPO). Groups are consecutive runs of `k`.
pub fn group_normalised(
    rewards: &[f64],
    k: usize,
    scale: bool,
) -> std::result::Result<Vec<f64>, String> {
    check_groups(rewards.len(), k)?;
    let mut out = Vec::with_capacity(rewards.len());
    for g in rewards.chunks(k) {
        let mean = g.iter().sum::<f64>() / k as f64;
        let std = if k > 1 {
            (g.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (k - 1) as f64).sqrt()
        } else {
            0.0
        };
        let div = if scale { std + 1e-4 } else { 1.0 };
        out.extend(g.iter().map(|r| (r - mean) / div));
    }
    Ok(out)
}

/// RLOO advantages: each reward minus the mean of the other k − 1 in its group (Ahmadian et
/// al. 2024), an unbiased baseline that does not depend on the sample itself. Needs k ≥ 2.
pub fn leave_one_out(rewards: &[f64], k: usize) -> std::result::Result<Vec<f64>, String> {
    check_groups(rewards.len(), k)?;
    if k < 2 {
        return Err("leave-one-out baselines need at least 2 completions per prompt".into());
    }
    let mut out = Vec::with_capacity(rewards.len());
    for g in rewards.chunks(k) {
        let sum: f64 = g.iter().sum();
        out.extend(g.iter().map(|r| r - (sum - r) / (k - 1) as f64));
    }
    Ok(out)
}

/// The adaptive KL coefficient of Ziegler et al. (2019): steer the measured KL towards
/// `target` by a proportional controller, the error clipped to ±20 %.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveKl {
    pub value: f64,
    pub target: f64,
    pub horizon: f64,
}

impl AdaptiveKl {
    /// Update after a batch whose mean per-sequence KL was `current`, over `n_steps` samples.
    pub fn update(&mut self, current: f64, n_steps: usize) {
        if !current.is_finite() {
            return;
        }
        let err = (current / self.target - 1.0).clamp(-0.2, 0.2);
        self.value *= 1.0 + err * n_steps as f64 / self.horizon;
    }
}

/// Scalar of a 0-d tensor as f64.
fn scalar(t: &Tensor) -> Result<f64> {
    t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()
}

/// A loss with the diagnostic that comes with it.
pub struct ClippedLoss {
    /// Scalar, differentiable.
    pub loss: Tensor,
    /// Fraction of tokens where the clipped branch was taken.
    pub clipfrac: f64,
}

/// PPO's clipped surrogate, mean over tokens: max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)) with
/// ρ = exp(logp − old_logp). All inputs `[n]`; only `logp` carries a gradient.
pub fn ppo_policy_loss(
    logp: &Tensor,
    old_logp: &Tensor,
    adv: &Tensor,
    clip: f64,
) -> Result<ClippedLoss> {
    let ratio = (logp - old_logp)?.exp()?;
    let l1 = (adv.neg()? * &ratio)?;
    let l2 = (adv.neg()? * ratio.clamp(1.0 - clip, 1.0 + clip)?)?;
    let loss = l1.maximum(&l2)?.mean_all()?;
    let clipfrac = scalar(&l2.gt(&l1)?.to_dtype(candle_core::DType::F32)?.mean_all()?)?;
    Ok(ClippedLoss { loss, clipfrac })
}

/// PPO's clipped value loss, mean over tokens: ½·max((v − R)², (clip(v, v_old ± ε) − R)²).
/// All inputs `[n]`; only `v` carries a gradient.
pub fn value_loss(v: &Tensor, old_v: &Tensor, returns: &Tensor, clip: f64) -> Result<ClippedLoss> {
    let lo = (old_v - clip)?;
    let hi = (old_v + clip)?;
    let v_clipped = v.maximum(&lo)?.minimum(&hi)?;
    let l1 = (v - returns)?.sqr()?;
    let l2 = (v_clipped - returns)?.sqr()?;
    let loss = (l1.maximum(&l2)?.mean_all()? * 0.5)?;
    let clipfrac = scalar(&l2.gt(&l1)?.to_dtype(candle_core::DType::F32)?.mean_all()?)?;
    Ok(ClippedLoss { loss, clipfrac })
}

/// Per-token k3 KL to the reference as a differentiable tensor `[n]`, the penalty GRPO adds
/// to its loss: exp(ref − logp) − (ref − logp) − 1.
pub fn k3_kl(logp: &Tensor, ref_logp: &Tensor) -> Result<Tensor> {
    let r = (ref_logp - logp)?;
    (r.exp()? - r)? - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    fn t(v: &[f64]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    #[test]
    fn gae_matches_hand_computation() {
        // γ = 0.9, λ = 0.5. δ₂ = 1 − 0.5 = 0.5; δ₁ = 0 + 0.9·0.5 − 0.2 = 0.25;
        // δ₀ = 0 + 0.9·0.2 − 0.1 = 0.08. A₂ = 0.5, A₁ = 0.25 + 0.45·0.5 = 0.475,
        // A₀ = 0.08 + 0.45·0.475 = 0.29375.
        let (a, r) = gae(&[0.0, 0.0, 1.0], &[0.1, 0.2, 0.5], 0.9, 0.5);
        for (x, y) in a.iter().zip([0.29375, 0.475, 0.5]) {
            close(*x, y);
        }
        for (x, y) in r.iter().zip([0.39375, 0.675, 1.0]) {
            close(*x, y);
        }
        // γ = λ = 1 and zero values: every advantage is the sum of rewards to go.
        let (a, _) = gae(&[1.0, 2.0, 3.0], &[0.0; 3], 1.0, 1.0);
        assert_eq!(a, vec![6.0, 5.0, 3.0]);
    }

    #[test]
    fn token_rewards_put_the_score_on_the_last_token() {
        let r = token_rewards(2.0, &[0.1, -0.2, 0.3], 0.5);
        for (x, y) in r.iter().zip([-0.05, 0.1, 2.0 - 0.15]) {
            close(*x, y);
        }
        assert!(token_rewards(1.0, &[], 0.5).is_empty());
    }

    #[test]
    fn kl_estimators_match_hand_values() {
        // logp = −1, ref = −1.5: r = −0.5. k1 = 0.5; k3 = e^−0.5 − 1 + 0.5 = 0.1065306597.
        close(KlEstimator::K1.estimate(-1.0, -1.5), 0.5);
        close(KlEstimator::K3.estimate(-1.0, -1.5), 0.106_530_659_7);
        // k1 can go negative; k3 never does.
        assert!(KlEstimator::K1.estimate(-2.0, -1.0) < 0.0);
        close(KlEstimator::K3.estimate(-2.0, -1.0), 1f64.exp() - 2.0);
        let k3 = k3_kl(&t(&[-1.0, -2.0]), &t(&[-1.5, -1.0])).unwrap();
        let v = k3.to_vec1::<f64>().unwrap();
        close(v[0], 0.106_530_659_7);
        close(v[1], 1f64.exp() - 2.0);
    }

    #[test]
    fn whitening_matches_hand_values() {
        // mean 2.5, unbiased var 5/3.
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        whiten(&mut x, true);
        let s = (5.0f64 / 3.0 + 1e-8).sqrt();
        for (a, b) in x.iter().zip([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]) {
            close(*a, b);
        }
        let mut y = vec![1.0, 3.0];
        whiten(&mut y, false);
        let s = (2.0f64 + 1e-8).sqrt();
        close(y[0], -1.0 / s + 2.0);
        let mut one = vec![7.0];
        whiten(&mut one, true);
        assert_eq!(one, vec![7.0]);
    }

    #[test]
    fn group_baselines_match_hand_values() {
        // Group [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(1/3). Group [2, 2, 2, 2]: std 0.
        let r = [1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0];
        let g = group_normalised(&r, 4, true).unwrap();
        let s = (1.0f64 / 3.0).sqrt() + 1e-4;
        close(g[0], 0.5 / s);
        close(g[1], -0.5 / s);
        assert!(g[4..].iter().all(|&a| a == 0.0));
        let unscaled = group_normalised(&r, 4, false).unwrap();
        close(unscaled[0], 0.5);
        // RLOO: [1, 2, 6] → 1 − 4, 2 − 3.5, 6 − 1.5.
        let l = leave_one_out(&[1.0, 2.0, 6.0], 3).unwrap();
        for (a, b) in l.iter().zip([-3.0, -1.5, 4.5]) {
            close(*a, b);
        }
        assert!(leave_one_out(&[1.0, 2.0], 1).is_err());
        assert!(group_normalised(&[1.0, 2.0, 3.0], 2, true).is_err());
    }

    #[test]
    fn adaptive_kl_follows_ziegler() {
        let mut c = AdaptiveKl {
            value: 0.1,
            target: 6.0,
            horizon: 10_000.0,
        };
        // KL 9 is 50 % over target: error clipped to 0.2 → 0.1·(1 + 0.2·256/10000).
        c.update(9.0, 256);
        close(c.value, 0.1 * (1.0 + 0.2 * 256.0 / 10_000.0));
        let before = c.value;
        c.update(3.0, 100); // 50 % under, clipped to −0.2
        close(c.value, before * (1.0 - 0.2 * 100.0 / 10_000.0));
        c.update(f64::NAN, 100);
        close(c.value, before * (1.0 - 0.2 * 100.0 / 10_000.0));
    }

    #[test]
    fn ppo_policy_loss_matches_hand_values_and_gradients() {
        // Token 0: ρ = e^0.5 ≈ 1.6487, A = 1: max(−1.6487, −1.2) = −1.2 (clipped).
        // Token 1: ρ = e^−0.5 ≈ 0.6065, A = 1: max(−0.6065, −0.8) = −0.6065 (not clipped).
        // Token 2: ρ = 1, A = −2: 2 either way. Mean = (−1.2 − 0.6065 + 2) / 3.
        let logp = Var::from_tensor(&t(&[0.5, -0.5, 0.0])).unwrap();
        let old = t(&[0.0, 0.0, 0.0]);
        let adv = t(&[1.0, 1.0, -2.0]);
        let out = ppo_policy_loss(logp.as_tensor(), &old, &adv, 0.2).unwrap();
        let r2 = (-0.5f64).exp();
        close(
            out.loss.to_scalar::<f64>().unwrap(),
            (-1.2 - r2 + 2.0) / 3.0,
        );
        close(out.clipfrac, 1.0 / 3.0);
        // Gradient: clipped token 0; token 1 −A·ρ/3; token 2 tie at ρ = 1, −A·ρ/3 = 2/3.
        let g = out.loss.backward().unwrap();
        let g = g.get(logp.as_tensor()).unwrap().to_vec1::<f64>().unwrap();
        close(g[0], 0.0);
        close(g[1], -r2 / 3.0);
        close(g[2], 2.0 / 3.0);
    }

    #[test]
    fn value_loss_matches_hand_values() {
        // v = [1.0, 0.0], old = [0.5, 0.0], R = [0.0, 1.0], ε = 0.2.
        // Token 0: unclipped (1−0)² = 1, clipped 0.7² = 0.49 → 1.
        // Token 1: unclipped 1, clipped (0 − 1)² = 1 → 1 (not counted as clipped).
        let v = Var::from_tensor(&t(&[1.0, 0.0])).unwrap();
        let out = value_loss(v.as_tensor(), &t(&[0.5, 0.0]), &t(&[0.0, 1.0]), 0.2).unwrap();
        close(
            out.loss.to_scalar::<f64>().unwrap(),
            0.5 * (1.0 + 1.0) / 2.0,
        );
        close(out.clipfrac, 0.0);
        // v = 0, old = 1, R = −1: unclipped (0 + 1)² = 1, clipped (0.8 + 1)² = 3.24 → the
        // clipped branch is strictly larger and counts as clipped.
        let v = Var::from_tensor(&t(&[0.0])).unwrap();
        let out = value_loss(v.as_tensor(), &t(&[1.0]), &t(&[-1.0]), 0.2).unwrap();
        close(out.loss.to_scalar::<f64>().unwrap(), 0.5 * 3.24);
        close(out.clipfrac, 1.0);
        // Gradient flows only through the clipped branch there, whose value is pinned at
        // old − ε: zero gradient.
        let g = out.loss.backward().unwrap();
        close(
            g.get(v.as_tensor()).unwrap().to_vec1::<f64>().unwrap()[0],
            0.0,
        );
    }
}
