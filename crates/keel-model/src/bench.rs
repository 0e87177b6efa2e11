//! Training and generation benchmarks on the configs of `../shared/bench/torch_reference.py`,
//! mirrored exactly so `keel bench` and the PyTorch script give an apples-to-apples ratio:
//! untied embeddings, MHA, ffn = ceil(8d/3 / 64)·64, AdamW(lr 1e-3, betas 0.9/0.95, eps 1e-8,
//! weight decay 0.1 on every parameter), gradient clipping to global norm 1.0; a step is
//! forward + loss + backward + clip + optimiser step + reading the loss; random batches of
//! `seq + 1` tokens; a few warm-up steps, then the median step time.

use crate::config::{ffn_size, LlamaConfig};
use crate::llama::Llama;
use crate::ops::kernel::slice;
use candle_core::{bail, CpuStorage, DType, Device, InplaceOp2, Layout, Result, Tensor, Var};
use keel_core::rng::rng_for;
use rand::Rng;
use rayon::prelude::*;
use std::time::Instant;

/// One benchmark configuration (the reference script's `CONFIGS`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchSpec {
    pub name: &'static str,
    pub vocab: usize,
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    pub seq: usize,
    pub batch: usize,
}

pub const CONFIG_A: BenchSpec = BenchSpec {
    name: "a",
    vocab: 4096,
    d_model: 256,
    layers: 4,
    heads: 4,
    seq: 128,
    batch: 16,
};
pub const CONFIG_B: BenchSpec = BenchSpec {
    name: "b",
    vocab: 8192,
    d_model: 512,
    layers: 8,
    heads: 8,
    seq: 256,
    batch: 8,
};

impl BenchSpec {
    pub fn by_name(name: &str) -> Option<BenchSpec> {
        match name.to_ascii_lowercase().as_str() {
            "a" => Some(CONFIG_A),
            "b" => Some(CONFIG_B),
            _ => None,
        }
    }

    pub fn llama_config(&self) -> LlamaConfig {
        let mut c = LlamaConfig::tiny(self.vocab, self.d_model, self.layers, self.heads);
        c.intermediate_size = ffn_size(self.d_model);
        c.tie_word_embeddings = false;
        c.max_position_embeddings = self.seq;
        c
    }

    /// Training FLOPs per token: `6·N` for the matmul parameters (everything but the input
    /// embedding, which is a lookup) plus attention's `12·L·d·seq` (QKᵀ and PV, forward and
    /// backward, counted unmasked as PaLM's appendix does).
    pub fn train_flops_per_token(&self) -> f64 {
        let c = self.llama_config();
        let n = (c.num_params() - self.vocab * self.d_model) as f64;
        6.0 * n + 12.0 * (self.layers * self.d_model * self.seq) as f64
    }
}

/// Threads the fused kernels (rayon's global pool) use: `RAYON_NUM_THREADS` or the cores.
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Peak resident set size of this process in bytes (`VmHWM`), if the OS reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// AdamW with decoupled weight decay, updating parameters and moments in place (one pass
/// per tensor, no temporaries) — `torch.optim.AdamW` semantics.
pub struct FusedAdamW {
    vars: Vec<Var>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    step: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

struct AdamStep<'a> {
    m: std::sync::Mutex<&'a mut [f32]>,
    v: std::sync::Mutex<&'a mut [f32]>,
    lr: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    decay: f32,
    bc1: f32,
    bc2: f32,
    grad_scale: f32,
}

impl InplaceOp2 for AdamStep<'_> {
    fn name(&self) -> &'static str {
        "keel-adamw"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let g = slice(s2, l2, self.name())?;
        let (a, b) = l1
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("adamw: strided parameter".into()))?;
        let p = match s1 {
            CpuStorage::F32(p) => &mut p[a..b],
            _ => bail!("adamw: parameters must be f32"),
        };
        let mut m = self.m.lock().expect("m lock");
        let mut v = self.v.lock().expect("v lock");
        if p.len() != g.len() || m.len() != p.len() {
            bail!("adamw: parameter, gradient and state sizes differ");
        }
        let chunk = crate::ops::kernel::row_chunk(p.len(), 16);
        p.par_chunks_mut(chunk)
            .zip(m.par_chunks_mut(chunk).zip(v.par_chunks_mut(chunk)))
            .zip(g.par_chunks(chunk))
            .for_each(|((p, (m, v)), g)| {
                for i in 0..p.len() {
                    let gi = g[i] * self.grad_scale;
                    m[i] = self.b1 * m[i] + (1.0 - self.b1) * gi;
                    v[i] = self.b2 * v[i] + (1.0 - self.b2) * gi * gi;
                    let upd = (m[i] / self.bc1) / ((v[i] / self.bc2).sqrt() + self.eps);
                    p[i] = p[i] * self.decay - self.lr * upd;
                }
            });
        Ok(())
    }
}

fn sum_squares(t: &Tensor) -> Result<f64> {
    crate::ops::kernel::with_f32(t, "grad-norm", |g| {
        g.par_chunks(1 << 14)
            .map(|c| c.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())
            .sum()
    })
}

impl FusedAdamW {
    pub fn new(vars: Vec<Var>, lr: f32, betas: (f32, f32), eps: f32, weight_decay: f32) -> Self {
        let m = vars.iter().map(|v| vec![0f32; v.elem_count()]).collect();
        let vv = vars.iter().map(|v| vec![0f32; v.elem_count()]).collect();
        FusedAdamW {
            vars,
            m,
            v: vv,
            step: 0,
            lr,
            beta1: betas.0,
            beta2: betas.1,
            eps,
            weight_decay,
        }
    }

    /// Clips the gradients to global L2 norm `max_norm` (as `clip_grad_norm_`: scale by
    /// `max_norm / (norm + 1e-6)` when above), then steps. Returns the pre-clip norm.
    pub fn clip_and_step(
        &mut self,
        grads: &candle_core::backprop::GradStore,
        max_norm: f32,
    ) -> Result<f32> {
        let mut total = 0f64;
        for var in &self.vars {
            if let Some(g) = grads.get(var) {
                total += sum_squares(g)?;
            }
        }
        let norm = total.sqrt() as f32;
        let scale = if norm > max_norm {
            max_norm / (norm + 1e-6)
        } else {
            1.0
        };
        self.step += 1;
        let t = self.step as i32;
        for ((var, m), v) in self
            .vars
            .iter()
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            let Some(g) = grads.get(var) else { continue };
            let g = g.contiguous()?;
            let op = AdamStep {
                m: std::sync::Mutex::new(m.as_mut_slice()),
                v: std::sync::Mutex::new(v.as_mut_slice()),
                lr: self.lr,
                b1: self.beta1,
                b2: self.beta2,
                eps: self.eps,
                decay: 1.0 - self.lr * self.weight_decay,
                bc1: 1.0 - self.beta1.powi(t),
                bc2: 1.0 - self.beta2.powi(t),
                grad_scale: scale,
            };
            var.as_tensor().inplace_op2(&g, &op)?;
        }
        Ok(norm)
    }
}

/// What one training benchmark measured.
#[derive(Debug, Clone)]
pub struct TrainReport {
    pub spec: BenchSpec,
    pub params: usize,
    pub steps: usize,
    pub tokens_per_step: usize,
    pub median_step_s: f64,
    pub tokens_per_s: f64,
    pub gflops: f64,
    pub peak_rss_bytes: Option<u64>,
    pub first_loss: f32,
    pub last_loss: f32,
}

fn random_batch(spec: &BenchSpec, rng: &mut impl Rng, vocab: usize) -> Result<(Tensor, Tensor)> {
    let (b, t) = (spec.batch, spec.seq);
    let ids: Vec<u32> = (0..b * (t + 1))
        .map(|_| rng.random_range(0..vocab as u32))
        .collect();
    let all = Tensor::from_vec(ids, (b, t + 1), &Device::Cpu)?;
    Ok((
        all.narrow(1, 0, t)?.contiguous()?,
        all.narrow(1, 1, t)?.contiguous()?,
    ))
}

/// Times `warmup + steps` full training steps on random batches; `on_step(i, loss, secs)`
/// is called after each.
pub fn bench_train(
    spec: BenchSpec,
    steps: usize,
    warmup: usize,
    seed: u64,
    mut on_step: impl FnMut(usize, f32, f64),
) -> crate::Result<TrainReport> {
    let cfg = spec.llama_config();
    let (varmap, model) = Llama::init(&cfg, seed)?;
    let vars = varmap.all_vars();
    let mut opt = FusedAdamW::new(vars, 1e-3, (0.9, 0.95), 1e-8, 0.1);
    let mut rng = rng_for(seed, "bench-batches");
    let mut times = Vec::new();
    let (mut first, mut last) = (f32::NAN, f32::NAN);
    for s in 0..warmup + steps {
        let (inp, tgt) = random_batch(&spec, &mut rng, cfg.vocab_size)?;
        let t0 = Instant::now();
        let loss = model.loss(&inp, &tgt, None)?;
        let grads = loss.backward()?;
        opt.clip_and_step(&grads, 1.0)?;
        let l = loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        drop(grads);
        let dt = t0.elapsed().as_secs_f64();
        if s == 0 {
            first = l;
        }
        last = l;
        on_step(s, l, dt);
        if s >= warmup {
            times.push(dt);
        }
    }
    if times.is_empty() {
        return Err(crate::ModelError::Config(
            "bench: need at least one timed step".into(),
        ));
    }
    let med = median(&mut times);
    let tok = spec.batch * spec.seq;
    Ok(TrainReport {
        spec,
        params: cfg.num_params(),
        steps,
        tokens_per_step: tok,
        median_step_s: med,
        tokens_per_s: tok as f64 / med,
        gflops: spec.train_flops_per_token() * tok as f64 / med / 1e9,
        peak_rss_bytes: peak_rss_bytes(),
        first_loss: first,
        last_loss: last,
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// What one generation benchmark measured.
#[derive(Debug, Clone)]
pub struct GenReport {
    pub prompt: usize,
    pub new_tokens: usize,
    pub median_s: f64,
    pub tokens_per_s: f64,
    pub peak_rss_bytes: Option<u64>,
    pub tail: Vec<u32>,
}

fn argmax(v: &[f32]) -> u32 {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0 as u32
}

/// Greedy KV-cache generation from a 16-token random prompt, batch 1, as the reference's
/// `gen`: four runs, the median of the last three.
pub fn bench_generate(spec: BenchSpec, new_tokens: usize, seed: u64) -> crate::Result<GenReport> {
    let cfg = spec.llama_config();
    let (_varmap, model) = Llama::init(&cfg, seed)?;
    let mut rng = rng_for(seed, "bench-prompt");
    let prompt: Vec<u32> = (0..16)
        .map(|_| rng.random_range(0..cfg.vocab_size as u32))
        .collect();
    let new = new_tokens.min(spec.seq - prompt.len());
    let mut times = Vec::new();
    let mut toks = Vec::new();
    for _ in 0..4 {
        let t0 = Instant::now();
        toks = prompt.clone();
        let mut cache = crate::llama::KvCache::new(cfg.num_hidden_layers);
        let mut pos = 0;
        for _ in 0..new {
            let ids = Tensor::new(&toks[pos..], &Device::Cpu)?.unsqueeze(0)?;
            let logits = model.forward_last(&ids, Some(&mut cache))?;
            pos = toks.len();
            toks.push(argmax(&logits.squeeze(0)?.to_vec1::<f32>()?));
        }
        times.push(t0.elapsed().as_secs_f64());
    }
    let med = median(&mut times[1..]);
    Ok(GenReport {
        prompt: prompt.len(),
        new_tokens: new,
        median_s: med,
        tokens_per_s: new as f64 / med,
        peak_rss_bytes: peak_rss_bytes(),
        tail: toks[toks.len().saturating_sub(4)..].to_vec(),
    })
}

/// One GEMM shape `keel bench gemm` times: `[m, k] · [k, n]`, each operand row-major or
/// transposed as the model's kernels pass it.
#[derive(Debug, Clone, Copy)]
pub struct GemmShape {
    pub what: &'static str,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a_t: bool,
    pub b_t: bool,
}

/// Config A's (and the reference comparison's) GEMMs: 2048 = batch 16 × seq 128 rows.
pub const GEMM_SHAPES: [GemmShape; 7] = [
    GemmShape {
        what: "lm head  x·wᵀ",
        m: 2048,
        n: 4096,
        k: 256,
        a_t: false,
        b_t: true,
    },
    GemmShape {
        what: "proj     x·wᵀ",
        m: 2048,
        n: 256,
        k: 256,
        a_t: false,
        b_t: true,
    },
    GemmShape {
        what: "ffn up   x·w",
        m: 2048,
        n: 768,
        k: 256,
        a_t: false,
        b_t: false,
    },
    GemmShape {
        what: "ffn dn   dy·w",
        m: 2048,
        n: 256,
        k: 704,
        a_t: false,
        b_t: false,
    },
    GemmShape {
        what: "grad w   dyᵀ·x",
        m: 256,
        n: 704,
        k: 2048,
        a_t: true,
        b_t: false,
    },
    GemmShape {
        what: "attn     q·kᵀ",
        m: 64,
        n: 128,
        k: 64,
        a_t: false,
        b_t: true,
    },
    GemmShape {
        what: "decode   x·wᵀ",
        m: 1,
        n: 4096,
        k: 256,
        a_t: false,
        b_t: true,
    },
];

/// GFLOP/s of Keel's kernel and of the `gemm` crate on one shape, serial and on all threads.
#[derive(Debug, Clone, Copy)]
pub struct GemmReport {
    pub shape: GemmShape,
    pub keel_1t: f64,
    pub crate_1t: f64,
    pub keel_nt: f64,
    pub crate_nt: f64,
}

/// Whether `keel bench gemm`'s "keel" column is Keel's AVX2+FMA kernel (else both columns
/// are the `gemm` crate, the fallback).
pub fn gemm_kernel_native() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::ops::sgemm::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Seconds the calling thread has run on a CPU (Linux `schedstat`), if the OS says.
fn thread_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 * 1e-9)
}

/// Times each shape with both kernels, serial and parallel: per configuration the best of
/// five trials, each repeating the product for at least `trial_s` seconds (serial trials in
/// this thread's CPU time where Linux reports it, parallel ones in wall time). The kernels
/// alternate trial by trial, so load from other processes hits both alike.
pub fn bench_gemm(shapes: &[GemmShape], trial_s: f64) -> Vec<GemmReport> {
    use crate::ops::kernel::{sgemm, sgemm_gemm_crate, Mat};
    type Gemm = unsafe fn(usize, usize, usize, *mut f32, usize, bool, Mat, Mat, f32, bool);
    let mut rng = rng_for(0, "bench-gemm");
    shapes
        .iter()
        .map(|&s| {
            let mut fill = |len: usize| -> Vec<f32> {
                (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
            };
            let (a, b) = (fill(s.m * s.k), fill(s.k * s.n));
            let mut c = vec![0f32; s.m * s.n];
            let am = if s.a_t {
                Mat::t(a.as_ptr(), s.m)
            } else {
                Mat::rows(a.as_ptr(), s.k)
            };
            let bm = if s.b_t {
                Mat::t(b.as_ptr(), s.k)
            } else {
                Mat::rows(b.as_ptr(), s.n)
            };
            let flops = 2.0 * (s.m * s.n * s.k) as f64;
            let mut time = |f: Gemm, par: bool| {
                let (t0, cpu0) = (Instant::now(), thread_cpu_s());
                let mut reps = 0usize;
                while reps < 3 || t0.elapsed().as_secs_f64() < trial_s {
                    // SAFETY: a is m×k, b k×n, c m×n, laid out as the views say.
                    unsafe { f(s.m, s.n, s.k, c.as_mut_ptr(), s.n, false, am, bm, 1.0, par) };
                    reps += 1;
                }
                // Serial runs count this thread's time on a CPU, not the wall clock: on a
                // shared machine other processes' time slices then do not count against it.
                let secs = match (par, cpu0, thread_cpu_s()) {
                    (false, Some(a), Some(b)) if b > a => b - a,
                    _ => t0.elapsed().as_secs_f64(),
                };
                flops * reps as f64 / secs / 1e9
            };
            let mut best = [0f64; 4];
            for _ in 0..5 {
                for (i, (f, par)) in [
                    (sgemm as Gemm, false),
                    (sgemm_gemm_crate as Gemm, false),
                    (sgemm as Gemm, true),
                    (sgemm_gemm_crate as Gemm, true),
                ]
                .into_iter()
                .enumerate()
                {
                    best[i] = best[i].max(time(f, par));
                }
            }
            GemmReport {
                shape: s,
                keel_1t: best[0],
                crate_1t: best[1],
                keel_nt: best[2],
                crate_nt: best[3],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_and_configs_match_the_reference() {
        let a = CONFIG_A.llama_config();
        assert_eq!(a.intermediate_size, 704);
        assert_eq!(CONFIG_B.llama_config().intermediate_size, 1408);
        assert!(!a.tie_word_embeddings);
        // torch: sum(p.numel()) for config A.
        let per_layer = 4 * 256 * 256 + 3 * 256 * 704 + 2 * 256;
        assert_eq!(a.num_params(), 2 * 4096 * 256 + 4 * per_layer + 256);
    }

    #[test]
    fn fused_adamw_matches_the_formula() {
        let p = Var::from_tensor(&Tensor::new(&[1.0f32, -2.0], &Device::Cpu).unwrap()).unwrap();
        let loss = (p.as_tensor() * 3.0).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let mut opt = FusedAdamW::new(vec![p.clone()], 0.1, (0.9, 0.95), 1e-8, 0.1);
        let norm = opt.clip_and_step(&grads, 1.0).unwrap();
        assert!((norm - (18f32).sqrt()).abs() < 1e-5);
        // First step: m̂ = g', v̂ = g'², update = sign(g) (eps aside); decay first.
        let got = p.as_tensor().to_vec1::<f32>().unwrap();
        let want = [1.0 * (1.0 - 0.01) - 0.1, -2.0 * (1.0 - 0.01) - 0.1];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }
}
