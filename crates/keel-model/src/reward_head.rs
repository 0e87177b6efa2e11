//! A scalar reward head on the transformer: `r = w · h_last`, where `h_last` is the final
//! hidden state (after the last RMSNorm) of each sequence's last real token, as Hugging Face's
//! `LlamaForSequenceClassification` with `num_labels = 1`. The weight is stored as
//! [`SCORE_WEIGHT`] (`score.weight`, shape `[1, hidden]`) beside the `model.*` tensors, so a
//! reward checkpoint reads as that HF class.

use crate::{ops, Llama};
use candle_core::{bail, DType, Device, Result, Tensor};

/// HF name of the head's weight.
pub const SCORE_WEIGHT: &str = "score.weight";

/// Scores `[b]` from hidden states `[b, t, d]` at positions `last[i]` (each row's last
/// non-pad token) with `weight` `[1, d]`. Differentiable in `hidden` and `weight`.
pub fn score_last(hidden: &Tensor, last: &[usize], weight: &Tensor) -> Result<Tensor> {
    let (b, t, d) = hidden.dims3()?;
    if last.len() != b {
        bail!("reward head: {} last positions for {b} rows", last.len());
    }
    if let Some(&p) = last.iter().find(|&&p| p >= t) {
        bail!("reward head: position {p} is past the sequence length {t}");
    }
    let idx: Vec<u32> = last
        .iter()
        .enumerate()
        .map(|(i, &p)| (i * t + p) as u32)
        .collect();
    let idx = Tensor::from_vec(idx, b, hidden.device())?;
    let picked = hidden.reshape((b * t, d))?.index_select(&idx, 0)?;
    ops::linear(&picked, weight)?.squeeze(1)
}

/// A fresh head, N(0, 0.02) as HF's `initializer_range`, deterministic in `seed`.
pub fn init_score(hidden: usize, seed: u64) -> Result<Tensor> {
    use rand::Rng;
    let mut rng = keel_core::rng::rng_for(seed, "reward-head");
    let data: Vec<f32> = (0..hidden)
        .map(|_| {
            // Box–Muller.
            let u1: f64 = rng.random::<f64>().max(1e-12);
            let u2: f64 = rng.random::<f64>();
            (0.02 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect();
    Tensor::from_vec(data, (1, hidden), &Device::Cpu)?.to_dtype(DType::F32)
}

impl Llama {
    /// Reward scores `[b]` of right-padded `ids` `[b, t]` whose last real tokens sit at `last`.
    pub fn reward_scores(&self, ids: &Tensor, last: &[usize], weight: &Tensor) -> Result<Tensor> {
        score_last(&self.forward_hidden(ids, None)?, last, weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LlamaConfig;

    #[test]
    fn score_reads_the_last_real_token_only() {
        let cfg = LlamaConfig::tiny(30, 16, 1, 2);
        let (_vm, m) = Llama::init(&cfg, 2).unwrap();
        let w = init_score(16, 1).unwrap();
        let dev = &Device::Cpu;
        // Row 0 padded after position 2: changing the padding must not change its score.
        let a = Tensor::new(&[[3u32, 4, 5, 0, 0], [6, 7, 8, 9, 10]], dev).unwrap();
        let b = Tensor::new(&[[3u32, 4, 5, 17, 21], [6, 7, 8, 9, 10]], dev).unwrap();
        let sa = m
            .reward_scores(&a, &[2, 4], &w)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let sb = m
            .reward_scores(&b, &[2, 4], &w)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(sa, sb);
        // The same as scoring the unpadded row alone.
        let solo = Tensor::new(&[[3u32, 4, 5]], dev).unwrap();
        let s = m
            .reward_scores(&solo, &[2], &w)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((s[0] - sa[0]).abs() < 1e-5);
        assert!(m.reward_scores(&a, &[5, 1], &w).is_err());
    }
}
