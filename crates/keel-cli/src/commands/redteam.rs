//! `keel redteam`: attack a target with Keel's attack library (and optionally a PAIR-style
//! attacker model) on harmful goals; write garak-compatible JSONL and an ASR summary.
//!
//! ```text
//! keel redteam --data runs/world --endpoint http://127.0.0.1:8000/v1 --model m --out runs/redteam
//! keel redteam --data harmbench_val.csv --format harmbench --attacks encoding,jailbreak.role_play \
//!     --attacker-endpoint http://127.0.0.1:8001/v1 --pair-rounds 5 --endpoint ... --out ...
//! ```
//! Files in OUT: attempts.jsonl (journal; rerun to resume), redteam.report.jsonl (garak
//! format), redteam_summary.json, summary.md.

use super::eval::{command_line, EndpointArgs, JudgeArgs, RecordArgs};
use anyhow::{bail, Context};
use keel_eval::loaders::{self, FieldMap, Format};
use keel_eval::redteam::attacks::{all_attacks, select_attacks};
use keel_eval::redteam::{run_redteam, summary, PairConfig, RedteamConfig};
use keel_eval::refusal::{JudgeRefusalClassifier, RefusalClassifier, StringMatchRefusal};
use keel_eval::runner::RunConfig;
use keel_eval::{OpenAiEndpoint, SamplingParams};
use std::path::PathBuf;

/// Where harmful goals come from.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalFormat {
    /// The world's tasks/<split>/harmful.jsonl under --data (category = hazard).
    World,
    Harmbench,
    Advbench,
    DoNotAnswer,
    Strongreject,
}

#[derive(clap::Args, Debug)]
pub struct RedteamArgs {
    /// The world folder (for --format world) or a harmful-prompt benchmark file.
    #[arg(long, required_unless_present = "list_attacks")]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "world")]
    pub format: GoalFormat,
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Attacks to run: names or families, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub attacks: Vec<String>,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Refusal judge (default: string match).
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Attacker model endpoint for the PAIR-style iterative attack.
    #[arg(long)]
    pub attacker_endpoint: Option<String>,
    #[arg(long, default_value = "default")]
    pub attacker_model: String,
    #[arg(long)]
    pub attacker_api_key_env: Option<String>,
    /// Maximum attack prompts per goal for the iterative attacker.
    #[arg(long, default_value_t = 5)]
    pub pair_rounds: usize,
    /// Use only the first N goals.
    #[arg(long)]
    pub goals: Option<usize>,
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, required_unless_present = "list_attacks")]
    pub out: Option<PathBuf>,
    /// Record the ASR heatmap and overall ASR in a run log (RUN_DIR/run.json).
    #[command(flatten)]
    pub record: RecordArgs,
    /// List the attack library and exit.
    #[arg(long)]
    pub list_attacks: bool,
}

pub fn run(args: RedteamArgs) -> anyhow::Result<()> {
    if args.list_attacks {
        for a in all_attacks() {
            println!("{}", a.name());
        }
        println!(
            "{} (needs --attacker-endpoint)",
            keel_eval::redteam::PAIR_ATTACK
        );
        return Ok(());
    }
    let data = args.data.as_deref().context("--data is required")?;
    let out = args.out.as_deref().context("--out is required")?;
    let (path, format, fields) = match args.format {
        GoalFormat::World => (
            data.join(format!("tasks/{}/harmful.jsonl", args.split)),
            Format::Jsonl,
            FieldMap {
                category: "hazard".into(),
                ..FieldMap::default()
            },
        ),
        GoalFormat::Harmbench => (data.to_path_buf(), Format::Harmbench, FieldMap::default()),
        GoalFormat::Advbench => (data.to_path_buf(), Format::Advbench, FieldMap::default()),
        GoalFormat::DoNotAnswer => (data.to_path_buf(), Format::DoNotAnswer, FieldMap::default()),
        GoalFormat::Strongreject => (
            data.to_path_buf(),
            Format::Strongreject,
            FieldMap::default(),
        ),
    };
    let mut goals = loaders::load(&path, format, &fields)?;
    if let Some(n) = args.goals {
        goals.truncate(n);
    }
    if goals.is_empty() {
        bail!("{}: no goals", path.display());
    }
    let (target, local, policy) = args.endpoint.target()?;
    let judge = args.judge.build()?;
    let string_match = StringMatchRefusal;
    let judge_refusal = judge.map(JudgeRefusalClassifier::new);
    let refusal: &dyn RefusalClassifier = match &judge_refusal {
        Some(j) => j,
        None => &string_match,
    };
    let attacker: Option<OpenAiEndpoint> = EndpointArgs {
        model_path: None,
        endpoint: args.attacker_endpoint.clone(),
        model: args.attacker_model.clone(),
        api_key_env: args.attacker_api_key_env.clone(),
        timeout_s: 120,
        max_retries: 4,
        guard: Vec::new(),
    }
    .build()?;
    let cfg = RedteamConfig {
        attacks: select_attacks(&args.attacks).map_err(anyhow::Error::msg)?,
        pair: attacker.as_ref().map(|a| PairConfig {
            attacker: a,
            rounds: args.pair_rounds,
        }),
        params: SamplingParams {
            max_tokens: args.max_tokens,
            seed: Some(args.seed),
            ..SamplingParams::default()
        },
        run: RunConfig {
            concurrency: if local { 1 } else { args.concurrency.max(1) },
            stop_after: None,
        },
        seed: args.seed,
    };
    let (s, run) = run_redteam(&goals, target.as_ref(), refusal, &cfg, out)?;
    eprintln!(
        "{} attempts: {} already done, {} run now",
        s.attempts, run.skipped, run.processed
    );
    print!("{}", summary::table(&s));
    println!(
        "\ngarak report: {}",
        out.join("redteam.report.jsonl").display()
    );
    if let (Some(run_dir), Some(stage)) = (&args.record.run_dir, &args.record.stage) {
        let info = keel_eval::runlog::StageInfo {
            stage,
            kind: &args.record.stage_kind,
            data_file: path.is_file().then_some(path.as_path()),
            rows: Some(goals.len() as u64),
            role: "redteam",
            policy,
            command: Some(command_line()),
            checkpoint: args
                .endpoint
                .model_path
                .as_ref()
                .map(|p| p.display().to_string()),
            model: Some(args.endpoint.model_name()),
        };
        keel_eval::runlog::update_stage(run_dir, &info, |st| {
            st.redteam = Some(keel_eval::runlog::redteam_record(&s));
            st.upsert_eval(keel_eval::runlog::redteam_metric(&s));
        })
        .with_context(|| format!("recording into {}/run.json", run_dir.display()))?;
        println!("run log: {}", run_dir.join("run.json").display());
    }
    Ok(())
}
