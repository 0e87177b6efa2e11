//! `keel rm`: train a reward model (scalar head, Bradley–Terry loss) on preference pairs from
//! a JSONL(.gz) file (TRL explicit/implicit/conversational, HH-RLHF, k-wise rankings) or a
//! world directory, and report pairwise accuracy on held-out pairs.

use anyhow::{bail, Context, Result};
use keel_data::preference::{
    load_preferences, load_world_preferences, PrefFormat, PrefLoadOptions, PreferenceDataset,
    PreferencePair, UnpairedExample,
};
use keel_data::world::Split;
use keel_train::pretrain::RunOptions;
use keel_train::reward::{train_reward, RewardConfig};
use std::path::{Path, PathBuf};

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PrefFormatArg {
    Auto,
    Explicit,
    Implicit,
    Ranked,
    Unpaired,
}

/// Where preference data comes from (shared by `keel rm` and `keel dpo`).
#[derive(clap::Args, Debug)]
pub struct PrefDataArgs {
    /// Training preferences, JSONL or JSONL.gz.
    #[arg(long, conflicts_with = "world")]
    pub data: Option<PathBuf>,
    /// Held-out preferences (same formats): accuracy and margins are reported on them.
    #[arg(long)]
    pub validation: Option<PathBuf>,
    /// A directory written by `keel world`: train on its train-split pairs and evaluate on its
    /// validation-split pairs.
    #[arg(long)]
    pub world: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: PrefFormatArg,
    /// Fail on the first bad row instead of skipping and counting bad rows.
    #[arg(long)]
    pub strict: bool,
    /// Use at most this many training pairs (in file order).
    #[arg(long)]
    pub limit: Option<usize>,
}

/// Loaded preference data: pairs, unpaired (KTO) examples, held-out pairs.
pub struct PrefData {
    pub train: Vec<PreferencePair>,
    pub unpaired: Vec<UnpairedExample>,
    pub val: Vec<PreferencePair>,
    pub report: serde_json::Value,
}

fn load_file(path: &Path, a: &PrefDataArgs) -> Result<PreferenceDataset> {
    let opts = PrefLoadOptions {
        format: match a.format {
            PrefFormatArg::Auto => PrefFormat::Auto,
            PrefFormatArg::Explicit => PrefFormat::Explicit,
            PrefFormatArg::Implicit => PrefFormat::Implicit,
            PrefFormatArg::Ranked => PrefFormat::Ranked,
            PrefFormatArg::Unpaired => PrefFormat::Unpaired,
        },
        strict: a.strict,
        ..Default::default()
    };
    let ds = load_preferences(path, &opts)?;
    for b in ds.bad.iter().take(20) {
        eprintln!("skipped {b}");
    }
    eprintln!(
        "{}: {} pairs, {} unpaired examples, {} rows skipped",
        path.display(),
        ds.pairs.len(),
        ds.unpaired.len(),
        ds.bad.len()
    );
    Ok(ds)
}

fn summary(ds: &PreferenceDataset, path: &Path) -> serde_json::Value {
    serde_json::json!({
        "file": path, "pairs": ds.pairs.len(), "unpaired": ds.unpaired.len(),
        "skipped": ds.bad.len(), "skipped_by_reason": ds.bad_counts(),
        "skipped_rows": ds.bad.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
    })
}

pub fn load_pref_data(a: &PrefDataArgs) -> Result<PrefData> {
    let (mut val, mut report) = (vec![], serde_json::json!({}));
    let (mut train, mut unpaired) = match (&a.data, &a.world) {
        (Some(p), _) => {
            let ds = load_file(p, a)?;
            report["train"] = summary(&ds, p);
            let pairs: Vec<PreferencePair> = ds.pairs.into_iter().map(|p| p.pair).collect();
            (
                pairs,
                ds.unpaired
                    .into_iter()
                    .map(|u| u.example)
                    .collect::<Vec<_>>(),
            )
        }
        (None, Some(w)) => {
            let pairs: Vec<PreferencePair> = load_world_preferences(w, Split::Train)?
                .into_iter()
                .map(|p| p.pair)
                .collect();
            if a.validation.is_none() {
                val = load_world_preferences(w, Split::Validation)?
                    .into_iter()
                    .map(|p| p.pair)
                    .collect();
            }
            report["train"] = serde_json::json!({ "world": w, "pairs": pairs.len() });
            (pairs, Vec::new())
        }
        (None, None) => bail!("give --data FILE or --world DIR"),
    };
    if let Some(v) = &a.validation {
        let ds = load_file(v, a)?;
        report["validation"] = summary(&ds, v);
        val = ds.pairs.into_iter().map(|p| p.pair).collect();
    }
    if let Some(n) = a.limit {
        train.truncate(n);
        unpaired.truncate(n);
    }
    if train.is_empty() && unpaired.is_empty() {
        bail!("no usable training rows");
    }
    Ok(PrefData {
        train,
        unpaired,
        val,
        report,
    })
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Starting model: a Keel checkpoint directory with tokenizer.json (e.g. an SFT run's
    /// RUN/checkpoints/step-N).
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: PrefDataArgs,
    /// Run directory: checkpoints (HF LlamaForSequenceClassification dirs), metrics.jsonl,
    /// rm.json, data_report.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Training config as JSON (any subset of RewardConfig; flags below override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Longest prompt + response in tokens.
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Reward-centering coefficient (TRL's center_rewards_coefficient).
    #[arg(long)]
    pub center_coef: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue from the run directory's latest checkpoint.
    #[arg(long)]
    pub resume: bool,
}

pub fn run(args: RmArgs) -> Result<()> {
    let mut c: RewardConfig = match &args.config {
        Some(p) => {
            serde_json::from_slice(&std::fs::read(p).with_context(|| p.display().to_string())?)
                .with_context(|| format!("{}: invalid reward config", p.display()))?
        }
        None => RewardConfig::default(),
    };
    if let Some(v) = args.steps {
        c.max_steps = v;
    }
    if let Some(v) = args.lr {
        c.lr = v;
    }
    if let Some(v) = args.batch_size {
        c.batch_size = v;
    }
    if let Some(v) = args.max_len {
        c.max_len = v;
    }
    if let Some(v) = args.center_coef {
        c.center_coef = v;
    }
    if let Some(v) = args.seed {
        c.seed = v;
    }
    let data = load_pref_data(&args.data)?;
    if data.train.is_empty() {
        bail!("a reward model trains on pairs; the data holds only unpaired rows");
    }
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    keel_core::artifact::write_json_atomic(&args.out.join("data_report.json"), &data.report)?;
    let opts = RunOptions {
        resume: args.resume,
        show_progress: true,
        ..Default::default()
    };
    let out = train_reward(&args.model, &c, &data.train, &data.val, &args.out, opts)?;
    keel_core::artifact::write_json_atomic(&args.out.join("rm.json"), &out)?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
