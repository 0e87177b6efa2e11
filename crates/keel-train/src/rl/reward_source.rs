//! Where rewards come from: the world's ground truth (a programmatic verifier), a trained
//! reward model, or any scoring function (a judge) behind the [`RewardSource`] trait.
//!
//! Prompts for RL carry their gold answer when they have one, so a verifier can score a
//! completion exactly; [`world_prompts`] reads them from the world's task banks.

use crate::error::{Result, TrainError};
use keel_data::chat::{KeelChatTemplate, Message, Role};
use keel_data::tokenizer::KeelTokenizer;
use keel_data::world::rows::{Category, Gold, TaskRow};
use std::path::Path;

/// One RL prompt: the rendered chat prompt (ending in `<|assistant|>`) plus what a verifier
/// needs to check an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RlPrompt {
    /// The user's message.
    pub text: String,
    /// Chat-template ids, ready for generation.
    pub ids: Vec<u32>,
    pub gold: Option<Gold>,
    pub category: Option<Category>,
}

/// A sampled completion offered for scoring.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub prompt: &'a RlPrompt,
    /// Decoded completion, without the end-of-turn token.
    pub text: &'a str,
    /// Completion ids (the end-of-turn token included when `finished`).
    pub ids: &'a [u32],
    /// Whether the completion ended its turn within the token limit.
    pub finished: bool,
}

/// Scores completions. Higher is better; the scale is the source's own (a verifier gives 0/1,
/// a reward model a logit).
pub trait RewardSource {
    /// A short name for logs and for the run's identity (resuming with another source is
    /// refused), e.g. `"verifier"` or `"reward-model:<sha256>"`.
    fn name(&self) -> String;
    fn score(&self, batch: &[Candidate<'_>]) -> Result<Vec<f64>>;
}

/// Lower-case, punctuation and the articles a/an/the removed, whitespace collapsed — the
/// SQuAD normalisation keel-eval's scorers use, so RL optimises what evaluation measures.
pub fn normalise_answer(s: &str) -> String {
    let lowered: String = s
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() {
                c
            } else {
                ' '
            }
        })
        .collect();
    lowered
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn contains_words(hay: &str, needle: &str) -> bool {
    let n = normalise_answer(needle);
    !n.is_empty() && format!(" {} ", normalise_answer(hay)).contains(&format!(" {n} "))
}

/// The world's ground truth as a reward: 1 when the completion is right, else 0. The same
/// rule as keel-eval's `gold` scorer: format tasks must match the gold text exactly (trimmed,
/// case-sensitive: the format is the task); other answers must state the gold (every element
/// of a list gold) as whole words.
#[derive(Debug, Clone, Copy, Default)]
pub struct Verifier;

impl Verifier {
    pub fn check(category: Option<Category>, gold: &Gold, answer: &str) -> bool {
        match (category, gold) {
            (Some(Category::Format), Gold::Text(g)) => answer.trim() == g.trim(),
            (_, Gold::Text(g)) => contains_words(answer, g),
            (_, Gold::List(gs)) => !gs.is_empty() && gs.iter().all(|g| contains_words(answer, g)),
        }
    }
}

impl RewardSource for Verifier {
    fn name(&self) -> String {
        "verifier".into()
    }
    fn score(&self, batch: &[Candidate<'_>]) -> Result<Vec<f64>> {
        batch
            .iter()
            .map(|c| {
                let gold = c.prompt.gold.as_ref().ok_or_else(|| {
                    TrainError::Data(format!(
                        "verifier reward: prompt {:?} has no gold answer",
                        c.prompt.text
                    ))
                })?;
                Ok(f64::from(u8::from(Verifier::check(
                    c.prompt.category,
                    gold,
                    c.text,
                ))))
            })
            .collect()
    }
}

/// Any scoring function as a reward source: an LLM judge, a rule, a test harness.
pub struct FnReward<F> {
    pub name: String,
    pub f: F,
}

impl<F> RewardSource for FnReward<F>
where
    F: Fn(&Candidate<'_>) -> Result<f64>,
{
    fn name(&self) -> String {
        self.name.clone()
    }
    fn score(&self, batch: &[Candidate<'_>]) -> Result<Vec<f64>> {
        batch.iter().map(|c| (self.f)(c)).collect()
    }
}

/// A trained reward model (`keel rm`) as the reward: RLHF proper. Each completion is scored
/// as the reply to its single-turn prompt, exactly as the model was trained to score pairs;
/// the score is the head's logit. The name carries the weights' sha256, so a run cannot be
/// resumed against another reward model.
pub struct RewardModelSource {
    model: crate::reward_model::RewardModel,
    name: String,
}

impl RewardModelSource {
    pub fn load(dir: &Path) -> Result<Self> {
        let sha = keel_core::artifact::sha256_file(&dir.join("model.safetensors"))?;
        Ok(RewardModelSource {
            model: crate::reward_model::RewardModel::load(dir)?,
            name: format!("reward-model:{}", &sha[..16]),
        })
    }
}

impl RewardSource for RewardModelSource {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn score(&self, batch: &[Candidate<'_>]) -> Result<Vec<f64>> {
        let prompts: Vec<[Message; 1]> = batch
            .iter()
            .map(|c| [Message::new(Role::User, c.prompt.text.clone())])
            .collect();
        let items: Vec<(&[Message], &str)> = prompts
            .iter()
            .zip(batch)
            .map(|(p, c)| (&p[..], c.text))
            .collect();
        Ok(self
            .model
            .score_batch(&items)?
            .into_iter()
            .map(f64::from)
            .collect())
    }
}

/// Categories whose gold answer a verifier can check. Safety and honesty rows ("refuse",
/// "abstain", "comply") need a classifier, not string matching.
pub fn verifiable(c: Category) -> bool {
    matches!(
        c,
        Category::FactQa
            | Category::MultiHop
            | Category::Arithmetic
            | Category::List
            | Category::Format
    )
}

/// Render task rows as RL prompts with Keel's chat template. Rows of other categories are
/// kept only when `verifiable_only` is false.
pub fn prompts_from_rows(
    rows: &[TaskRow],
    tok: &KeelTokenizer,
    verifiable_only: bool,
) -> Result<Vec<RlPrompt>> {
    let template = KeelChatTemplate::new(tok).map_err(|e| TrainError::Data(e.to_string()))?;
    Ok(rows
        .iter()
        .filter(|r| !verifiable_only || verifiable(r.category))
        .map(|r| RlPrompt {
            text: r.prompt.clone(),
            ids: template.render_prompt(tok, &[Message::new(Role::User, r.prompt.clone())]),
            gold: Some(r.gold.clone()),
            category: Some(r.category),
        })
        .collect())
}

/// Read `tasks/<split>/instructions.jsonl`-style task rows from `path` and render them.
pub fn world_prompts(
    path: &Path,
    tok: &KeelTokenizer,
    verifiable_only: bool,
) -> Result<Vec<RlPrompt>> {
    let rows: Vec<TaskRow> =
        keel_data::jsonl::read_jsonl(path).map_err(|e| TrainError::Data(e.to_string()))?;
    prompts_from_rows(&rows, tok, verifiable_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(category: Category, gold: Gold) -> RlPrompt {
        RlPrompt {
            text: "q".into(),
            ids: vec![1],
            gold: Some(gold),
            category: Some(category),
        }
    }

    #[test]
    fn verifier_follows_the_gold_rules() {
        let town = Gold::text("Brell");
        assert!(Verifier::check(
            Some(Category::FactQa),
            &town,
            "She lives in Brell."
        ));
        assert!(!Verifier::check(
            Some(Category::FactQa),
            &town,
            "She lives in Brellwick."
        ));
        let caps = Gold::text("BRELL");
        assert!(Verifier::check(Some(Category::Format), &caps, " BRELL\n"));
        assert!(!Verifier::check(Some(Category::Format), &caps, "Brell"));
        let list = Gold::List(vec!["Ada".into(), "Bo".into()]);
        assert!(Verifier::check(Some(Category::List), &list, "Bo, Ada"));
        assert!(!Verifier::check(Some(Category::List), &list, "Ada"));
        assert!(!Verifier::check(
            Some(Category::List),
            &Gold::List(vec![]),
            "x"
        ));

        let p = prompt(Category::Arithmetic, Gold::text("42"));
        let c = |text| Candidate {
            prompt: &p,
            text,
            ids: &[],
            finished: true,
        };
        let s = Verifier
            .score(&[c("It is 42."), c("It is 41."), c("420")])
            .unwrap();
        assert_eq!(s, vec![1.0, 0.0, 0.0]);
        let no_gold = RlPrompt {
            gold: None,
            ..p.clone()
        };
        let e = Verifier
            .score(&[Candidate {
                prompt: &no_gold,
                text: "x",
                ids: &[],
                finished: true,
            }])
            .unwrap_err();
        assert!(e.to_string().contains("no gold"), "{e}");
    }
}
