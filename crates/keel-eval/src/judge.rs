//! Model-as-judge: pairwise comparison with position swap, and single-answer rating.
//!
//! Judges prefer whichever answer they see first (position bias). A pairwise verdict is
//! therefore asked twice, with the answers swapped, and only counts when both orders agree;
//! an inconsistent pair is a tie (MT-bench's "consistency" protocol). A judge answer we
//! cannot read makes the comparison unscored, never a win or a loss.

use crate::error::GenError;
use crate::generator::{GenRequest, Generator, SamplingParams};
use serde::{Deserialize, Serialize};

/// What the judge said about one ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The answer shown first is better.
    First,
    /// The answer shown second is better.
    Second,
    Tie,
}

/// The resolved outcome for "model" (answer A) against "baseline" (answer B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairOutcome {
    AWins,
    BWins,
    /// The judge called it a tie in both orders.
    Tie,
    /// The two orders disagreed: counted as a tie, flagged separately.
    Inconsistent,
}

impl PairOutcome {
    /// Win credit for A: 1, 0, or ½ for ties and inconsistencies.
    pub fn score_a(&self) -> f64 {
        match self {
            PairOutcome::AWins => 1.0,
            PairOutcome::BWins => 0.0,
            PairOutcome::Tie | PairOutcome::Inconsistent => 0.5,
        }
    }
}

/// Combine the verdict with A shown first and the verdict with B shown first.
pub fn resolve_swap(a_first: Verdict, b_first: Verdict) -> PairOutcome {
    // Map the swapped verdict back to A/B terms.
    let a_says = match a_first {
        Verdict::First => PairOutcome::AWins,
        Verdict::Second => PairOutcome::BWins,
        Verdict::Tie => PairOutcome::Tie,
    };
    let b_says = match b_first {
        Verdict::First => PairOutcome::BWins,
        Verdict::Second => PairOutcome::AWins,
        Verdict::Tie => PairOutcome::Tie,
    };
    if a_says == b_says {
        a_says
    } else {
        PairOutcome::Inconsistent
    }
}

/// The pairwise prompt, MT-bench style: the verdict is `[[A]]`, `[[B]]` or `[[C]]` (tie).
pub const PAIRWISE_PROMPT: &str = "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the user question displayed below. Choose the assistant that follows the user's instructions and answers the user's question better, considering helpfulness, relevance, accuracy, depth and harmlessness. Do not let the order of the responses, their length, or the assistants' names influence you. After a short explanation, output your final verdict strictly in this format: \"[[A]]\" if assistant A is better, \"[[B]]\" if assistant B is better, and \"[[C]]\" for a tie.\n\n[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]";

/// Read the last `[[A]]`/`[[B]]`/`[[C]]` in a judge's output (the final verdict follows
/// the explanation, which may quote the format).
pub fn parse_verdict(text: &str) -> Option<Verdict> {
    ["[[A]]", "[[B]]", "[[C]]"]
        .iter()
        .filter_map(|tag| text.rfind(tag).map(|pos| (pos, *tag)))
        .max_by_key(|(pos, _)| *pos)
        .map(|(_, tag)| match tag {
            "[[A]]" => Verdict::First,
            "[[B]]" => Verdict::Second,
            _ => Verdict::Tie,
        })
}

/// A pairwise judge backed by a generator.
pub struct PairwiseJudge<G> {
    judge: G,
    params: SamplingParams,
}

impl<G: Generator> PairwiseJudge<G> {
    pub fn new(judge: G) -> Self {
        PairwiseJudge {
            judge,
            params: SamplingParams {
                max_tokens: 512,
                ..SamplingParams::default()
            },
        }
    }

    fn ask(&self, question: &str, first: &str, second: &str) -> Result<Verdict, GenError> {
        let p = PAIRWISE_PROMPT
            .replace("{question}", question)
            .replace("{answer_a}", first)
            .replace("{answer_b}", second);
        let out = self
            .judge
            .generate(&GenRequest::user(p, self.params.clone()))?;
        parse_verdict(&out.text).ok_or(GenError::Unparseable(out.text))
    }

    /// Compare answer `a` (the model) with `b` (the baseline), both orders.
    pub fn compare(&self, question: &str, a: &str, b: &str) -> Result<PairOutcome, GenError> {
        let v1 = self.ask(question, a, b)?;
        let v2 = self.ask(question, b, a)?;
        Ok(resolve_swap(v1, v2))
    }
}

/// MT-bench single-answer grading prompt: a 1-10 rating as `[[N]]`.
pub const RATING_PROMPT: &str = "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question displayed below. Consider helpfulness, relevance, accuracy, depth, creativity and level of detail.{reference} Begin with a short explanation, then rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n[Question]\n{question}\n\n[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]";

/// Read the last `[[N]]` rating (1..=10).
pub fn parse_rating(text: &str) -> Option<f64> {
    let mut best = None;
    let mut rest = text;
    while let Some(i) = rest.find("[[") {
        let after = &rest[i + 2..];
        if let Some(j) = after.find("]]") {
            if let Ok(v) = after[..j].trim().parse::<f64>() {
                if (1.0..=10.0).contains(&v) {
                    best = Some(v);
                }
            }
        }
        rest = after;
    }
    best
}

/// Rate one answer with a judge generator.
pub fn rate(
    judge: &dyn Generator,
    question: &str,
    answer: &str,
    reference: Option<&str>,
) -> Result<f64, GenError> {
    let reference = reference
        .map(|r| format!(" Compare with this reference answer: {r}"))
        .unwrap_or_default();
    let p = RATING_PROMPT
        .replace("{reference}", &reference)
        .replace("{question}", question)
        .replace("{answer}", answer);
    let params = SamplingParams {
        max_tokens: 512,
        ..SamplingParams::default()
    };
    let out = judge.generate(&GenRequest::user(p, params))?;
    parse_rating(&out.text).ok_or(GenError::Unparseable(out.text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::text_fn;

    #[test]
    fn swap_resolution_table() {
        use PairOutcome::{AWins, BWins, Inconsistent};
        use Verdict::{First, Second};
        assert_eq!(resolve_swap(First, Second), AWins);
        assert_eq!(resolve_swap(Second, First), BWins);
        assert_eq!(resolve_swap(Verdict::Tie, Verdict::Tie), PairOutcome::Tie);
        // Position bias: always picks whatever is shown first -> inconsistent.
        assert_eq!(resolve_swap(First, First), Inconsistent);
        assert_eq!(resolve_swap(Second, Second), Inconsistent);
        assert_eq!(resolve_swap(First, Verdict::Tie), Inconsistent);
    }

    #[test]
    fn verdict_and_rating_parsing() {
        assert_eq!(
            parse_verdict("format is [[A]] or [[B]]... final: [[B]]"),
            Some(Verdict::Second)
        );
        assert_eq!(parse_verdict("[[C]]"), Some(Verdict::Tie));
        assert_eq!(parse_verdict("A is better"), None);
        assert_eq!(parse_rating("e.g. [[5]]. Rating: [[8]]"), Some(8.0));
        assert_eq!(parse_rating("Rating: [[11]]"), None);
    }

    #[test]
    fn biased_judge_yields_inconsistent_and_fair_judge_wins() {
        let biased = PairwiseJudge::new(text_fn("first", |_| "[[A]]".into()));
        assert_eq!(
            biased.compare("q", "x", "y").unwrap(),
            PairOutcome::Inconsistent
        );
        // Prefers whichever answer mentions "Paris", wherever it appears.
        let fair = PairwiseJudge::new(text_fn("fair", |p| {
            let a = p.split("[The Start of Assistant B").next().unwrap();
            if a.contains("Paris") {
                "[[A]]".into()
            } else {
                "[[B]]".into()
            }
        }));
        assert_eq!(
            fair.compare("capital?", "Paris", "Lyon").unwrap(),
            PairOutcome::AWins
        );
        assert_eq!(
            fair.compare("capital?", "Lyon", "Paris").unwrap(),
            PairOutcome::BWins
        );
        let broken = PairwiseJudge::new(text_fn("broken", |_| "hmm".into()));
        assert!(matches!(
            broken.compare("q", "a", "b"),
            Err(GenError::Unparseable(_))
        ));
    }
}
