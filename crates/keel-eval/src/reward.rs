//! Reward-model judges: anything that scores (prompt, response) with a number.
//!
//! Used for reward-model accuracy on preference pairs (HH-RLHF, the world's preference
//! bank): pass when r(chosen) > r(rejected). An exact tie is a fail: the model expressed no
//! preference, which is a real (bad) answer, not a missing one.

use crate::error::GenError;
use crate::generator::Generator;
use crate::item::PrefPair;
use crate::record::Outcome;

/// A scalar judge of one response: a trained reward model, a classifier head, a heuristic.
pub trait Scorer: Send + Sync {
    fn name(&self) -> String;
    fn score(&self, prompt: &str, response: &str) -> Result<f64, GenError>;
}

/// A closure-backed scorer (tests, simple heuristics).
pub struct FnScorer<F>(pub String, pub F);

impl<F> Scorer for FnScorer<F>
where
    F: Fn(&str, &str) -> Result<f64, GenError> + Send + Sync,
{
    fn name(&self) -> String {
        self.0.clone()
    }
    fn score(&self, prompt: &str, response: &str) -> Result<f64, GenError> {
        (self.1)(prompt, response)
    }
}

/// The policy's own log-likelihood of a response as its "reward": the likelihood
/// preference accuracy of a language model (does it find the chosen answer more probable?).
/// A proxy, not a trained reward model; it needs a target that supports log-likelihood.
pub struct LoglikScorer<G>(pub G);

impl<G: Generator> Scorer for LoglikScorer<G> {
    fn name(&self) -> String {
        format!("loglik:{}", self.0.name())
    }
    fn score(&self, prompt: &str, response: &str) -> Result<f64, GenError> {
        self.0.loglikelihood(prompt, &format!(" {response}"))
    }
}

/// Score one pair. Returns the outcome and the margin r(chosen) − r(rejected).
pub fn score_pair(scorer: &dyn Scorer, pair: &PrefPair) -> Result<(Outcome, f64), GenError> {
    let c = scorer.score(&pair.context, &pair.chosen)?;
    let r = scorer.score(&pair.context, &pair.rejected)?;
    if !c.is_finite() || !r.is_finite() {
        return Err(GenError::Other(format!("non-finite reward ({c}, {r})")));
    }
    let outcome = if c > r { Outcome::Pass } else { Outcome::Fail };
    Ok((outcome, c - r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_accuracy_and_ties() {
        let by_len = FnScorer("len".into(), |_p: &str, r: &str| Ok(r.len() as f64));
        let pair = |c: &str, r: &str| PrefPair {
            context: "ctx".into(),
            chosen: c.into(),
            rejected: r.into(),
        };
        assert_eq!(
            score_pair(&by_len, &pair("longer", "no")).unwrap(),
            (Outcome::Pass, 4.0)
        );
        assert_eq!(
            score_pair(&by_len, &pair("ab", "cd")).unwrap().0,
            Outcome::Fail
        );
        let nan = FnScorer("nan".into(), |_p: &str, _r: &str| Ok(f64::NAN));
        assert!(score_pair(&nan, &pair("a", "b")).is_err());
    }
}
