//! Runs the benchmarks without the CLI: `cargo run -p keel-model --example bench -- train a 8`
//! or `-- gen a 112`. `keel bench` is the user-facing entry point; this exists so the kernels
//! can be measured while only this crate is built.

use keel_model::bench::{bench_generate, bench_train, BenchSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("train");
    let spec = BenchSpec::by_name(args.get(1).map(String::as_str).unwrap_or("a"))
        .ok_or("config must be a or b")?;
    let n: Option<usize> = args.get(2).and_then(|s| s.parse().ok());
    match mode {
        "train" => {
            let r = bench_train(spec, n.unwrap_or(8), 2, 0, |s, l, dt| {
                println!("step {s} loss {l:.4} {dt:.3}s")
            })?;
            println!(
                "RESULT keel train config {} tokens_per_s {:.1} median_step_s {:.4} GFLOP/s {:.1} peak_rss_MiB {:.0}",
                spec.name,
                r.tokens_per_s,
                r.median_step_s,
                r.gflops,
                r.peak_rss_bytes.unwrap_or(0) as f64 / 1048576.0
            );
        }
        "gen" => {
            let r = bench_generate(spec, n.unwrap_or(112), 0)?;
            println!(
                "RESULT keel gen config {} new {} median_s {:.4} tokens_per_s {:.1} peak_rss_MiB {:.0} tail {:?}",
                spec.name,
                r.new_tokens,
                r.median_s,
                r.tokens_per_s,
                r.peak_rss_bytes.unwrap_or(0) as f64 / 1048576.0,
                r.tail
            );
        }
        other => return Err(format!("unknown mode {other}: train or gen").into()),
    }
    Ok(())
}
