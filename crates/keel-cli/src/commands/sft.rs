//! `keel sft`: supervised fine-tuning — full or LoRA — of a Keel checkpoint, an HF directory
//! or a GGUF file on a JSONL/Parquet dataset (TRL's messages / prompt-completion / text
//! shapes), loss on assistant tokens only, rendered with the model's own chat template.

use super::lora_args::LoraArgs;
use anyhow::{bail, Context, Result};
use keel_data::chat::Truncation;
use keel_data::formats::{
    count_reasons, load_dataset, prepare_with, FieldMap, Format, LoadOptions,
};
use keel_train::chat_render::ChatRenderer;
use keel_train::pretrain::RunOptions;
use keel_train::sft::{sft, PackingMode, SftConfig};
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    Auto,
    Messages,
    PromptCompletion,
    Text,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum TruncationArg {
    /// Skip examples longer than --seq-len.
    Drop,
    /// Cut the start of the prompt; keep every trained token.
    TruncateLeft,
}

#[derive(clap::Args, Debug)]
pub struct SftArgs {
    /// Starting model: a Keel checkpoint directory (e.g. RUN/checkpoints/step-00000600), a
    /// Hugging Face model directory, a GGUF file, or a LoRA adapter directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Training data, JSONL.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation data, JSONL (same format); validation loss is logged when given.
    #[arg(long)]
    pub validation: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// Field holding the prompt (prompt-completion format).
    #[arg(long, default_value = "prompt")]
    pub input_key: String,
    /// Field holding the completion (prompt-completion format).
    #[arg(long, default_value = "completion")]
    pub output_key: String,
    /// Field holding the conversation (messages format).
    #[arg(long, default_value = "messages")]
    pub messages_key: String,
    /// Fail on the first bad row instead of skipping and counting bad rows.
    #[arg(long)]
    pub strict: bool,
    #[arg(long, value_enum, default_value = "drop")]
    pub truncation: TruncationArg,
    /// Run directory: checkpoints, metrics.jsonl, sft.json, data_report.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Training config as JSON (any subset of SftConfig; flags below override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub grad_accum: Option<usize>,
    /// Pack several examples into each row of --seq-len tokens (best-fit decreasing; attention
    /// and RoPE positions restart at each example) instead of padding one example per row.
    /// --batch-size then counts packed rows.
    #[arg(long)]
    pub packing: bool,
    /// Longest example in tokens, special tokens included.
    #[arg(long)]
    pub seq_len: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue from the run directory's latest checkpoint.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub lora: LoraArgs,
}

fn config(args: &SftArgs) -> Result<SftConfig> {
    let mut c: SftConfig = match &args.config {
        Some(p) => {
            serde_json::from_slice(&std::fs::read(p).with_context(|| p.display().to_string())?)
                .with_context(|| format!("{}: invalid SFT config", p.display()))?
        }
        None => SftConfig::default(),
    };
    if let Some(v) = args.steps {
        c.max_steps = v;
    }
    if let Some(v) = args.seq_len {
        c.seq_len = v;
    }
    if let Some(v) = args.batch_size {
        c.batch_size = v;
    }
    if let Some(v) = args.grad_accum {
        c.grad_accum = v;
    }
    if args.packing {
        c.packing = PackingMode::Packing;
    }
    if let Some(v) = args.seed {
        c.seed = v;
    }
    if let Some(v) = args.lr {
        c.lr = v;
    }
    if let Some(l) = args.lora.config() {
        c.lora = Some(l);
    }
    c.truncation = match args.truncation {
        TruncationArg::Drop => Truncation::Drop,
        TruncationArg::TruncateLeft => Truncation::TruncateLeft,
    };
    Ok(c)
}

pub fn run(args: SftArgs) -> Result<()> {
    let cfg = config(&args)?;
    let renderer = ChatRenderer::for_path(&args.model)
        .with_context(|| format!("{}: cannot render chat examples", args.model.display()))?;
    let opts = LoadOptions {
        format: match args.format {
            FormatArg::Auto => Format::Auto,
            FormatArg::Messages => Format::Messages,
            FormatArg::PromptCompletion => Format::PromptCompletion,
            FormatArg::Text => Format::Text,
        },
        fields: FieldMap {
            prompt: args.input_key.clone(),
            completion: args.output_key.clone(),
            messages: args.messages_key.clone(),
            ..Default::default()
        },
        strict: args.strict,
    };
    let mut report = serde_json::Map::new();
    let mut load = |path: &PathBuf, name: &str| -> Result<Vec<keel_data::chat::TokenizedExample>> {
        let ds = load_dataset(path, &opts)?;
        let p = prepare_with(
            &ds.examples,
            cfg.seq_len,
            cfg.truncation,
            args.strict,
            |ex| renderer.render(ex).map_err(|e| e.to_string()),
        )?;
        let mut bad = ds.bad.clone();
        bad.extend(p.bad.iter().cloned());
        for b in bad.iter().take(20) {
            eprintln!("skipped {b}");
        }
        if bad.len() > 20 {
            eprintln!(
                "… and {} more skipped rows (see data_report.json)",
                bad.len() - 20
            );
        }
        eprintln!(
            "{name}: {} rows kept ({} left-truncated), {} skipped",
            p.examples.len(),
            p.truncated,
            bad.len()
        );
        report.insert(
            name.into(),
            serde_json::json!({
                "file": path, "kept": p.examples.len(), "truncated": p.truncated,
                "skipped": bad.len(), "skipped_by_reason": count_reasons(&bad),
                "skipped_rows": bad.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
            }),
        );
        if p.examples.is_empty() {
            bail!("{}: no usable rows", path.display());
        }
        Ok(p.examples)
    };
    let train = load(&args.data, "train")?;
    let val = match &args.validation {
        Some(v) => load(v, "validation")?,
        None => Vec::new(),
    };
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    keel_core::artifact::write_json_atomic(&args.out.join("data_report.json"), &report)?;
    let out = sft(
        &args.model,
        &cfg,
        &train,
        &val,
        &args.out,
        RunOptions {
            resume: args.resume,
            show_progress: true,
            ..Default::default()
        },
    )?;
    keel_core::artifact::write_json_atomic(&args.out.join("sft.json"), &out)?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
