//! Gradient checkpointing: backward through the decoder holding one layer's activations at a
//! time instead of every layer's.
//!
//! Why: autodiff keeps every intermediate tensor of the forward pass until backward. For
//! SmolLM2-135M that is megabytes per token, so a batch of a few thousand tokens needs tens of
//! gigabytes, more than the weights themselves. Here the forward keeps only each layer's
//! input (`[b, t, d]`, detached); backward then walks the layers from the top, recomputing
//! one layer's forward from its stored input and backpropagating the incoming gradient
//! through it. One extra forward pass buys memory that grows with one layer, not all of them.
//!
//! candle has no checkpoint op, and a custom op's backward cannot return parameter
//! gradients, so the chain rule is applied by hand between layers: for layer output
//! `y = f(x)` with upstream gradient `g`, the backward of the scalar `sum(y ⊙ g)` gives exactly
//! `∂L/∂x` and every parameter's `∂L/∂θ` of that layer. Per-layer gradient stores are summed
//! ([`GradStore::extend`]), so a parameter used twice (a tied embedding) gets both parts.

use super::Llama;
use crate::ops::{self, Segments};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use std::sync::Arc;

impl Llama {
    /// The loss `head(final hidden states)` of `ids` `[b, t]` (packed when `segs` is given)
    /// and the gradients of every variable it depends on, computed with gradient
    /// checkpointing. `head` maps the final (normed) hidden states `[b, t, d]` to a scalar.
    /// The result equals `head(self.forward_hidden…(ids)).backward()` up to float rounding
    /// (tested); LoRA dropout masks are keyed, so the recomputed forward draws the same ones.
    pub fn backward_checkpointed(
        &self,
        ids: &Tensor,
        segs: Option<&Arc<Segments>>,
        head: impl FnOnce(&Tensor) -> candle_core::Result<Tensor>,
    ) -> candle_core::Result<(Tensor, GradStore)> {
        self.check_positions(ids, 0, segs, false)?;
        // Forward, keeping each layer's input only: detached, so no graph is held behind it.
        let mut inputs = Vec::with_capacity(self.layers.len() + 1);
        inputs.push(self.embed_ids(ids)?.detach());
        for i in 0..self.layers.len() {
            let y = self.block(i, &inputs[i], 0, segs, None)?.detach();
            inputs.push(y);
        }
        let missing = |what: &str| candle_core::Error::Msg(format!("checkpointing: no {what}"));
        // The head: loss from the last layer's output, made a leaf so its gradient is kept.
        let top = Var::from_tensor(&inputs.pop().ok_or_else(|| missing("layer output"))?)?;
        let normed = ops::rms_norm(top.as_tensor(), &self.final_norm, self.config.rms_norm_eps)?;
        let loss = head(&normed)?;
        let mut grads = loss.backward()?;
        let mut upstream = grads
            .remove(top.as_tensor())
            .ok_or_else(|| missing("gradient reaches the hidden states"))?;
        // Layer by layer from the top: recompute, backpropagate `upstream` through it.
        for i in (0..self.layers.len()).rev() {
            let x = Var::from_tensor(&inputs.pop().ok_or_else(|| missing("layer input"))?)?;
            let y = self.block(i, x.as_tensor(), 0, segs, None)?;
            let mut layer = (y * &upstream)?.sum_all()?.backward()?;
            upstream = layer
                .remove(x.as_tensor())
                .ok_or_else(|| missing("gradient reaches a layer input"))?;
            grads.extend(layer)?;
        }
        // The embedding table, when it is trained (full fine-tuning).
        if self.embed.is_variable() {
            let e = self.embed_ids(ids)?;
            grads.extend((e * &upstream)?.sum_all()?.backward()?)?;
        }
        Ok((loss, grads))
    }
}
