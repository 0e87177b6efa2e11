//! `keel export`: write a model (GGUF file or Keel/HF checkpoint directory) as a Hugging
//! Face directory: config.json, model.safetensors (f32), tokenizer.json,
//! tokenizer_config.json (with the chat template) and generation_config.json.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A `.gguf` file or a checkpoint directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Output directory (created; files in it are replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: ExportArgs) -> Result<()> {
    if args.out.exists() && args.model.canonicalize().ok() == args.out.canonicalize().ok() {
        bail!(
            "--out {} is the model's own directory; choose another",
            args.out.display()
        );
    }
    let m = super::generate::load(&args.model)?;
    let files = m
        .export_hf(&args.out)
        .with_context(|| format!("exporting to {}", args.out.display()))?;
    for f in files {
        let size = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        println!("{}  ({:.1} MB)", f.display(), size as f64 / 1e6);
    }
    Ok(())
}
