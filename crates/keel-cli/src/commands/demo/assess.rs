//! Measuring one stage's model exactly as `keel eval --suite world` and `keel redteam` would:
//! the world's HHH suites on the test split (entities and templates never trained on), scored
//! against ground truth, and an attack-library pass over the test split's harmful goals. Both
//! are recorded on the stage in the run's `run.json`, which `keel report` renders.

use anyhow::{Context, Result};
use keel_eval::builtin::builtin;
use keel_eval::evaluate::{run_suite, EvalContext, RunPaths, SuiteReport};
use keel_eval::loaders::{self, FieldMap, Format};
use keel_eval::local::LocalModel;
use keel_eval::redteam::attacks::select_attacks;
use keel_eval::redteam::{run_redteam, RedteamConfig};
use keel_eval::refusal::StringMatchRefusal;
use keel_eval::runlog::{record_suite, redteam_metric, redteam_record, update_stage, StageInfo};
use keel_eval::runner::RunConfig;
use keel_eval::SamplingParams;
use std::path::Path;

/// How much of the test split a stage is measured on.
#[derive(Debug, Clone)]
pub struct AssessPlan {
    /// Items per world bank (instructions, harmful, benign-sensitive, unanswerable,
    /// false-premise); `None` = all.
    pub items_per_bank: Option<usize>,
    /// Harmful goals attacked by every attack in the library; 0 skips red-teaming.
    pub redteam_goals: usize,
    pub max_tokens: u32,
}

/// A stage's headline scores (fractions in [0, 1]; `None` = nothing scored).
#[derive(Debug, Clone, Default)]
pub struct Scores {
    pub helpfulness: Option<f64>,
    pub harmlessness: Option<f64>,
    pub over_refusal: Option<f64>,
    pub abstention: Option<f64>,
    pub premise_correction: Option<f64>,
    pub attack_success: Option<f64>,
    pub items: usize,
    pub attempts: usize,
}

impl Scores {
    /// Honesty: abstaining on unanswerables and correcting false premises, equally weighted.
    pub fn honesty(&self) -> Option<f64> {
        Some((self.abstention? + self.premise_correction?) / 2.0)
    }
}

fn metric(r: &SuiteReport, name: &str) -> Option<f64> {
    r.metrics
        .iter()
        .find(|m| m.name == name)
        .and_then(|m| m.overall.value)
}

/// Evaluate `checkpoint` (any model directory `keel eval` accepts) as stage `stage` of the
/// run in `run_dir`; files go to `run_dir/evals/<stage>/`.
pub fn assess(
    run_dir: &Path,
    world_dir: &Path,
    stage: &str,
    kind: &str,
    checkpoint: &Path,
    plan: &AssessPlan,
    seed: u64,
) -> Result<Scores> {
    let target = LocalModel::load(checkpoint)?;
    let refusal = StringMatchRefusal;
    let mut spec = builtin("world", "test").context("the built-in world suite is missing")?;
    for s in &mut spec.sources {
        s.limit = plan.items_per_bank;
    }
    spec.generation.max_tokens = plan.max_tokens;
    let out = run_dir.join("evals").join(stage);
    let ctx = EvalContext {
        target: &target,
        refusal: &refusal,
        judge: None,
        reward: None,
        run: RunConfig {
            concurrency: 1,
            stop_after: None,
        },
        seed,
    };
    let (report, _) = run_suite(
        &spec,
        world_dir,
        None,
        &RunPaths::in_dir(&out.join("world")),
        &ctx,
    )?;
    let rel = checkpoint
        .strip_prefix(run_dir)
        .unwrap_or(checkpoint)
        .display()
        .to_string();
    let info = StageInfo {
        stage,
        kind,
        rows: Some(report.items as u64),
        role: "eval",
        checkpoint: Some(rel),
        model: Some("keel-demo".into()),
        ..Default::default()
    };
    record_suite(run_dir, &info, &report)?;
    let mut scores = Scores {
        helpfulness: metric(&report, "helpfulness"),
        harmlessness: metric(&report, "harmlessness"),
        over_refusal: metric(&report, "over_refusal"),
        abstention: metric(&report, "abstention"),
        premise_correction: metric(&report, "premise_correction"),
        items: report.items,
        ..Default::default()
    };
    if plan.redteam_goals == 0 {
        return Ok(scores);
    }

    // Red-team: one goal per hazard category first, so every category is attacked.
    let goals_path = world_dir.join("tasks/test/harmful.jsonl");
    let fields = FieldMap {
        category: "hazard".into(),
        ..FieldMap::default()
    };
    let mut all = loaders::load(&goals_path, Format::Jsonl, &fields)?;
    all.sort_by_key(|g| g.category.clone());
    let mut goals = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for g in &all {
        if goals.len() < plan.redteam_goals && seen.insert(g.category.clone()) {
            goals.push(g.clone());
        }
    }
    for g in &all {
        if goals.len() < plan.redteam_goals && !goals.iter().any(|x| x.id == g.id) {
            goals.push(g.clone());
        }
    }
    let cfg = RedteamConfig {
        attacks: select_attacks(&[]).map_err(anyhow::Error::msg)?,
        pair: None,
        params: SamplingParams {
            max_tokens: plan.max_tokens,
            seed: Some(seed),
            ..SamplingParams::default()
        },
        run: RunConfig {
            concurrency: 1,
            stop_after: None,
        },
        seed,
    };
    let (summary, _) = run_redteam(&goals, &target, &refusal, &cfg, &out.join("redteam"))?;
    let info = StageInfo {
        data_file: Some(&goals_path),
        rows: Some(goals.len() as u64),
        role: "redteam",
        ..info
    };
    update_stage(run_dir, &info, |st| {
        st.redteam = Some(redteam_record(&summary));
        st.upsert_eval(redteam_metric(&summary));
    })?;
    scores.attack_success = summary.overall.asr;
    scores.attempts = summary.attempts;
    Ok(scores)
}

/// `0.42` → `42%`; `None` → `–`.
pub fn percent(v: Option<f64>) -> String {
    v.map(|x| format!("{:.0}%", 100.0 * x))
        .unwrap_or_else(|| "–".into())
}

/// The stage × metric table of the demo summary.
pub fn table(rows: &[(String, Scores)]) -> String {
    let mut s = String::from(
        "| model | helpfulness ↑ | harmful refused ↑ | over-refusal ↓ | honesty ↑ (abstain / fix premise) | attack success ↓ |\n|---|---|---|---|---|---|\n",
    );
    for (name, sc) in rows {
        s.push_str(&format!(
            "| {name} | {} | {} | {} | {} ({} / {}) | {} |\n",
            percent(sc.helpfulness),
            percent(sc.harmlessness),
            percent(sc.over_refusal),
            percent(sc.honesty()),
            percent(sc.abstention),
            percent(sc.premise_correction),
            if sc.attempts > 0 {
                format!("{} of {} attempts", percent(sc.attack_success), sc.attempts)
            } else {
                "not run".into()
            },
        ));
    }
    s
}
