//! Preference losses on sequence log-probabilities and reward scores, as in TRL.
//!
//! Inputs are `[b]` tensors: the policy's summed completion log-probs (differentiable), the
//! frozen reference's (constants), and completion lengths in tokens. Each loss returns its mean
//! over the batch plus the implicit rewards TRL logs (`rewards/chosen`, `rewards/rejected`).
//! Everything is composed from candle ops that have a backward (`exp`, `log`, `abs`, `relu`),
//! never candle's fused softmax/sigmoid, whose backward is missing.
//!
//! | loss | formula (z = policy log-ratio margin) | paper |
//! |---|---|---|
//! | Bradley–Terry | −log σ(r_c − r_r − m) + c·(r_c + r_r)² | Ouyang et al. 2022; centering: Eisenstein et al. 2023 |
//! | sigmoid (DPO, cDPO) | −(1−ε) log σ(βz) − ε log σ(−βz) | Rafailov et al. 2023; Mitchell 2023 |
//! | IPO | (z̄ − 1/(2β))², z̄ on length-averaged log-probs (as TRL) | Azar et al. 2023 |
//! | SimPO | −log σ(β(ℓ̄_c − ℓ̄_r) − γ), ℓ̄ = log-prob / length, no reference | Meng et al. 2024 |
//! | ORPO | NLL(chosen) − β·log σ(log odds_c − log odds_r), no reference | Hong et al. 2024 |
//! | KTO | λ_D(1 − σ(β(r − z₀))) / λ_U(1 − σ(β(z₀ − r))), z₀ = KL baseline | Ethayarajh et al. 2024 |

use candle_core::{Result, Tensor};

/// `log σ(x) = −log(e⁰ + e^{−x})`, as a log-sum-exp shifted by the detached `m = max(0, −x)`
/// (exact for any shift, so the gradient `1 − σ(x)` is exact too, with no kink at 0), stable
/// for large |x|.
pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    let m = x.neg()?.relu()?.detach();
    let sum = (m.neg()?.exp()? + (x.neg()? - &m)?.exp()?)?;
    (sum.log()? + m)?.neg()
}

/// `σ(x)` as `exp(log σ(x))`.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    log_sigmoid(x)?.exp()
}

/// Bradley–Terry reward-model loss on scores `[b]`: `−log σ(r_c − r_r − margin)`, mean, plus
/// `center_coef · mean((r_c + r_r)²)` (TRL's `center_rewards_coefficient`, default off) which
/// pins the reward's free offset near zero.
pub fn bradley_terry(
    chosen: &Tensor,
    rejected: &Tensor,
    margin: Option<&Tensor>,
    center_coef: f64,
) -> Result<Tensor> {
    let mut d = (chosen - rejected)?;
    if let Some(m) = margin {
        d = (d - m)?;
    }
    let loss = log_sigmoid(&d)?.neg()?.mean_all()?;
    if center_coef == 0.0 {
        return Ok(loss);
    }
    let center = (chosen + rejected)?.sqr()?.mean_all()?;
    loss + (center * center_coef)?
}

/// Log-probs of one batch of pairs: policy (differentiable), reference (constant; ignored by
/// the reference-free losses) and completion lengths in tokens, all `[b]` f32.
pub struct PairLogps<'a> {
    pub policy_chosen: &'a Tensor,
    pub policy_rejected: &'a Tensor,
    pub ref_chosen: &'a Tensor,
    pub ref_rejected: &'a Tensor,
    pub len_chosen: &'a Tensor,
    pub len_rejected: &'a Tensor,
}

/// A loss and the implicit rewards TRL logs, detached, `[b]`.
pub struct LossOutput {
    pub loss: Tensor,
    pub chosen_rewards: Tensor,
    pub rejected_rewards: Tensor,
}

/// DPO's sigmoid loss with label smoothing ε (cDPO; 0 = plain DPO). Rewards `β(π − π_ref)`.
pub fn dpo_sigmoid(p: &PairLogps, beta: f64, label_smoothing: f64) -> Result<LossOutput> {
    let rc = (p.policy_chosen - p.ref_chosen)?;
    let rr = (p.policy_rejected - p.ref_rejected)?;
    let z = ((&rc - &rr)? * beta)?;
    let mut loss = (log_sigmoid(&z)? * -(1.0 - label_smoothing))?;
    if label_smoothing != 0.0 {
        loss = (loss - (log_sigmoid(&z.neg()?)? * label_smoothing)?)?;
    }
    Ok(LossOutput {
        loss: loss.mean_all()?,
        chosen_rewards: (rc * beta)?.detach(),
        rejected_rewards: (rr * beta)?.detach(),
    })
}

/// IPO: squared distance of the length-averaged log-ratio margin from `1/(2β)`.
pub fn ipo(p: &PairLogps, beta: f64) -> Result<LossOutput> {
    let rc = ((p.policy_chosen - p.ref_chosen)? / p.len_chosen)?;
    let rr = ((p.policy_rejected - p.ref_rejected)? / p.len_rejected)?;
    let loss = ((&rc - &rr)? - 1.0 / (2.0 * beta))?.sqr()?.mean_all()?;
    Ok(LossOutput {
        loss,
        chosen_rewards: (rc * beta)?.detach(),
        rejected_rewards: (rr * beta)?.detach(),
    })
}

/// SimPO: reference-free, length-normalised, with target margin γ. Rewards `β · ℓ̄`.
pub fn simpo(p: &PairLogps, beta: f64, gamma: f64) -> Result<LossOutput> {
    let ac = (p.policy_chosen / p.len_chosen)?;
    let ar = (p.policy_rejected / p.len_rejected)?;
    let z = (((&ac - &ar)? * beta)? - gamma)?;
    Ok(LossOutput {
        loss: log_sigmoid(&z)?.neg()?.mean_all()?,
        chosen_rewards: (ac * beta)?.detach(),
        rejected_rewards: (ar * beta)?.detach(),
    })
}

/// `log(1 − e^x)` for average log-probs `x < 0`, clamped away from log 0.
fn log1m_exp(x: &Tensor) -> Result<Tensor> {
    (x.exp()?.neg()? + 1.0)?.clamp(1e-7f32, 1f32)?.log()
}

/// ORPO: NLL on the chosen completions (mean per token) minus `β · mean log σ(log odds ratio)`,
/// odds from length-averaged log-probs. Reference-free. Rewards `β · ℓ̄` as TRL's.
pub fn orpo(p: &PairLogps, beta: f64) -> Result<LossOutput> {
    let ac = (p.policy_chosen / p.len_chosen)?;
    let ar = (p.policy_rejected / p.len_rejected)?;
    let log_odds = ((&ac - &ar)? - (log1m_exp(&ac)? - log1m_exp(&ar)?)?)?;
    let nll = (p.policy_chosen.sum_all()?.neg()? / p.len_chosen.sum_all()?)?;
    let ratio = (log_sigmoid(&log_odds)?.mean_all()? * beta)?;
    Ok(LossOutput {
        loss: (nll - ratio)?,
        chosen_rewards: (ac * beta)?.detach(),
        rejected_rewards: (ar * beta)?.detach(),
    })
}

/// RPO's extra term (TRL's `rpo_alpha`, Llama 3's DPO + NLL): the chosen completions'
/// negative log-likelihood per token over the batch. Added to a DPO-family loss with weight α
/// it keeps the chosen answers likely; plain DPO only widens the margin and can lower both.
pub fn chosen_nll(p: &PairLogps) -> Result<Tensor> {
    p.policy_chosen.sum_all()?.neg()? / p.len_chosen.sum_all()?
}

/// KTO on unpaired examples `[n]`: `desirable` is 1/0 per example, `kl` the batch's KL
/// baseline z₀ (a constant: TRL's detached, clamped estimate). Losses are weighted by
/// λ_D / λ_U and averaged over all examples. Rewards `β(π − π_ref)` (all examples).
pub fn kto(
    policy: &Tensor,
    reference: &Tensor,
    desirable: &Tensor,
    kl: f64,
    beta: f64,
    desirable_weight: f64,
    undesirable_weight: f64,
) -> Result<(Tensor, Tensor)> {
    let r = (policy - reference)?;
    let des = desirable.to_dtype(r.dtype())?;
    let und = (des.neg()? + 1.0)?;
    let lose_d = (sigmoid(&((&r - kl)? * beta)?)?.neg()? + 1.0)?;
    let lose_u = (sigmoid(&((r.neg()? + kl)? * beta)?)?.neg()? + 1.0)?;
    let loss = (((lose_d * des)? * desirable_weight)? + ((lose_u * und)? * undesirable_weight)?)?;
    Ok((loss.mean_all()?, (r * beta)?.detach()))
}

/// KTO's KL baseline from mismatched (prompt, other completion) log-ratios: `max(0, mean)`,
/// a constant, as TRL.
pub fn kto_kl(policy_mismatched: &Tensor, ref_mismatched: &Tensor) -> Result<f64> {
    let kl = (policy_mismatched - ref_mismatched)?
        .mean_all()?
        .to_scalar::<f32>()? as f64;
    Ok(kl.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn t(v: &[f32]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }
    fn s(x: &Tensor) -> f64 {
        x.to_scalar::<f32>().unwrap() as f64
    }
    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }

    // Expected values computed by hand (Python's math module, in f64) from the formulas above.
    #[test]
    fn bradley_terry_values() {
        let (c, r) = (t(&[1.0, -0.5]), t(&[0.2, 0.5]));
        close(
            s(&bradley_terry(&c, &r, None, 0.0).unwrap()),
            0.842_181_176_733,
        );
        let m = t(&[0.5, 0.0]);
        close(
            s(&bradley_terry(&c, &r, Some(&m), 0.01).unwrap()),
            0.941_008_465_993,
        );
    }

    #[test]
    fn log_sigmoid_is_stable_and_differentiable() {
        let x = Var::new(&[-100f32, -1.0, 0.0, 2.0, 100.0], &Device::Cpu).unwrap();
        let y = log_sigmoid(x.as_tensor()).unwrap();
        let v = y.to_vec1::<f32>().unwrap();
        close(v[0] as f64, -100.0);
        close(v[2] as f64, -std::f64::consts::LN_2);
        assert!(v[4].abs() < 1e-6);
        // d/dx log σ(x) = 1 − σ(x).
        let g = y.sum_all().unwrap().backward().unwrap();
        let g = g.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        close(g[2] as f64, 0.5);
        close(g[3] as f64, 1.0 - 1.0 / (1.0 + (-2f64).exp()));
    }

    fn pair_inputs() -> [Tensor; 6] {
        [
            t(&[-10.0, -20.0]),
            t(&[-12.0, -19.0]),
            t(&[-11.0, -20.5]),
            t(&[-11.5, -17.0]),
            t(&[4.0, 5.0]),
            t(&[2.0, 10.0]),
        ]
    }

    fn logps(x: &[Tensor; 6]) -> PairLogps<'_> {
        PairLogps {
            policy_chosen: &x[0],
            policy_rejected: &x[1],
            ref_chosen: &x[2],
            ref_rejected: &x[3],
            len_chosen: &x[4],
            len_rejected: &x[5],
        }
    }

    #[test]
    fn chosen_nll_is_per_token() {
        let x = pair_inputs();
        // −(−10 − 20) / (4 + 5)
        close(s(&chosen_nll(&logps(&x)).unwrap()), 30.0 / 9.0);
    }

    #[test]
    fn dpo_sigmoid_and_cdpo_values() {
        let x = pair_inputs();
        let out = dpo_sigmoid(&logps(&x), 0.1, 0.0).unwrap();
        close(s(&out.loss), 0.598_448_233_834);
        // Rewards β(π − ref): chosen [0.1, 0.05], rejected [-0.05, -0.2].
        let rc = out.chosen_rewards.to_vec1::<f32>().unwrap();
        let rr = out.rejected_rewards.to_vec1::<f32>().unwrap();
        close(rc[0] as f64, 0.1);
        close(rr[1] as f64, -0.2);
        close(
            s(&dpo_sigmoid(&logps(&x), 0.1, 0.2).unwrap().loss),
            0.638_448_233_834,
        );
    }

    #[test]
    fn ipo_simpo_orpo_values() {
        let x = pair_inputs();
        close(s(&ipo(&logps(&x), 0.1).unwrap().loss), 21.17);
        close(
            s(&simpo(&logps(&x), 2.0, 0.5).unwrap().loss),
            2.355_278_237_165,
        );
        close(s(&orpo(&logps(&x), 0.1).unwrap().loss), 3.451_921_343_317);
    }

    #[test]
    fn kto_values() {
        let (p, r) = (t(&[-5.0, -6.0, -7.0]), t(&[-5.5, -5.0, -7.2]));
        let des = t(&[1.0, 0.0, 1.0]);
        let (loss, rewards) = kto(&p, &r, &des, 0.3, 0.1, 1.0, 1.5).unwrap();
        close(s(&loss), 0.566_272_895_415);
        close(rewards.to_vec1::<f32>().unwrap()[1] as f64, -0.1);
        close(kto_kl(&t(&[-1.0, -2.0]), &t(&[-1.5, -2.0])).unwrap(), 0.25);
        assert_eq!(kto_kl(&t(&[-3.0]), &t(&[-1.0])).unwrap(), 0.0);
    }

    #[test]
    fn dpo_gradient_pushes_chosen_up_and_rejected_down() {
        let pc = Var::new(&[-10f32], &Device::Cpu).unwrap();
        let pr = Var::new(&[-10f32], &Device::Cpu).unwrap();
        let (z, one) = (t(&[-10.0]), t(&[1.0]));
        let p = PairLogps {
            policy_chosen: pc.as_tensor(),
            policy_rejected: pr.as_tensor(),
            ref_chosen: &z,
            ref_rejected: &z,
            len_chosen: &one,
            len_rejected: &one,
        };
        let g = dpo_sigmoid(&p, 0.1, 0.0).unwrap().loss.backward().unwrap();
        // At z = 0: dL/dπ_c = −β·σ(0) = −0.05, dL/dπ_r = +0.05.
        close(s(&g.get(pc.as_tensor()).unwrap().sum_all().unwrap()), -0.05);
        close(s(&g.get(pr.as_tensor()).unwrap().sum_all().unwrap()), 0.05);
    }
}
