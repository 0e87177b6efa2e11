//! `keel report RUN_DIR`: render a run folder's `run.json` as a Markdown model card
//! (`model_card.md`, Hugging Face front matter with `model-index`) and a self-contained HTML
//! page with inline SVG charts (`report.html`).
//!
//! ```text
//! keel report runs/demo                 # writes runs/demo/report/{model_card.md,report.html}
//! keel report runs/demo --out site/
//! ```

use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The run folder holding run.json.
    pub run_dir: PathBuf,
    /// Output folder (default: RUN_DIR/report).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join("report"));
    let paths = keel_eval::report::write_report(&args.run_dir, &out)
        .with_context(|| format!("reporting on {}", args.run_dir.display()))?;
    println!(
        "model card: {}\nhtml:       {}",
        paths.markdown.display(),
        paths.html.display()
    );
    Ok(())
}
