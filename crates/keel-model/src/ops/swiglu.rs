//! Fused SwiGLU gate `silu(gate) · up` and its backward in one pass each (the composite
//! version materialises sigmoid, silu and their gradients as separate tensors).

use super::kernel::{exp_approx, row_chunk, slice, with_f32};
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

struct SwiGlu;

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_approx(-x))
}

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "keel-swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if l1.dims() != l2.dims() {
            bail!("swiglu: gate {:?} and up {:?} differ", l1.dims(), l2.dims());
        }
        let (g, u) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let mut y = vec![0f32; g.len()];
        let chunk = row_chunk(g.len(), 8);
        y.par_chunks_mut(chunk)
            .zip(g.par_chunks(chunk).zip(u.par_chunks(chunk)))
            .for_each(|(yc, (gc, uc))| {
                for ((y, &g), &u) in yc.iter_mut().zip(gc).zip(uc) {
                    *y = g * sigmoid(g) * u;
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    /// `d up = dy · silu(g)`, `d gate = dy · up · σ(g)(1 + g(1 − σ(g)))`.
    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let name = self.name();
        let n = gate.elem_count();
        let mut dg = vec![0f32; n];
        let mut du = vec![0f32; n];
        with_f32(gate, name, |g| {
            with_f32(up, name, |u| {
                with_f32(dy, name, |d| {
                    let chunk = row_chunk(n, 12);
                    dg.par_chunks_mut(chunk)
                        .zip(du.par_chunks_mut(chunk))
                        .zip(g.par_chunks(chunk).zip(u.par_chunks(chunk)).zip(d.par_chunks(chunk)))
                        .for_each(|((dgc, duc), ((gc, uc), dc))| {
                            for i in 0..dgc.len() {
                                let s = sigmoid(gc[i]);
                                let silu = gc[i] * s;
                                duc[i] = dc[i] * silu;
                                dgc[i] = dc[i] * uc[i] * (s + silu * (1.0 - s));
                            }
                        });
                })
            })
        })???;
        Ok((
            Some(Tensor::from_vec(dg, gate.shape(), gate.device())?),
            Some(Tensor::from_vec(du, up.shape(), up.device())?),
        ))
    }
}

/// `silu(gate) · up`, elementwise, differentiable in both.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
}
