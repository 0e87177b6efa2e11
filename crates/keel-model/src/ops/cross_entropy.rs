//! Fused softmax cross-entropy, mean over masked-in tokens.
//!
//! [`cross_entropy`] takes logits; [`linear_cross_entropy`] also folds in the LM head
//! (`h @ wᵀ`), so the `[n, vocab]` logits exist exactly once: forward turns them into
//! probabilities in place and keeps them, backward turns those into `dlogits` in place and
//! multiplies out. The composite version holds logits, shifted logits, their exp and the
//! log-softmax, and candle's backward adds two more `[n, vocab]` buffers per node.

use super::kernel::{exp_shifted, sgemm, slice, softmax_prefix, with_f32, Mat, SendPtr};
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;
use std::sync::Mutex;

/// Per-row weight `mask_i / Σ mask`; `None` mask means every row counts.
fn row_weights(mask: &Option<Vec<f32>>, n: usize) -> Vec<f32> {
    match mask {
        None => vec![1.0 / n as f32; n],
        Some(m) => {
            let total: f32 = m.iter().sum();
            m.iter().map(|&v| v / total).collect()
        }
    }
}

fn targets_of<'a>(s: &'a CpuStorage, l: &Layout, n: usize, vocab: usize) -> Result<&'a [u32]> {
    let t = match (s, l.contiguous_offsets()) {
        (CpuStorage::U32(v), Some((a, b))) => &v[a..b],
        _ => bail!("cross_entropy: targets must be a contiguous u32 tensor"),
    };
    if t.len() != n {
        bail!("cross_entropy: {} targets for {n} rows", t.len());
    }
    if let Some(bad) = t.iter().find(|&&v| v as usize >= vocab) {
        bail!("cross_entropy: target id {bad} is outside the vocabulary of {vocab}");
    }
    Ok(t)
}

/// Turns each logits row into probabilities in place; returns Σ wᵢ·(lseᵢ − logitᵢ[tᵢ]).
fn softmax_rows_loss(probs: &mut [f32], vocab: usize, targets: &[u32], w: &[f32]) -> f32 {
    let loss: f64 = probs
        .par_chunks_mut(vocab)
        .zip(targets.par_iter().zip(w.par_iter()))
        .with_min_len(8)
        .map(|(row, (&t, &wi))| {
            let picked = row[t as usize];
            let lse = softmax_prefix(row, vocab, 1.0);
            if wi == 0.0 {
                0.0
            } else {
                wi as f64 * (lse - picked) as f64
            }
        })
        .sum();
    loss as f32
}

/// `p ← (p − onehot(t)) · wᵢ · g`, in place.
fn probs_to_grad(probs: &mut [f32], vocab: usize, targets: &[u32], w: &[f32], g: f32) {
    probs
        .par_chunks_mut(vocab)
        .zip(targets.par_iter().zip(w.par_iter()))
        .with_min_len(8)
        .for_each(|(row, (&t, &wi))| {
            let c = wi * g;
            if c == 0.0 {
                row.fill(0.0);
                return;
            }
            row[t as usize] -= 1.0;
            row.iter_mut().for_each(|v| *v *= c);
        });
}

fn scalar_grad(g: &Tensor) -> Result<f32> {
    g.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .get(0)?
        .to_scalar::<f32>()
}

struct CrossEntropy {
    mask: Option<Vec<f32>>,
    lse: Mutex<Vec<f32>>,
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "keel-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, vocab) = l1.shape().dims2()?;
        let logits = slice(s1, l1, self.name())?;
        let targets = targets_of(s2, l2, n, vocab)?;
        let w = row_weights(&self.mask, n);
        let mut lse = vec![0f32; n];
        let loss: f64 = logits
            .par_chunks(vocab)
            .zip(lse.par_iter_mut())
            .zip(targets.par_iter().zip(w.par_iter()))
            .with_min_len(8)
            .map_init(Vec::new, |buf, ((row, l), (&t, &wi))| {
                buf.clear();
                buf.extend_from_slice(row);
                *l = softmax_prefix(buf, vocab, 1.0);
                if wi == 0.0 {
                    0.0
                } else {
                    wi as f64 * (*l - row[t as usize]) as f64
                }
            })
            .sum();
        let loss = loss as f32;
        *self.lse.lock().expect("lse lock") = lse;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (n, vocab) = logits.dims2()?;
        let g = scalar_grad(g)?;
        let lse = self.lse.lock().expect("lse lock").clone();
        let w = row_weights(&self.mask, n);
        let targets = targets.to_vec1::<u32>()?;
        let mut dl = with_f32(logits, self.name(), |l| l.to_vec())?;
        dl.par_chunks_mut(vocab)
            .zip(lse.par_iter())
            .with_min_len(8)
            .for_each(|(row, &lse)| exp_shifted(row, vocab, 1.0, lse));
        probs_to_grad(&mut dl, vocab, &targets, &w, g);
        Ok((
            Some(Tensor::from_vec(dl, (n, vocab), logits.device())?),
            None,
        ))
    }
}

struct LinearCrossEntropy {
    mask: Option<Vec<f32>>,
    /// Softmax probabilities `[n, vocab]` from forward, consumed by backward.
    probs: Mutex<Option<Vec<f32>>>,
}

impl CustomOp3 for LinearCrossEntropy {
    fn name(&self) -> &'static str {
        "keel-linear-cross-entropy"
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
                "linear_cross_entropy: hidden {:?} does not match head {:?}",
                l1.dims(),
                l2.dims()
            );
        }
        let (h, w) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let targets = targets_of(s3, l3, n, vocab)?;
        let mut probs = vec![0f32; n * vocab];
        // SAFETY: h is n×d, w is vocab×d, probs is n×vocab.
        unsafe {
            sgemm(
                n,
                vocab,
                d,
                probs.as_mut_ptr(),
                vocab,
                false,
                Mat::rows(h.as_ptr(), d),
                Mat::t(w.as_ptr(), d),
                1.0,
                true,
            )
        };
        let loss = softmax_rows_loss(&mut probs, vocab, targets, &row_weights(&self.mask, n));
        *self.probs.lock().expect("probs lock") = Some(probs);
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
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
        let Some(mut dl) = self.probs.lock().expect("probs lock").take() else {
            bail!("linear_cross_entropy: backward ran twice or forward state is missing");
        };
        let targets = targets.to_vec1::<u32>()?;
        probs_to_grad(
            &mut dl,
            vocab,
            &targets,
            &row_weights(&self.mask, n),
            scalar_grad(g)?,
        );
        let mut dh = vec![0f32; n * d];
        // A frozen head (LoRA, or tied to a frozen embedding) skips the [vocab, d] GEMM.
        let want_w = w.track_op();
        let mut dw = vec![0f32; if want_w { vocab * d } else { 0 }];
        let (dhp, dwp) = (SendPtr(dh.as_mut_ptr()), SendPtr(dw.as_mut_ptr()));
        with_f32(h, self.name(), |hs| {
            with_f32(w, self.name(), |ws| unsafe {
                // SAFETY: dl is n×vocab, h n×d, w vocab×d; outputs sized to match.
                sgemm(
                    n,
                    d,
                    vocab,
                    dhp.0,
                    d,
                    false,
                    Mat::rows(dl.as_ptr(), vocab),
                    Mat::rows(ws.as_ptr(), d),
                    1.0,
                    true,
                );
                if !want_w {
                    return;
                }
                sgemm(
                    vocab,
                    d,
                    n,
                    dwp.0,
                    d,
                    false,
                    Mat::t(dl.as_ptr(), vocab),
                    Mat::rows(hs.as_ptr(), d),
                    1.0,
                    true,
                );
            })
        })??;
        drop(dl);
        Ok((
            Some(Tensor::from_vec(dh, (n, d), h.device())?),
            want_w
                .then(|| Tensor::from_vec(dw, (vocab, d), w.device()))
                .transpose()?,
            None,
        ))
    }
}

fn mask_vec(mask: Option<&Tensor>, n: usize) -> Result<Option<Vec<f32>>> {
    let Some(m) = mask else { return Ok(None) };
    let m = m
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    if m.len() != n {
        bail!("cross_entropy: mask of {} for {n} rows", m.len());
    }
    Ok(Some(m))
}

/// Mean cross-entropy of `logits` `[n, vocab]` against `targets` `[n]` (u32). With `mask`
/// `[n]` (0 or 1) only masked-in rows count and the mean is over them (NaN if none are).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let logits = logits.to_dtype(candle_core::DType::F32)?.contiguous()?;
    let n = logits.dim(0)?;
    let op = CrossEntropy {
        mask: mask_vec(mask, n)?,
        lse: Mutex::new(Vec::new()),
    };
    logits.apply_op2(&targets.flatten_all()?.contiguous()?, op)
}

/// `cross_entropy(h @ wᵀ, targets, mask)` without keeping the logits as a tensor:
/// `h` `[n, d]`, `w` `[vocab, d]`. Differentiable in `h` and `w`.
pub fn linear_cross_entropy(
    h: &Tensor,
    w: &Tensor,
    targets: &Tensor,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let h = h.contiguous()?;
    let h = if h.rank() == 2 {
        h
    } else {
        h.flatten_to(D::Minus2)?
    };
    let n = h.dim(0)?;
    let op = LinearCrossEntropy {
        mask: mask_vec(mask, n)?,
        probs: Mutex::new(None),
    };
    h.apply_op3(&w.contiguous()?, &targets.flatten_all()?.contiguous()?, op)
}
