//! `keel bench`: training, generation and GEMM throughput on the reference configs, printed in the
//! same terms as `../shared/bench/torch_reference.py` so the two can be compared directly.

use anyhow::{anyhow, Context};
use keel_model::bench::{
    bench_gemm, bench_generate, bench_train, gemm_kernel_native, BenchSpec, GemmShape, GEMM_SHAPES,
};

#[derive(clap::Subcommand, Debug)]
pub enum BenchCmd {
    /// Training steps/s on random batches (forward, loss, backward, clip, AdamW).
    Train {
        /// Model/batch config: a (vocab 4096, d 256, 4 layers, seq 128, batch 16) or
        /// b (vocab 8192, d 512, 8 layers, seq 256, batch 8).
        #[arg(long, default_value = "a")]
        config: String,
        /// Timed steps (after two warm-up steps); the median is reported.
        #[arg(long, default_value_t = 8)]
        steps: usize,
        /// Warm-up steps, not timed.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Greedy KV-cache generation tokens/s (batch 1, 16-token prompt).
    Generate {
        #[arg(long, default_value = "a")]
        config: String,
        /// New tokens per run (capped at seq − 16).
        #[arg(long, default_value_t = 112)]
        tokens: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Matrix-multiply GFLOP/s on the model's GEMM shapes: Keel's AVX2+FMA kernel against
    /// the `gemm` crate (candle's), serial and on all threads.
    Gemm {
        /// Seconds per timing trial (five trials per kernel and shape; the best is shown).
        #[arg(long, default_value_t = 0.2)]
        trial_s: f64,
        /// Time this one shape, `MxNxK` (`[m, k] · [k, n]`), instead of the model's.
        #[arg(long)]
        shape: Option<String>,
        /// With --shape: `a` is passed transposed (as a weight gradient's `dyᵀ`).
        #[arg(long)]
        a_t: bool,
        /// With --shape: `b` is passed transposed (as a weight `wᵀ`).
        #[arg(long)]
        b_t: bool,
    },
}

fn spec(name: &str) -> anyhow::Result<BenchSpec> {
    BenchSpec::by_name(name).ok_or_else(|| anyhow!("--config {name:?}: expected a or b"))
}

fn mib(b: Option<u64>) -> String {
    b.map(|b| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "n/a".into())
}

pub fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    // candle's elementwise thread pool spins 25,000 rounds before parking; on a 2-core
    // machine shared with rayon's GEMM workers that spinning steals the cores doing the work
    // (measured ~20% faster training with 0 on a loaded 2-core box). Must be set before
    // candle's first parallel elementwise op builds the pool; an explicit setting wins.
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
    }
    let threads = keel_model::bench::threads();
    match cmd {
        BenchCmd::Train {
            config,
            steps,
            warmup,
            seed,
        } => {
            let spec = spec(&config)?;
            println!("config {spec:?} threads {threads}");
            let r = bench_train(spec, steps, warmup, seed, |s, loss, dt| {
                println!("step {s} loss {loss:.4} {dt:.3}s");
            })
            .context("training benchmark")?;
            println!(
                "RESULT keel train config {} params {} tokens/step {} median_step_s {:.4} tokens_per_s {:.1} GFLOP/s {:.1} peak_rss {}",
                spec.name, r.params, r.tokens_per_step, r.median_step_s, r.tokens_per_s, r.gflops, mib(r.peak_rss_bytes)
            );
        }
        BenchCmd::Generate {
            config,
            tokens,
            seed,
        } => {
            let spec = spec(&config)?;
            let r = bench_generate(spec, tokens, seed).context("generation benchmark")?;
            println!(
                "RESULT keel gen kv_cache=true config {} prompt {} new {} median_s {:.4} tokens_per_s {:.1} peak_rss {} tail {:?}",
                spec.name, r.prompt, r.new_tokens, r.median_s, r.tokens_per_s, mib(r.peak_rss_bytes), r.tail
            );
        }
        BenchCmd::Gemm {
            trial_s,
            shape,
            a_t,
            b_t,
        } => {
            let shapes = match shape {
                None => GEMM_SHAPES.to_vec(),
                Some(s) => {
                    let d: Vec<usize> = s
                        .split('x')
                        .map(|v| v.trim().parse())
                        .collect::<Result<_, _>>()
                        .ok()
                        .filter(|d: &Vec<usize>| d.len() == 3)
                        .ok_or_else(|| anyhow!("--shape {s:?}: expected MxNxK"))?;
                    vec![GemmShape {
                        what: "custom",
                        m: d[0],
                        n: d[1],
                        k: d[2],
                        a_t,
                        b_t,
                    }]
                }
            };
            if !gemm_kernel_native() {
                println!("note: no AVX2+FMA on this CPU: the keel column is the gemm crate too");
            }
            println!(
                "{:<16} {:>16} {:>5} {:>5} | {:>8} {:>8} {:>6} | {:>8} {:>8} {:>6}",
                "GFLOP/s",
                "m x n x k",
                "a",
                "b",
                "keel 1t",
                "gemm 1t",
                "ratio",
                format!("keel {threads}t"),
                format!("gemm {threads}t"),
                "ratio"
            );
            println!(
                "(1t: per second of this thread's CPU time; {threads}t: per wall-clock second)"
            );
            for r in bench_gemm(&shapes, trial_s) {
                let s = r.shape;
                let lay = |t: bool| if t { "T" } else { "rows" };
                println!(
                    "{:<16} {:>16} {:>5} {:>5} | {:>8.1} {:>8.1} {:>5.2}x | {:>8.1} {:>8.1} {:>5.2}x",
                    s.what,
                    format!("{}x{}x{}", s.m, s.n, s.k),
                    lay(s.a_t),
                    lay(s.b_t),
                    r.keel_1t,
                    r.crate_1t,
                    r.keel_1t / r.crate_1t,
                    r.keel_nt,
                    r.crate_nt,
                    r.keel_nt / r.crate_nt
                );
            }
        }
    }
    Ok(())
}
