//! Gradient checks for every op used in training.
//!
//! Three layers of evidence per op:
//! 1. the composite reference (candle primitives) against central finite differences in f64,
//!    to tight tolerance — the reference is right;
//! 2. the fused kernel against the reference, forward and every input gradient, in f32 to
//!    ~1e-5 — the fused kernel computes the same function and the same gradient;
//! 3. the fused kernel directly against finite differences in f32 (looser: f32 round-off).
//!
//! `a_wrong_gradient_is_caught` shows the checker fails on a backward that is off by 5%.

use super::reference as r;
use super::*;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor, Var};
use keel_core::rng::rng_for;
use rand::Rng;

fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rng_for(seed, "gradcheck");
    (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
}

fn rand_t(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(rand_vec(n, seed), shape, &Device::Cpu).unwrap()
}

/// `Σ out · R` for a fixed random `R`, accumulated in f64, so every output element matters.
fn project(out: &Tensor, seed: u64) -> f64 {
    let o: Vec<f64> = out
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    let rr = rand_vec(o.len(), seed ^ 0x5eed);
    o.iter().zip(rr).map(|(a, b)| a * b as f64).sum()
}

fn projected_loss(out: &Tensor, seed: u64) -> Tensor {
    let rr = Tensor::from_vec(
        rand_vec(out.elem_count(), seed ^ 0x5eed),
        out.shape(),
        &Device::Cpu,
    )
    .unwrap()
    .to_dtype(out.dtype())
    .unwrap();
    (out * rr).unwrap().sum_all().unwrap()
}

type Op<'a> = &'a dyn Fn(&[Tensor]) -> Result<Tensor>;

/// Analytic gradients of `Σ f(inputs) · R` with respect to every input.
fn analytic(f: Op, inputs: &[Tensor]) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&ts).unwrap();
    let grads = projected_loss(&out, 7).backward().unwrap();
    let g = ts
        .iter()
        .map(|t| {
            grads
                .get(t)
                .cloned()
                .unwrap_or_else(|| t.zeros_like().unwrap())
        })
        .collect();
    (out, g)
}

/// Compares analytic gradients with central differences `(L(x+h) − L(x−h)) / 2h` on up to
/// `max_elems` entries of each input; Err names the worst entry.
fn check_fd(
    f: Op,
    inputs: &[Tensor],
    h: f64,
    tol: f64,
    max_elems: usize,
) -> std::result::Result<(), String> {
    let (_, grads) = analytic(f, inputs);
    for (idx, (inp, g)) in inputs.iter().zip(&grads).enumerate() {
        let dt = inp.dtype();
        let base: Vec<f64> = inp
            .flatten_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1()
            .unwrap();
        let ga: Vec<f64> = g
            .flatten_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1()
            .unwrap();
        let step = base.len().div_ceil(max_elems).max(1);
        for e in (0..base.len()).step_by(step) {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[e] += delta;
                let mut ins = inputs.to_vec();
                ins[idx] = Tensor::from_vec(v, inp.shape(), &Device::Cpu)
                    .unwrap()
                    .to_dtype(dt)
                    .unwrap();
                project(&f(&ins).unwrap(), 7)
            };
            let num = (eval(h) - eval(-h)) / (2.0 * h);
            let err = (num - ga[e]).abs();
            if err > tol * (1.0 + num.abs().max(ga[e].abs())) {
                return Err(format!(
                    "input {idx} elem {e}: analytic {} vs numeric {num} (err {err:.3e})",
                    ga[e]
                ));
            }
        }
    }
    Ok(())
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let a: Vec<f64> = a
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    let b: Vec<f64> = b
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// Fused vs reference: same forward, same gradient for every input.
fn check_matches(fused: Op, reference: Op, inputs: &[Tensor], tol: f64) {
    let (fo, fg) = analytic(fused, inputs);
    let (ro, rg) = analytic(reference, inputs);
    assert_eq!(fo.dims(), ro.dims());
    let d = max_rel_diff(&fo, &ro);
    assert!(d < tol, "forward differs from reference: {d:.3e}");
    for (i, (a, b)) in fg.iter().zip(&rg).enumerate() {
        let d = max_rel_diff(a, b);
        assert!(
            d < tol,
            "gradient of input {i} differs from reference: {d:.3e}"
        );
    }
}

/// Full check of a fused op against its reference (both in f32) and of the reference
/// against finite differences in f64.
fn full_check(fused: Op, reference: Op, inputs: &[Tensor]) {
    check_matches(fused, reference, inputs, 2e-5);
    let in64: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F64).unwrap())
        .collect();
    check_fd(reference, &in64, 1e-6, 1e-6, 64).expect("reference vs finite differences");
    check_fd(fused, inputs, 1e-2, 2e-2, 48).expect("fused vs finite differences");
}

#[test]
fn rms_norm_gradients() {
    let x = rand_t(&[2, 3, 8], 1);
    let w = (rand_t(&[8], 2) + 1.0).unwrap();
    full_check(
        &|t| rms_norm(&t[0], &t[1], 1e-5),
        &|t| r::rms_norm(&t[0], &t[1], 1e-5),
        &[x, w],
    );
}

#[test]
fn rope_gradients_with_offset() {
    let tables = RopeTables::new(8, 32, 10_000.0);
    for (heads, offset) in [(2, 0), (3, 5)] {
        let x = rand_t(&[2, 4, heads * 8], 3 + offset as u64);
        let tb = tables.clone();
        let (cos, sin) = tables.narrow(offset, 4).unwrap();
        full_check(
            &move |t| rope(&t[0], &tb, heads, offset),
            &move |t| r::rope(&t[0], &cos, &sin, heads),
            &[x],
        );
    }
}

#[test]
fn causal_attention_gradients() {
    // (heads, kv_heads, t, s): MHA, GQA, and the KV-cache case with earlier positions (s > t).
    for (h, kvh, t, s) in [(2, 2, 5, 5), (4, 2, 5, 5), (4, 1, 3, 7), (2, 2, 1, 6)] {
        let dh = 4;
        let q = rand_t(&[2, t, h * dh], 10 + h as u64);
        let k = rand_t(&[2, s, kvh * dh], 20 + s as u64);
        let v = rand_t(&[2, s, kvh * dh], 30 + t as u64);
        full_check(
            &move |x| causal_attention(&x[0], &x[1], &x[2], h, kvh),
            &move |x| r::causal_attention(&x[0], &x[1], &x[2], h, kvh),
            &[q, k, v],
        );
    }
}

#[test]
fn causal_attention_matches_reference_across_tiles() {
    // t > the kernel's 64-row tile, so tile boundaries and the per-tile key range are exercised.
    let (h, kvh, dh, t, s) = (4, 2, 8, 70, 75);
    let q = rand_t(&[1, t, h * dh], 1);
    let k = rand_t(&[1, s, kvh * dh], 2);
    let v = rand_t(&[1, s, kvh * dh], 3);
    check_matches(
        &move |x| causal_attention(&x[0], &x[1], &x[2], h, kvh),
        &move |x| r::causal_attention(&x[0], &x[1], &x[2], h, kvh),
        &[q, k, v],
        2e-5,
    );
}

#[test]
fn segment_attention_gradients() {
    // Packed rows: documents of several lengths, a one-token document, one document filling
    // a row; MHA and GQA. Fused vs the explicit-mask reference vs finite differences.
    let docs: Vec<u32> = [[0u32, 0, 0, 1, 1, 2, 3], [5, 5, 5, 5, 5, 5, 5]].concat();
    let segs = Segments::from_doc_ids(&docs, 2, 7).unwrap();
    for (h, kvh) in [(2, 2), (4, 2)] {
        let dh = 4;
        let q = rand_t(&[2, 7, h * dh], 40 + h as u64);
        let k = rand_t(&[2, 7, kvh * dh], 41);
        let v = rand_t(&[2, 7, kvh * dh], 42);
        let (sg, d) = (segs.clone(), docs.clone());
        full_check(
            &move |x| segment_attention(&x[0], &x[1], &x[2], h, kvh, Some(&sg)),
            &move |x| r::segment_attention(&x[0], &x[1], &x[2], h, kvh, Some(&d)),
            &[q, k, v],
        );
    }
}

#[test]
fn segment_attention_matches_reference_across_tiles() {
    // Documents longer than the 64-row tile and boundaries inside a tile.
    let lens = [70usize, 3, 1, 80, 10];
    let docs: Vec<u32> = lens
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| std::iter::repeat_n(i as u32, n))
        .collect();
    let t = docs.len();
    let segs = Segments::from_doc_ids(&docs, 1, t).unwrap();
    let (h, kvh, dh) = (4, 2, 8);
    let q = rand_t(&[1, t, h * dh], 43);
    let k = rand_t(&[1, t, kvh * dh], 44);
    let v = rand_t(&[1, t, kvh * dh], 45);
    check_matches(
        &move |x| segment_attention(&x[0], &x[1], &x[2], h, kvh, Some(&segs)),
        &move |x| r::segment_attention(&x[0], &x[1], &x[2], h, kvh, Some(&docs)),
        &[q, k, v],
        2e-5,
    );
}

#[test]
fn rope_segments_gradients() {
    let tables = RopeTables::new(8, 32, 10_000.0);
    let segs = Segments::from_doc_ids(&[0, 0, 1, 1, 1, 4, 4, 4, 4, 4], 2, 5).unwrap();
    let (cos, sin) = tables.gather(&segs).unwrap();
    let x = rand_t(&[2, 5, 16], 46);
    full_check(
        &move |t| rope_segments(&t[0], &tables, 2, &segs),
        &move |t| r::rope(&t[0], &cos, &sin, 2),
        &[x],
    );
}

#[test]
fn attention_reads_strided_cache_views() {
    // k/v as narrow()ed views of a larger buffer, the way the KV cache hands them over.
    let (h, dh, t) = (2, 4, 3);
    let q = rand_t(&[2, t, h * dh], 4);
    let kbuf = rand_t(&[2, 9, h * dh], 5);
    let vbuf = rand_t(&[2, 9, h * dh], 6);
    let (k, v) = (kbuf.narrow(1, 0, 6).unwrap(), vbuf.narrow(1, 0, 6).unwrap());
    assert!(!k.is_contiguous());
    let a = causal_attention(&q, &k, &v, h, h).unwrap();
    let b =
        r::causal_attention(&q, &k.contiguous().unwrap(), &v.contiguous().unwrap(), h, h).unwrap();
    assert!(max_rel_diff(&a, &b) < 2e-5);
}

#[test]
fn swiglu_gradients() {
    let g = (rand_t(&[3, 10], 7) * 3.0).unwrap();
    let u = rand_t(&[3, 10], 8);
    full_check(
        &|t| swiglu(&t[0], &t[1]),
        &|t| r::swiglu(&t[0], &t[1]),
        &[g, u],
    );
}

#[test]
fn swiglu_mlp_gradients() {
    let x = rand_t(&[2, 3, 6], 20);
    let wg = rand_t(&[10, 6], 21);
    let wu = rand_t(&[10, 6], 22);
    full_check(
        &|t| swiglu_mlp(&t[0], &t[1], &t[2]),
        &|t| r::swiglu(&r::linear(&t[0], &t[1])?, &r::linear(&t[0], &t[2])?),
        &[x, wg, wu],
    );
}

#[test]
fn softmax_reference_gradients() {
    let x = rand_t(&[3, 7], 9).to_dtype(DType::F64).unwrap();
    check_fd(&|t| r::softmax_last(&t[0]), &[x], 1e-6, 1e-6, 64).unwrap();
}

#[test]
fn linear_gradients() {
    let x = rand_t(&[2, 3, 6], 11);
    let w = rand_t(&[5, 6], 12);
    full_check(
        &|t| linear(&t[0], &t[1]),
        &|t| r::linear(&t[0], &t[1]),
        &[x.clone(), w.clone()],
    );
    let res = rand_t(&[2, 3, 5], 13);
    full_check(
        &|t| linear_residual(&t[0], &t[1], &t[2]),
        &|t| &t[0] + r::linear(&t[1], &t[2]).unwrap(),
        &[res, x, w],
    );
}

#[test]
fn embedding_gradients() {
    // index_select is candle's own op; repeated ids must accumulate.
    let ids = Tensor::new(&[3u32, 1, 3, 0, 4], &Device::Cpu).unwrap();
    let emb = rand_t(&[6, 4], 14).to_dtype(DType::F64).unwrap();
    check_fd(&move |t| t[0].index_select(&ids, 0), &[emb], 1e-6, 1e-6, 64).unwrap();
}

#[test]
fn cross_entropy_gradients_with_mask() {
    let targets = Tensor::new(&[3u32, 0, 10, 4, 4, 7], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[1f32, 0., 1., 1., 0., 1.], &Device::Cpu).unwrap();
    let logits = (rand_t(&[6, 11], 15) * 4.0).unwrap();
    for m in [None, Some(mask)] {
        let (t1, t2, m1, m2) = (targets.clone(), targets.clone(), m.clone(), m.clone());
        full_check(
            &move |x| cross_entropy(&x[0], &t1, m1.as_ref()),
            &move |x| r::cross_entropy(&x[0], &t2, m2.as_ref()),
            std::slice::from_ref(&logits),
        );
    }
}

#[test]
fn linear_cross_entropy_gradients() {
    let targets = Tensor::new(&[3u32, 0, 10, 4, 4], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[1f32, 1., 0., 1., 1.], &Device::Cpu).unwrap();
    let h = rand_t(&[5, 6], 16);
    let w = (rand_t(&[11, 6], 17) * 2.0).unwrap();
    let (t1, t2, m1, m2) = (targets.clone(), targets, mask.clone(), mask);
    full_check(
        &move |x| linear_cross_entropy(&x[0], &x[1], &t1, Some(&m1)),
        &move |x| r::cross_entropy(&r::linear(&x[0], &x[1])?, &t2, Some(&m2)),
        &[h, w],
    );
}

#[test]
fn cross_entropy_rejects_out_of_range_targets() {
    let logits = rand_t(&[2, 5], 18);
    let targets = Tensor::new(&[1u32, 5], &Device::Cpu).unwrap();
    let err = cross_entropy(&logits, &targets, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside the vocabulary"), "{err}");
}

#[test]
fn token_logprobs_gradients_across_chunks() {
    use super::token_logprobs::{reference_token_logprobs, token_logprobs_chunked};
    let targets = Tensor::new(&[3u32, 0, 10, 4, 4, 7, 1], &Device::Cpu).unwrap();
    let h = rand_t(&[7, 6], 23);
    let w = (rand_t(&[11, 6], 24) * 2.0).unwrap();
    // Chunks of 3 rows (7 = 3 + 3 + 1) and one chunk for all rows.
    for chunk in [3, 64] {
        let (t1, t2) = (targets.clone(), targets.clone());
        full_check(
            &move |x| token_logprobs_chunked(&x[0], &x[1], &t1, chunk),
            &move |x| reference_token_logprobs(&r::linear(&x[0], &x[1])?, &t2),
            &[h.clone(), w.clone()],
        );
    }
    // Matches minus the per-row cross-entropy of the same logits.
    let lp = token_logprobs(&h, &w, &targets).unwrap();
    let logits = r::linear(&h, &w).unwrap();
    for i in 0..7 {
        let row = logits.narrow(0, i, 1).unwrap();
        let ti = targets.narrow(0, i, 1).unwrap();
        let ce = cross_entropy(&row, &ti, None)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let got = lp.get(i).unwrap().to_scalar::<f32>().unwrap();
        assert!((got + ce).abs() < 1e-5, "row {i}: {got} vs -{ce}");
    }
    let bad = Tensor::new(&[11u32, 0, 0, 0, 0, 0, 0], &Device::Cpu).unwrap();
    let err = token_logprobs(&h, &w, &bad).unwrap_err().to_string();
    assert!(err.contains("outside the vocabulary"), "{err}");
}

/// `x²` with a backward that is 5% too large.
struct WrongSquare;
impl CustomOp1 for WrongSquare {
    fn name(&self) -> &'static str {
        "wrong-square"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = super::kernel::slice(s, l, "wrong-square")?;
        Ok((
            CpuStorage::F32(x.iter().map(|v| v * v).collect()),
            l.shape().clone(),
        ))
    }
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some((arg * grad)?.affine(2.1, 0.0)?))
    }
}

#[test]
fn a_wrong_gradient_is_caught() {
    let x = rand_t(&[4, 4], 19);
    let err = check_fd(
        &|t| t[0].apply_op1(WrongSquare),
        std::slice::from_ref(&x),
        1e-2,
        2e-2,
        16,
    );
    assert!(err.is_err(), "checker accepted a gradient that is 5% off");
    // And the same checker accepts the right one.
    check_fd(&|t| t[0].sqr(), &[x], 1e-2, 2e-2, 16).unwrap();
}
