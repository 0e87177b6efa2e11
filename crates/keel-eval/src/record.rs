//! What the harness stores per item: a three-valued outcome plus enough context to audit it.

use serde::{Deserialize, Serialize};

/// The verdict on one item. `Unscored` is its own value, never folded into pass or fail:
/// a judge that crashed or a server that sent garbage tells us nothing about the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    Unscored,
}

/// One scored item, as stored (one JSON line) in a results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    pub id: String,
    /// Which source of the suite the item came from.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The user-facing prompt text (rendered), for audit.
    pub prompt: String,
    /// The target's answer (last turn for multi-turn), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    pub outcome: Outcome,
    /// A continuous score when the scorer has one (MC2 mass, judge rating, reward margin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// A scorer's label (e.g. refusal class), for breakdowns and agreement reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Why the item is unscored, or how the scorer decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// True when the item is unscored because the *target* call failed: a rerun tries it
    /// again. Judge/scorer failures are final (rerunning would just call the judge again
    /// on the same answer; use a fresh results file to re-judge).
    #[serde(default)]
    pub retryable: bool,
}

impl ItemRecord {
    pub fn new(
        id: impl Into<String>,
        source: impl Into<String>,
        prompt: impl Into<String>,
    ) -> Self {
        ItemRecord {
            id: id.into(),
            source: source.into(),
            category: None,
            prompt: prompt.into(),
            response: None,
            outcome: Outcome::Unscored,
            value: None,
            label: None,
            reason: None,
            retryable: false,
        }
    }
}

/// A record the resumable runner can store: it has a key, and knows if it is final.
pub trait Resumable {
    /// Unique key within one results file.
    fn key(&self) -> String;
    /// Final records are skipped on rerun; non-final ones are redone.
    fn is_final(&self) -> bool;
}

impl Resumable for ItemRecord {
    fn key(&self) -> String {
        format!("{}/{}", self.source, self.id)
    }
    fn is_final(&self) -> bool {
        !self.retryable
    }
}

/// Pass / fail / unscored counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pass: u64,
    pub fail: u64,
    pub unscored: u64,
}

impl Counts {
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Unscored => self.unscored += 1,
        }
    }
    /// Items with a verdict: the denominator of every rate.
    pub fn scored(&self) -> u64 {
        self.pass + self.fail
    }
    pub fn total(&self) -> u64 {
        self.pass + self.fail + self.unscored
    }
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Counts {
        let mut c = Counts::default();
        for o in outcomes {
            c.add(*o);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_valued_counts_keep_unscored_out_of_the_denominator() {
        let c = Counts::of(&[
            Outcome::Pass,
            Outcome::Unscored,
            Outcome::Fail,
            Outcome::Pass,
            Outcome::Unscored,
        ]);
        assert_eq!((c.pass, c.fail, c.unscored), (2, 1, 2));
        assert_eq!(c.scored(), 3);
        assert_eq!(c.total(), 5);
    }

    #[test]
    fn record_round_trips_and_retryable_is_not_final() {
        let mut r = ItemRecord::new("q1", "helpfulness", "hi");
        r.retryable = true;
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains("\"outcome\":\"unscored\""));
        let back: ItemRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
        assert!(!back.is_final());
        assert_eq!(back.key(), "helpfulness/q1");
    }
}
