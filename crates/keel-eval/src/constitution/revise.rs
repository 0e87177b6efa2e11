//! SL-CAI (phase 1): answer, critique by a sampled principle, revise; repeat for `rounds`.
//!
//! Each round is a short chat: the user's request, the current answer as the assistant turn,
//! the principle's critique request; then the critique and the revision request. Later
//! rounds restart from the latest revision rather than appending (the paper appends; small
//! models' context windows do not hold several rounds). The final revision, paired with the
//! original request, is one SFT example (TRL `messages`), with the chain in `metadata`.

use super::safety::{compare, SafetyCheck, SafetyComparison, SafetyMeasure};
use super::{Constitution, PromptItem};
use crate::error::GenError;
use crate::generator::{GenRequest, Generator, Message, SamplingParams};
use crate::label::par_map;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Options for [`critique_and_revise`].
#[derive(Debug, Clone)]
pub struct ReviseConfig {
    /// Critique–revision rounds per prompt (the paper uses 1–4).
    pub rounds: usize,
    pub seed: u64,
    /// Sampling for every call (greedy by default, so runs repeat exactly).
    pub params: SamplingParams,
    /// Prompts in flight at once (1 for in-process models).
    pub concurrency: usize,
}

impl Default for ReviseConfig {
    fn default() -> Self {
        ReviseConfig {
            rounds: 1,
            seed: 0,
            params: SamplingParams {
                max_tokens: 200,
                ..SamplingParams::default()
            },
            concurrency: 1,
        }
    }
}

/// One critique–revision round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionStep {
    pub principle: String,
    pub critique_request: String,
    pub critique: String,
    pub revision_request: String,
    pub revision: String,
}

/// The full chain for one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionRecord {
    pub id: String,
    pub prompt: String,
    /// The model's first answer (`None` when that call failed).
    pub initial: Option<String>,
    pub steps: Vec<RevisionStep>,
    /// The last revision, when every round succeeded.
    pub revised: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Safety of the first answer and of the final revision (filled by [`measure`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_initial: Option<SafetyCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_revised: Option<SafetyCheck>,
    pub meta: serde_json::Map<String, Value>,
}

/// Appended to revision requests so the model answers with the new response itself.
const REVISION_SUFFIX: &str = " Reply with the rewritten response only.";

/// Strip a leading label a model may put before its revision ("Revision:", "Revised response:").
pub fn clean_revision(text: &str) -> String {
    let t = text.trim();
    let lower = t.to_lowercase();
    for label in [
        "revised response:",
        "rewritten response:",
        "revision:",
        "response:",
    ] {
        if lower.starts_with(label) {
            return t[label.len()..].trim().to_string();
        }
    }
    t.to_string()
}

fn ask(model: &dyn Generator, msgs: Vec<Message>, p: &SamplingParams) -> Result<String, GenError> {
    Ok(model.generate(&GenRequest::chat(msgs, p.clone()))?.text)
}

fn chain(
    model: &dyn Generator,
    c: &Constitution,
    item: &PromptItem,
    cfg: &ReviseConfig,
    rec: &mut RevisionRecord,
) -> Result<(), GenError> {
    let initial = ask(model, vec![Message::user(&item.prompt)], &cfg.params)?;
    rec.initial = Some(initial.clone());
    let mut current = initial;
    for round in 0..cfg.rounds {
        let p = c.sample(cfg.seed, "critique", &item.id, round);
        let mut msgs = vec![
            Message::user(&item.prompt),
            Message::assistant(&current),
            Message::user(&p.critique),
        ];
        let critique = ask(model, msgs.clone(), &cfg.params)?;
        let revision_request = format!("{}{REVISION_SUFFIX}", p.revision);
        msgs.push(Message::assistant(&critique));
        msgs.push(Message::user(&revision_request));
        let revision = clean_revision(&ask(model, msgs, &cfg.params)?);
        if revision.is_empty() {
            return Err(GenError::Other(format!(
                "round {round}: the model returned an empty revision"
            )));
        }
        rec.steps.push(RevisionStep {
            principle: p.id.clone(),
            critique_request: p.critique.clone(),
            critique,
            revision_request,
            revision: revision.clone(),
        });
        current = revision;
    }
    rec.revised = Some(current);
    Ok(())
}

/// Run the critique–revision chain on every prompt. A failed call ends that prompt's chain
/// with an error (kept in the record, never turned into data).
pub fn critique_and_revise(
    model: &dyn Generator,
    constitution: &Constitution,
    prompts: &[PromptItem],
    cfg: &ReviseConfig,
) -> Vec<RevisionRecord> {
    par_map(prompts, cfg.concurrency, |item| {
        let mut rec = RevisionRecord {
            id: item.id.clone(),
            prompt: item.prompt.clone(),
            initial: None,
            steps: Vec::new(),
            revised: None,
            error: None,
            safety_initial: None,
            safety_revised: None,
            meta: item.meta.clone(),
        };
        if let Err(e) = chain(model, constitution, item, cfg, &mut rec) {
            rec.error = Some(e.to_string());
        }
        rec
    })
}

/// Score the first answer and the final revision of every record with `measure`, and
/// compare the safe rates (paired over prompts where both exist and are scored).
pub fn measure(
    records: &mut [RevisionRecord],
    measure: &SafetyMeasure<'_>,
    seed: u64,
) -> SafetyComparison {
    for r in records.iter_mut() {
        r.safety_initial = r.initial.as_deref().map(|t| measure.check(&r.prompt, t));
        r.safety_revised = r.revised.as_deref().map(|t| measure.check(&r.prompt, t));
    }
    let pairs: Vec<_> = records
        .iter()
        .map(|r| (r.safety_initial.as_ref(), r.safety_revised.as_ref()))
        .collect();
    compare(&pairs, seed)
}

/// The SFT example for a finished chain: TRL `messages` (request → final revision), with the
/// original answer and every critique/revision step in `metadata`.
pub fn sft_row(rec: &RevisionRecord) -> Option<Value> {
    let revised = rec.revised.as_ref()?;
    Some(json!({
        "messages": [
            {"role": "user", "content": rec.prompt},
            {"role": "assistant", "content": revised},
        ],
        "metadata": {
            "id": rec.id,
            "source": "constitutional-ai/sl",
            "initial": rec.initial,
            "chain": rec.steps,
            "safety_initial": rec.safety_initial,
            "safety_revised": rec.safety_revised,
            "input": rec.meta,
        }
    }))
}
