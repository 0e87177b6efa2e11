//! From scored rollouts to per-token training targets: the KL to the reference, then each
//! algorithm's advantages (and PPO's returns), in the shapes the update loop consumes.

use super::config::{Algo, RlConfig};
use super::losses::{gae, group_normalised, leave_one_out, token_rewards, whiten};
use crate::error::{Result, TrainError};

/// What the scoring pass measured for one rollout row (no gradients).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scored {
    /// Policy log-probs of the response tokens at rollout time.
    pub logp: Vec<f32>,
    pub ref_logp: Vec<f32>,
    pub entropy: Vec<f32>,
    /// PPO's values (empty for GRPO/RLOO).
    pub values: Vec<f32>,
    /// The reward source's score, after the missing-EOS penalty.
    pub score: f64,
}

/// Per-token targets of one row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    pub adv: Vec<f32>,
    /// PPO only.
    pub returns: Vec<f32>,
}

/// Per-token KL estimates of each row.
pub fn per_token_kl(cfg: &RlConfig, rows: &[Scored]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|r| {
            r.logp
                .iter()
                .zip(&r.ref_logp)
                .map(|(&lp, &rl)| cfg.kl_estimator.estimate(lp as f64, rl as f64))
                .collect()
        })
        .collect()
}

/// Advantages (and returns) for every row. Rows are grouped by prompt: row `i` belongs to
/// group `i / completions_per_prompt`. `kl_coef` is the coefficient in force this step.
pub fn compute(
    cfg: &RlConfig,
    rows: &[Scored],
    kl: &[Vec<f64>],
    kl_coef: f64,
) -> Result<Vec<Targets>> {
    let k = cfg.completions_per_prompt;
    let group_err = |m: String| TrainError::Data(format!("rl advantages: {m}"));
    let broadcast = |seq_adv: Vec<f64>| -> Vec<Targets> {
        rows.iter()
            .zip(seq_adv)
            .map(|(r, a)| Targets {
                adv: vec![a as f32; r.logp.len()],
                returns: vec![],
            })
            .collect()
    };
    match cfg.algo {
        Algo::Ppo => {
            let mut advs = Vec::with_capacity(rows.len());
            let mut rets = Vec::with_capacity(rows.len());
            for (r, kl) in rows.iter().zip(kl) {
                let rewards = token_rewards(r.score, kl, kl_coef);
                let values: Vec<f64> = r.values.iter().map(|&v| v as f64).collect();
                let (a, ret) = gae(&rewards, &values, cfg.gamma, cfg.lam);
                advs.push(a);
                rets.push(ret);
            }
            if cfg.whiten_advantages {
                // Whitened over every token of the batch, then split back per row.
                let mut flat: Vec<f64> = advs.iter().flatten().copied().collect();
                whiten(&mut flat, true);
                let mut it = flat.into_iter();
                for a in &mut advs {
                    a.iter_mut()
                        .for_each(|x| *x = it.next().expect("same length"));
                }
            }
            Ok(advs
                .into_iter()
                .zip(rets)
                .map(|(a, r)| Targets {
                    adv: a.into_iter().map(|x| x as f32).collect(),
                    returns: r.into_iter().map(|x| x as f32).collect(),
                })
                .collect())
        }
        Algo::Grpo => {
            let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
            Ok(broadcast(
                group_normalised(&scores, k, cfg.scale_rewards).map_err(group_err)?,
            ))
        }
        Algo::Rloo => {
            // The KL penalty joins the sequence reward before the baseline, as in TRL's RLOO.
            let rewards: Vec<f64> = rows
                .iter()
                .zip(kl)
                .map(|(r, kl)| r.score - kl_coef * kl.iter().sum::<f64>())
                .collect();
            let mut adv = leave_one_out(&rewards, k).map_err(group_err)?;
            if cfg.whiten_advantages {
                whiten(&mut adv, true);
            }
            Ok(broadcast(adv))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(score: f64, n: usize) -> Scored {
        Scored {
            logp: vec![-1.0; n],
            ref_logp: vec![-1.5; n],
            entropy: vec![1.0; n],
            values: vec![0.0; n],
            score,
        }
    }

    #[test]
    fn each_algorithm_builds_its_advantages() {
        let rows = vec![row(1.0, 2), row(0.0, 1), row(0.0, 3), row(1.0, 1)];
        let base = RlConfig {
            completions_per_prompt: 2,
            whiten_advantages: false,
            ..Default::default()
        };
        let kl = per_token_kl(&base, &rows);
        assert!((kl[0][0] - 0.5).abs() < 1e-12, "k1 = logp − ref");
        // PPO, γ = 1, λ = 0.95, zero values, coef 0.1: row 0 rewards [−0.05, 0.95],
        // A = [−0.05 + 0.95·0.95, 0.95].
        let ppo = compute(&base, &rows, &kl, 0.1).unwrap();
        assert!((ppo[0].adv[1] - 0.95).abs() < 1e-6);
        assert!((ppo[0].adv[0] - (-0.05 + 0.95 * 0.95)).abs() < 1e-6);
        assert_eq!(ppo[0].returns, ppo[0].adv, "returns = A + V with V = 0");
        // GRPO groups (1, 0) and (0, 1): ±0.5 / (std 0.7071 + 1e-4), one value per row.
        let g = compute(
            &RlConfig {
                algo: Algo::Grpo,
                ..base.clone()
            },
            &rows,
            &kl,
            0.1,
        )
        .unwrap();
        let a = 0.5 / (0.5f64.sqrt() + 1e-4);
        assert!((g[0].adv[0] as f64 - a).abs() < 1e-5 && g[0].adv.len() == 2);
        assert!((g[2].adv[2] as f64 + a).abs() < 1e-5 && g[2].adv.len() == 3);
        // RLOO with coef 0.1: rewards 1 − 0.1·1.0, 0 − 0.1·0.5, 0 − 0.1·1.5, 1 − 0.1·0.5.
        let r = compute(
            &RlConfig {
                algo: Algo::Rloo,
                ..base.clone()
            },
            &rows,
            &kl,
            0.1,
        )
        .unwrap();
        assert!((r[0].adv[0] as f64 - (0.9 - (-0.05))).abs() < 1e-6);
        assert!((r[3].adv[0] as f64 - (0.95 - (-0.15))).abs() < 1e-6);
    }
}
