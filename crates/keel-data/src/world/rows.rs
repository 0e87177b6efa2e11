//! Row types of the task banks, as written to `tasks/<split>/*.jsonl`.
//!
//! Field names follow TRL conventions: `prompt`/`completion` for SFT (prompt-completion format),
//! `prompt`/`chosen`/`rejected` for preference learning. Everything else is metadata for
//! evaluation and analysis.

use serde::{Deserialize, Serialize};

/// The machine-checkable answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Gold {
    /// A single answer ("Brell", "42", "refuse", "comply", "abstain").
    Text(String),
    /// A set of answers; order does not matter (list questions, summary must-mention items).
    List(Vec<String>),
}

impl Gold {
    pub fn text(s: impl Into<String>) -> Self {
        Gold::Text(s.into())
    }
    /// The single answer, if this gold is one.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Gold::Text(s) => Some(s),
            Gold::List(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// One attribute of one entity. gold: the value (list for neighbours).
    FactQa,
    /// Two hops through the entity graph. gold: the final value.
    MultiHop,
    /// Arithmetic on attributes or plain numbers. gold: the number as a string.
    Arithmetic,
    /// Comma-separated lists. gold: list (order-free).
    List,
    /// Output-format constraints (capitals, bare numbers, JSON). gold: the exact expected text.
    Format,
    /// One-sentence summaries. gold: list of values the summary must mention.
    Summary,
    /// Harmful requests. gold: "refuse"; `hazard` is "S1".."S14".
    Harmful,
    /// Benign requests that look sensitive. gold: "comply"; `must_include` keywords.
    BenignSensitive,
    /// Questions about unknown entities or unknowable attributes. gold: "abstain".
    Unanswerable,
    /// Questions with a false premise. gold: the correct fact.
    FalsePremise,
}

/// One row of instructions / harmful / benign_sensitive / unanswerable / false_premise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    /// Unique across the world, e.g. "test-instructions-00042".
    pub id: String,
    pub prompt: String,
    /// The ideal assistant answer.
    pub completion: String,
    pub category: Category,
    pub gold: Gold,
    /// Template id, "<family>/<index>"; the test split uses only indices unseen in train.
    pub template: String,
    /// Names of world entities mentioned in the prompt.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Llama Guard 3 hazard code ("S1".."S14"), harmful rows only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hazard: Option<String>,
    /// Words a helpful answer must contain (case-insensitive), benign rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_include: Vec<String>,
}

/// The typed flaw of a rejected preference answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Defect {
    WrongFact,
    Hallucination,
    UnsafeCompliance,
    NeedlessRefusal,
    Rude,
    Verbose,
}

impl Defect {
    pub const ALL: [Defect; 6] = [
        Defect::WrongFact,
        Defect::Hallucination,
        Defect::UnsafeCompliance,
        Defect::NeedlessRefusal,
        Defect::Rude,
        Defect::Verbose,
    ];
}

/// One preference pair (TRL DPO format plus metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceRow {
    pub id: String,
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
    pub defect: Defect,
    /// Id of the task row the pair was built from.
    pub source: String,
}

/// A cloze item for base-model fact probing: the answer continues the prompt directly
/// (it starts with a space).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClozeRow {
    pub id: String,
    pub prompt: String,
    pub answer: String,
    /// Fact kind, e.g. "person_home".
    pub fact: String,
    pub subject: String,
    /// Whether the phrasing occurs in the training corpus (train split) or is held out.
    pub heldout_phrasing: bool,
}

/// All task banks of one split.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskBanks {
    pub instructions: Vec<TaskRow>,
    pub harmful: Vec<TaskRow>,
    pub benign_sensitive: Vec<TaskRow>,
    pub unanswerable: Vec<TaskRow>,
    pub false_premise: Vec<TaskRow>,
    pub preferences: Vec<PreferenceRow>,
    pub facts: Vec<ClozeRow>,
}
