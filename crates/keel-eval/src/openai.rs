//! A target served over the OpenAI-compatible HTTP API (vLLM, TGI, llama.cpp server,
//! mistral.rs, hosted providers).
//!
//! - chat requests go to `POST {base}/v1/chat/completions`, raw prompts to
//!   `POST {base}/v1/completions`;
//! - log-likelihoods use the legacy completions trick (`echo: true, logprobs: 1,
//!   max_tokens: 0`): the server scores the prompt's own tokens and we sum those that fall
//!   inside the continuation (by `text_offset`), as lm-evaluation-harness does for
//!   "local-completions". Servers that do not support it answer an error, which becomes
//!   an unscored item rather than a wrong score;
//! - 429 and 5xx answers and transport errors are retried with exponential backoff
//!   (honouring `Retry-After`), everything else fails fast with the server's message.

use crate::error::GenError;
use crate::generator::{GenRequest, GenResponse, Generator, Message, Prompt, Usage};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How hard to try before giving up on one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt` (0-based): base · 2^attempt, capped.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(16));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// An OpenAI-compatible endpoint.
#[derive(Clone)]
pub struct OpenAiEndpoint {
    base_url: String,
    model: String,
    api_key: Option<String>,
    retry: RetryPolicy,
    agent: ureq::Agent,
}

impl std::fmt::Debug for OpenAiEndpoint {
    // Hand-written so the API key never lands in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEndpoint")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("retry", &self.retry)
            .finish()
    }
}

fn agent_with_timeout(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        // We want the body of 4xx/5xx answers: it usually says what is wrong.
        .http_status_as_error(false)
        .build()
        .into()
}

impl OpenAiEndpoint {
    /// `base_url` may be given with or without a trailing `/v1`.
    pub fn new(base_url: &str, model: impl Into<String>) -> Self {
        let mut base = base_url.trim().trim_end_matches('/').to_string();
        if let Some(stripped) = base.strip_suffix("/v1") {
            base = stripped.to_string();
        }
        OpenAiEndpoint {
            base_url: base,
            model: model.into(),
            api_key: None,
            retry: RetryPolicy::default(),
            agent: agent_with_timeout(Duration::from_secs(120)),
        }
    }

    /// Read the API key from environment variable `var`; an unset or empty variable is an
    /// error (a silent missing key would only surface as a wall of 401s).
    pub fn with_api_key_env(mut self, var: &str) -> Result<Self, crate::EvalError> {
        match std::env::var(var) {
            Ok(k) if !k.trim().is_empty() => {
                self.api_key = Some(k.trim().to_string());
                Ok(self)
            }
            _ => Err(crate::EvalError::Config(format!(
                "environment variable {var} (named by --api-key-env) is not set or empty"
            ))),
        }
    }

    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Whole-request timeout (connect + send + receive).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.agent = agent_with_timeout(timeout);
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// POST `body` to `path` and parse the answer as `R`, retrying transient failures.
    fn post<B: Serialize, R: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, GenError> {
        let url = format!("{}{}", self.base_url, path);
        let mut attempt = 0u32;
        loop {
            let (err, retry_after) = match self.post_once(&url, body) {
                Ok(text) => {
                    return serde_json::from_str::<R>(&text).map_err(|e| GenError::Malformed {
                        url: url.clone(),
                        message: format!("{e}; body starts: {}", snippet(&text)),
                    })
                }
                Err(e) => e,
            };
            if !err.is_retryable() || attempt >= self.retry.max_retries {
                return Err(err);
            }
            let wait = retry_after
                .unwrap_or_else(|| self.retry.delay(attempt))
                .min(self.retry.max_delay);
            tracing::warn!("{err}; retry {} in {:?}", attempt + 1, wait);
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    /// One HTTP exchange: the success body, or the error plus any `Retry-After` hint.
    fn post_once<B: Serialize>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<String, (GenError, Option<Duration>)> {
        let mut req = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        if let Some(k) = &self.api_key {
            req = req.header("Authorization", &format!("Bearer {k}"));
        }
        let json = serde_json::to_vec(body)
            .map_err(|e| (GenError::Other(format!("cannot encode request: {e}")), None))?;
        let transport = |e: ureq::Error| {
            (
                GenError::Transport {
                    url: url.to_string(),
                    message: e.to_string(),
                },
                None,
            )
        };
        let mut resp = req.send(&json[..]).map_err(transport)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.body_mut().read_to_string().map_err(transport)?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err((
                GenError::Http {
                    status,
                    url: url.to_string(),
                    body: snippet(&text),
                },
                retry_after,
            ))
        }
    }
}

fn snippet(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

// ---- wire types (the subset of the OpenAI schema that vLLM/TGI/llama.cpp all accept) ----

#[derive(Serialize)]
struct ChatCompletionRequest<'a> {
    model: &'a str,
    messages: &'a [Message],
    max_tokens: u32,
    temperature: f32,
    top_p: f32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    stream: bool,
}

#[derive(Deserialize)]
struct ChatCompletionResponse {
    choices: Vec<ChatChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ChatChoice {
    message: ChatMessageOut,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChatMessageOut {
    // `null` when a provider filtered the output; treated as the empty answer.
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Serialize)]
struct CompletionRequest<'a> {
    model: &'a str,
    prompt: &'a str,
    max_tokens: u32,
    temperature: f32,
    top_p: f32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    echo: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<u32>,
    stream: bool,
}

#[derive(Deserialize)]
struct CompletionResponse {
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    text: String,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<WireLogprobs>,
}

#[derive(Deserialize)]
struct WireLogprobs {
    #[serde(default)]
    token_logprobs: Vec<Option<f64>>,
    #[serde(default)]
    text_offset: Vec<usize>,
}

fn usage(u: Option<WireUsage>) -> Option<Usage> {
    u.map(|u| Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
    })
}

impl Generator for OpenAiEndpoint {
    fn name(&self) -> String {
        format!("endpoint:{}@{}", self.model, self.base_url)
    }

    fn generate(&self, req: &GenRequest) -> Result<GenResponse, GenError> {
        let p = &req.params;
        match &req.prompt {
            Prompt::Chat(messages) => {
                let body = ChatCompletionRequest {
                    model: &self.model,
                    messages,
                    max_tokens: p.max_tokens,
                    temperature: p.temperature,
                    top_p: p.top_p,
                    stop: &p.stop,
                    seed: p.seed,
                    stream: false,
                };
                let r: ChatCompletionResponse = self.post("/v1/chat/completions", &body)?;
                let choice = r
                    .choices
                    .into_iter()
                    .next()
                    .ok_or_else(|| GenError::Malformed {
                        url: format!("{}/v1/chat/completions", self.base_url),
                        message: "no choices in response".into(),
                    })?;
                Ok(GenResponse {
                    text: choice.message.content.unwrap_or_default(),
                    finish_reason: choice.finish_reason,
                    usage: usage(r.usage),
                })
            }
            Prompt::Raw(prompt) => {
                let body = CompletionRequest {
                    model: &self.model,
                    prompt,
                    max_tokens: p.max_tokens,
                    temperature: p.temperature,
                    top_p: p.top_p,
                    stop: &p.stop,
                    seed: p.seed,
                    echo: false,
                    logprobs: None,
                    stream: false,
                };
                let r: CompletionResponse = self.post("/v1/completions", &body)?;
                let choice = r
                    .choices
                    .into_iter()
                    .next()
                    .ok_or_else(|| GenError::Malformed {
                        url: format!("{}/v1/completions", self.base_url),
                        message: "no choices in response".into(),
                    })?;
                Ok(GenResponse {
                    text: choice.text,
                    finish_reason: choice.finish_reason,
                    usage: usage(r.usage),
                })
            }
        }
    }

    fn loglikelihood(&self, context: &str, continuation: &str) -> Result<f64, GenError> {
        let prompt = format!("{context}{continuation}");
        let body = CompletionRequest {
            model: &self.model,
            prompt: &prompt,
            max_tokens: 0,
            temperature: 0.0,
            top_p: 1.0,
            stop: &[],
            seed: None,
            echo: true,
            logprobs: Some(1),
            stream: false,
        };
        let url = format!("{}/v1/completions", self.base_url);
        let r: CompletionResponse = self.post("/v1/completions", &body)?;
        let lp = r
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.logprobs)
            .ok_or_else(|| GenError::Malformed {
                url: url.clone(),
                message: "no logprobs in echo response (server may not support echo+logprobs)"
                    .into(),
            })?;
        sum_continuation_logprobs(&lp.token_logprobs, &lp.text_offset, context.len())
            .map_err(|message| GenError::Malformed { url, message })
    }
}

/// Sum the log-probs of tokens starting at or after byte `split` (the continuation).
/// A token straddling the boundary belongs to the continuation, as in lm-eval.
fn sum_continuation_logprobs(
    logprobs: &[Option<f64>],
    offsets: &[usize],
    split: usize,
) -> Result<f64, String> {
    if logprobs.len() != offsets.len() || logprobs.is_empty() {
        return Err(format!(
            "logprobs ({}) and text_offset ({}) lengths differ or are empty",
            logprobs.len(),
            offsets.len()
        ));
    }
    // First token whose span reaches past the split point.
    let first = (0..offsets.len())
        .find(|&i| offsets.get(i + 1).is_none_or(|&next| next > split))
        .unwrap_or(offsets.len());
    let mut total = 0.0;
    let mut n = 0;
    for lp in &logprobs[first..] {
        match lp {
            Some(v) if v.is_finite() => {
                total += v;
                n += 1
            }
            // The very first token of a prompt has no log-prob; inside the continuation
            // a missing one means we cannot score it.
            _ => return Err("missing log-prob inside the continuation".into()),
        }
    }
    if n == 0 {
        return Err("continuation covers no tokens".into());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_normalised() {
        assert_eq!(
            OpenAiEndpoint::new("http://h:1/v1/", "m").base_url(),
            "http://h:1"
        );
        assert_eq!(
            OpenAiEndpoint::new("http://h:1", "m").base_url(),
            "http://h:1"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let r = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        assert_eq!(r.delay(0), Duration::from_millis(100));
        assert_eq!(r.delay(1), Duration::from_millis(200));
        assert_eq!(r.delay(2), Duration::from_millis(350));
    }

    #[test]
    fn continuation_logprobs_by_offset() {
        // "Q: x A:" + " yes" with tokens at offsets 0,3,5,7(" yes" starts at 7).
        let lps = [None, Some(-1.0), Some(-2.0), Some(-0.5)];
        let offs = [0, 3, 5, 7];
        assert_eq!(sum_continuation_logprobs(&lps, &offs, 7).unwrap(), -0.5);
        // Split inside the third token: it straddles, so it counts.
        assert_eq!(sum_continuation_logprobs(&lps, &offs, 6).unwrap(), -2.5);
        assert!(sum_continuation_logprobs(&lps, &offs[..3], 7).is_err());
    }

    #[test]
    fn api_key_env_missing_is_clear_error() {
        let e = OpenAiEndpoint::new("http://127.0.0.1:9", "m")
            .with_api_key_env("KEEL_EVAL_TEST_SURELY_UNSET_VAR")
            .unwrap_err();
        assert!(e.to_string().contains("KEEL_EVAL_TEST_SURELY_UNSET_VAR"));
        let dbg = format!(
            "{:?}",
            OpenAiEndpoint::new("http://x", "m").with_api_key("sk-secret")
        );
        assert!(!dbg.contains("sk-secret"));
    }
}
