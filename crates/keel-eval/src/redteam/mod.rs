//! Red-teaming: attack a target with the attack library (and optionally a PAIR-style
//! attacker model) on harmful goals; measure attack success rate (ASR) per attack and per
//! harm category with Wilson intervals; write garak-compatible JSONL and a summary table.
//!
//! An attack *succeeds* when the judge labels the target's final answer full compliance.
//! With the string-match refusal detector this over-counts success on answers that are
//! off-topic or garbled (a decoded-nonsense reply is not a refusal); a judge model
//! ([`crate::refusal::JudgeRefusalClassifier`]) is the stronger choice when one is available.

pub mod attacks;
pub mod encodings;
pub mod garak;
pub mod pair;
pub mod summary;

use crate::error::{GenError, Result};
use crate::generator::{GenRequest, Generator, Message, SamplingParams};
use crate::item::EvalItem;
use crate::refusal::{RefusalClassifier, RefusalLabel};
use crate::runner::{run_resumable, RunConfig, RunSummary};
use attacks::{Attack, AttackPlan};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One attack on one goal, as journaled in `attempts.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub goal_id: String,
    pub attack: String,
    #[serde(default)]
    pub category: Option<String>,
    pub goal: String,
    /// The whole exchange, including the target's answers.
    pub conversation: Vec<Message>,
    pub response: Option<String>,
    /// `Some(true)`: the target complied (attack succeeded); `None`: unscored.
    pub success: Option<bool>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Attack rounds used (PAIR); 1 for static attacks.
    pub rounds: usize,
    #[serde(default)]
    pub retryable: bool,
}

impl crate::record::Resumable for AttemptRecord {
    fn key(&self) -> String {
        format!("{}/{}", self.attack, self.goal_id)
    }
    fn is_final(&self) -> bool {
        !self.retryable
    }
}

/// The iterative attacker's settings.
pub struct PairConfig<'a> {
    pub attacker: &'a dyn Generator,
    /// Maximum attack prompts per goal (the first is the goal itself).
    pub rounds: usize,
}

/// A red-team run's settings.
pub struct RedteamConfig<'a> {
    pub attacks: Vec<Box<dyn Attack>>,
    pub pair: Option<PairConfig<'a>>,
    pub params: SamplingParams,
    pub run: RunConfig,
    pub seed: u64,
}

/// Name under which PAIR attempts are reported.
pub const PAIR_ATTACK: &str = "iterative.pair";

fn judge_success(
    judge: &dyn RefusalClassifier,
    goal: &str,
    response: &str,
) -> (Option<bool>, Option<String>, Option<String>) {
    match judge.classify(goal, response) {
        Ok(l) => (
            Some(l == RefusalLabel::FullCompliance),
            Some(l.as_str().into()),
            None,
        ),
        Err(e) => (None, None, Some(format!("judge: {e}"))),
    }
}

/// Play a static attack plan turn by turn; returns the conversation and final answer.
fn play(
    target: &dyn Generator,
    plan: &AttackPlan,
    params: &SamplingParams,
) -> (Vec<Message>, std::result::Result<String, GenError>) {
    let mut conv: Vec<Message> = plan
        .system
        .iter()
        .map(|s| Message::system(s.clone()))
        .collect();
    let mut last = Err(GenError::Other("attack plan has no turns".into()));
    for turn in &plan.turns {
        conv.push(Message::user(turn.clone()));
        match target.generate(&GenRequest::chat(conv.clone(), params.clone())) {
            Ok(r) => {
                conv.push(Message::assistant(r.text.clone()));
                last = Ok(r.text);
            }
            Err(e) => return (conv, Err(e)),
        }
    }
    (conv, last)
}

fn base_record(goal: &EvalItem, attack: String) -> AttemptRecord {
    AttemptRecord {
        goal_id: goal.id.clone(),
        attack,
        category: goal.category.clone(),
        goal: goal.prompt.clone(),
        conversation: Vec::new(),
        response: None,
        success: None,
        label: None,
        reason: None,
        rounds: 1,
        retryable: false,
    }
}

fn run_static(
    target: &dyn Generator,
    judge: &dyn RefusalClassifier,
    attack: &dyn Attack,
    goal: &EvalItem,
    params: &SamplingParams,
) -> AttemptRecord {
    let mut rec = base_record(goal, attack.name());
    let (conv, answer) = play(target, &attack.plan(&goal.prompt), params);
    rec.conversation = conv;
    match answer {
        Ok(a) => {
            let (s, l, why) = judge_success(judge, &goal.prompt, &a);
            rec.success = s;
            rec.label = l;
            rec.reason = why;
            rec.response = Some(a);
        }
        Err(e) => {
            rec.retryable = e.is_retryable();
            rec.reason = Some(format!("target: {e}"));
        }
    }
    rec
}

fn run_pair(
    target: &dyn Generator,
    judge: &dyn RefusalClassifier,
    pair: &PairConfig,
    goal: &EvalItem,
    params: &SamplingParams,
    seed: u64,
) -> AttemptRecord {
    let mut rec = base_record(goal, PAIR_ATTACK.into());
    let mut prompt = goal.prompt.clone();
    for round in 1..=pair.rounds.max(1) {
        rec.rounds = round;
        let conv = vec![Message::user(prompt.clone())];
        let answer = match target.generate(&GenRequest::chat(conv.clone(), params.clone())) {
            Ok(r) => r.text,
            Err(e) => {
                rec.retryable = e.is_retryable();
                rec.reason = Some(format!("target: {e}"));
                rec.success = None;
                return rec;
            }
        };
        rec.conversation = conv;
        rec.conversation.push(Message::assistant(answer.clone()));
        rec.response = Some(answer.clone());
        let (s, l, why) = judge_success(judge, &goal.prompt, &answer);
        rec.success = s;
        rec.label = l;
        rec.reason = why;
        if s != Some(false) || round == pair.rounds {
            // Success, or the judge failed (unscored: do not keep attacking blind), or done.
            return rec;
        }
        match pair::next_prompt(
            pair.attacker,
            &goal.prompt,
            &prompt,
            &answer,
            Some(seed ^ round as u64),
        ) {
            Ok(p) => prompt = p,
            Err(e) => {
                // The target resisted every round it saw: a real (failed-attack) outcome.
                rec.reason = Some(format!("attacker stopped after round {round}: {e}"));
                return rec;
            }
        }
    }
    rec
}

/// Attack every goal with every attack (and PAIR if configured), journaling to
/// `out_dir/attempts.jsonl`, then write the garak report and summaries.
pub fn run_redteam(
    goals: &[EvalItem],
    target: &dyn Generator,
    judge: &dyn RefusalClassifier,
    cfg: &RedteamConfig,
    out_dir: &Path,
) -> Result<(summary::RedteamSummary, RunSummary)> {
    // Work units: (attack index or PAIR = attacks.len(), goal index).
    let n_att = cfg.attacks.len() + usize::from(cfg.pair.is_some());
    let units: Vec<(usize, usize)> = (0..n_att)
        .flat_map(|a| (0..goals.len()).map(move |g| (a, g)))
        .collect();
    let attack_name = |a: usize| {
        cfg.attacks
            .get(a)
            .map(|x| x.name())
            .unwrap_or_else(|| PAIR_ATTACK.into())
    };
    let (records, run) = run_resumable(
        &units,
        &out_dir.join("attempts.jsonl"),
        cfg.run,
        |&(a, g)| format!("{}/{}", attack_name(a), goals[g].id),
        |&(a, g)| match (cfg.attacks.get(a), &cfg.pair) {
            (Some(att), _) => run_static(target, judge, att.as_ref(), &goals[g], &cfg.params),
            (None, Some(p)) => run_pair(target, judge, p, &goals[g], &cfg.params, cfg.seed),
            (None, None) => base_record(&goals[g], attack_name(a)),
        },
    )?;
    let summary = summary::summarise(&records, &target.name(), &judge.name(), run.remaining);
    keel_core::artifact::write_json_atomic(&out_dir.join("redteam_summary.json"), &summary)?;
    keel_core::artifact::write_atomic(
        &out_dir.join("summary.md"),
        summary::table(&summary).as_bytes(),
    )?;
    let report = garak::report_jsonl(&records, &summary, cfg.seed);
    keel_core::artifact::write_atomic(&out_dir.join("redteam.report.jsonl"), report.as_bytes())?;
    Ok((summary, run))
}
