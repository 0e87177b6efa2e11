//! The trainer's forward over rollouts: prompt + response sequences in one right-padded
//! batch, hidden states gathered at exactly the positions that predict response tokens, then
//! per-token log-probabilities (and PPO's values) there.
//!
//! Only response positions go through the LM head: the prompt's logits are never needed. Rows
//! are right-padded, so with causal attention a real position never sees the padding.

use crate::error::{Result, TrainError};
use candle_core::{DType, Device, Tensor, Var, D};
use keel_model::Llama;

/// Rollout sequences as one batch.
pub struct SeqBatch {
    /// Inputs `[b, t]`: each sequence minus its last token, right-padded with 0.
    pub x: Tensor,
    /// Flat indices `row·t + pos` of the positions predicting response tokens, `[n]`.
    pub positions: Tensor,
    /// The response tokens themselves, `[n]`.
    pub targets: Tensor,
    /// Response length of each row (to split `[n]` results back per row).
    pub lens: Vec<usize>,
}

impl SeqBatch {
    /// `rows`: (prompt ids, response ids) pairs; every response must be non-empty.
    pub fn new(rows: &[(&[u32], &[u32])]) -> Result<Self> {
        let t = rows
            .iter()
            .map(|(p, r)| p.len() + r.len() - 1)
            .max()
            .unwrap_or(0);
        let b = rows.len();
        if b == 0 || t == 0 {
            return Err(TrainError::Data("empty rollout batch".into()));
        }
        let mut x = vec![0u32; b * t];
        let (mut positions, mut targets, mut lens) = (vec![], vec![], vec![]);
        for (row, (p, r)) in rows.iter().enumerate() {
            if p.is_empty() || r.is_empty() {
                return Err(TrainError::Data(
                    "rollout row with an empty prompt or response".into(),
                ));
            }
            let seq: Vec<u32> = p.iter().chain(r.iter()).copied().collect();
            x[row * t..row * t + seq.len() - 1].copy_from_slice(&seq[..seq.len() - 1]);
            for (j, &tok) in r.iter().enumerate() {
                // Response token j sits at sequence index p + j and is predicted from p + j − 1.
                positions.push((row * t + p.len() + j - 1) as u32);
                targets.push(tok);
            }
            lens.push(r.len());
        }
        let n = positions.len();
        Ok(SeqBatch {
            x: Tensor::from_vec(x, (b, t), &Device::Cpu)?,
            positions: Tensor::from_vec(positions, n, &Device::Cpu)?,
            targets: Tensor::from_vec(targets, n, &Device::Cpu)?,
            lens,
        })
    }

    pub fn tokens(&self) -> usize {
        self.lens.iter().sum()
    }
}

/// Final hidden states at the response-predicting positions, `[n, d]`.
pub fn response_hidden(model: &Llama, batch: &SeqBatch) -> Result<Tensor> {
    let h = model.forward_hidden(&batch.x, None)?;
    let d = h.dim(D::Minus1)?;
    Ok(h.reshape(((), d))?.index_select(&batch.positions, 0)?)
}

/// `log softmax(h·Wᵀ / T)[target]`, `[n]`, differentiable in `h` and the head. The
/// temperature divides the head (the same as dividing the logits) so the log-probs describe
/// the distribution rollouts were sampled from.
pub fn token_logprobs(
    h: &Tensor,
    lm_head: &Tensor,
    targets: &Tensor,
    temperature: f64,
) -> Result<Tensor> {
    let w = if temperature == 1.0 {
        lm_head.clone()
    } else {
        (lm_head * (1.0 / temperature))?
    };
    // keel-model's fused op: no [n, vocab] logits kept between forward and backward.
    Ok(keel_model::ops::token_logprobs(h, &w, targets)?)
}

/// Log-probs and entropies `[n]` without a graph (rollout scoring, the reference model).
pub fn logprobs_and_entropy(
    h: &Tensor,
    lm_head: &Tensor,
    targets: &Tensor,
    temperature: f64,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let h = h.detach();
    let w = (lm_head.detach() * (1.0 / temperature))?;
    let logits = keel_model::ops::linear(&h, &w)?;
    let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let lp = lsm
        .gather(&targets.unsqueeze(1)?, 1)?
        .squeeze(1)?
        .to_vec1::<f32>()?;
    let ent = (lsm.exp()? * &lsm)?
        .sum(D::Minus1)?
        .neg()?
        .to_vec1::<f32>()?;
    Ok((lp, ent))
}

/// PPO's value head: a linear map from the policy's final hidden state to a scalar, sharing
/// the policy's trunk (as in Ziegler et al. and early TRL). Starts at zero, so initial values
/// are 0 and the first advantages are the raw returns.
pub struct ValueHead {
    pub weight: Var,
    pub bias: Var,
}

impl ValueHead {
    pub const WEIGHT: &'static str = "value_head.weight";
    pub const BIAS: &'static str = "value_head.bias";

    pub fn zeros(hidden: usize) -> Result<Self> {
        Ok(ValueHead {
            weight: Var::zeros((1, hidden), DType::F32, &Device::Cpu)?,
            bias: Var::zeros(1, DType::F32, &Device::Cpu)?,
        })
    }

    /// Values `[n]` of hidden states `[n, d]`.
    pub fn forward(&self, h: &Tensor) -> Result<Tensor> {
        let v = keel_model::ops::linear(h, self.weight.as_tensor())?.squeeze(1)?;
        Ok(v.broadcast_add(self.bias.as_tensor())?)
    }

    /// Named variables, for the optimizer and checkpoints.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        vec![
            (Self::WEIGHT.to_string(), self.weight.clone()),
            (Self::BIAS.to_string(), self.bias.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_model::LlamaConfig;

    #[test]
    fn gathered_logprobs_match_the_full_forward() {
        let cfg = LlamaConfig::tiny(30, 16, 2, 4);
        let (_vm, m) = Llama::init(&cfg, 3).unwrap();
        let rows: Vec<(&[u32], &[u32])> = vec![(&[1, 2, 3], &[4, 5]), (&[6], &[7, 8, 9, 10])];
        let b = SeqBatch::new(&rows).unwrap();
        assert_eq!((b.tokens(), b.lens.clone()), (6, vec![2, 4]));
        let h = response_hidden(&m, &b).unwrap();
        let lp = token_logprobs(&h, m.lm_head(), &b.targets, 1.0).unwrap();
        let (lp2, ent) = logprobs_and_entropy(&h, m.lm_head(), &b.targets, 1.0).unwrap();
        let lp = lp.to_vec1::<f32>().unwrap();
        // Row 1 alone, unpadded, through the plain logits forward.
        let x = Tensor::new(&[[6u32, 7, 8, 9]], &Device::Cpu).unwrap();
        let logits = m.forward(&x, None).unwrap().squeeze(0).unwrap();
        let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
        let lsm = lsm.to_vec2::<f32>().unwrap();
        for (j, tok) in [7usize, 8, 9, 10].iter().enumerate() {
            assert!((lp[2 + j] - lsm[j][*tok]).abs() < 1e-5);
            assert!((lp2[2 + j] - lsm[j][*tok]).abs() < 1e-5);
        }
        let max_ent = (30f32).ln();
        assert!(ent.iter().all(|&e| e > 0.0 && e <= max_ent + 1e-4));
        // Temperature 2 halves the logits.
        let lp_t = token_logprobs(&h, m.lm_head(), &b.targets, 2.0).unwrap();
        assert!(lp_t.to_vec1::<f32>().unwrap() != lp);
        let v = ValueHead::zeros(16).unwrap().forward(&h).unwrap();
        assert_eq!(v.dims(), &[6]);
    }
}
