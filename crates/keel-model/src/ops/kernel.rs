//! Shared plumbing for the fused CPU kernels: borrowing a tensor's f32 data without copying,
//! the strided GEMM every kernel calls (Keel's own AVX2+FMA kernel in [`super::sgemm`], or the
//! `gemm` crate candle uses where the CPU lacks those features), and the rule for when a kernel
//! parallelises.

use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor};

/// The contiguous f32 data a layout addresses inside a CPU storage.
pub(crate) fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &'static str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => bail!("{op}: expected f32 input"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => bail!("{op}: input must be contiguous (layout {l:?})"),
    }
}

/// Runs `f` on a tensor's contiguous f32 data (copying only if the tensor is strided).
pub(crate) fn with_f32<R>(t: &Tensor, op: &'static str, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = if t.is_contiguous() {
        t.clone()
    } else {
        t.contiguous()?
    };
    let (st, l) = t.storage_and_layout();
    match &*st {
        Storage::Cpu(s) => Ok(f(slice(s, l, op)?)),
        _ => bail!("{op}: only the CPU backend is implemented"),
    }
}

/// Work below this many multiply-adds runs on the calling thread: a rayon fork costs a few
/// microseconds, more than a small kernel (a one-token decode step) takes.
pub(crate) const PAR_MIN_WORK: usize = 32 * 1024;

/// A matrix view: base pointer plus row and column strides in elements.
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

impl Mat {
    pub fn rows(ptr: *const f32, rs: usize) -> Self {
        Mat {
            ptr,
            rs: rs as isize,
            cs: 1,
        }
    }
    /// The transpose of a row-major view with row stride `rs`.
    pub fn t(ptr: *const f32, rs: usize) -> Self {
        Mat {
            ptr,
            rs: 1,
            cs: rs as isize,
        }
    }
}

/// `dst[m, n] (row stride dst_rs) = (accumulate ? dst : 0) + alpha · a[m, k] · b[k, n]`.
///
/// # Safety
/// Every pointer must address the full strided extent it is read or written over, and `dst`
/// must not alias `a` or `b` or be written concurrently.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    a: Mat,
    b: Mat,
    alpha: f32,
    parallel: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if super::sgemm::available() {
        // SAFETY: the CPU has AVX2 and FMA; the rest is our caller's contract.
        return super::sgemm::sgemm(m, n, k, dst, dst_rs, accumulate, a, b, alpha, parallel);
    }
    sgemm_gemm_crate(m, n, k, dst, dst_rs, accumulate, a, b, alpha, parallel)
}

/// [`sgemm`] through the `gemm` crate: the fallback off x86-64 or without AVX2+FMA, and the
/// baseline `keel bench gemm` compares against.
///
/// # Safety
/// As [`sgemm`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_gemm_crate(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    a: Mat,
    b: Mat,
    alpha: f32,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let par = if parallel && threads > 1 && m * n * k >= PAR_MIN_WORK * 4 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // gemm computes dst := alpha·dst + beta·a·b, reading dst only when asked.
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        a.ptr,
        a.cs,
        a.rs,
        b.ptr,
        b.cs,
        b.rs,
        1.0,
        alpha,
        false,
        false,
        false,
        par,
    )
}

/// A raw pointer that rayon tasks may share because each writes a disjoint region.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Same for read-only data whose lifetime the caller guarantees.
#[derive(Clone, Copy)]
pub(crate) struct SendConst(pub *const f32);
unsafe impl Send for SendConst {}
unsafe impl Sync for SendConst {}

/// Splits `n` rows into chunks, about four per thread, so the last one does not straggle.
pub(crate) fn row_chunk(n: usize, row_cost: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    if n * row_cost < PAR_MIN_WORK || threads == 1 {
        return n.max(1);
    }
    n.div_ceil(threads * 4).max(1)
}

/// `e^x` to about 2e-7 relative error, written without branches or library calls so loops
/// over it vectorise (`f32::exp` is a scalar libm call, and the softmaxes here run millions).
#[inline(always)]
pub(crate) fn exp_approx(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer in plain SSE2 arithmetic.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    f32::from_bits(((n as i32 + 127) << 23) as u32) * p
}

/// Softmax of `row[..valid]` scaled by `scale`, in place; `row[valid..]` is zeroed.
/// Returns the log-sum-exp of the scaled values.
pub(crate) fn softmax_prefix(row: &mut [f32], valid: usize, scale: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { softmax_prefix_avx2(row, valid, scale) };
    }
    softmax_prefix_generic(row, valid, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_prefix_avx2(row: &mut [f32], valid: usize, scale: f32) -> f32 {
    softmax_prefix_generic(row, valid, scale)
}

#[inline(always)]
fn softmax_prefix_generic(row: &mut [f32], valid: usize, scale: f32) -> f32 {
    let (head, tail) = row.split_at_mut(valid);
    tail.fill(0.0);
    let max = max_f32(head) * scale;
    head.iter_mut()
        .for_each(|v| *v = exp_approx(*v * scale - max));
    let sum = sum_f32(head);
    let inv = 1.0 / sum;
    head.iter_mut().for_each(|v| *v *= inv);
    max + sum.ln()
}

/// `row[j] = exp(row[j]·scale − lse)` for `j < valid`, zero after: softmax rebuilt from a
/// saved log-sum-exp.
pub(crate) fn exp_shifted(row: &mut [f32], valid: usize, scale: f32, lse: f32) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { exp_shifted_avx2(row, valid, scale, lse) };
    }
    exp_shifted_generic(row, valid, scale, lse)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_shifted_avx2(row: &mut [f32], valid: usize, scale: f32, lse: f32) {
    exp_shifted_generic(row, valid, scale, lse)
}

#[inline(always)]
fn exp_shifted_generic(row: &mut [f32], valid: usize, scale: f32, lse: f32) {
    let (head, tail) = row.split_at_mut(valid);
    tail.fill(0.0);
    head.iter_mut()
        .for_each(|v| *v = exp_approx(*v * scale - lse));
}

/// Sum with eight independent accumulators: strict float order keeps a plain fold scalar.
#[inline(always)]
pub(crate) fn sum_f32(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// Dot product with eight independent accumulators.
#[inline(always)]
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let rest: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// Maximum with eight independent lanes (NaN-free inputs assumed: scores and logits).
#[inline(always)]
pub(crate) fn max_f32(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for c in chunks {
        for i in 0..8 {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    acc.iter().fold(rest, |m, &v| if v > m { v } else { m })
}
