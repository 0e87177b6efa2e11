//! Fused RMSNorm over the last dimension: `y = x · w / sqrt(mean(x²) + eps)`.
//!
//! One pass forward; backward recomputes the per-row inverse RMS (one cheap reduction) instead
//! of keeping it, and produces `dx` and `dw` together in one more pass.

use super::kernel::{row_chunk, slice, with_f32};
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

struct RmsNorm {
    eps: f32,
}

fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let ss: f32 = x.iter().map(|v| v * v).sum();
    1.0 / (ss / x.len() as f32 + eps).sqrt()
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "keel-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let w = slice(s2, l2, self.name())?;
        let d = w.len();
        if l1.dims().last() != Some(&d) {
            bail!(
                "rms_norm: weight of {d} does not match input {:?}",
                l1.dims()
            );
        }
        let mut y = vec![0f32; x.len()];
        let rows = x.len() / d;
        let chunk = row_chunk(rows, d) * d;
        y.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(yc, xc)| {
                for (yr, xr) in yc.chunks_exact_mut(d).zip(xc.chunks_exact(d)) {
                    let inv = inv_rms(xr, self.eps);
                    for ((o, &a), &g) in yr.iter_mut().zip(xr).zip(w) {
                        *o = a * inv * g;
                    }
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let name = self.name();
        let (dx, dw) = with_f32(x, name, |x| {
            with_f32(w, name, |w| {
                with_f32(grad, name, |g| rms_norm_bwd(x, w, g, self.eps))
            })
        })???;
        let dx = Tensor::from_vec(dx, x.shape(), x.device())?;
        // A frozen norm weight (LoRA) gets no gradient entry; its cost here is one O(n) pass.
        let dw = w
            .track_op()
            .then(|| Tensor::from_vec(dw, w.shape(), w.device()))
            .transpose()?;
        Ok((Some(dx), dw))
    }
}

/// With `n = x·inv`: `dx = inv · (g·w − n · mean(g·w·n))`, `dw = Σ_rows g · n`.
fn rms_norm_bwd(x: &[f32], w: &[f32], g: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let d = w.len();
    let rows = x.len() / d;
    let chunk = row_chunk(rows, 2 * d) * d;
    let mut dx = vec![0f32; x.len()];
    let dw = dx
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .zip(g.par_chunks(chunk))
        .map(|((dxc, xc), gc)| {
            let mut dw = vec![0f32; d];
            for ((dxr, xr), gr) in dxc
                .chunks_exact_mut(d)
                .zip(xc.chunks_exact(d))
                .zip(gc.chunks_exact(d))
            {
                let inv = inv_rms(xr, eps);
                let mut dot = 0f32;
                for i in 0..d {
                    let n = xr[i] * inv;
                    dot += gr[i] * w[i] * n;
                    dw[i] += gr[i] * n;
                }
                let mean = dot / d as f32;
                for i in 0..d {
                    dxr[i] = inv * (gr[i] * w[i] - xr[i] * inv * mean);
                }
            }
            dw
        })
        .reduce(
            || vec![0f32; d],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            },
        );
    (dx, dw)
}

/// RMSNorm over the last dimension of `x` (any rank) with weight `w` `[d]`; f32, differentiable.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&w.contiguous()?, RmsNorm { eps: eps as f32 })
}
