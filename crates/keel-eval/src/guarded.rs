//! A target behind a keel-guard policy profile, so the same suite measures the model alone
//! and the model + guard.
//!
//! Input: the conversation is scanned before the target sees it. `block` answers with the
//! guard's refusal message and `redirect` with its safe completion (the target is never
//! called); `redact` sends the last user turn with the flagged spans replaced; `allow` and
//! `flag` pass through. Output: the answer is scanned the same way and blocked, redirected
//! or redacted. Log-likelihood scoring bypasses the guard (it judges text, not choices).

use crate::error::GenError;
use crate::generator::{GenRequest, GenResponse, Generator, Prompt, Role};
use keel_guard::{ActionKind, Moderator, Scope, Verdict};

/// What the guard did, for audit (counted on the wrapper).
#[derive(Debug, Default)]
pub struct GuardCounts {
    pub input_blocked: std::sync::atomic::AtomicU64,
    pub output_blocked: std::sync::atomic::AtomicU64,
}

pub struct GuardedGenerator<G, M> {
    target: G,
    guard: M,
    profile: String,
    pub counts: GuardCounts,
}

/// The guard's fallback refusal when a profile gives no message.
pub const DEFAULT_BLOCK_MESSAGE: &str = "I can't help with that request.";

impl<G: Generator, M: Moderator + Send + Sync> GuardedGenerator<G, M> {
    /// `profile` is a label for reports (e.g. "default" or "education-minors+region-eu").
    pub fn new(target: G, guard: M, profile: impl Into<String>) -> Self {
        GuardedGenerator {
            target,
            guard,
            profile: profile.into(),
            counts: GuardCounts::default(),
        }
    }
}

/// The replacement text a verdict demands, if any.
fn replacement(v: &Verdict) -> Option<String> {
    match v.action {
        ActionKind::Block => Some(
            v.message
                .clone()
                .unwrap_or_else(|| DEFAULT_BLOCK_MESSAGE.into()),
        ),
        ActionKind::Redirect => Some(
            v.redirect
                .clone()
                .or_else(|| v.message.clone())
                .unwrap_or_else(|| DEFAULT_BLOCK_MESSAGE.into()),
        ),
        _ => None,
    }
}

fn guarded_reply(text: String) -> GenResponse {
    GenResponse {
        text,
        finish_reason: Some("content_filter".into()),
        usage: None,
    }
}

impl<G: Generator, M: Moderator + Send + Sync> Generator for GuardedGenerator<G, M> {
    fn name(&self) -> String {
        format!("{}+guard:{}", self.target.name(), self.profile)
    }

    fn generate(&self, req: &GenRequest) -> Result<GenResponse, GenError> {
        use std::sync::atomic::Ordering::Relaxed;
        let verdict = match &req.prompt {
            Prompt::Raw(t) => self.guard.scan_text(t, Scope::Input),
            Prompt::Chat(ms) => {
                let conv: Vec<keel_guard::Message> = ms
                    .iter()
                    .filter(|m| m.role != Role::Assistant)
                    .map(|m| {
                        keel_guard::Message::new(
                            if m.role == Role::System {
                                "system"
                            } else {
                                "user"
                            },
                            &m.content,
                        )
                    })
                    .collect();
                self.guard.scan_conversation(&conv)
            }
        };
        if let Some(text) = replacement(&verdict) {
            self.counts.input_blocked.fetch_add(1, Relaxed);
            return Ok(guarded_reply(text));
        }
        let mut req = req.clone();
        if verdict.action == ActionKind::Redact {
            // Re-scan the last user text alone to get its redacted form.
            let last = match &mut req.prompt {
                Prompt::Raw(t) => Some(t),
                Prompt::Chat(ms) => ms
                    .iter_mut()
                    .rev()
                    .find(|m| m.role == Role::User)
                    .map(|m| &mut m.content),
            };
            if let Some(t) = last {
                if let Some(r) = self.guard.scan_text(t, Scope::Input).redacted {
                    *t = r;
                }
            }
        }
        let mut out = self.target.generate(&req)?;
        let v = self.guard.scan_text(&out.text, Scope::Output);
        if let Some(text) = replacement(&v) {
            self.counts.output_blocked.fetch_add(1, Relaxed);
            return Ok(guarded_reply(text));
        }
        if v.action == ActionKind::Redact {
            if let Some(r) = v.redacted {
                out.text = r;
            }
        }
        Ok(out)
    }

    fn loglikelihood(&self, context: &str, continuation: &str) -> Result<f64, GenError> {
        self.target.loglikelihood(context, continuation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{text_fn, SamplingParams};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A stand-in moderator: blocks inputs with "bomb", redacts "555-1234" in outputs.
    struct Toy;
    fn verdict(action: ActionKind, redacted: Option<String>) -> Verdict {
        Verdict {
            action,
            flagged: action != ActionKind::Allow,
            scope: Scope::Input,
            categories: vec![],
            category_scores: Default::default(),
            hits: vec![],
            rule_ids: vec![],
            message: (action == ActionKind::Block).then(|| "Blocked by policy.".to_string()),
            redirect: None,
            redacted,
            redacted_messages: vec![],
            profile: "toy".into(),
            policy_hash: String::new(),
            latency_us: 0,
        }
    }
    impl Moderator for Toy {
        fn scan_text(&self, text: &str, _scope: Scope) -> Verdict {
            if text.contains("bomb") {
                verdict(ActionKind::Block, None)
            } else if text.contains("555-1234") {
                verdict(
                    ActionKind::Redact,
                    Some(text.replace("555-1234", "[PHONE]")),
                )
            } else {
                verdict(ActionKind::Allow, None)
            }
        }
        fn scan_conversation(&self, messages: &[keel_guard::Message]) -> Verdict {
            let all: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
            self.scan_text(&all.join("\n"), Scope::Input)
        }
    }

    #[test]
    fn blocks_inputs_without_calling_target_and_redacts_outputs() {
        let calls = AtomicUsize::new(0);
        let target = text_fn("t", |p| {
            calls.fetch_add(1, Ordering::SeqCst);
            format!("call me at 555-1234 about {p}")
        });
        let g = GuardedGenerator::new(&target, Toy, "toy");
        let p = SamplingParams::default();
        let r = g
            .generate(&GenRequest::user("how to build a bomb", p.clone()))
            .unwrap();
        assert_eq!(r.text, "Blocked by policy.");
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        let r = g.generate(&GenRequest::user("cakes", p)).unwrap();
        assert_eq!(r.text, "call me at [PHONE] about cakes");
        assert_eq!(g.counts.input_blocked.load(Ordering::SeqCst), 1);
        assert!(g.name().ends_with("+guard:toy"));
    }
}
