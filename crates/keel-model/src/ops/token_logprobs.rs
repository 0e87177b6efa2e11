//! Per-token log-probabilities `log p(targetᵢ | hᵢ)` through the LM head, fused.
//!
//! Preference and RL losses need the log-probability of each chosen token, not a mean loss.
//! Composed from candle ops that is `linear → log_softmax → gather`, which keeps the `[n, vocab]`
//! logits, their exp and the log-softmax for backward — at SmolLM2's vocabulary of 49 152 that
//! is 200 KB per token per buffer. This op works through the rows in chunks: forward keeps only
//! one log-sum-exp per row, and backward recomputes each chunk's logits (one extra GEMM, cheap
//! next to the memory it saves), so at most one `[chunk, vocab]` block is alive at a time.

use super::kernel::{exp_shifted, sgemm, slice, softmax_prefix, with_f32, Mat, SendPtr};
use crate::Llama;
use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;
use std::sync::Mutex;

/// Rows per chunk: about 4 M logits (16 MB) at a time, at least 8 rows.
fn chunk_rows(vocab: usize) -> usize {
    ((4 << 20) / vocab.max(1)).clamp(8, 1024)
}

fn targets_of<'a>(s: &'a CpuStorage, l: &Layout, n: usize, vocab: usize) -> Result<&'a [u32]> {
    let t = match (s, l.contiguous_offsets()) {
        (CpuStorage::U32(v), Some((a, b))) => &v[a..b],
        _ => bail!("token_logprobs: targets must be a contiguous u32 tensor"),
    };
    if t.len() != n {
        bail!("token_logprobs: {} targets for {n} rows", t.len());
    }
    if let Some(bad) = t.iter().find(|&&v| v as usize >= vocab) {
        bail!("token_logprobs: target id {bad} is outside the vocabulary of {vocab}");
    }
    Ok(t)
}

/// `logits[rows, vocab] = h[rows, d] @ wᵀ` into `buf`.
fn chunk_logits(h: &[f32], w: &[f32], rows: usize, d: usize, vocab: usize, buf: &mut [f32]) {
    // SAFETY: h is rows×d, w is vocab×d, buf holds rows×vocab.
    unsafe {
        sgemm(
            rows,
            vocab,
            d,
            buf.as_mut_ptr(),
            vocab,
            false,
            Mat::rows(h.as_ptr(), d),
            Mat::t(w.as_ptr(), d),
            1.0,
            true,
        )
    }
}

struct TokenLogprobs {
    /// Rows per chunk.
    chunk: usize,
    /// Log-sum-exp of every row's logits, from forward.
    lse: Mutex<Vec<f32>>,
}

impl CustomOp3 for TokenLogprobs {
    fn name(&self) -> &'static str {
        "keel-token-logprobs"
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
        let (n, d) = l1.shape().dims2()?;
        let (vocab, dw) = l2.shape().dims2()?;
        if d != dw {
            bail!(
                "token_logprobs: hidden {:?} does not match head {:?}",
                l1.dims(),
                l2.dims()
            );
        }
        let (h, w) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let targets = targets_of(s3, l3, n, vocab)?;
        let chunk = self.chunk;
        let mut out = vec![0f32; n];
        let mut lse = vec![0f32; n];
        let mut buf = vec![0f32; chunk.min(n) * vocab];
        for start in (0..n).step_by(chunk) {
            let rows = chunk.min(n - start);
            let logits = &mut buf[..rows * vocab];
            chunk_logits(&h[start * d..(start + rows) * d], w, rows, d, vocab, logits);
            logits
                .par_chunks_mut(vocab)
                .zip(out[start..start + rows].par_iter_mut())
                .zip(lse[start..start + rows].par_iter_mut())
                .zip(targets[start..start + rows].par_iter())
                .with_min_len(8)
                .for_each(|(((row, o), l), &t)| {
                    let picked = row[t as usize];
                    *l = softmax_prefix(row, vocab, 1.0);
                    *o = picked - *l;
                });
        }
        *self.lse.lock().expect("lse lock") = lse;
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }

    fn bwd(
        &self,
        h: &Tensor,
        w: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, d) = h.dims2()?;
        let vocab = w.dim(0)?;
        let lse = self.lse.lock().expect("lse lock").clone();
        if lse.len() != n {
            bail!("token_logprobs: backward without a matching forward");
        }
        let targets = targets.to_vec1::<u32>()?;
        let g = g.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let chunk = self.chunk;
        let mut dh = vec![0f32; n * d];
        // A frozen head (LoRA, or a reference model) needs no `[vocab, d]` gradient: skipping it
        // saves the larger of the two GEMMs.
        let want_dw = w.track_op();
        let mut dw = vec![0f32; if want_dw { vocab * d } else { 0 }];
        let (dhp, dwp) = (SendPtr(dh.as_mut_ptr()), SendPtr(dw.as_mut_ptr()));
        with_f32(h, self.name(), |hs| {
            with_f32(w, self.name(), |ws| {
                let mut buf = vec![0f32; chunk.min(n) * vocab];
                for start in (0..n).step_by(chunk) {
                    let rows = chunk.min(n - start);
                    let hc = &hs[start * d..(start + rows) * d];
                    let dl = &mut buf[..rows * vocab];
                    chunk_logits(hc, ws, rows, d, vocab, dl);
                    // d logp[t] / d logits = onehot(t) − softmax, scaled by the incoming grad.
                    dl.par_chunks_mut(vocab)
                        .zip(lse[start..start + rows].par_iter())
                        .zip(targets[start..start + rows].par_iter())
                        .zip(g[start..start + rows].par_iter())
                        .with_min_len(8)
                        .for_each(|(((row, &l), &t), &gi)| {
                            if gi == 0.0 {
                                row.fill(0.0);
                                return;
                            }
                            exp_shifted(row, vocab, 1.0, l);
                            row[t as usize] -= 1.0;
                            row.iter_mut().for_each(|v| *v *= -gi);
                        });
                    // SAFETY: dl is rows×vocab, w vocab×d, hc rows×d; dh rows are this
                    // chunk's own, dw accumulates across chunks on this thread only.
                    unsafe {
                        sgemm(
                            rows,
                            d,
                            vocab,
                            dhp.0.add(start * d),
                            d,
                            false,
                            Mat::rows(dl.as_ptr(), vocab),
                            Mat::rows(ws.as_ptr(), d),
                            1.0,
                            true,
                        );
                        if !want_dw {
                            continue;
                        }
                        sgemm(
                            vocab,
                            d,
                            rows,
                            dwp.0,
                            d,
                            start > 0,
                            Mat::t(dl.as_ptr(), vocab),
                            Mat::rows(hc.as_ptr(), d),
                            1.0,
                            true,
                        );
                    }
                }
            })
        })??;
        Ok((
            Some(Tensor::from_vec(dh, (n, d), h.device())?),
            want_dw
                .then(|| Tensor::from_vec(dw, (vocab, d), w.device()))
                .transpose()?,
            None,
        ))
    }
}

/// `log softmax(h @ wᵀ)[i, targets[i]]` for `h` `[n, d]` (or `[.., d]`, flattened), `w`
/// `[vocab, d]`, `targets` `[n]` u32: shape `[n]`. Differentiable in `h` and `w`; no
/// `[n, vocab]` tensor is kept between forward and backward.
pub fn token_logprobs(h: &Tensor, w: &Tensor, targets: &Tensor) -> Result<Tensor> {
    token_logprobs_chunked(h, w, targets, chunk_rows(w.dim(0)?))
}

/// [`token_logprobs`] with an explicit chunk size (the gradient checks use tiny chunks so
/// chunk boundaries are exercised).
pub(crate) fn token_logprobs_chunked(
    h: &Tensor,
    w: &Tensor,
    targets: &Tensor,
    chunk: usize,
) -> Result<Tensor> {
    let h = h.to_dtype(DType::F32)?.contiguous()?;
    let h = if h.rank() == 2 {
        h
    } else {
        h.flatten_to(D::Minus2)?
    };
    let op = TokenLogprobs {
        chunk: chunk.max(1),
        lse: Mutex::new(Vec::new()),
    };
    h.apply_op3(
        &w.to_dtype(DType::F32)?.contiguous()?,
        &targets.flatten_all()?.contiguous()?,
        op,
    )
}

impl Llama {
    /// Log-probability of each next token: `ids` `[b, t]` in, `targets` `[b, t]` (usually
    /// `ids` shifted left by one), out `[b, t]`. For per-token losses (PPO, KL penalties).
    pub fn token_logprobs(&self, ids: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let h = self.forward_hidden(ids, None)?;
        token_logprobs(&h, self.lm_head(), targets)?.reshape((b, t))
    }

    /// Summed log-probability of the masked-in targets of each row: `ids`, `targets`, `mask`
    /// `[b, t]` (mask 1 on completion tokens, 0 on prompt and padding), out `[b]`. The
    /// sequence log-likelihood `log π(y | x)` that DPO and its relatives compare.
    pub fn sequence_logprobs(
        &self,
        ids: &Tensor,
        targets: &Tensor,
        mask: &Tensor,
    ) -> Result<Tensor> {
        let per_token = self.token_logprobs(ids, targets)?;
        (per_token * mask.to_dtype(DType::F32)?)?.sum(1)
    }
}

/// The composite version (candle primitives), for the gradient checks.
#[cfg(test)]
pub(crate) fn reference_token_logprobs(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted
        .broadcast_sub(&lse)?
        .gather(&targets.unsqueeze(1)?, 1)?
        .squeeze(1)
}

#[cfg(test)]
mod tests {
    use crate::{Llama, LlamaConfig};
    use candle_core::{Device, Tensor};

    #[test]
    fn sequence_logprobs_agree_with_the_model_loss() {
        // Σ masked log p / Σ mask = −(masked mean cross-entropy), row by row.
        let cfg = LlamaConfig::tiny(40, 32, 2, 4);
        let (_vm, m) = Llama::init(&cfg, 4).unwrap();
        let dev = &Device::Cpu;
        let ids = Tensor::new(&[[1u32, 5, 9, 2, 22], [3, 3, 0, 14, 8]], dev).unwrap();
        let tg = Tensor::new(&[[5u32, 9, 2, 22, 7], [3, 0, 14, 8, 19]], dev).unwrap();
        let mask = Tensor::new(&[[0f32, 1., 1., 1., 0.], [0., 0., 1., 1., 1.]], dev).unwrap();
        let seq = m
            .sequence_logprobs(&ids, &tg, &mask)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(seq.len(), 2);
        for (r, &sr) in seq.iter().enumerate() {
            let row = |t: &Tensor| t.narrow(0, r, 1).unwrap();
            let loss = m
                .loss(&row(&ids), &row(&tg), Some(&row(&mask)))
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                (seq[r] / 3.0 + loss).abs() < 1e-5,
                "row {r}: {} vs {loss}",
                seq[r]
            );
            assert!(sr < 0.0);
        }
        // Per-token values are each ≤ 0 and sum to the same thing.
        let per = m.token_logprobs(&ids, &tg).unwrap();
        assert_eq!(per.dims(), &[2, 5]);
        assert!(per.max_all().unwrap().to_scalar::<f32>().unwrap() <= 0.0);
    }
}
