//! `keel eval`: run an evaluation suite against a target and write results + metrics.
//!
//! ```text
//! keel eval --suite world --data runs/world --endpoint http://127.0.0.1:8000/v1 --model m --out runs/eval
//! keel eval --suite do_not_answer --data ../shared/data/harmful/do_not_answer.csv --endpoint ... --out ...
//! keel eval --suite my_suite.toml --endpoint ... --out ...
//! keel eval --print-suite honesty          # a built-in suite as an editable TOML file
//! keel eval --suite do_not_answer --data dna.csv --model-path m.gguf --out runs/x/evals \
//!     --run-dir runs/x --stage base           # also record the metrics in runs/x/run.json
//! keel eval --suite mt_bench --data q.jsonl --model-path new.gguf --out runs/new \
//!     --judge endpoint:http://127.0.0.1:8000/v1#judge --versus runs/old/mt_bench
//!                                             # + pairwise win rate / LC win rate vs old
//! ```
//! Results land in `OUT/<suite>/results.jsonl` (a journal: rerunning the same command
//! resumes where a crashed run stopped) and `OUT/<suite>/metrics.json`.
//!
//! Judges: `--judge endpoint:URL[#MODEL]` or `--judge local:PATH` (or the older
//! `--judge-endpoint URL --judge-model M`) classifies refusals, grades `judge_rating`
//! suites, and with `--versus` compares answers pairwise (position-swapped). `--reward SPEC`
//! scores preference suites with that model's log-likelihood instead of the target's.

use anyhow::{bail, Context};
use keel_core::run_log::PolicyRecord;
use keel_eval::builtin::{builtin, BUILTIN_SUITES};
use keel_eval::evaluate::{run_suite, summary_table, EvalContext, RunPaths};
use keel_eval::guarded::GuardedGenerator;
use keel_eval::local::LocalModel;
use keel_eval::refusal::{JudgeRefusalClassifier, RefusalClassifier, StringMatchRefusal};
use keel_eval::reward::{LoglikScorer, Scorer};
use keel_eval::runlog::{record_suite, StageInfo};
use keel_eval::runner::RunConfig;
use keel_eval::target_spec::ModelSpec;
use keel_eval::{Generator, OpenAiEndpoint, RetryPolicy, SuiteSpec};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The target: an OpenAI-compatible endpoint, or a local checkpoint (`--model-path`).
#[derive(clap::Args, Debug, Clone)]
pub struct EndpointArgs {
    /// A local checkpoint (.gguf file or HF-style directory) to evaluate in-process,
    /// instead of an endpoint.
    #[arg(long, conflicts_with = "endpoint")]
    pub model_path: Option<PathBuf>,
    /// Base URL of an OpenAI-compatible server (with or without /v1).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Model name sent in each request.
    #[arg(long, default_value = "default")]
    pub model: String,
    /// Name of the environment variable holding the API key (the key itself never goes on
    /// the command line).
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// Whole-request timeout in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Retries on 429 / 5xx / network errors (exponential backoff).
    #[arg(long, default_value_t = 4)]
    pub max_retries: u32,
    /// Put keel-guard policy profiles in front of the target (comma-separated, e.g.
    /// `default` or `education-minors,region-eu`) to measure model + guard.
    #[arg(long, value_delimiter = ',')]
    pub guard: Vec<String>,
}

impl EndpointArgs {
    /// The target generator, whether it runs in-process (then one request at a time:
    /// candle already uses every core for one forward pass), and the guard policy in front
    /// of it (profile label + effective policy sha256) if any.
    pub fn target(&self) -> anyhow::Result<(Box<dyn Generator>, bool, Option<PolicyRecord>)> {
        let (bare, local): (Box<dyn Generator>, bool) = if let Some(p) = &self.model_path {
            (Box::new(LocalModel::load(p)?), true)
        } else {
            match self.build()? {
                Some(ep) => (Box::new(ep), false),
                None => bail!("no target: pass --endpoint URL or --model-path CHECKPOINT"),
            }
        };
        if self.guard.is_empty() {
            return Ok((bare, local, None));
        }
        let guard = keel_guard::Guard::from_profiles(&self.guard)
            .with_context(|| format!("loading guard profiles {}", self.guard.join(",")))?;
        let label = self.guard.join("+");
        let policy = PolicyRecord {
            name: label.clone(),
            policy_hash: guard.policy().hash.clone(),
        };
        Ok((
            Box::new(GuardedGenerator::new(bare, guard, label)),
            local,
            Some(policy),
        ))
    }

    /// A short name for the target model: the checkpoint's file or folder name (without
    /// `.gguf`), else the endpoint's model name.
    pub fn model_name(&self) -> String {
        match &self.model_path {
            Some(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().trim_end_matches(".gguf").to_string())
                .unwrap_or_else(|| p.display().to_string()),
            None => self.model.clone(),
        }
    }

    pub fn build(&self) -> anyhow::Result<Option<OpenAiEndpoint>> {
        let Some(url) = &self.endpoint else {
            return Ok(None);
        };
        let mut ep = OpenAiEndpoint::new(url, self.model.clone())
            .with_timeout(Duration::from_secs(self.timeout_s))
            .with_retry(RetryPolicy {
                max_retries: self.max_retries,
                ..RetryPolicy::default()
            });
        if let Some(var) = &self.api_key_env {
            ep = ep.with_api_key_env(var)?;
        }
        Ok(Some(ep))
    }
}

/// A judge model (for refusal classification, ratings, pairwise comparison, red-team
/// success). Without one, refusals are string-matched and judged suites are unscored.
#[derive(clap::Args, Debug, Clone)]
pub struct JudgeArgs {
    /// The judge: `endpoint:URL[#MODEL]` (OpenAI-compatible) or `local:PATH` (a checkpoint
    /// run in-process).
    #[arg(long, value_name = "SPEC", conflicts_with = "judge_endpoint")]
    pub judge: Option<String>,
    /// Judge endpoint URL (same as `--judge endpoint:URL`).
    #[arg(long)]
    pub judge_endpoint: Option<String>,
    /// Model name for an endpoint judge given without `#MODEL`.
    #[arg(long, default_value = "default")]
    pub judge_model: String,
    /// Environment variable holding the judge endpoint's API key.
    #[arg(long)]
    pub judge_api_key_env: Option<String>,
}

impl JudgeArgs {
    pub fn build(&self) -> anyhow::Result<Option<Arc<dyn Generator>>> {
        let spec = match (&self.judge, &self.judge_endpoint) {
            (Some(s), _) => ModelSpec::parse(s)?,
            (None, Some(url)) => ModelSpec::Endpoint {
                url: url.clone(),
                model: None,
            },
            (None, None) => return Ok(None),
        };
        let judge = spec
            .build(
                &self.judge_model,
                self.judge_api_key_env.as_deref(),
                Duration::from_secs(120),
            )
            .context("building the judge")?;
        Ok(Some(judge))
    }
}

/// Where to record results in a run log (`RUN_DIR/run.json`, read by `keel report`).
#[derive(clap::Args, Debug, Clone)]
pub struct RecordArgs {
    /// Run folder whose run.json gets this command's results (created if missing).
    #[arg(long, requires = "stage")]
    pub run_dir: Option<PathBuf>,
    /// Stage name in the run log (e.g. `base`, `sft`, `sft+guard`).
    #[arg(long, requires = "run_dir")]
    pub stage: Option<String>,
    /// Stage kind when the stage is new: base, pretrain, sft, reward, dpo, rl, guard, eval…
    #[arg(long, default_value = "eval")]
    pub stage_kind: String,
}

/// The command line as typed, for the run log.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut out = vec!["keel".to_string()];
    out.extend(args.into_iter().skip(1).map(|a| {
        if a.contains(char::is_whitespace) {
            format!("'{a}'")
        } else {
            a
        }
    }));
    out.join(" ")
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// A built-in suite name or a suite spec file (.toml).
    #[arg(long, required_unless_present_any = ["list_suites", "print_suite"])]
    pub suite: Option<String>,
    /// Data: the world folder (holding tasks/) for world suites, or the benchmark file for
    /// public ones. For spec files, relative paths resolve against this folder (default:
    /// the spec's folder).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Task split for world suites.
    #[arg(long, default_value = "test")]
    pub split: String,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    #[command(flatten)]
    pub judge: JudgeArgs,
    /// Score preference suites with this model's log-likelihood (`endpoint:URL[#MODEL]` or
    /// `local:PATH`) instead of the target's own.
    #[arg(long, value_name = "SPEC")]
    pub reward: Option<String>,
    /// Another run's folder for this suite (holding results.jsonl): judge this run's answers
    /// against it pairwise (needs a judge) and report win rate and length-controlled win rate.
    #[arg(long, value_name = "DIR")]
    pub versus: Option<PathBuf>,
    #[command(flatten)]
    pub record: RecordArgs,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Evaluate at most this many (not yet finished) items in this call.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Override the suite's max_tokens.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Seed for bootstrap intervals (and sampling, if the suite samples).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder; results go to OUT/<suite>/.
    #[arg(long, required_unless_present_any = ["list_suites", "print_suite"])]
    pub out: Option<PathBuf>,
    /// List the built-in suites and exit.
    #[arg(long)]
    pub list_suites: bool,
    /// Print a built-in suite as TOML and exit.
    #[arg(long, value_name = "NAME")]
    pub print_suite: Option<String>,
}

/// Resolve `--suite`: a built-in name, or a spec file. Returns the spec and the data root.
pub fn resolve_suite(
    name: &str,
    split: &str,
    data: Option<&Path>,
) -> anyhow::Result<(SuiteSpec, PathBuf, Option<PathBuf>)> {
    let as_path = Path::new(name);
    if as_path.extension().is_some_and(|e| e == "toml") || as_path.is_file() {
        let spec = SuiteSpec::load(as_path)?;
        let spec_dir = as_path.parent().map(Path::to_path_buf).unwrap_or_default();
        // A data *file* feeds path-less sources; a data folder is the root for relative paths.
        return Ok(match data {
            Some(d) if d.is_file() => (spec, spec_dir, Some(d.to_path_buf())),
            Some(d) => (spec, d.to_path_buf(), None),
            None => (spec, spec_dir, None),
        });
    }
    let Some(spec) = builtin(name, split) else {
        bail!(
            "unknown suite '{name}': not a file, and not a built-in ({})",
            BUILTIN_SUITES.join(", ")
        );
    };
    let data = data.with_context(|| {
        format!("suite '{name}' needs --data (the world folder or the benchmark file)")
    })?;
    if !data.exists() {
        bail!("--data {} does not exist", data.display());
    }
    Ok(if data.is_file() {
        (spec, PathBuf::from("."), Some(data.to_path_buf()))
    } else {
        (spec, data.to_path_buf(), None)
    })
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if args.list_suites {
        for n in BUILTIN_SUITES {
            let s = builtin(n, &args.split).expect("listed builtin exists");
            println!("{n:<16} {}", s.description);
        }
        return Ok(());
    }
    if let Some(n) = &args.print_suite {
        let s = builtin(n, &args.split).with_context(|| format!("unknown built-in suite '{n}'"))?;
        print!("{}", s.to_toml());
        return Ok(());
    }
    let suite = args.suite.as_deref().context("--suite is required")?;
    let out = args.out.as_deref().context("--out is required")?;
    let (mut spec, root, data_file) = resolve_suite(suite, &args.split, args.data.as_deref())?;
    if let Some(m) = args.max_tokens {
        spec.generation.max_tokens = m;
    }
    if args.versus.is_some() && args.judge.judge.is_none() && args.judge.judge_endpoint.is_none() {
        bail!("--versus needs a judge: --judge endpoint:URL[#MODEL] or --judge local:PATH");
    }
    let (target, local, policy) = args.endpoint.target()?;
    let judge = args.judge.build()?;
    let string_match = StringMatchRefusal;
    let judge_refusal = judge.clone().map(JudgeRefusalClassifier::new);
    let refusal: &dyn RefusalClassifier = match &judge_refusal {
        Some(j) => j,
        None => &string_match,
    };
    let reward: Option<LoglikScorer<Arc<dyn Generator>>> = match &args.reward {
        Some(s) => Some(LoglikScorer(ModelSpec::parse(s)?.build(
            "default",
            None,
            Duration::from_secs(args.endpoint.timeout_s),
        )?)),
        None => None,
    };
    let ctx = EvalContext {
        target: target.as_ref(),
        refusal,
        judge: judge.as_deref(),
        reward: reward.as_ref().map(|r| r as &dyn Scorer),
        run: RunConfig {
            concurrency: if local { 1 } else { args.concurrency.max(1) },
            stop_after: args.limit,
        },
        seed: args.seed,
    };
    let dir = out.join(&spec.name);
    let paths = RunPaths::in_dir(&dir);
    let (report, summary) = run_suite(&spec, &root, data_file.as_deref(), &paths, &ctx)?;
    eprintln!(
        "{} items: {} already done, {} evaluated now, {} left",
        report.items, summary.skipped, summary.processed, summary.remaining
    );
    print!("{}", summary_table(&report));
    println!(
        "results: {}\nmetrics: {}",
        paths.results.display(),
        paths.metrics.display()
    );
    if let (Some(run_dir), Some(stage)) = (&args.record.run_dir, &args.record.stage) {
        let info = StageInfo {
            stage,
            kind: &args.record.stage_kind,
            data_file: data_file.as_deref(),
            rows: Some(report.items as u64),
            role: "eval",
            policy,
            command: Some(command_line()),
            checkpoint: args
                .endpoint
                .model_path
                .as_ref()
                .map(|p| p.display().to_string()),
            model: Some(args.endpoint.model_name()),
        };
        record_suite(run_dir, &info, &report)
            .with_context(|| format!("recording into {}/run.json", run_dir.display()))?;
        println!("run log: {}", run_dir.join("run.json").display());
    }
    if let (Some(other), Some(judge)) = (&args.versus, &judge) {
        let (pw, s) = keel_eval::pairwise::judge_results(
            &paths.results,
            &other.join("results.jsonl"),
            judge.as_ref(),
            &dir,
            ctx.run,
            args.seed,
        )?;
        let f = |e: &Option<keel_eval::stats::Estimate>| {
            e.as_ref()
                .map(|e| format!("{:.3} [{:.3}, {:.3}]", e.value, e.lo, e.hi))
                .unwrap_or_else(|| "-".into())
        };
        let w = &pw.win_rate;
        println!(
            "pairwise vs {} (judge {}): {} pairs judged ({} now, {} left), {} wins / {} losses / {} ties / {} inconsistent\n\
             win rate {}  length-controlled win rate {}\nwin rate: {}",
            other.display(),
            pw.judge,
            w.n,
            s.processed,
            s.remaining,
            w.wins,
            w.losses,
            w.ties,
            w.inconsistent,
            f(&w.win_rate),
            f(&w.lc_win_rate),
            dir.join("winrate.json").display()
        );
    }
    Ok(())
}
