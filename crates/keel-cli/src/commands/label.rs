//! `keel label`: RLAIF. An AI judge labels response pairs as TRL preference data.
//!
//! ```text
//! keel label --world runs/world --split test --judge-endpoint http://127.0.0.1:8000/v1 --out runs/label
//! keel label --pairs pairs.jsonl --judge-model-path model.gguf --out runs/label
//! ```
//! Writes `OUT/preferences.jsonl` (`{"prompt","chosen","rejected"}` + judge metadata),
//! `OUT/labels.jsonl` (every pair's verdicts or error) and `OUT/report.json` (counts,
//! position consistency, agreement with gold labels where the input has them).

use super::eval::JudgeArgs;
use anyhow::{bail, Context};
use keel_data::world::Split;
use keel_eval::label::{
    label_pairs, read_pairs, write_label_run, GeneratorJudge, LabelConfig, PreferenceJudge,
    ScorerJudge,
};
use keel_eval::local::LocalModel;
use keel_eval::reward::Scorer;
use keel_eval::{GenError, Generator, SamplingParams};
use keel_train::reward_model::RewardModel;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct LabelArgs {
    /// Pairs to label (JSONL): `{"prompt","chosen","rejected"}` (gold known; the judge sees
    /// them in a seeded random order) or `{"prompt","response_a","response_b"}` with an
    /// optional `"gold": "a"|"b"`.
    #[arg(long, required_unless_present = "world", conflicts_with = "world")]
    pub pairs: Option<PathBuf>,
    /// A world folder: label its `tasks/<split>/preferences.jsonl` (which has gold).
    #[arg(long)]
    pub world: Option<PathBuf>,
    /// World split (train, validation, test).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Judge: a Keel reward model directory (`keel reward` output); the higher reward wins.
    #[arg(long, conflicts_with_all = ["judge_endpoint", "judge_model_path"])]
    pub reward_model: Option<PathBuf>,
    /// Judge: a local model (.gguf file or checkpoint directory) asked the pairwise question.
    #[arg(long, conflicts_with = "judge_endpoint")]
    pub judge_model_path: Option<PathBuf>,
    /// Judge: an OpenAI-compatible endpoint (with --judge-model, --judge-api-key-env).
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Most tokens a generator judge may write per verdict.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: u32,
    /// Keep pairs the judge called a tie (flagged `"tie": true`).
    #[arg(long)]
    pub keep_ties: bool,
    /// Keep pairs whose two orderings disagreed (flagged `"inconsistent": true`).
    #[arg(long)]
    pub keep_inconsistent: bool,
    /// Label only the first N pairs.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Judge calls in flight (endpoints; local models always run one at a time).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Seed for the chosen/rejected → A/B order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub out: PathBuf,
}

/// A trained Keel reward model as a scalar judge.
pub struct RewardScorer {
    pub model: RewardModel,
    pub name: String,
}

impl Scorer for RewardScorer {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn score(&self, prompt: &str, response: &str) -> Result<f64, GenError> {
        self.model
            .score(prompt, response)
            .map(f64::from)
            .map_err(|e| GenError::Other(format!("reward model: {e}")))
    }
}

pub fn parse_split(s: &str) -> anyhow::Result<Split> {
    Split::ALL
        .into_iter()
        .find(|x| x.as_str() == s)
        .with_context(|| format!("--split {s:?}: expected train, validation or test"))
}

pub fn run(args: LabelArgs) -> anyhow::Result<()> {
    let path = match (&args.pairs, &args.world) {
        (Some(p), _) => p.clone(),
        (None, Some(w)) => {
            keel_data::world::write::bank_path(w, parse_split(&args.split)?, "preferences")
        }
        (None, None) => bail!("pass --pairs FILE or --world DIR"),
    };
    let mut pairs = read_pairs(&path, args.seed)?;
    if let Some(n) = args.limit {
        pairs.truncate(n);
    }
    let (judge, local): (Box<dyn PreferenceJudge>, bool) = if let Some(dir) = &args.reward_model {
        let model = RewardModel::load(dir)
            .with_context(|| format!("loading reward model {}", dir.display()))?;
        let name = format!("reward:{}", dir.display());
        (Box::new(ScorerJudge(RewardScorer { model, name })), true)
    } else {
        let (gen, local): (Box<dyn Generator>, bool) = match &args.judge_model_path {
            Some(p) => (Box::new(LocalModel::load(p)?), true),
            None => match args.judge.build()? {
                Some(ep) => (Box::new(ep), false),
                None => {
                    bail!("no judge: pass --reward-model, --judge-model-path or --judge-endpoint")
                }
            },
        };
        let params = SamplingParams {
            max_tokens: args.max_tokens,
            ..SamplingParams::default()
        };
        (
            Box::new(GeneratorJudge::new(gen).with_params(params)),
            local,
        )
    };
    let cfg = LabelConfig {
        keep_ties: args.keep_ties,
        keep_inconsistent: args.keep_inconsistent,
        concurrency: if local { 1 } else { args.concurrency.max(1) },
    };
    eprintln!(
        "labelling {} pairs from {} with {}",
        pairs.len(),
        path.display(),
        judge.name()
    );
    let t = std::time::Instant::now();
    let run = label_pairs(judge.as_ref(), &pairs, &cfg);
    write_label_run(&args.out, &run)?;
    print!("{}", run.report);
    println!(
        "wrote {} in {:.1}s",
        args.out.join("preferences.jsonl").display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
