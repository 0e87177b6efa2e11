//! Latency and throughput on ~1000-character prompts, one thread (= per core). Throughput is
//! given by the wall clock and, where the kernel reports it, by this thread's CPU time: on a
//! busy machine the thread waits for a core, and only the CPU figure stays per core.

use crate::classify::Example;
use crate::engine::{Guard, Moderator};
use crate::policy::Scope;
use rand::seq::SliceRandom;
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct Speed {
    pub n: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub checks_per_s: f64,
    /// Checks per second of this thread's CPU time (Linux; `None` elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_checks_per_s: Option<f64>,
}

/// This thread's CPU time in ns, from `/proc/thread-self/schedstat` (Linux). It advances at
/// scheduler ticks, so it is read around a whole run of checks, not one.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split(' ').next()?.parse().ok()
}

/// `n` prompts of about 1000 characters, each stitched from shuffled examples.
pub fn prompts_1k(harmful: &[Example], benign: &[Example], n: usize, seed: u64) -> Vec<String> {
    let mut pool: Vec<&str> = harmful
        .iter()
        .chain(benign)
        .map(|e| e.text.as_str())
        .collect();
    let mut rng = keel_core::rng::rng_for(seed, "guard-bench-speed");
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        pool.shuffle(&mut rng);
        let mut s = String::new();
        for t in &pool {
            if s.chars().count() >= 1000 {
                break;
            }
            s.push_str(t);
            s.push(' ');
        }
        let cut = s
            .char_indices()
            .nth(1000)
            .map(|(i, _)| i)
            .unwrap_or(s.len());
        s.truncate(cut);
        out.push(s);
    }
    out
}

pub fn measure(g: &Guard, prompts: &[String]) -> Speed {
    for p in prompts.iter().take(20) {
        std::hint::black_box(g.scan_text(p, Scope::Input));
    }
    let mut lat = Vec::with_capacity(prompts.len());
    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    for p in prompts {
        let t = Instant::now();
        std::hint::black_box(g.scan_text(p, Scope::Input));
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let total = t0.elapsed().as_secs_f64();
    let cpu = cpu0
        .zip(thread_cpu_ns())
        .map(|(a, b)| b.saturating_sub(a) as f64 / 1e9)
        .filter(|&c| c > 0.0);
    lat.sort_by(|a, b| a.total_cmp(b));
    let q = |f: f64| {
        lat.get(((lat.len() as f64 - 1.0) * f).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Speed {
        n: prompts.len(),
        p50_us: q(0.5),
        p99_us: q(0.99),
        checks_per_s: prompts.len() as f64 / total.max(1e-9),
        cpu_checks_per_s: cpu.map(|c| prompts.len() as f64 / c),
    }
}
