//! RLAIF labelling (`keel label`): an AI judge turns response pairs into preference data.
//!
//! A judge is either a generator asked MT-bench's pairwise question twice, once in each
//! order ([`GeneratorJudge`]: a local model, any OpenAI-compatible endpoint), or a scalar
//! scorer such as a trained reward model ([`ScorerJudge`]), which has no order to be biased
//! by. Only a pair both orderings agree on becomes a preference; ties and inconsistent
//! pairs are dropped unless asked for, and kept rows carry flags saying what they are.
//! A judge call that fails or cannot be read leaves the pair *unscored*: it is reported and
//! never counted as agreement or disagreement with gold labels.
//!
//! Input rows (JSONL, one object per line) come in two shapes:
//! - `{"prompt", "chosen", "rejected"}` (TRL, the world's `tasks/<split>/preferences.jsonl`):
//!   gold is known. Which side the judge sees as A is a seeded coin flip per pair, so gold
//!   is "a" about half the time and kappa is meaningful.
//! - `{"prompt", "response_a", "response_b"}` with an optional `"gold": "a" | "b"`.
//!
//! Other fields (`id`, `defect` …) travel into the output metadata.

use crate::error::{EvalError, GenError};
use crate::generator::{GenRequest, Generator, SamplingParams};
use crate::judge::{parse_verdict, resolve_swap, PairOutcome, Verdict, PAIRWISE_PROMPT};
use crate::reward::Scorer;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

mod report;

pub use report::{report, GoldAgreement, LabelReport};

/// Which of the two responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    A,
    B,
}

/// One pair to label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairInput {
    pub id: String,
    pub prompt: String,
    pub response_a: String,
    pub response_b: String,
    /// The better response, when known.
    pub gold: Option<Side>,
    /// Every other input field (e.g. the world's `defect`).
    pub meta: Map<String, Value>,
}

fn str_field(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("field \"{key}\" must be a string")),
    }
}

/// Parse one input line (see the module docs). `flip` puts `chosen` on side B.
fn parse_pair(line: &str, index: usize, flip: bool) -> Result<PairInput, String> {
    let obj = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err("expected a JSON object".into()),
        Err(e) => return Err(format!("invalid JSON: {e}")),
    };
    let prompt = str_field(&obj, "prompt")?.ok_or("missing field \"prompt\"")?;
    let id = match obj.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => format!("pair-{index:05}"),
    };
    let chosen = str_field(&obj, "chosen")?;
    let rejected = str_field(&obj, "rejected")?;
    let (a, b, gold, used): (String, String, Option<Side>, &[&str]) = match (chosen, rejected) {
        (Some(c), Some(r)) if flip => (r, c, Some(Side::B), &["chosen", "rejected"]),
        (Some(c), Some(r)) => (c, r, Some(Side::A), &["chosen", "rejected"]),
        (Some(_), None) | (None, Some(_)) => {
            return Err("has only one of \"chosen\" / \"rejected\"".into())
        }
        (None, None) => {
            let a = str_field(&obj, "response_a")?;
            let b = str_field(&obj, "response_b")?;
            let (Some(a), Some(b)) = (a, b) else {
                return Err(
                    "needs \"chosen\"+\"rejected\" or \"response_a\"+\"response_b\"".into(),
                );
            };
            let gold = match str_field(&obj, "gold")?.as_deref().map(str::trim) {
                None => None,
                Some("a" | "A") => Some(Side::A),
                Some("b" | "B") => Some(Side::B),
                Some(other) => {
                    return Err(format!(
                        "field \"gold\" must be \"a\" or \"b\", found {other:?}"
                    ))
                }
            };
            (a, b, gold, &["response_a", "response_b", "gold"])
        }
    };
    let meta = obj
        .into_iter()
        .filter(|(k, _)| k != "prompt" && k != "id" && !used.contains(&k.as_str()))
        .collect();
    Ok(PairInput {
        id,
        prompt,
        response_a: a,
        response_b: b,
        gold,
        meta,
    })
}

/// Read pairs from a JSONL file. Blank lines are skipped; a bad line is an error naming the
/// file and line. `seed` drives the chosen/rejected → A/B coin flips.
pub fn read_pairs(path: &Path, seed: u64) -> Result<Vec<PairInput>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let mut rng = keel_core::rng::rng_for(seed, "label/order");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let flip = rng.random_bool(0.5);
        out.push(parse_pair(line, out.len(), flip).map_err(|m| EvalError::data(path, i + 1, m))?);
    }
    Ok(out)
}

/// What a judge said about one pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub outcome: PairOutcome,
    /// The verdict with A shown first, and with B shown first (generator judges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a_first: Option<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b_first: Option<Verdict>,
    /// r(A), r(B) (scorer judges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores: Option<[f64; 2]>,
}

/// Anything that can prefer one of two responses.
pub trait PreferenceJudge: Send + Sync {
    fn name(&self) -> String;
    fn judge(&self, prompt: &str, a: &str, b: &str) -> Result<Judgement, GenError>;
}

/// Replace each placeholder in one left-to-right pass, so text that itself contains a
/// placeholder (a response quoting "{answer_b}") is never substituted again.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    loop {
        let next = vars
            .iter()
            .filter_map(|(k, v)| rest.find(k).map(|i| (i, *k, *v)))
            .min_by_key(|(i, _, _)| *i);
        match next {
            Some((i, k, v)) => {
                out.push_str(&rest[..i]);
                out.push_str(v);
                rest = &rest[i + k.len()..];
            }
            None => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// A generator judging pairwise, with position swap. The template has `{question}`,
/// `{answer_a}` and `{answer_b}` and must ask for `[[A]]`, `[[B]]` or `[[C]]`.
pub struct GeneratorJudge<G> {
    judge: G,
    template: String,
    params: SamplingParams,
}

impl<G: Generator> GeneratorJudge<G> {
    /// MT-bench's pairwise prompt ([`PAIRWISE_PROMPT`]), greedy, up to 512 tokens.
    pub fn new(judge: G) -> Self {
        Self::with_template(judge, PAIRWISE_PROMPT)
    }
    pub fn with_template(judge: G, template: impl Into<String>) -> Self {
        GeneratorJudge {
            judge,
            template: template.into(),
            params: SamplingParams {
                max_tokens: 512,
                ..SamplingParams::default()
            },
        }
    }
    pub fn with_params(mut self, params: SamplingParams) -> Self {
        self.params = params;
        self
    }

    fn ask(&self, question: &str, first: &str, second: &str) -> Result<Verdict, GenError> {
        let p = fill(
            &self.template,
            &[
                ("{question}", question),
                ("{answer_a}", first),
                ("{answer_b}", second),
            ],
        );
        let out = self
            .judge
            .generate(&GenRequest::user(p, self.params.clone()))?;
        parse_verdict(&out.text).ok_or(GenError::Unparseable(out.text))
    }
}

impl<G: Generator> PreferenceJudge for GeneratorJudge<G> {
    fn name(&self) -> String {
        format!("pairwise:{}", self.judge.name())
    }
    fn judge(&self, prompt: &str, a: &str, b: &str) -> Result<Judgement, GenError> {
        let a_first = self.ask(prompt, a, b)?;
        let b_first = self.ask(prompt, b, a)?;
        Ok(Judgement {
            outcome: resolve_swap(a_first, b_first),
            a_first: Some(a_first),
            b_first: Some(b_first),
            scores: None,
        })
    }
}

/// A scalar scorer (a reward model) as a judge: the higher score wins; equal scores tie.
pub struct ScorerJudge<S>(pub S);

impl<S: Scorer> PreferenceJudge for ScorerJudge<S> {
    fn name(&self) -> String {
        format!("scorer:{}", self.0.name())
    }
    fn judge(&self, prompt: &str, a: &str, b: &str) -> Result<Judgement, GenError> {
        let (ra, rb) = (self.0.score(prompt, a)?, self.0.score(prompt, b)?);
        if !ra.is_finite() || !rb.is_finite() {
            return Err(GenError::Other(format!("non-finite reward ({ra}, {rb})")));
        }
        let outcome = match ra.partial_cmp(&rb) {
            Some(std::cmp::Ordering::Greater) => PairOutcome::AWins,
            Some(std::cmp::Ordering::Less) => PairOutcome::BWins,
            _ => PairOutcome::Tie,
        };
        Ok(Judgement {
            outcome,
            a_first: None,
            b_first: None,
            scores: Some([ra, rb]),
        })
    }
}

/// Options for [`label_pairs`].
#[derive(Debug, Clone, Default)]
pub struct LabelConfig {
    /// Keep pairs the judge called a tie (written A as chosen, flagged `"tie": true`).
    pub keep_ties: bool,
    /// Keep pairs whose two orderings disagreed (A as chosen, `"inconsistent": true`).
    pub keep_inconsistent: bool,
    /// Judge calls in flight at once (1 for in-process models).
    pub concurrency: usize,
}

/// One labelled pair: the judgement or the judge's error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRecord {
    pub id: String,
    pub judgement: Option<Judgement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub gold: Option<Side>,
}

/// The judge's label as a three-way class ("a", "b", "tie"); inconsistent pairs count as
/// ties, as in MT-bench's consistency protocol.
fn judge_label(o: PairOutcome) -> &'static str {
    match o {
        PairOutcome::AWins => "a",
        PairOutcome::BWins => "b",
        PairOutcome::Tie | PairOutcome::Inconsistent => "tie",
    }
}

/// Run `f` over `items` with up to `concurrency` threads, keeping input order.
pub(crate) fn par_map<T: Sync, R: Send>(
    items: &[T],
    concurrency: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..concurrency.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}

/// Judge every pair. Judge failures become records with an error, never a label.
pub fn judge_pairs(
    judge: &dyn PreferenceJudge,
    pairs: &[PairInput],
    concurrency: usize,
) -> Vec<LabelRecord> {
    par_map(pairs, concurrency, |p| {
        let r = judge.judge(&p.prompt, &p.response_a, &p.response_b);
        LabelRecord {
            id: p.id.clone(),
            gold: p.gold,
            error: r.as_ref().err().map(|e| e.to_string()),
            judgement: r.ok(),
        }
    })
}

/// The TRL preference row for a judged pair, or `None` when it is dropped (judge error, or a
/// tie / inconsistency without the flag to keep it).
pub fn preference_row(
    pair: &PairInput,
    rec: &LabelRecord,
    judge_name: &str,
    cfg: &LabelConfig,
) -> Option<Value> {
    let j = rec.judgement.as_ref()?;
    let (chosen, rejected) = match j.outcome {
        PairOutcome::AWins => (&pair.response_a, &pair.response_b),
        PairOutcome::BWins => (&pair.response_b, &pair.response_a),
        PairOutcome::Tie if cfg.keep_ties => (&pair.response_a, &pair.response_b),
        PairOutcome::Inconsistent if cfg.keep_inconsistent => (&pair.response_a, &pair.response_b),
        _ => return None,
    };
    let mut row = Map::new();
    row.insert("prompt".into(), pair.prompt.clone().into());
    row.insert("chosen".into(), chosen.clone().into());
    row.insert("rejected".into(), rejected.clone().into());
    row.insert("id".into(), pair.id.clone().into());
    row.insert("judge".into(), judge_name.into());
    row.insert("tie".into(), (j.outcome == PairOutcome::Tie).into());
    row.insert(
        "inconsistent".into(),
        (j.outcome == PairOutcome::Inconsistent).into(),
    );
    // Serialising our own plain struct cannot fail; an empty object is a safe fallback.
    row.insert(
        "judgement".into(),
        serde_json::to_value(j).unwrap_or_default(),
    );
    if let Some(g) = pair.gold {
        let agrees = judge_label(j.outcome) == if g == Side::A { "a" } else { "b" };
        row.insert("gold_agrees".into(), agrees.into());
    }
    for (k, v) in &pair.meta {
        row.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Some(Value::Object(row))
}

/// Everything a labelling run produced, ready to write.
#[derive(Debug, Clone)]
pub struct LabelRun {
    pub records: Vec<LabelRecord>,
    /// TRL preference rows (with judge metadata).
    pub rows: Vec<Value>,
    pub report: LabelReport,
}

/// Label `pairs` with `judge`: judge each pair (both orders for generator judges), build
/// the preference rows and the report.
pub fn label_pairs(
    judge: &dyn PreferenceJudge,
    pairs: &[PairInput],
    cfg: &LabelConfig,
) -> LabelRun {
    let name = judge.name();
    let records = judge_pairs(judge, pairs, cfg.concurrency);
    let rows: Vec<Value> = pairs
        .iter()
        .zip(&records)
        .filter_map(|(p, r)| preference_row(p, r, &name, cfg))
        .collect();
    let report = report(&name, pairs, &records, rows.len());
    LabelRun {
        records,
        rows,
        report,
    }
}

/// Label the world's preference pairs of `split` (`<world>/tasks/<split>/preferences.jsonl`,
/// which have gold) with `judge`: the demo's RLAIF step.
pub fn label_world(
    world: &Path,
    split: keel_data::world::Split,
    judge: &dyn PreferenceJudge,
    cfg: &LabelConfig,
    seed: u64,
) -> Result<LabelRun, EvalError> {
    let path = keel_data::world::write::bank_path(world, split, "preferences");
    let pairs = read_pairs(&path, seed)?;
    Ok(label_pairs(judge, &pairs, cfg))
}

/// Write JSON values as JSONL, atomically.
pub fn write_jsonl_atomic<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), EvalError> {
    let mut buf = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut buf, r).map_err(|e| {
            EvalError::Config(format!("{}: cannot serialise a row: {e}", path.display()))
        })?;
        buf.push(b'\n');
    }
    keel_core::artifact::write_atomic(path, &buf)?;
    Ok(())
}

/// Write `preferences.jsonl` (TRL rows), `labels.jsonl` (every pair's judgement or error)
/// and `report.json` into `dir`.
pub fn write_label_run(dir: &Path, run: &LabelRun) -> Result<(), EvalError> {
    write_jsonl_atomic(&dir.join("preferences.jsonl"), &run.rows)?;
    write_jsonl_atomic(&dir.join("labels.jsonl"), &run.records)?;
    keel_core::artifact::write_json_atomic(&dir.join("report.json"), &run.report)?;
    Ok(())
}
