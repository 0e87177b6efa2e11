//! The `Generator` abstraction: anything that turns a prompt into text.
//!
//! Every target the harness evaluates (an OpenAI-compatible endpoint, a local Keel model, a
//! model behind a guard) and every helper model it uses (judges, attackers) is a
//! [`Generator`]. Keeping this trait small and synchronous lets the runner drive any of them
//! from a plain thread pool, and lets tests plug in a closure ([`FnGenerator`]).

use crate::error::GenError;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Who said a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One chat message, in the OpenAI wire shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// What to generate from: a chat (the target applies its own chat template) or raw text
/// (plain completion, for base models and few-shot prompts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    Chat(Vec<Message>),
    Raw(String),
}

impl Prompt {
    /// The text of the last user turn (chat) or the whole raw prompt: what refusal
    /// detectors and judges look at.
    pub fn last_user_text(&self) -> &str {
        match self {
            Prompt::Raw(s) => s,
            Prompt::Chat(ms) => ms
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .map(|m| m.content.as_str())
                .unwrap_or(""),
        }
    }
}

/// Sampling parameters. Defaults are greedy decoding, because evaluation should be
/// reproducible unless a suite asks otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingParams {
    pub max_tokens: u32,
    pub temperature: f32,
    pub top_p: f32,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            max_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            stop: Vec::new(),
            seed: None,
        }
    }
}

/// One generation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenRequest {
    pub prompt: Prompt,
    pub params: SamplingParams,
}

impl GenRequest {
    pub fn chat(messages: Vec<Message>, params: SamplingParams) -> Self {
        GenRequest {
            prompt: Prompt::Chat(messages),
            params,
        }
    }
    pub fn user(text: impl Into<String>, params: SamplingParams) -> Self {
        Self::chat(vec![Message::user(text)], params)
    }
    pub fn raw(text: impl Into<String>, params: SamplingParams) -> Self {
        GenRequest {
            prompt: Prompt::Raw(text.into()),
            params,
        }
    }
}

/// Token counts, when the target reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// One generation result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenResponse {
    pub text: String,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

impl GenResponse {
    pub fn text(text: impl Into<String>) -> Self {
        GenResponse {
            text: text.into(),
            finish_reason: None,
            usage: None,
        }
    }
}

/// A text generator: a target under evaluation, a judge, or an attacker.
///
/// Implementations must be `Send + Sync`: the runner calls them from several threads at once.
pub trait Generator: Send + Sync {
    /// A short human-readable name, recorded in results ("endpoint:gpt-x@http://...").
    fn name(&self) -> String;

    fn generate(&self, req: &GenRequest) -> Result<GenResponse, GenError>;

    /// Natural-log probability of `continuation` given `context` (the sum over its tokens),
    /// for multiple-choice scoring. Not every target can do this (chat-only APIs cannot).
    fn loglikelihood(&self, context: &str, continuation: &str) -> Result<f64, GenError> {
        let _ = (context, continuation);
        Err(GenError::Unsupported {
            generator: self.name(),
            what: "loglikelihood".into(),
        })
    }
}

impl<G: Generator + ?Sized> Generator for &G {
    fn name(&self) -> String {
        (**self).name()
    }
    fn generate(&self, req: &GenRequest) -> Result<GenResponse, GenError> {
        (**self).generate(req)
    }
    fn loglikelihood(&self, c: &str, x: &str) -> Result<f64, GenError> {
        (**self).loglikelihood(c, x)
    }
}

impl<G: Generator + ?Sized> Generator for Arc<G> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn generate(&self, req: &GenRequest) -> Result<GenResponse, GenError> {
        (**self).generate(req)
    }
    fn loglikelihood(&self, c: &str, x: &str) -> Result<f64, GenError> {
        (**self).loglikelihood(c, x)
    }
}

impl<G: Generator + ?Sized> Generator for Box<G> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn generate(&self, req: &GenRequest) -> Result<GenResponse, GenError> {
        (**self).generate(req)
    }
    fn loglikelihood(&self, c: &str, x: &str) -> Result<f64, GenError> {
        (**self).loglikelihood(c, x)
    }
}

type LoglikFn = dyn Fn(&str, &str) -> Result<f64, GenError> + Send + Sync;

/// A generator backed by a closure: for tests, rule-based baselines, and wrapping models
/// that live elsewhere in the process.
pub struct FnGenerator<F> {
    name: String,
    f: F,
    loglik: Option<Box<LoglikFn>>,
}

impl<F> FnGenerator<F>
where
    F: Fn(&GenRequest) -> Result<GenResponse, GenError> + Send + Sync,
{
    pub fn new(name: impl Into<String>, f: F) -> Self {
        FnGenerator {
            name: name.into(),
            f,
            loglik: None,
        }
    }

    /// Also answer log-likelihood queries with `ll`.
    pub fn with_loglikelihood(
        mut self,
        ll: impl Fn(&str, &str) -> Result<f64, GenError> + Send + Sync + 'static,
    ) -> Self {
        self.loglik = Some(Box::new(ll));
        self
    }
}

impl<F> Generator for FnGenerator<F>
where
    F: Fn(&GenRequest) -> Result<GenResponse, GenError> + Send + Sync,
{
    fn name(&self) -> String {
        self.name.clone()
    }
    fn generate(&self, req: &GenRequest) -> Result<GenResponse, GenError> {
        (self.f)(req)
    }
    fn loglikelihood(&self, c: &str, x: &str) -> Result<f64, GenError> {
        match &self.loglik {
            Some(ll) => ll(c, x),
            None => Err(GenError::Unsupported {
                generator: self.name.clone(),
                what: "loglikelihood".into(),
            }),
        }
    }
}

/// Convenience: a text-in/text-out closure generator (sees the last user turn or raw prompt).
pub fn text_fn(
    name: impl Into<String>,
    f: impl Fn(&str) -> String + Send + Sync,
) -> impl Generator {
    FnGenerator::new(name, move |req: &GenRequest| {
        Ok(GenResponse::text(f(req.prompt.last_user_text())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_generator_sees_last_user_turn() {
        let g = text_fn("echo", |p| format!("you said: {p}"));
        let req = GenRequest::chat(
            vec![
                Message::system("sys"),
                Message::user("first"),
                Message::assistant("ok"),
                Message::user("second"),
            ],
            SamplingParams::default(),
        );
        assert_eq!(g.generate(&req).unwrap().text, "you said: second");
        assert!(matches!(
            g.loglikelihood("a", "b"),
            Err(GenError::Unsupported { .. })
        ));
    }

    #[test]
    fn sampling_params_reject_unknown_fields() {
        let ok: SamplingParams = serde_json::from_str(r#"{"max_tokens": 8}"#).unwrap();
        assert_eq!(ok.max_tokens, 8);
        assert_eq!(ok.temperature, 0.0);
        assert!(serde_json::from_str::<SamplingParams>(r#"{"max_token": 8}"#).is_err());
    }
}
