//! `keel rl`: reinforcement learning (PPO, GRPO, RLOO) on a Keel checkpoint, rewarded by the
//! world's ground truth (a verifier) on the world's task prompts.

use anyhow::{bail, Context, Result};
use keel_data::tokenizer::KeelTokenizer;
use keel_train::pretrain::RunOptions;
use keel_train::rl::{rl, world_prompts, Algo, KlEstimator, RlConfig, RlPrompt, Verifier};
use std::path::{Path, PathBuf};

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum AlgoArg {
    Ppo,
    Grpo,
    Rloo,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KlArg {
    K1,
    K3,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RewardArg {
    /// The world's gold answers (exact for format tasks, whole-word match otherwise).
    Verifier,
}

#[derive(clap::Args, Debug)]
pub struct RlArgs {
    #[arg(long, value_enum, default_value = "ppo")]
    pub algo: AlgoArg,
    /// Starting checkpoint (usually an SFT checkpoint); also the frozen KL reference.
    #[arg(long)]
    pub model: PathBuf,
    /// A world directory (`keel world`): prompts from tasks/train/instructions.jsonl,
    /// evaluation on tasks/validation/instructions.jsonl.
    #[arg(long, conflicts_with = "prompts")]
    pub world: Option<PathBuf>,
    /// Training prompts as task-row JSONL (`prompt`, `gold`, `category`), instead of --world.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Validation prompts as task-row JSONL (with --prompts).
    #[arg(long, requires = "prompts")]
    pub validation: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "verifier")]
    pub reward: RewardArg,
    /// Run directory: checkpoints, metrics.jsonl, rl.json.
    #[arg(long)]
    pub out: PathBuf,
    /// RL config as JSON (any subset of RlConfig; flags below override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long)]
    pub lr: Option<f64>,
    /// Prompts per iteration.
    #[arg(long)]
    pub prompts_per_step: Option<usize>,
    /// Completions per prompt (the group size k).
    #[arg(long)]
    pub k: Option<usize>,
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    #[arg(long)]
    pub temperature: Option<f64>,
    /// KL coefficient (initial value with --kl-target); 0 disables the KL term.
    #[arg(long)]
    pub kl_coef: Option<f64>,
    #[arg(long, value_enum)]
    pub kl_estimator: Option<KlArg>,
    /// Adaptive KL: steer the per-sequence KL towards this value.
    #[arg(long)]
    pub kl_target: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue from the run directory's latest checkpoint.
    #[arg(long)]
    pub resume: bool,
}

fn config(args: &RlArgs) -> Result<RlConfig> {
    let mut c: RlConfig = match &args.config {
        Some(p) => {
            serde_json::from_slice(&std::fs::read(p).with_context(|| p.display().to_string())?)
                .with_context(|| format!("{}: invalid RL config", p.display()))?
        }
        None => RlConfig::default(),
    };
    c.algo = match args.algo {
        AlgoArg::Ppo => Algo::Ppo,
        AlgoArg::Grpo => Algo::Grpo,
        AlgoArg::Rloo => Algo::Rloo,
    };
    macro_rules! set {
        ($($flag:ident => $field:ident),*) => {$(
            if let Some(v) = args.$flag { c.$field = v; }
        )*};
    }
    set!(steps => max_steps, lr => lr, prompts_per_step => prompts_per_step,
         k => completions_per_prompt, max_new_tokens => max_new_tokens,
         temperature => temperature, kl_coef => kl_coef, seed => seed);
    if let Some(k) = args.kl_estimator {
        c.kl_estimator = match k {
            KlArg::K1 => KlEstimator::K1,
            KlArg::K3 => KlEstimator::K3,
        };
    }
    if args.kl_target.is_some() {
        c.kl_target = args.kl_target;
    }
    c.validate()?;
    Ok(c)
}

fn load(path: &Path, tok: &KeelTokenizer, what: &str) -> Result<Vec<RlPrompt>> {
    let p = world_prompts(path, tok, true)
        .with_context(|| format!("{what} prompts {}", path.display()))?;
    eprintln!(
        "{what}: {} verifiable prompts from {}",
        p.len(),
        path.display()
    );
    Ok(p)
}

pub fn run(args: RlArgs) -> Result<()> {
    let cfg = config(&args)?;
    let tok = KeelTokenizer::from_file(&args.model.join("tokenizer.json")).context(
        "keel rl trains Keel-tokenizer checkpoints (with <|user|>/<|assistant|>/<|end|>)",
    )?;
    let (train_path, val_path) = match (&args.world, &args.prompts) {
        (Some(w), _) => (
            w.join("tasks/train/instructions.jsonl"),
            Some(w.join("tasks/validation/instructions.jsonl")),
        ),
        (None, Some(p)) => (p.clone(), args.validation.clone()),
        (None, None) => bail!("give --world DIR or --prompts FILE"),
    };
    let train = load(&train_path, &tok, "train")?;
    if train.is_empty() {
        bail!(
            "{}: no prompts with a verifiable gold answer",
            train_path.display()
        );
    }
    let val = match &val_path {
        Some(v) => load(v, &tok, "validation")?,
        None => Vec::new(),
    };
    let reward = match args.reward {
        RewardArg::Verifier => Verifier,
    };
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    let out = rl(
        &args.model,
        &cfg,
        &train,
        &val,
        &reward,
        &args.out,
        RunOptions {
            resume: args.resume,
            show_progress: true,
            ..Default::default()
        },
    )?;
    keel_core::artifact::write_json_atomic(&args.out.join("rl.json"), &out)?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
