//! `keel compare RUN_A RUN_B`: what changed between two runs (hyperparameters, data
//! digests, metrics per stage with deltas) and which metrics regressed.
//!
//! A regression is a metric that got worse in its direction with disjoint 95% intervals, or
//! worse by more than `--tolerance` (see `keel_eval::compare`). With `--fail-on-regression`
//! the command exits non-zero when there is one: a gate for pipelines.
//!
//! ```text
//! keel compare runs/main runs/candidate --tolerance 0.02 --fail-on-regression
//! ```

use anyhow::Context;
use keel_core::run_log::RunLog;
use keel_eval::compare::{compare, to_markdown, CompareOptions};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The baseline run folder (holding run.json).
    pub run_a: PathBuf,
    /// The new run folder.
    pub run_b: PathBuf,
    /// Worsening beyond this (absolute, in the metric's units) is a regression even when
    /// the intervals overlap.
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// Exit with status 1 when any metric regressed.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Print the comparison as JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
    /// Also write the Markdown comparison to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    if let Some(t) = args.tolerance {
        anyhow::ensure!(
            t.is_finite() && t >= 0.0,
            "--tolerance must be a non-negative number, got {t}"
        );
    }
    let load =
        |p: &PathBuf| RunLog::load(p).with_context(|| format!("loading run {}", p.display()));
    let (a, b) = (load(&args.run_a)?, load(&args.run_b)?);
    let c = compare(
        &a,
        &b,
        CompareOptions {
            tolerance: args.tolerance,
        },
    );
    let md = to_markdown(
        &c,
        &args.run_a.display().to_string(),
        &args.run_b.display().to_string(),
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        print!("{md}");
    }
    if let Some(out) = &args.out {
        keel_core::artifact::write_atomic(out, md.as_bytes())?;
    }
    let n = c.regressions().count();
    if args.fail_on_regression && n > 0 {
        anyhow::bail!("{n} regression(s) between the runs (--fail-on-regression)");
    }
    Ok(())
}
