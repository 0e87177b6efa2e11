//! Running a suite against a target: items → (resumable, concurrent) generation and
//! scoring → `results.jsonl` → metrics with intervals → `metrics.json`.

use crate::error::{GenError, Result};
use crate::generator::{GenRequest, Generator, Message, SamplingParams};
use crate::item::{render_template, EvalItem};
use crate::judge::rate;
use crate::mc::score_mc;
use crate::metrics::{compute, counts, MetricResult};
use crate::record::{Counts, ItemRecord, Outcome};
use crate::refusal::RefusalClassifier;
use crate::reward::{score_pair, LoglikScorer, Scorer};
use crate::runner::{run_resumable, RunConfig, RunSummary};
use crate::scorers::{score_text, ScorerKind};
use crate::suite::{load_items, OutputType, SourceSpec, SuiteSpec};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything a suite run needs besides the spec.
pub struct EvalContext<'a> {
    /// The model under evaluation.
    pub target: &'a dyn Generator,
    /// Refusal detector for refuse / comply / abstain scorers.
    pub refusal: &'a dyn RefusalClassifier,
    /// Judge for `judge_rating` scorers (none: those items are unscored).
    pub judge: Option<&'a dyn Generator>,
    /// Reward scorer for `preference` suites (none: the target's own log-likelihood).
    pub reward: Option<&'a dyn Scorer>,
    pub run: RunConfig,
    /// Seed for bootstrap intervals.
    pub seed: u64,
}

/// Where a run's files go.
#[derive(Debug, Clone)]
pub struct RunPaths {
    pub results: PathBuf,
    pub metrics: PathBuf,
}

impl RunPaths {
    pub fn in_dir(dir: &Path) -> RunPaths {
        RunPaths {
            results: dir.join("results.jsonl"),
            metrics: dir.join("metrics.json"),
        }
    }
}

/// The metrics file of one suite run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteReport {
    pub suite: String,
    pub description: String,
    pub target: String,
    pub refusal_classifier: String,
    pub items: usize,
    pub counts: Counts,
    /// Items not yet run (the run was bounded with a limit).
    pub remaining: usize,
    pub metrics: Vec<MetricResult>,
}

fn chat_messages(spec: &SuiteSpec, user: String) -> Vec<Message> {
    let mut m = Vec::new();
    if let Some(s) = &spec.system {
        m.push(Message::system(s.clone()));
    }
    m.push(Message::user(user));
    m
}

/// Generate the answer (following up through all turns); returns the last answer.
fn generate_answer(
    spec: &SuiteSpec,
    target: &dyn Generator,
    rendered: &str,
    item: &EvalItem,
) -> std::result::Result<String, GenError> {
    let params: SamplingParams = spec.generation.clone();
    if !spec.chat {
        return Ok(target.generate(&GenRequest::raw(rendered, params))?.text);
    }
    let mut messages = chat_messages(spec, rendered.to_string());
    let mut answer = target
        .generate(&GenRequest::chat(messages.clone(), params.clone()))?
        .text;
    for follow in &item.followups {
        messages.push(Message::assistant(answer));
        messages.push(Message::user(follow.clone()));
        answer = target
            .generate(&GenRequest::chat(messages.clone(), params.clone()))?
            .text;
    }
    Ok(answer)
}

/// Run one item end to end. Never fails: every problem becomes an unscored record.
pub fn evaluate_item(
    spec: &SuiteSpec,
    src: &SourceSpec,
    item: &EvalItem,
    ctx: &EvalContext,
) -> ItemRecord {
    let mut rec = ItemRecord::new(item.id.clone(), src.name.clone(), item.prompt.clone());
    rec.category = item.category.clone();
    let rendered = match render_template(&spec.template, item) {
        Ok(r) => r,
        Err(e) => {
            rec.reason = Some(format!("template: {e}"));
            return rec;
        }
    };
    let target_failed = |rec: &mut ItemRecord, e: GenError| {
        rec.retryable = e.is_retryable();
        rec.reason = Some(format!("target: {e}"));
    };
    match spec.output {
        OutputType::Generate => {
            let answer = match generate_answer(spec, ctx.target, &rendered, item) {
                Ok(a) => a,
                Err(e) => {
                    target_failed(&mut rec, e);
                    return rec;
                }
            };
            let scored = if src.scorer == ScorerKind::JudgeRating {
                match ctx.judge {
                    None => crate::scorers::Scored::unscored("no judge configured"),
                    Some(j) => match rate(
                        j,
                        &rendered,
                        &answer,
                        item.gold.as_ref().and_then(|g| g.as_text()),
                    ) {
                        // MT-bench convention: a rating of 7+ is a "pass" for counting; the
                        // mean rating is the metric.
                        Ok(v) => crate::scorers::Scored {
                            value: Some(v),
                            ..crate::scorers::Scored::pass_if(v >= 7.0)
                        },
                        Err(e) => crate::scorers::Scored::unscored(format!("judge: {e}")),
                    },
                }
            } else {
                score_text(src.scorer, item, &answer, ctx.refusal)
            };
            rec.response = Some(answer);
            rec.outcome = scored.outcome;
            rec.value = scored.value;
            rec.label = scored.label;
            rec.reason = scored.reason;
        }
        OutputType::MultipleChoice => {
            let Some(mc) = &item.mc else {
                rec.reason = Some("item has no multiple-choice targets".into());
                return rec;
            };
            match score_mc(ctx.target, &rendered, mc) {
                Ok(s) => {
                    rec.outcome = s.mc1;
                    rec.value = s.mc2;
                }
                Err(e) => target_failed(&mut rec, e),
            }
        }
        OutputType::Preference => {
            let Some(pair) = &item.pair else {
                rec.reason = Some("item has no preference pair".into());
                return rec;
            };
            let fallback = LoglikScorer(ctx.target);
            let scorer: &dyn Scorer = match ctx.reward {
                Some(r) => r,
                None => &fallback,
            };
            match score_pair(scorer, pair) {
                Ok((o, margin)) => {
                    rec.outcome = o;
                    rec.value = Some(margin);
                }
                Err(e) => {
                    rec.retryable = e.is_retryable();
                    rec.reason = Some(format!("reward: {e}"));
                }
            }
        }
    }
    if rec.outcome == Outcome::Unscored && rec.reason.is_none() {
        rec.reason = Some("scorer gave no verdict".into());
    }
    rec
}

/// Run a suite: load items, evaluate (resuming from `paths.results`), compute metrics and
/// write `paths.metrics` atomically.
pub fn run_suite(
    spec: &SuiteSpec,
    data_root: &Path,
    data_file: Option<&Path>,
    paths: &RunPaths,
    ctx: &EvalContext,
) -> Result<(SuiteReport, RunSummary)> {
    let items = load_items(spec, data_root, data_file)?;
    let src_of = |name: &str| spec.sources.iter().find(|s| s.name == name);
    let (records, summary) = run_resumable(
        &items,
        &paths.results,
        ctx.run,
        |(src, it)| format!("{src}/{}", it.id),
        |(src, it)| match src_of(src) {
            Some(s) => evaluate_item(spec, s, it, ctx),
            None => ItemRecord::new(it.id.clone(), src.clone(), it.prompt.clone()),
        },
    )?;
    let report = SuiteReport {
        suite: spec.name.clone(),
        description: spec.description.clone(),
        target: ctx.target.name(),
        refusal_classifier: ctx.refusal.name(),
        items: items.len(),
        counts: counts(&records),
        remaining: summary.remaining,
        metrics: spec
            .metrics
            .iter()
            .map(|m| compute(m, &records, ctx.seed))
            .collect(),
    };
    keel_core::artifact::write_json_atomic(&paths.metrics, &report)?;
    Ok((report, summary))
}

/// A plain-text table of a report's metrics.
pub fn summary_table(r: &SuiteReport) -> String {
    let mut s = format!(
        "suite {} · target {} · {} items ({} pass, {} fail, {} unscored)\n",
        r.suite, r.target, r.items, r.counts.pass, r.counts.fail, r.counts.unscored
    );
    s.push_str(&format!(
        "{:<28} {:>8} {:>19} {:>6} {:>9}\n",
        "metric", "value", "95% CI", "n", "better"
    ));
    for m in &r.metrics {
        let v = &m.overall;
        let fmt = |x: Option<f64>| x.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
        let n = match m.aggregate {
            crate::metrics::Aggregate::MeanValue => v.n_values as u64,
            _ => v.counts.scored(),
        };
        s.push_str(&format!(
            "{:<28} {:>8} {:>19} {:>6} {:>9}\n",
            m.name,
            fmt(v.value),
            format!("[{}, {}]", fmt(v.ci_low), fmt(v.ci_high)),
            n,
            format!("{:?}", m.direction).to_lowercase()
        ));
    }
    if r.remaining > 0 {
        s.push_str(&format!(
            "({} items not yet run: rerun to continue)\n",
            r.remaining
        ));
    }
    s
}
