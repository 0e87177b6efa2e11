//! Composite reference versions of every fused op, built from candle's elementary
//! differentiable ops only. Slow, but obviously right: the gradient checks compare the fused
//! kernels to these in forward and backward, and check these against finite differences.
//! Signatures and layouts match the fused ops.

use candle_core::{Result, Tensor, D};

/// RMSNorm over the last dimension: `x / sqrt(mean(x²) + eps) · w`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (ms + eps)?.sqrt()?.recip()?;
    x.broadcast_mul(&inv)?.broadcast_mul(w)
}

/// Rotate-half RoPE on `x` `[b, t, heads·dh]`; `cos`, `sin`: `[t, dh/2]` for its positions,
/// or `[b, t, dh/2]` for per-row positions (packed rows).
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, w) = x.dims3()?;
    let dh = w / heads;
    let half = dh / 2;
    let cb = cos.elem_count() / (t * half);
    let x = x.reshape((b, t, heads, dh))?;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let cos = cos.reshape((cb, t, 1, half))?.to_dtype(x.dtype())?;
    let sin = sin.reshape((cb, t, 1, half))?.to_dtype(x.dtype())?;
    let r1 = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
    let r2 = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
    Tensor::cat(&[r1, r2], D::Minus1)?.reshape((b, t, w))
}

/// Softmax over the last dimension, numerically stabilised, differentiable.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&s)
}

/// Causal attention with grouped-query heads on `q` `[b, t, h·dh]`, `k`/`v` `[b, s, kvh·dh]`
/// (the last `t` of the `s` key positions are the queries' own), via an explicit mask.
pub fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    kv_heads: usize,
) -> Result<Tensor> {
    segment_attention(q, k, v, heads, kv_heads, None)
}

/// [`causal_attention`] where, with `doc_ids` `[b, t]` (row-major; s = t), a query also
/// requires the key's document id to equal its own: an explicit `[b, 1, t, t]` mask.
pub fn segment_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    kv_heads: usize,
    doc_ids: Option<&[u32]>,
) -> Result<Tensor> {
    let (b, t, w) = q.dims3()?;
    let s = k.dim(1)?;
    let dh = w / heads;
    let groups = heads / kv_heads;
    let split = |x: &Tensor, n: usize, len: usize| x.reshape((b, len, n, dh))?.transpose(1, 2);
    let (q, k, v) = (
        split(q, heads, t)?,
        split(k, kv_heads, s)?,
        split(v, kv_heads, s)?,
    );
    let rep = |x: &Tensor| -> Result<Tensor> {
        x.unsqueeze(2)?
            .expand((b, kv_heads, groups, s, dh))?
            .reshape((b, heads, s, dh))
    };
    let (k, v) = (rep(&k)?, rep(&v)?);
    let scale = 1.0 / (dh as f64).sqrt();
    let scores = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? * scale)?;
    let offset = s - t;
    let rows = if doc_ids.is_some() { b } else { 1 };
    let mask: Vec<f32> = (0..rows)
        .flat_map(|r| {
            (0..t).flat_map(move |i| {
                (0..s).map(move |j| {
                    let other = doc_ids.is_some_and(|d| d[r * t + i] != d[r * t + j]);
                    if j > i + offset || other {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    }
                })
            })
        })
        .collect();
    let mask = Tensor::from_vec(mask, (rows, 1, t, s), q.device())?.to_dtype(q.dtype())?;
    let a = softmax_last(&scores.broadcast_add(&mask)?)?.matmul(&v.contiguous()?)?;
    a.transpose(1, 2)?.reshape((b, t, w))
}

/// SwiGLU gate: `silu(gate) · up`.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    gate.silu()? * up
}

/// `x @ wᵀ` for `x` `[.., in]`, `w` `[out, in]`.
pub fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let inner = dims[dims.len() - 1];
    let rows = x.elem_count() / inner;
    let y = x.reshape((rows, inner))?.matmul(&w.t()?)?;
    let mut out = dims;
    *out.last_mut().expect("rank ≥ 1") = w.dim(0)?;
    y.reshape(out)
}

/// Mean cross-entropy of `logits` `[n, vocab]` against `targets` `[n]` (u32); with `mask`
/// only masked-in rows count and the mean is over them.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let logp = shifted.broadcast_sub(&lse)?;
    let picked = logp.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
    match mask {
        None => picked.mean_all(),
        Some(m) => {
            let m = m.to_dtype(picked.dtype())?;
            let total = m.sum_all()?;
            (picked * m)?.sum_all()?.broadcast_div(&total)
        }
    }
}
