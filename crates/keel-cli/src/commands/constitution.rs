//! `keel constitution`: Constitutional AI.
//!
//! ```text
//! keel constitution revise --world runs/world --split test --model-path m.gguf --out runs/cai
//! keel constitution prefer --prompts red_team.jsonl --endpoint http://127.0.0.1:8000/v1 --out runs/cai-rl
//! keel constitution print-default > my_constitution.toml
//! ```
//! `revise` (SL-CAI) writes `OUT/sft.jsonl` (TRL messages: request → final revision, the chain
//! in `metadata`), `OUT/chains.jsonl` (every prompt, failures included) and `OUT/safety.json`
//! (safe rate of first answers vs revisions, 95% intervals). `prefer` (RL-CAI) writes
//! `OUT/preferences.jsonl` (TRL preference rows), `OUT/choices.jsonl` and `OUT/summary.json`.

use super::eval::{EndpointArgs, JudgeArgs};
use super::label::parse_split;
use anyhow::{bail, Context};
use keel_eval::constitution::prefer::{collect_preferences, PreferConfig};
use keel_eval::constitution::revise::{critique_and_revise, measure, sft_row, ReviseConfig};
use keel_eval::constitution::safety::SafetyMeasure;
use keel_eval::constitution::{read_prompts, Constitution, PromptItem, DEFAULT_CONSTITUTION};
use keel_eval::label::write_jsonl_atomic;
use keel_eval::local::LocalModel;
use keel_eval::refusal::StringMatchRefusal;
use keel_eval::Generator;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct ConstitutionArgs {
    #[command(subcommand)]
    pub command: ConstitutionCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ConstitutionCommand {
    /// SL-CAI: answer, critique by a sampled principle, revise; revisions become SFT data.
    Revise(ReviseArgs),
    /// RL-CAI: two sampled responses per prompt, a judge picks one by a sampled principle.
    Prefer(PreferArgs),
    /// Print Keel's default constitution (TOML) to edit.
    PrintDefault,
}

/// Where prompts come from, which constitution, and the output folder.
#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// Prompts (JSONL with a string "prompt", optional "id"): harmful or red-team requests.
    #[arg(long, required_unless_present = "world", conflicts_with = "world")]
    pub prompts: Option<PathBuf>,
    /// A world folder: use its `tasks/<split>/harmful.jsonl`.
    #[arg(long)]
    pub world: Option<PathBuf>,
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Use only the first N prompts.
    #[arg(long)]
    pub limit: Option<usize>,
    /// A constitution TOML (default: Keel's, see `print-default`).
    #[arg(long)]
    pub constitution: Option<PathBuf>,
    /// Most tokens per generated answer, critique or revision.
    #[arg(long, default_value_t = 200)]
    pub max_tokens: u32,
    /// Prompts in flight (endpoints; local models run one at a time).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub out: PathBuf,
}

impl CommonArgs {
    fn load(&self) -> anyhow::Result<(Vec<PromptItem>, Constitution)> {
        let path = match (&self.prompts, &self.world) {
            (Some(p), _) => p.clone(),
            (None, Some(w)) => {
                keel_data::world::write::bank_path(w, parse_split(&self.split)?, "harmful")
            }
            (None, None) => bail!("pass --prompts FILE or --world DIR"),
        };
        let mut prompts = read_prompts(&path)?;
        if let Some(n) = self.limit {
            prompts.truncate(n);
        }
        let c = match &self.constitution {
            Some(p) => Constitution::load(p)?,
            None => Constitution::default_keel(),
        };
        Ok((prompts, c))
    }
}

#[derive(clap::Args, Debug)]
pub struct ReviseArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The model that answers, critiques and revises.
    #[command(flatten)]
    pub target: EndpointArgs,
    /// Critique–revision rounds per prompt.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Also scan answers with these keel-guard profiles in the safety measure
    /// (comma-separated, e.g. `default`); without it the refusal detector alone decides.
    #[arg(long, value_delimiter = ',')]
    pub safety_guard: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PreferArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The policy that samples the two responses.
    #[command(flatten)]
    pub target: EndpointArgs,
    /// A local judge model; without it and without --judge-endpoint the policy judges itself.
    #[arg(long, conflicts_with = "judge_endpoint")]
    pub judge_model_path: Option<PathBuf>,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Sampling temperature for the two responses.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    #[arg(long)]
    pub keep_ties: bool,
    #[arg(long)]
    pub keep_inconsistent: bool,
}

fn workers(local: bool, n: usize) -> usize {
    if local {
        1
    } else {
        n.max(1)
    }
}

pub fn run(args: ConstitutionArgs) -> anyhow::Result<()> {
    match args.command {
        ConstitutionCommand::PrintDefault => {
            print!("{DEFAULT_CONSTITUTION}");
            Ok(())
        }
        ConstitutionCommand::Revise(a) => revise(a),
        ConstitutionCommand::Prefer(a) => prefer(a),
    }
}

fn revise(a: ReviseArgs) -> anyhow::Result<()> {
    let (prompts, c) = a.common.load()?;
    let (model, local, _) = a.target.target()?;
    if a.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let guard = if a.safety_guard.is_empty() {
        None
    } else {
        Some(
            keel_guard::Guard::from_profiles(&a.safety_guard)
                .with_context(|| format!("loading guard profiles {}", a.safety_guard.join(",")))?,
        )
    };
    let mut cfg = ReviseConfig {
        rounds: a.rounds,
        seed: a.common.seed,
        concurrency: workers(local, a.common.concurrency),
        ..ReviseConfig::default()
    };
    cfg.params.max_tokens = a.common.max_tokens;
    eprintln!(
        "constitution {:?} ({} principles): {} prompts, {} round(s), model {}",
        c.name,
        c.principles.len(),
        prompts.len(),
        cfg.rounds,
        model.name()
    );
    let t = Instant::now();
    let mut recs = critique_and_revise(model.as_ref(), &c, &prompts, &cfg);
    let m = SafetyMeasure {
        refusal: &StringMatchRefusal,
        guard: guard
            .as_ref()
            .map(|g| g as &(dyn keel_guard::Moderator + Sync)),
    };
    let cmp = measure(&mut recs, &m, a.common.seed);
    let rows: Vec<serde_json::Value> = recs.iter().filter_map(sft_row).collect();
    let out = &a.common.out;
    write_jsonl_atomic(&out.join("sft.jsonl"), &rows)?;
    write_jsonl_atomic(&out.join("chains.jsonl"), &recs)?;
    keel_core::artifact::write_json_atomic(&out.join("safety.json"), &cmp)?;
    let failed = recs.iter().filter(|r| r.error.is_some()).count();
    print!("{cmp}");
    println!(
        "{} SFT rows ({failed} prompts failed) -> {} in {:.1}s",
        rows.len(),
        out.join("sft.jsonl").display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn prefer(a: PreferArgs) -> anyhow::Result<()> {
    let (prompts, c) = a.common.load()?;
    let (policy, local, _) = a.target.target()?;
    let judge: Option<Box<dyn Generator>> = match &a.judge_model_path {
        Some(p) => Some(Box::new(LocalModel::load(p)?)),
        None => a
            .judge
            .build()?
            .map(|ep| Box::new(ep) as Box<dyn Generator>),
    };
    let judge_local = local || a.judge_model_path.is_some();
    let mut cfg = PreferConfig {
        seed: a.common.seed,
        keep_ties: a.keep_ties,
        keep_inconsistent: a.keep_inconsistent,
        concurrency: workers(judge_local, a.common.concurrency),
        ..PreferConfig::default()
    };
    cfg.sample_params.max_tokens = a.common.max_tokens;
    cfg.sample_params.temperature = a.temperature;
    let judge_ref: &dyn Generator = judge.as_deref().unwrap_or(policy.as_ref());
    let t = Instant::now();
    let (recs, rows, summary) = collect_preferences(policy.as_ref(), judge_ref, &c, &prompts, &cfg);
    let out = &a.common.out;
    write_jsonl_atomic(&out.join("preferences.jsonl"), &rows)?;
    write_jsonl_atomic(&out.join("choices.jsonl"), &recs)?;
    keel_core::artifact::write_json_atomic(&out.join("summary.json"), &summary)?;
    println!(
        "{} prompts: {} decisive, {} ties, {} inconsistent, {} identical samples, {} failed; {} preference rows -> {} in {:.1}s",
        summary.prompts,
        summary.decisive,
        summary.ties,
        summary.inconsistent,
        summary.identical,
        summary.errors,
        summary.written,
        out.join("preferences.jsonl").display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
