//! Profiling aid for the rules path: scans the bench's ~1k-character prompts in a loop so
//! `perf record` has something steady to sample.
//! `cargo run -p keel-guard --example guard_speed -- ../shared/data 20000`

use keel_guard::bench::{data, speed};
use keel_guard::policy::builtin::load_stack;
use keel_guard::{Guard, Moderator, Scope};
use std::time::Instant;

/// This thread's CPU time in ns (Linux), so a busy shared machine does not inflate figures.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split(' ').next()?.parse().ok())
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (harmful, benign) = match args.get(1) {
        Some(root) => data::shared(std::path::Path::new(root))?,
        None => data::builtin()
            .into_iter()
            .partition(|e| !e.categories.is_empty()),
    };
    let iters: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let mut policy = load_stack(&["default"])?;
    for c in &mut policy.categories {
        c.detectors
            .retain(|d| d == "rules" || d.starts_with("pii."));
    }
    let guard = Guard::new(policy)?;
    let prompts = speed::prompts_1k(&harmful, &benign, 2000, 7);
    let c0 = cpu_ns();
    let t0 = Instant::now();
    let mut flagged = 0usize;
    for i in 0..iters {
        let v = guard.scan_text(&prompts[i % prompts.len()], Scope::Input);
        flagged += v.flagged as usize;
    }
    let dt = t0.elapsed().as_secs_f64();
    let cpu = (cpu_ns() - c0) as f64 / 1e9;
    println!(
        "{iters} checks in {dt:.3}s wall, {cpu:.3}s cpu: {:.0} checks/s wall, {:.0} per cpu-second, {flagged} flagged",
        iters as f64 / dt,
        iters as f64 / cpu
    );
    Ok(())
}
