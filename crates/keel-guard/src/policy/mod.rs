//! Written policy: which detectors run for which category, the thresholds, and what happens
//! when a category triggers. Policies come as TOML profiles that overlay one another; see
//! [`compose`] for the precedence rules and `policies/README.md` for the file format.

pub mod builtin;
pub mod compose;
pub mod schema;

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

pub use compose::{compose, EffectivePolicy};
pub use schema::{parse_profile, ProfileFile};

/// Where a check applies: to what the user sends, or to what the model answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Input,
    Output,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "input" => Some(Scope::Input),
            "output" => Some(Scope::Output),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Input => "input",
            Scope::Output => "output",
        }
    }
}

/// What to do when a category triggers, ordered by severity: when several categories trigger,
/// the most severe action wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Allow,
    Flag,
    Redact,
    Redirect,
    Block,
}

impl ActionKind {
    pub fn parse(s: &str) -> Option<ActionKind> {
        Some(match s {
            "allow" => ActionKind::Allow,
            "flag" => ActionKind::Flag,
            "redact" => ActionKind::Redact,
            "redirect" => ActionKind::Redirect,
            "block" => ActionKind::Block,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Allow => "allow",
            ActionKind::Flag => "flag",
            ActionKind::Redact => "redact",
            ActionKind::Redirect => "redirect",
            ActionKind::Block => "block",
        }
    }
}

/// Detector names a category may list.
pub const DETECTORS: [&str; 9] = [
    "rules",
    "pii.email",
    "pii.phone",
    "pii.credit_card",
    "pii.iban",
    "pii.ip",
    "pii.national_id",
    "linear",
    "minilm",
];

/// One category's effective settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryPolicy {
    pub code: String,
    pub name: String,
    pub description: String,
    pub action: ActionKind,
    pub message: String,
    pub redirect: String,
    pub replacement: String,
    pub threshold: f32,
    pub scopes: Vec<Scope>,
    pub detectors: Vec<String>,
    pub locked: bool,
}

impl CategoryPolicy {
    pub fn applies_to(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
    pub fn uses(&self, detector: &str) -> bool {
        self.detectors.iter().any(|d| d == detector)
    }
}

/// A regex or lexicon rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleDef {
    pub id: String,
    pub category: String,
    /// A regex over the normalised view (lowercase words separated by single spaces).
    pub pattern: Option<String>,
    /// Keyword lexicon; a term ending in `*` matches as a word prefix.
    pub terms: Vec<String>,
    pub score: f32,
    /// Profile that defined (or last replaced) the rule.
    pub source: String,
}

impl EffectivePolicy {
    /// Human-readable effective policy, with the profile each setting came from.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "profiles (later overrides earlier): {}",
            self.profiles.join(" > ")
        );
        let _ = writeln!(s, "taxonomy: {}", crate::taxonomy::TAXONOMY_VERSION);
        let _ = writeln!(s, "policy hash: {}", self.hash);
        for c in &self.categories {
            let _ = writeln!(
                s,
                "\n[{}] {}{}\n  {}",
                c.code,
                c.name,
                if c.locked { "  (locked)" } else { "" },
                c.description
            );
            let from = |k: &str| {
                self.provenance
                    .get(&format!("categories.{}.{k}", c.code))
                    .map(|p| format!("  <- {p}"))
                    .unwrap_or_default()
            };
            let scopes: Vec<_> = c.scopes.iter().map(|x| x.as_str()).collect();
            let _ = writeln!(s, "  action     = {}{}", c.action.as_str(), from("action"));
            let _ = writeln!(s, "  threshold  = {}{}", c.threshold, from("threshold"));
            let _ = writeln!(s, "  scopes     = {}{}", scopes.join(", "), from("scopes"));
            let _ = writeln!(
                s,
                "  detectors  = {}{}",
                c.detectors.join(", "),
                from("detectors")
            );
            match c.action {
                ActionKind::Block => {
                    let _ = writeln!(s, "  message    = {:?}{}", c.message, from("message"));
                }
                ActionKind::Redirect => {
                    let _ = writeln!(s, "  redirect   = {:?}{}", c.redirect, from("redirect"));
                }
                ActionKind::Redact => {
                    let _ = writeln!(
                        s,
                        "  replacement = {:?}{}",
                        c.replacement,
                        from("replacement")
                    );
                }
                _ => {}
            }
            let rules: Vec<_> = self
                .rules
                .iter()
                .filter(|r| r.category == c.code)
                .map(|r| format!("{} ({})", r.id, r.source))
                .collect();
            if !rules.is_empty() {
                let _ = writeln!(s, "  rules      = {}", rules.join(", "));
            }
        }
        s
    }
}
