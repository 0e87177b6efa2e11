//! The verdict a scan returns, and its three wire formats: Keel JSON, OpenAI
//! `/v1/moderations`-shaped JSON, and Llama Guard's text ("safe" / "unsafe\nS1,S10").

use crate::detect::Hit;
use crate::policy::{ActionKind, Scope};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The action to take: the most severe among triggered categories.
    pub action: ActionKind,
    /// Some category triggered with an action other than `allow`.
    pub flagged: bool,
    pub scope: Scope,
    /// Triggered category codes (score ≥ threshold), in taxonomy order.
    pub categories: Vec<String>,
    /// Every category the policy checks in this scope, with its combined score in [0, 1].
    pub category_scores: BTreeMap<String, f32>,
    pub hits: Vec<Hit>,
    /// Distinct rule ids that fired (rules and detectors), sorted.
    pub rule_ids: Vec<String>,
    /// The refusal message for `block`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The safe completion for `redirect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// The text with redacted spans replaced (single-text scans).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
    /// Per message, for conversation scans that redacted something.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_messages: Vec<String>,
    pub profile: String,
    pub policy_hash: String,
    pub latency_us: u64,
}

/// OpenAI moderation category a Keel category counts towards, for drop-in compatibility.
fn openai_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "S1" => "violence",
        "S2" | "S3" | "S14" => "illicit",
        "S4" => "sexual/minors",
        "S5" | "grooming" => "harassment",
        "S9" => "illicit/violent",
        "S10" => "hate",
        "S11" => "self-harm",
        "S12" => "sexual",
        _ => return None,
    })
}

const OPENAI_CATEGORIES: [&str; 9] = [
    "harassment",
    "hate",
    "illicit",
    "illicit/violent",
    "self-harm",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

impl Verdict {
    pub fn to_keel_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// `/v1/moderations`-shaped: OpenAI category names (the max of the Keel categories that
    /// map to each), plus `keel_categories` with the codes that have no OpenAI counterpart.
    pub fn to_openai(&self, id: &str) -> serde_json::Value {
        let mut cats = serde_json::Map::new();
        let mut scores = serde_json::Map::new();
        for name in OPENAI_CATEGORIES {
            let s = self
                .category_scores
                .iter()
                .filter(|(c, _)| openai_name(c) == Some(name))
                .map(|(_, s)| *s)
                .fold(0.0f32, f32::max);
            let hit = self.categories.iter().any(|c| openai_name(c) == Some(name));
            cats.insert(name.to_string(), hit.into());
            scores.insert(name.to_string(), (s as f64).into());
        }
        serde_json::json!({
            "id": id,
            "model": format!("keel-guard:{}", self.profile),
            "results": [{
                "flagged": self.flagged,
                "categories": cats,
                "category_scores": scores,
                "keel_categories": self.categories,
                "keel_action": self.action,
            }]
        })
    }

    /// Llama Guard's output: `safe`, or `unsafe` and the violated codes on the next line.
    pub fn to_llama_guard(&self) -> String {
        let codes: Vec<&str> = self
            .categories
            .iter()
            .map(String::as_str)
            .filter(|c| crate::taxonomy::is_builtin(c) || !c.is_empty())
            .collect();
        if !self.flagged || codes.is_empty() {
            "safe".to_string()
        } else {
            format!("unsafe\n{}", codes.join(","))
        }
    }
}
