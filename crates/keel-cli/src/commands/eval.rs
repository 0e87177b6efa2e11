//! `keel eval`: run an evaluation suite against a target and write results + metrics.
//!
//! ```text
//! keel eval --suite world --data runs/world --endpoint http://127.0.0.1:8000/v1 --model m --out runs/eval
//! keel eval --suite do_not_answer --data ../shared/data/harmful/do_not_answer.csv --endpoint ... --out ...
//! keel eval --suite my_suite.toml --endpoint ... --out ...
//! keel eval --print-suite honesty          # a built-in suite as an editable TOML file
//! ```
//! Results land in `OUT/<suite>/results.jsonl` (a journal: rerunning the same command
//! resumes where a crashed run stopped) and `OUT/<suite>/metrics.json`.

use anyhow::{bail, Context};
use keel_eval::builtin::{builtin, BUILTIN_SUITES};
use keel_eval::evaluate::{run_suite, summary_table, EvalContext, RunPaths};
use keel_eval::guarded::GuardedGenerator;
use keel_eval::local::LocalModel;
use keel_eval::refusal::{JudgeRefusalClassifier, RefusalClassifier, StringMatchRefusal};
use keel_eval::runner::RunConfig;
use keel_eval::{Generator, OpenAiEndpoint, RetryPolicy, SuiteSpec};
use std::path::{Path, PathBuf};
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
    /// The target generator, and whether it runs in-process (then one request at a time:
    /// candle already uses every core for one forward pass).
    pub fn target(&self) -> anyhow::Result<(Box<dyn Generator>, bool)> {
        let (bare, local): (Box<dyn Generator>, bool) = if let Some(p) = &self.model_path {
            (Box::new(LocalModel::load(p)?), true)
        } else {
            match self.build()? {
                Some(ep) => (Box::new(ep), false),
                None => bail!("no target: pass --endpoint URL or --model-path CHECKPOINT"),
            }
        };
        if self.guard.is_empty() {
            return Ok((bare, local));
        }
        let guard = keel_guard::Guard::from_profiles(&self.guard)
            .with_context(|| format!("loading guard profiles {}", self.guard.join(",")))?;
        Ok((
            Box::new(GuardedGenerator::new(bare, guard, self.guard.join("+"))),
            local,
        ))
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

/// A judge model (for refusal classification, ratings, red-team success).
#[derive(clap::Args, Debug, Clone)]
pub struct JudgeArgs {
    /// Judge endpoint (OpenAI-compatible); without it, refusals are string-matched.
    #[arg(long)]
    pub judge_endpoint: Option<String>,
    #[arg(long, default_value = "default")]
    pub judge_model: String,
    #[arg(long)]
    pub judge_api_key_env: Option<String>,
}

impl JudgeArgs {
    pub fn build(&self) -> anyhow::Result<Option<OpenAiEndpoint>> {
        EndpointArgs {
            model_path: None,
            endpoint: self.judge_endpoint.clone(),
            model: self.judge_model.clone(),
            api_key_env: self.judge_api_key_env.clone(),
            timeout_s: 120,
            max_retries: 4,
            guard: Vec::new(),
        }
        .build()
    }
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
    let (target, local) = args.endpoint.target()?;
    let judge = args.judge.build()?;
    let string_match = StringMatchRefusal;
    let judge_refusal = judge.clone().map(JudgeRefusalClassifier::new);
    let refusal: &dyn RefusalClassifier = match &judge_refusal {
        Some(j) => j,
        None => &string_match,
    };
    let ctx = EvalContext {
        target: target.as_ref(),
        refusal,
        judge: judge.as_ref().map(|j| j as &dyn Generator),
        reward: None,
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
    Ok(())
}
