//! Model specs for judges, baselines and reward scorers on the command line:
//!
//! - `endpoint:URL` or `endpoint:URL#MODEL` — an OpenAI-compatible server (the fragment is
//!   never sent, so it can carry the model name);
//! - `local:PATH` — a checkpoint loaded in-process (`.gguf` file or HF-style directory).

use crate::error::{EvalError, Result};
use crate::generator::Generator;
use crate::local::LocalModel;
use crate::openai::{OpenAiEndpoint, RetryPolicy};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    Endpoint { url: String, model: Option<String> },
    Local(PathBuf),
}

impl ModelSpec {
    /// Parse `endpoint:URL[#MODEL]` or `local:PATH`.
    pub fn parse(s: &str) -> Result<ModelSpec> {
        let bad = |why: &str| {
            EvalError::Config(format!(
                "model spec '{s}': {why} (expected endpoint:URL[#MODEL] or local:PATH)"
            ))
        };
        if let Some(rest) = s.strip_prefix("endpoint:") {
            let (url, model) = match rest.split_once('#') {
                Some((u, m)) if !m.is_empty() => (u, Some(m.to_string())),
                Some((u, _)) => (u, None),
                None => (rest, None),
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad("the URL must start with http:// or https://"));
            }
            Ok(ModelSpec::Endpoint {
                url: url.to_string(),
                model,
            })
        } else if let Some(p) = s.strip_prefix("local:") {
            if p.is_empty() {
                return Err(bad("empty path"));
            }
            Ok(ModelSpec::Local(PathBuf::from(p)))
        } else {
            Err(bad("unknown kind"))
        }
    }

    /// Build the generator. `default_model` names the endpoint model when the spec does not;
    /// `api_key_env` names the environment variable holding an endpoint's key.
    pub fn build(
        &self,
        default_model: &str,
        api_key_env: Option<&str>,
        timeout: Duration,
    ) -> Result<Arc<dyn Generator>> {
        match self {
            ModelSpec::Endpoint { url, model } => {
                let mut ep = OpenAiEndpoint::new(url, model.as_deref().unwrap_or(default_model))
                    .with_timeout(timeout)
                    .with_retry(RetryPolicy::default());
                if let Some(var) = api_key_env {
                    ep = ep.with_api_key_env(var)?;
                }
                Ok(Arc::new(ep))
            }
            ModelSpec::Local(p) => Ok(Arc::new(LocalModel::load(p)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_rejects_the_rest() {
        assert_eq!(
            ModelSpec::parse("endpoint:http://h:8000/v1#gpt-x").unwrap(),
            ModelSpec::Endpoint {
                url: "http://h:8000/v1".into(),
                model: Some("gpt-x".into())
            }
        );
        assert_eq!(
            ModelSpec::parse("endpoint:https://h/v1").unwrap(),
            ModelSpec::Endpoint {
                url: "https://h/v1".into(),
                model: None
            }
        );
        assert_eq!(
            ModelSpec::parse("local:/m.gguf").unwrap(),
            ModelSpec::Local("/m.gguf".into())
        );
        for bad in ["endpoint:h:8000", "local:", "gpt-4", ""] {
            let e = ModelSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains("model spec"), "{bad}: {e}");
        }
        let e = ModelSpec::Local("/nonexistent.gguf".into())
            .build("m", None, Duration::from_secs(1))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("nonexistent.gguf"), "{e}");
    }
}
