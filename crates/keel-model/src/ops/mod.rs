//! Differentiable building blocks of the transformer, as fused CPU kernels.
//!
//! candle's own fused `rms_norm`, `softmax_last_dim`, `rope` and `sdpa` have no backward (a
//! model built on them trains nothing), and the same ops composed from candle primitives are
//! slow: every intermediate is a tensor, and candle's backward allocates and adds a zero
//! gradient for every node. Each op here is one `CustomOp` node whose `cpu_fwd` is a fused
//! kernel and whose `bwd` is a fused kernel too. [`reference`] keeps the composite versions,
//! which the gradient checks in `gradcheck` compare against.
//!
//! Activations stay in the projections' layout `[b, t, heads·dh]` throughout: RoPE and
//! attention index heads by stride, so no transpose or `contiguous()` copy is ever made.
//! All kernels are f32 and CPU-only.

pub mod attention;
pub mod cross_entropy;
pub(crate) mod kernel;
pub mod linear;
pub mod reference;
pub mod rms_norm;
pub mod rope;
pub mod segments;
#[cfg(target_arch = "x86_64")]
pub(crate) mod sgemm;
pub mod swiglu;
pub mod token_logprobs;

#[cfg(test)]
mod gradcheck;
#[cfg(test)]
mod sgemm_tests;

pub use attention::{causal_attention, segment_attention};
pub use cross_entropy::{cross_entropy, linear_cross_entropy};
pub use linear::{linear, linear_residual};
pub use rms_norm::rms_norm;
pub use rope::{rope, rope_segments, RopeTables};
pub use segments::Segments;
pub use swiglu::{swiglu, swiglu_mlp};
pub use token_logprobs::token_logprobs;
