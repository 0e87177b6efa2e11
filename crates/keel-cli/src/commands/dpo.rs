//! `keel dpo --loss sigmoid|ipo|simpo|orpo|kto`: preference optimisation — full or LoRA — of a
//! Keel checkpoint, an HF directory or a GGUF file on pairs (or unpaired rows for KTO),
//! rendered with the model's own chat template, with reference log-probs computed once and
//! cached.

use super::lora_args::LoraArgs;
use super::rm::{load_pref_data, PrefDataArgs};
use anyhow::{bail, Context, Result};
use keel_train::dpo::{dpo, dpo_unpaired, DpoConfig, DpoLoss};
use keel_train::pretrain::RunOptions;
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LossArg {
    /// DPO (with --label-smoothing: cDPO).
    Sigmoid,
    Ipo,
    /// Reference-free, length-normalised, margin --simpo-gamma.
    Simpo,
    /// Reference-free: NLL on chosen plus an odds-ratio term weighted by --beta.
    Orpo,
    /// Unpaired desirable/undesirable examples (pairs are split).
    Kto,
}

#[derive(clap::Args, Debug)]
pub struct DpoArgs {
    /// Starting model (also the reference): a Keel checkpoint directory, a Hugging Face model
    /// directory, a GGUF file, or a LoRA adapter directory.
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: PrefDataArgs,
    #[arg(long, value_enum, default_value = "sigmoid")]
    pub loss: LossArg,
    /// Run directory: checkpoints, metrics.jsonl, reference_logps.json, dpo.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Training config as JSON (any subset of DpoConfig; flags below override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub beta: Option<f64>,
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// Weight of the chosen answers' NLL added to the paired loss (RPO; 0 = off)
    #[arg(long)]
    pub rpo_alpha: Option<f64>,
    #[arg(long)]
    pub simpo_gamma: Option<f64>,
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub grad_accum: Option<usize>,
    /// Longest prompt + completion in tokens (prompts are cut from the left).
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Held-out metrics every N steps (and at the end); 0 = end only.
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Checkpoint every N steps (and at the end); 0 = end only.
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue from the run directory's latest checkpoint (reference log-probs from the cache).
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub lora: LoraArgs,
}

pub fn run(args: DpoArgs) -> Result<()> {
    let mut c: DpoConfig = match &args.config {
        Some(p) => {
            serde_json::from_slice(&std::fs::read(p).with_context(|| p.display().to_string())?)
                .with_context(|| format!("{}: invalid DPO config", p.display()))?
        }
        None => DpoConfig::default(),
    };
    c.loss = match args.loss {
        LossArg::Sigmoid => DpoLoss::Sigmoid,
        LossArg::Ipo => DpoLoss::Ipo,
        LossArg::Simpo => DpoLoss::Simpo,
        LossArg::Orpo => DpoLoss::Orpo,
        LossArg::Kto => DpoLoss::Kto,
    };
    for (flag, dst) in [
        (args.beta, &mut c.beta),
        (args.label_smoothing, &mut c.label_smoothing),
        (args.rpo_alpha, &mut c.rpo_alpha),
        (args.simpo_gamma, &mut c.simpo_gamma),
        (args.lr, &mut c.lr),
    ] {
        if let Some(v) = flag {
            *dst = v;
        }
    }
    if let Some(v) = args.steps {
        c.max_steps = v;
    }
    if let Some(v) = args.batch_size {
        c.batch_size = v;
    }
    if let Some(v) = args.grad_accum {
        c.grad_accum = v;
    }
    if let Some(v) = args.eval_every {
        c.eval_every = v;
    }
    if let Some(v) = args.checkpoint_every {
        c.checkpoint_every = v;
    }
    if let Some(v) = args.max_len {
        c.max_len = v;
    }
    if let Some(v) = args.seed {
        c.seed = v;
    }
    if let Some(l) = args.lora.config() {
        c.lora = Some(l);
    }
    let data = load_pref_data(&args.data)?;
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    keel_core::artifact::write_json_atomic(&args.out.join("data_report.json"), &data.report)?;
    let opts = RunOptions {
        resume: args.resume,
        show_progress: true,
        ..Default::default()
    };
    let out = match (c.loss, data.unpaired.is_empty()) {
        (_, true) => dpo(&args.model, &c, &data.train, &data.val, &args.out, opts)?,
        (DpoLoss::Kto, false) => {
            let mut all: Vec<_> = data
                .train
                .iter()
                .flat_map(keel_data::preference::split_pair)
                .collect();
            all.extend(data.unpaired);
            dpo_unpaired(&args.model, &c, &all, &data.val, &args.out, opts)?
        }
        (other, false) => bail!(
            "the data has unpaired (label) rows, which only --loss kto uses; {other:?} needs pairs"
        ),
    };
    keel_core::artifact::write_json_atomic(&args.out.join("dpo.json"), &out)?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
