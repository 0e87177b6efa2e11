//! RL-CAI (phase 2): AI preference labels by constitutional principles.
//!
//! For each prompt the policy samples two responses (temperature > 0, two seeds drawn from the
//! prompt's stream); a judge picks the better one by the choice question of a sampled
//! principle, asked in both orders ([`GeneratorJudge`] with a principle-specific template).
//! Consistent verdicts become TRL preference rows for the reward model or DPO; identical
//! samples carry no preference and are skipped, ties and inconsistent verdicts are dropped
//! unless asked for, and failed calls are reported.

use super::{Constitution, PromptItem};
use crate::error::GenError;
use crate::generator::{GenRequest, Generator, SamplingParams};
use crate::judge::PairOutcome;
use crate::label::{
    par_map, preference_row, GeneratorJudge, Judgement, LabelConfig, LabelRecord, PairInput,
    PreferenceJudge,
};
use keel_core::rng::rng_for;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The RL-CAI judge prompt: the principle's question in MT-bench's pairwise frame.
pub const CHOICE_TEMPLATE: &str = "Consider the following conversation between a human and an AI assistant, and two possible assistant responses.\n\n[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]\n\n{choice} Do not let the order of the responses or their length influence you. After a short explanation, output your final verdict strictly in this format: \"[[A]]\" if response A is better, \"[[B]]\" if response B is better, and \"[[C]]\" if they are equally good.";

/// Options for [`collect_preferences`].
#[derive(Debug, Clone)]
pub struct PreferConfig {
    pub seed: u64,
    /// Sampling for the two responses (needs temperature > 0 to give different responses).
    pub sample_params: SamplingParams,
    /// Sampling for the judge (greedy by default).
    pub judge_params: SamplingParams,
    pub keep_ties: bool,
    pub keep_inconsistent: bool,
    pub concurrency: usize,
}

impl Default for PreferConfig {
    fn default() -> Self {
        PreferConfig {
            seed: 0,
            sample_params: SamplingParams {
                max_tokens: 200,
                temperature: 0.8,
                top_p: 0.95,
                ..SamplingParams::default()
            },
            judge_params: SamplingParams {
                max_tokens: 256,
                ..SamplingParams::default()
            },
            keep_ties: false,
            keep_inconsistent: false,
            concurrency: 1,
        }
    }
}

/// One prompt's pair and its judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceRecord {
    pub id: String,
    pub prompt: String,
    pub principle: String,
    pub responses: Option<[String; 2]>,
    pub judgement: Option<Judgement>,
    /// Both samples were the same text: no preference to learn.
    pub identical: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts for a phase-2 run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreferSummary {
    pub prompts: usize,
    pub identical: usize,
    pub decisive: usize,
    pub ties: usize,
    pub inconsistent: usize,
    pub errors: usize,
    pub written: usize,
}

fn sample(
    policy: &dyn Generator,
    prompt: &str,
    params: &SamplingParams,
    seed: u64,
) -> Result<String, GenError> {
    let p = SamplingParams {
        seed: Some(seed),
        ..params.clone()
    };
    Ok(policy
        .generate(&GenRequest::user(prompt, p))?
        .text
        .trim()
        .to_string())
}

fn one(
    policy: &dyn Generator,
    judge: &dyn Generator,
    c: &Constitution,
    item: &PromptItem,
    cfg: &PreferConfig,
) -> ChoiceRecord {
    let principle = c.sample(cfg.seed, "choice", &item.id, 0);
    let mut rec = ChoiceRecord {
        id: item.id.clone(),
        prompt: item.prompt.clone(),
        principle: principle.id.clone(),
        responses: None,
        judgement: None,
        identical: false,
        error: None,
    };
    let mut rng = rng_for(cfg.seed, &format!("constitution/sample/{}", item.id));
    let seeds: [u64; 2] = [rng.random(), rng.random()];
    let run = || -> Result<([String; 2], Option<Judgement>), GenError> {
        let a = sample(policy, &item.prompt, &cfg.sample_params, seeds[0])?;
        let b = sample(policy, &item.prompt, &cfg.sample_params, seeds[1])?;
        if a == b {
            return Ok(([a, b], None));
        }
        let template = CHOICE_TEMPLATE.replace("{choice}", principle.choice_question());
        let j =
            GeneratorJudge::with_template(judge, template).with_params(cfg.judge_params.clone());
        let v = j.judge(&item.prompt, &a, &b)?;
        Ok(([a, b], Some(v)))
    };
    match run() {
        Ok((responses, judgement)) => {
            rec.identical = judgement.is_none();
            rec.responses = Some(responses);
            rec.judgement = judgement;
        }
        Err(e) => rec.error = Some(e.to_string()),
    }
    rec
}

/// Sample two responses per prompt from `policy` and let `judge` choose by a sampled
/// principle. Returns every record, the TRL preference rows and the counts.
pub fn collect_preferences(
    policy: &dyn Generator,
    judge: &dyn Generator,
    constitution: &Constitution,
    prompts: &[PromptItem],
    cfg: &PreferConfig,
) -> (Vec<ChoiceRecord>, Vec<Value>, PreferSummary) {
    let records = par_map(prompts, cfg.concurrency, |item| {
        one(policy, judge, constitution, item, cfg)
    });
    let label_cfg = LabelConfig {
        keep_ties: cfg.keep_ties,
        keep_inconsistent: cfg.keep_inconsistent,
        concurrency: 1,
    };
    let judge_name = format!("constitution:{}", judge.name());
    let mut rows = Vec::new();
    let mut s = PreferSummary {
        prompts: records.len(),
        ..PreferSummary::default()
    };
    for r in &records {
        if r.error.is_some() {
            s.errors += 1;
        }
        if r.identical {
            s.identical += 1;
        }
        let (Some([a, b]), Some(j)) = (&r.responses, &r.judgement) else {
            continue;
        };
        match j.outcome {
            PairOutcome::AWins | PairOutcome::BWins => s.decisive += 1,
            PairOutcome::Tie => s.ties += 1,
            PairOutcome::Inconsistent => s.inconsistent += 1,
        }
        let mut meta = serde_json::Map::new();
        meta.insert("principle".into(), r.principle.clone().into());
        meta.insert("source".into(), "constitutional-ai/rl".into());
        let pair = PairInput {
            id: r.id.clone(),
            prompt: r.prompt.clone(),
            response_a: a.clone(),
            response_b: b.clone(),
            gold: None,
            meta,
        };
        let lr = LabelRecord {
            id: r.id.clone(),
            judgement: Some(j.clone()),
            error: None,
            gold: None,
        };
        if let Some(row) = preference_row(&pair, &lr, &judge_name, &label_cfg) {
            rows.push(row);
        }
    }
    s.written = rows.len();
    (records, rows, s)
}
