//! `x @ wᵀ` (optionally plus a residual) as one graph node with its own backward.
//!
//! Composed from candle ops a linear layer is reshape → matmul(w.t()) → reshape, and candle's
//! backward allocates a zero tensor and adds into it for every node on the path; one node
//! with two GEMMs in backward avoids those passes. The residual form folds the transformer's
//! `x + f(x)` add into the GEMM (it accumulates onto a copy of the residual).

use super::kernel::{sgemm, slice, with_f32, Mat};
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

fn out_shape(x: &Layout, w: &Layout) -> Result<(usize, usize, usize, Shape)> {
    let (xd, wd) = (x.dims(), w.dims());
    if wd.len() != 2 || xd.is_empty() || xd[xd.len() - 1] != wd[1] {
        bail!("linear: input {xd:?} does not match weight {wd:?} ([out, in])");
    }
    let mut out = xd.to_vec();
    *out.last_mut().expect("rank ≥ 1") = wd[0];
    Ok((
        x.shape().elem_count() / wd[1],
        wd[1],
        wd[0],
        Shape::from(out),
    ))
}

/// `y[rows, out] (+)= x[rows, in] · w[out, in]ᵀ`.
fn forward_into(
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    rows: usize,
    din: usize,
    dout: usize,
    acc: bool,
) {
    // SAFETY: slices sized rows×in, out×in and rows×out by the caller's shape checks.
    unsafe {
        sgemm(
            rows,
            dout,
            din,
            y.as_mut_ptr(),
            dout,
            acc,
            Mat::rows(x.as_ptr(), din),
            Mat::t(w.as_ptr(), din),
            1.0,
            true,
        )
    }
}

/// `dx = dy · w`, `dw = dyᵀ · x`, each only for an input the graph tracks: a frozen weight
/// (LoRA's base) costs no GEMM and no `[out, in]` buffer.
fn backward(x: &Tensor, w: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let (dout, din) = w.dims2()?;
    let rows = x.elem_count() / din;
    let (want_dx, want_dw) = (x.track_op(), w.track_op());
    let mut dx = vec![0f32; if want_dx { rows * din } else { 0 }];
    let mut dw = vec![0f32; if want_dw { dout * din } else { 0 }];
    let name = "keel-linear";
    with_f32(x, name, |x| {
        with_f32(w, name, |w| {
            with_f32(dy, name, |d| unsafe {
                // SAFETY: all buffers sized from the checked shapes above.
                if want_dx {
                    sgemm(
                        rows,
                        din,
                        dout,
                        dx.as_mut_ptr(),
                        din,
                        false,
                        Mat::rows(d.as_ptr(), dout),
                        Mat::rows(w.as_ptr(), din),
                        1.0,
                        true,
                    );
                }
                if want_dw {
                    sgemm(
                        dout,
                        din,
                        rows,
                        dw.as_mut_ptr(),
                        din,
                        false,
                        Mat::t(d.as_ptr(), dout),
                        Mat::rows(x.as_ptr(), din),
                        1.0,
                        true,
                    );
                }
            })
        })
    })???;
    let dx = want_dx
        .then(|| Tensor::from_vec(dx, x.shape(), x.device()))
        .transpose()?;
    let dw = want_dw
        .then(|| Tensor::from_vec(dw, w.shape(), w.device()))
        .transpose()?;
    Ok((dx, dw))
}

struct Linear;

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "keel-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, din, dout, shape) = out_shape(l1, l2)?;
        let (x, w) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let mut y = vec![0f32; rows * dout];
        forward_into(&mut y, x, w, rows, din, dout, false);
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        backward(x, w, dy)
    }
}

struct LinearResidual;

impl CustomOp3 for LinearResidual {
    fn name(&self) -> &'static str {
        "keel-linear-residual"
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
        let (rows, din, dout, shape) = out_shape(l2, l3)?;
        if l1.dims() != shape.dims() {
            bail!(
                "linear_residual: residual {:?} does not match output {shape:?}",
                l1.dims()
            );
        }
        let (r, x, w) = (
            slice(s1, l1, self.name())?,
            slice(s2, l2, self.name())?,
            slice(s3, l3, self.name())?,
        );
        let mut y = r.to_vec();
        forward_into(&mut y, x, w, rows, din, dout, true);
        Ok((CpuStorage::F32(y), shape))
    }

    fn bwd(
        &self,
        _r: &Tensor,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = backward(x, w, dy)?;
        Ok((Some(dy.clone()), dx, dw))
    }
}

/// `x @ wᵀ` for `x` `[.., in]` and `w` `[out, in]`; differentiable in both.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, Linear)
}

/// `r + x @ wᵀ` in one node (the residual connection folded into the GEMM).
pub fn linear_residual(r: &Tensor, x: &Tensor, w: &Tensor) -> Result<Tensor> {
    r.contiguous()?
        .apply_op3(&x.contiguous()?, &w.contiguous()?, LinearResidual)
}
