//! `keel rl`: reinforcement learning (PPO, GRPO, RLOO) on a Keel checkpoint, rewarded by the
//! world's ground truth (a verifier) or by a trained reward model (RLHF), on the world's task
//! prompts.
//!
//! ```text
//! keel rl --algo ppo --model runs/sft --world runs/world --out runs/ppo
//! keel rl --algo grpo --model runs/sft --world runs/world --reward reward-model \
//!     --reward-model runs/rm/final --out runs/grpo
//! ```

use anyhow::{bail, Context, Result};
use keel_data::tokenizer::KeelTokenizer;
use keel_data::world::write::bank_path;
use keel_data::world::Split;
use keel_train::pretrain::RunOptions;
use keel_train::rl::{
    rl, world_prompts, Algo, KlEstimator, RewardModelSource, RewardSource, RlConfig, RlPrompt,
    Verifier,
};
use std::path::{Path, PathBuf};

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum AlgoArg {
    Ppo,
    Grpo,
    Rloo,
}

impl From<AlgoArg> for Algo {
    fn from(a: AlgoArg) -> Algo {
        match a {
            AlgoArg::Ppo => Algo::Ppo,
            AlgoArg::Grpo => Algo::Grpo,
            AlgoArg::Rloo => Algo::Rloo,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KlArg {
    K1,
    K3,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RewardArg {
    /// The world's gold answers (exact for format tasks, whole-word match otherwise); trains
    /// on the prompts that have a checkable answer.
    Verifier,
    /// A trained reward model (`--reward-model DIR`, from `keel rm`); trains on every world
    /// task prompt, harmful and sensitive ones included.
    RewardModel,
}

#[derive(clap::Args, Debug)]
pub struct RlArgs {
    #[arg(long, value_enum, default_value = "ppo")]
    pub algo: AlgoArg,
    /// Starting checkpoint (usually an SFT checkpoint); also the frozen KL reference.
    #[arg(long)]
    pub model: PathBuf,
    /// A world directory (`keel world`): prompts from tasks/train/instructions.jsonl (with a
    /// reward model, also harmful, benign_sensitive, unanswerable and false_premise), evaluation
    /// on the same banks of tasks/validation.
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
    /// Reward model directory (with `--reward reward-model`).
    #[arg(long)]
    pub reward_model: Option<PathBuf>,
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
    c.algo = args.algo.into();
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

/// The world banks RL trains on with a verifier (only instructions have checkable gold) and
/// with a reward model (which can score answers to every bank).
const VERIFIABLE_BANKS: [&str; 1] = ["instructions"];
const ALL_BANKS: [&str; 5] = [
    "instructions",
    "harmful",
    "benign_sensitive",
    "unanswerable",
    "false_premise",
];

/// Prompts of `paths` (task-row JSONL), concatenated; `what` names them in logs and errors.
fn load(
    paths: &[PathBuf],
    tok: &KeelTokenizer,
    verifiable_only: bool,
    what: &str,
) -> Result<Vec<RlPrompt>> {
    let mut all = Vec::new();
    for path in paths {
        let p = world_prompts(path, tok, verifiable_only)
            .with_context(|| format!("{what} prompts {}", path.display()))?;
        eprintln!("{what}: {} prompts from {}", p.len(), path.display());
        all.extend(p);
    }
    Ok(all)
}

/// A world split's RL prompts: its instructions with verifiable gold, or (`verifiable_only`
/// false, for a reward model) every bank's prompts. `keel rl --world` and the demo read them.
pub fn world_split_prompts(
    world: &Path,
    split: Split,
    tok: &KeelTokenizer,
    verifiable_only: bool,
) -> Result<Vec<RlPrompt>> {
    let banks: &[&str] = if verifiable_only {
        &VERIFIABLE_BANKS
    } else {
        &ALL_BANKS
    };
    let paths: Vec<PathBuf> = banks.iter().map(|b| bank_path(world, split, b)).collect();
    load(&paths, tok, verifiable_only, split.as_str())
}

pub fn run(args: RlArgs) -> Result<()> {
    let cfg = config(&args)?;
    // Flag combinations first, so a wrong command fails before anything is loaded.
    let reward: Box<dyn RewardSource> = match (args.reward, &args.reward_model) {
        (RewardArg::Verifier, None) => Box::new(Verifier),
        (RewardArg::RewardModel, Some(dir)) => Box::new(
            RewardModelSource::load(dir)
                .with_context(|| format!("reward model {}", dir.display()))?,
        ),
        (RewardArg::Verifier, Some(_)) => bail!("--reward-model needs --reward reward-model"),
        (RewardArg::RewardModel, None) => bail!("--reward reward-model needs --reward-model DIR"),
    };
    let tok = KeelTokenizer::from_file(&args.model.join("tokenizer.json")).context(
        "keel rl trains Keel-tokenizer checkpoints (with <|user|>/<|assistant|>/<|end|>)",
    )?;
    let verifiable_only = matches!(args.reward, RewardArg::Verifier);
    let (train, val) = match (&args.world, &args.prompts) {
        (Some(w), _) => (
            world_split_prompts(w, Split::Train, &tok, verifiable_only)?,
            world_split_prompts(w, Split::Validation, &tok, verifiable_only)?,
        ),
        (None, Some(p)) => (
            load(std::slice::from_ref(p), &tok, verifiable_only, "train")?,
            load(
                &args.validation.iter().cloned().collect::<Vec<_>>(),
                &tok,
                verifiable_only,
                "validation",
            )?,
        ),
        (None, None) => bail!("give --world DIR or --prompts FILE"),
    };
    if train.is_empty() {
        bail!(
            "no training prompts{}",
            if verifiable_only {
                " with a verifiable gold answer"
            } else {
                ""
            }
        );
    }
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    let out = rl(
        &args.model,
        &cfg,
        &train,
        &val,
        reward.as_ref(),
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
