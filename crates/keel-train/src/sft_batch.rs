//! SFT batches: padding collation with the loss mask, the mask checks, and epoch order.
//!
//! Padding mode: one example per row. Rows are right-padded: with causal attention, real
//! tokens never see the padding after them, and padded positions have mask 0. Packing mode
//! (several examples per row, attention masked at their boundaries) is [`crate::sft_pack`].

use crate::error::{Result, TrainError};
use candle_core::{Device, Tensor};
use keel_core::rng::rng_for;
use keel_data::chat::TokenizedExample;
use keel_model::ops::Segments;
use rand::seq::SliceRandom;
use std::sync::Arc;

/// One micro-batch: inputs, targets and the target mask, each `[b, t]`.
pub struct Batch {
    pub x: Tensor,
    pub y: Tensor,
    pub mask: Tensor,
    /// Positions that count in the loss.
    pub trained: usize,
    /// Non-padding input positions.
    pub tokens: usize,
    /// All input positions, padding included (`b · t`).
    pub positions: usize,
    /// Document boundaries of packed rows ([`crate::sft_pack`]); `None` for one example per row.
    pub segs: Option<Arc<Segments>>,
}

/// Check one example is trainable: ids and mask agree in length, there is something after
/// the first token, and the final token — the end of turn / EOS — is trained. A masked-out end
/// token is the classic SFT bug: the model never learns to stop.
pub fn check_example(i: usize, ex: &TokenizedExample) -> Result<()> {
    if ex.ids.len() != ex.mask.len() {
        return Err(TrainError::Data(format!(
            "example {i}: {} ids but {} mask entries",
            ex.ids.len(),
            ex.mask.len()
        )));
    }
    if ex.ids.len() < 2 {
        return Err(TrainError::Data(format!(
            "example {i}: fewer than two tokens"
        )));
    }
    if ex.mask.last() != Some(&1) {
        return Err(TrainError::Data(format!(
            "example {i}: the end-of-turn token (last token, id {}) is masked out of the loss; \
             a model trained like this never learns to stop",
            ex.ids.last().copied().unwrap_or_default()
        )));
    }
    Ok(())
}

/// Pad `examples` to the longest, shift into inputs/targets, and check the batch trains on
/// something (an all-zero mask would make the mean loss 0/0).
pub fn collate(examples: &[&TokenizedExample], pad_id: u32) -> Result<Batch> {
    let b = examples.len();
    let t = examples
        .iter()
        .map(|e| e.len().saturating_sub(1))
        .max()
        .unwrap_or(0);
    if b == 0 || t == 0 {
        return Err(TrainError::Data("empty batch".into()));
    }
    let (mut x, mut y) = (vec![pad_id; b * t], vec![pad_id; b * t]);
    let mut m = vec![0f32; b * t];
    let (mut trained, mut tokens) = (0, 0);
    for (r, ex) in examples.iter().enumerate() {
        let n = ex.len() - 1;
        x[r * t..r * t + n].copy_from_slice(&ex.ids[..n]);
        y[r * t..r * t + n].copy_from_slice(&ex.ids[1..]);
        for (k, &mk) in ex.mask[1..].iter().enumerate() {
            m[r * t + k] = f32::from(mk);
        }
        trained += ex.mask[1..].iter().filter(|&&v| v == 1).count();
        tokens += n;
    }
    if trained == 0 {
        return Err(TrainError::Data(format!(
            "a batch of {b} examples has an all-zero loss mask: nothing to train on \
             (are the assistant turns empty or truncated away?)"
        )));
    }
    let dev = &Device::Cpu;
    Ok(Batch {
        x: Tensor::from_vec(x, (b, t), dev)?,
        y: Tensor::from_vec(y, (b, t), dev)?,
        mask: Tensor::from_vec(m, (b, t), dev)?,
        trained,
        tokens,
        positions: b * t,
        segs: None,
    })
}

/// Epoch-by-epoch shuffled order: the example at global position `p` is a pure function of
/// (seed, p), so resuming needs only the step count to continue the exact same sequence.
pub struct EpochOrder {
    n: usize,
    seed: u64,
    epoch: Option<(usize, Vec<usize>)>,
}

impl EpochOrder {
    pub fn new(n: usize, seed: u64) -> Self {
        EpochOrder {
            n,
            seed,
            epoch: None,
        }
    }

    pub fn at(&mut self, position: u64) -> usize {
        let (epoch, i) = (
            (position / self.n as u64) as usize,
            (position % self.n as u64) as usize,
        );
        if self.epoch.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let mut perm: Vec<usize> = (0..self.n).collect();
            perm.shuffle(&mut rng_for(self.seed, &format!("sft-epoch-{epoch}")));
            self.epoch = Some((epoch, perm));
        }
        self.epoch.as_ref().expect("set above").1[i]
    }
}
