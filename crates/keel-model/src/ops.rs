//! Differentiable building blocks of the transformer.
//!
//! These are written with candle's elementary ops only, because candle's fused `rms_norm`,
//! `softmax_last_dim`, `rope` and `sdpa` have no backward: a model built on them trains
//! nothing. Each function's signature is the contract the fused kernels must keep.

use candle_core::{DType, Result, Tensor, D};

/// RMSNorm over the last dimension: `x / sqrt(mean(x^2) + eps) * w`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (ms + eps)?.sqrt()?.recip()?;
    x.broadcast_mul(&inv)?.broadcast_mul(w)
}

/// Rotary embedding in Hugging Face's "rotate half" layout.
/// `x`: `[b, h, t, dh]`; `cos`, `sin`: `[t, dh/2]` for the positions of `x`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let dh = x.dim(D::Minus1)?;
    let half = dh / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let cos = cos.unsqueeze(0)?.unsqueeze(0)?;
    let sin = sin.unsqueeze(0)?.unsqueeze(0)?;
    let r1 = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
    let r2 = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
    Tensor::cat(&[r1, r2], D::Minus1)
}

/// Cos/sin tables `[max_pos, dh/2]` for RoPE.
pub fn rope_tables(head_dim: usize, max_pos: usize, theta: f64) -> Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let mut cos = Vec::with_capacity(max_pos * half);
    let mut sin = Vec::with_capacity(max_pos * half);
    for p in 0..max_pos {
        for i in 0..half {
            let inv = 1.0 / theta.powf(2.0 * i as f64 / head_dim as f64);
            let a = p as f64 * inv;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    let dev = &candle_core::Device::Cpu;
    Ok((
        Tensor::from_vec(cos, (max_pos, half), dev)?,
        Tensor::from_vec(sin, (max_pos, half), dev)?,
    ))
}

/// Softmax over the last dimension, numerically stabilised, differentiable.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&s)
}

/// Causal scaled-dot-product attention with grouped-query heads.
/// `q`: `[b, h, t, dh]`; `k`, `v`: `[b, kvh, s, dh]` where the last `t` of the `s` key
/// positions are the queries' own (`s - t` earlier positions come from the KV cache).
pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (b, h, t, dh) = q.dims4()?;
    let (_, kvh, s, _) = k.dims4()?;
    let groups = h / kvh;
    let (k, v) = if groups > 1 {
        let rep = |x: &Tensor| -> Result<Tensor> {
            x.unsqueeze(2)?
                .expand((b, kvh, groups, s, dh))?
                .reshape((b, h, s, dh))
        };
        (rep(k)?, rep(v)?)
    } else {
        (k.clone(), v.clone())
    };
    let scale = 1.0 / (dh as f64).sqrt();
    let scores = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? * scale)?;
    let scores = if t > 1 {
        let offset = s - t;
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..s).map(move |j| if j > i + offset { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, s), q.device())?;
        scores.broadcast_add(&mask)?
    } else {
        scores
    };
    softmax_last(&scores)?.matmul(&v.contiguous()?)
}

/// SwiGLU gate: `silu(gate) * up`.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    gate.silu()? * up
}

/// Mean cross-entropy of `logits` `[n, vocab]` against `targets` `[n]` (u32).
/// With `mask` `[n]` (f32, 0 or 1) only masked-in positions count; the mean is over them.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let logits = logits.to_dtype(DType::F32)?;
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let logp = shifted.broadcast_sub(&lse)?;
    let picked = logp
        .gather(&targets.unsqueeze(1)?, 1)?
        .squeeze(1)?
        .neg()?;
    match mask {
        None => picked.mean_all(),
        Some(m) => {
            let total = m.sum_all()?;
            (picked * m)?.sum_all()?.broadcast_div(&total)
        }
    }
}
