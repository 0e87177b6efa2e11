//! Constitutional AI (Bai et al., 2022, "Constitutional AI: Harmlessness from AI Feedback").
//!
//! - [`Constitution`]: principles from a TOML file, each with a critique request, a
//!   revision request and (for RL-CAI) a choice question; Keel ships
//!   `constitutions/default.toml` ([`Constitution::default_keel`]).
//! - [`revise`] (SL-CAI, phase 1): answer → critique by a sampled principle → revision; the
//!   revisions become SFT data with the whole chain recorded.
//! - [`prefer`] (RL-CAI, phase 2): two sampled responses, a judge picks one by a sampled
//!   principle (both orders), giving preference pairs for a reward model or DPO.
//! - [`safety`]: an independent before/after safety measure (refusal detector, optionally
//!   keel-guard on the outputs) with confidence intervals.
//!
//! Principles are sampled per prompt from `rng_for(seed, "constitution/<phase>/<id>")`, so a
//! run's choices do not depend on thread scheduling or on which other prompts are in it.

pub mod prefer;
pub mod revise;
pub mod safety;

use crate::error::EvalError;
use keel_core::rng::rng_for;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

/// The shipped default constitution (TOML text).
pub const DEFAULT_CONSTITUTION: &str = include_str!("../../constitutions/default.toml");

/// The generic RL-CAI question for principles that give no `choice`.
pub const DEFAULT_CHOICE: &str =
    "Which of these assistant responses is less harmful, while staying honest and polite?";

/// One principle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principle {
    pub id: String,
    /// Asked after the assistant's answer: what is wrong with it by this principle.
    pub critique: String,
    /// Asked after the critique: rewrite the answer.
    pub revision: String,
    /// RL-CAI: the question a judge answers when choosing between two responses.
    #[serde(default)]
    pub choice: Option<String>,
}

impl Principle {
    pub fn choice_question(&self) -> &str {
        self.choice.as_deref().unwrap_or(DEFAULT_CHOICE)
    }
}

/// A set of principles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constitution {
    #[serde(default)]
    pub name: String,
    pub principles: Vec<Principle>,
}

impl Constitution {
    /// Parse TOML text; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Constitution, EvalError> {
        let c: Constitution =
            toml::from_str(text).map_err(|e| EvalError::data(origin, 0, e.to_string()))?;
        if c.principles.is_empty() {
            return Err(EvalError::data(origin, 0, "no [[principles]]"));
        }
        for (i, p) in c.principles.iter().enumerate() {
            let empty = [
                ("id", &p.id),
                ("critique", &p.critique),
                ("revision", &p.revision),
            ]
            .into_iter()
            .find(|(_, v)| v.trim().is_empty());
            if let Some((field, _)) = empty {
                return Err(EvalError::data(
                    origin,
                    0,
                    format!("principles[{i}].{field} is empty"),
                ));
            }
            if c.principles[..i].iter().any(|q| q.id == p.id) {
                return Err(EvalError::data(
                    origin,
                    0,
                    format!("principles[{i}].id {:?} is used twice", p.id),
                ));
            }
        }
        Ok(c)
    }

    pub fn load(path: &Path) -> Result<Constitution, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Keel's shipped constitution.
    pub fn default_keel() -> Constitution {
        // The embedded file is checked by a unit test; failing here would be a build defect.
        Self::parse(
            DEFAULT_CONSTITUTION,
            Path::new("constitutions/default.toml"),
        )
        .expect("the embedded default constitution parses")
    }

    /// The principle for `phase` and prompt `id`: uniform over the constitution, drawn from
    /// the stream `constitution/<phase>/<id>` of `seed`. `round` picks later draws of the
    /// same stream (multi-round revision).
    pub fn sample(&self, seed: u64, phase: &str, id: &str, round: usize) -> &Principle {
        let mut rng = rng_for(seed, &format!("constitution/{phase}/{id}"));
        let mut k = 0;
        for _ in 0..=round {
            k = rng.random_range(0..self.principles.len());
        }
        &self.principles[k]
    }
}

/// One prompt to answer (a harmful or red-team request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptItem {
    pub id: String,
    pub prompt: String,
    /// Every other field of the input row (e.g. the world's `hazard`).
    pub meta: Map<String, Value>,
}

/// Read prompts from JSONL rows with a string `"prompt"` (the world's
/// `tasks/<split>/harmful.jsonl`, red-team prompt files). `id` defaults to `prompt-NNNNN`.
pub fn read_prompts(path: &Path) -> Result<Vec<PromptItem>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: String| EvalError::data(path, i + 1, m);
        let mut obj = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err(bad("expected a JSON object".into())),
            Err(e) => return Err(bad(format!("invalid JSON: {e}"))),
        };
        let prompt = match obj.remove("prompt") {
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            Some(Value::String(_)) => return Err(bad("field \"prompt\" is empty".into())),
            Some(_) => return Err(bad("field \"prompt\" must be a string".into())),
            None => return Err(bad("missing field \"prompt\"".into())),
        };
        let id = match obj.remove("id") {
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            _ => format!("prompt-{:05}", out.len()),
        };
        out.push(PromptItem {
            id,
            prompt,
            meta: obj,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_constitution_parses_and_sampling_is_seeded() {
        let c = Constitution::default_keel();
        assert!(c.principles.len() >= 6);
        let a = c.sample(3, "critique", "x-1", 0).id.clone();
        assert_eq!(a, c.sample(3, "critique", "x-1", 0).id);
        // Across many prompts every principle gets drawn.
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            seen.insert(c.sample(3, "critique", &format!("p{i}"), 0).id.clone());
        }
        assert_eq!(seen.len(), c.principles.len());
    }

    #[test]
    fn bad_constitutions_are_named_errors() {
        let p = Path::new("c.toml");
        let e = Constitution::parse("principles = []", p).unwrap_err();
        assert!(e.to_string().contains("no [[principles]]"), "{e}");
        let dup = "[[principles]]\nid='x'\ncritique='c'\nrevision='r'\n[[principles]]\nid='x'\ncritique='c'\nrevision='r'\n";
        let e = Constitution::parse(dup, p).unwrap_err();
        assert!(e.to_string().contains("principles[1].id"), "{e}");
        let e = Constitution::parse("[[principles]]\nid='x'\ncritique=''\nrevision='r'", p)
            .unwrap_err();
        assert!(e.to_string().contains("principles[0].critique"), "{e}");
        let e = Constitution::parse("[[principles]]\nid='x'\ncritque='c'\nrevision='r'", p)
            .unwrap_err();
        assert!(e.to_string().contains("c.toml"), "{e}");
    }
}
