//! Fused SwiGLU gate `silu(gate) · up` and its backward in one pass each (the composite
//! version materialises sigmoid, silu and their gradients as separate tensors).

use super::kernel::{exp_approx, row_chunk, sgemm, slice, with_f32, Mat};
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Mutex;

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
                        .zip(
                            g.par_chunks(chunk)
                                .zip(u.par_chunks(chunk))
                                .zip(d.par_chunks(chunk)),
                        )
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

/// The MLP's input half, `silu(x·w_gateᵀ) · (x·w_upᵀ)`, as one node: both projections, the
/// gate, and in backward all four gradient GEMMs, with the gate and up activations kept from
/// forward and overwritten in place by their gradients (no per-node zero-and-add passes over
/// the `[n, ffn]` intermediates, which are the largest activations in the block).
struct SwiGluMlp {
    /// `(x·w_gateᵀ, x·w_upᵀ)` from forward, consumed by backward.
    saved: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

fn project(x: &[f32], w: &[f32], rows: usize, din: usize, dout: usize) -> Vec<f32> {
    let mut y = vec![0f32; rows * dout];
    // SAFETY: x is rows×din, w is dout×din, y is rows×dout.
    unsafe {
        sgemm(
            rows,
            dout,
            din,
            y.as_mut_ptr(),
            dout,
            false,
            Mat::rows(x.as_ptr(), din),
            Mat::t(w.as_ptr(), din),
            1.0,
            true,
        )
    };
    y
}

impl CustomOp3 for SwiGluMlp {
    fn name(&self) -> &'static str {
        "keel-swiglu-mlp"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (f, din) = l2.shape().dims2()?;
        let d = *l1.dims().last().unwrap_or(&0);
        if d != din || l3.dims() != l2.dims() {
            bail!(
                "swiglu_mlp: input {:?}, gate {:?}, up {:?} do not fit",
                l1.dims(),
                l2.dims(),
                l3.dims()
            );
        }
        let name = self.name();
        let (x, wg, wu) = (
            slice(s1, l1, name)?,
            slice(s2, l2, name)?,
            slice(s3, l3, name)?,
        );
        let rows = x.len() / d;
        let (g, u) = (project(x, wg, rows, d, f), project(x, wu, rows, d, f));
        let mut y = vec![0f32; rows * f];
        let chunk = row_chunk(y.len(), 8);
        y.par_chunks_mut(chunk)
            .zip(g.par_chunks(chunk).zip(u.par_chunks(chunk)))
            .for_each(|(yc, (gc, uc))| {
                for ((y, &g), &u) in yc.iter_mut().zip(gc).zip(uc) {
                    *y = g * sigmoid(g) * u;
                }
            });
        *self.saved.lock().expect("saved lock") = Some((g, u));
        let mut dims = l1.dims().to_vec();
        *dims.last_mut().expect("rank ≥ 1") = f;
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        wg: &Tensor,
        wu: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let name = self.name();
        let (f, d) = wg.dims2()?;
        let rows = x.elem_count() / d;
        let saved = self.saved.lock().expect("saved lock").take();
        let (mut g, mut u) = match saved {
            Some(s) => s,
            // Backward ran twice: recompute the activations.
            None => with_f32(x, name, |x| {
                with_f32(wg, name, |wg| {
                    with_f32(wu, name, |wu| {
                        (project(x, wg, rows, d, f), project(x, wu, rows, d, f))
                    })
                })
            })???,
        };
        with_f32(dy, name, |dy| {
            let chunk = row_chunk(g.len(), 12);
            g.par_chunks_mut(chunk)
                .zip(u.par_chunks_mut(chunk))
                .zip(dy.par_chunks(chunk))
                .for_each(|((gc, uc), dc)| {
                    for i in 0..gc.len() {
                        let s = sigmoid(gc[i]);
                        let silu = gc[i] * s;
                        let dgate = dc[i] * uc[i] * (s + silu * (1.0 - s));
                        uc[i] = dc[i] * silu;
                        gc[i] = dgate;
                    }
                });
        })?;
        let (dgate, dup) = (g, u);
        let mut dx = vec![0f32; rows * d];
        // Frozen weights (LoRA's base) get neither the GEMM nor the buffer.
        let want_w = wg.track_op() || wu.track_op();
        let mut dwg = vec![0f32; if want_w { f * d } else { 0 }];
        let mut dwu = vec![0f32; if want_w { f * d } else { 0 }];
        with_f32(x, name, |x| {
            with_f32(wg, name, |wg| {
                with_f32(wu, name, |wu| unsafe {
                    // SAFETY: all buffers sized from the checked shapes.
                    sgemm(
                        rows,
                        d,
                        f,
                        dx.as_mut_ptr(),
                        d,
                        false,
                        Mat::rows(dgate.as_ptr(), f),
                        Mat::rows(wg.as_ptr(), d),
                        1.0,
                        true,
                    );
                    sgemm(
                        rows,
                        d,
                        f,
                        dx.as_mut_ptr(),
                        d,
                        true,
                        Mat::rows(dup.as_ptr(), f),
                        Mat::rows(wu.as_ptr(), d),
                        1.0,
                        true,
                    );
                    if !want_w {
                        return;
                    }
                    sgemm(
                        f,
                        d,
                        rows,
                        dwg.as_mut_ptr(),
                        d,
                        false,
                        Mat::t(dgate.as_ptr(), f),
                        Mat::rows(x.as_ptr(), d),
                        1.0,
                        true,
                    );
                    sgemm(
                        f,
                        d,
                        rows,
                        dwu.as_mut_ptr(),
                        d,
                        false,
                        Mat::t(dup.as_ptr(), f),
                        Mat::rows(x.as_ptr(), d),
                        1.0,
                        true,
                    );
                })
            })
        })???;
        drop((dgate, dup));
        let grad = |g: Vec<f32>, w: &Tensor| {
            w.track_op()
                .then(|| Tensor::from_vec(g, w.shape(), w.device()))
                .transpose()
        };
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            grad(dwg, wg)?,
            grad(dwu, wu)?,
        ))
    }
}

/// `silu(x·w_gateᵀ) · (x·w_upᵀ)` for `x` `[.., d]`, `w_gate`/`w_up` `[ffn, d]`, as one node;
/// differentiable in all three.
pub fn swiglu_mlp(x: &Tensor, w_gate: &Tensor, w_up: &Tensor) -> Result<Tensor> {
    let op = SwiGluMlp {
        saved: Mutex::new(None),
    };
    x.contiguous()?
        .apply_op3(&w_gate.contiguous()?, &w_up.contiguous()?, op)
}
