//! `keel lora merge`: fold a LoRA adapter (PEFT layout: adapter_config.json +
//! adapter_model.safetensors, as `keel sft --lora-rank` writes) into its base model and write
//! the merged weights as a Hugging Face directory that loads, chats and exports like any model.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum LoraCmd {
    /// Merge an adapter into its base (W + alpha/r · B·A) and write an HF model directory.
    Merge(MergeArgs),
}

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Adapter directory (e.g. RUN/checkpoints/step-00000100 of a LoRA run).
    #[arg(long)]
    pub adapter: PathBuf,
    /// Output directory for the merged model.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(cmd: LoraCmd) -> Result<()> {
    match cmd {
        LoraCmd::Merge(a) => merge(a),
    }
}

fn merge(args: MergeArgs) -> Result<()> {
    if !args
        .adapter
        .join(keel_model::load::ADAPTER_CONFIG)
        .is_file()
    {
        bail!(
            "{}: not a LoRA adapter directory (no {})",
            args.adapter.display(),
            keel_model::load::ADAPTER_CONFIG
        );
    }
    let (cfg, base) = keel_model::load::read_adapter_config(&args.adapter)?;
    // load_model merges an adapter directory into its base.
    let m = keel_model::load_model(&args.adapter)?;
    let files = m
        .export_hf(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "merged rank-{} adapter ({}) into {} → {}",
        cfg.rank,
        cfg.target_modules.join(","),
        base.display(),
        args.out.display()
    );
    for f in files {
        println!("  {}", f.display());
    }
    Ok(())
}
