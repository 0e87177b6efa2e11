//! A Keel checkpoint (GGUF file or HF-style directory, Keel's own exports included) as a
//! [`Generator`], running in-process on the CPU through keel-model.
//!
//! - chat requests are rendered with the model's own chat template; a model without one
//!   (a base model) only accepts raw prompts, and says so;
//! - raw prompts get the model's BOS token in front when it has one;
//! - log-likelihoods come from one forward pass over context + continuation (tokenised
//!   separately, as lm-evaluation-harness does, so the boundary is exact) and a log-softmax
//!   at each continuation position.
//!
//! candle already spreads each forward pass over the cores, so run local targets with
//! concurrency 1.

use crate::error::GenError;
use crate::generator::{GenRequest, GenResponse, Generator, Prompt, Role, Usage};
use candle_core::{DType, Device, Tensor};
use keel_model::chat_template::ChatMessage;
use keel_model::generate::{FinishReason, SamplingParams as ModelParams};
use keel_model::LoadedModel;
use std::path::Path;

pub struct LocalModel {
    model: LoadedModel,
    name: String,
}

fn model_err(e: impl std::fmt::Display) -> GenError {
    GenError::Other(format!("local model: {e}"))
}

impl LocalModel {
    /// Load from a `.gguf` file or a checkpoint directory.
    pub fn load(path: &Path) -> Result<LocalModel, crate::EvalError> {
        let model = keel_model::load_model(path).map_err(|e| {
            crate::EvalError::Config(format!("cannot load model {}: {e}", path.display()))
        })?;
        Ok(Self::from_loaded(model))
    }

    pub fn from_loaded(model: LoadedModel) -> LocalModel {
        let name = format!("local:{}", model.source.display());
        LocalModel { model, name }
    }

    pub fn loaded(&self) -> &LoadedModel {
        &self.model
    }

    fn with_bos(&self, mut ids: Vec<u32>) -> Vec<u32> {
        if let Some(b) = self.model.bos_token_id {
            if ids.first() != Some(&b) {
                ids.insert(0, b);
            }
        }
        ids
    }

    fn prompt_ids(&self, prompt: &Prompt) -> Result<Vec<u32>, GenError> {
        match prompt {
            Prompt::Raw(text) => Ok(self.with_bos(self.model.encode(text).map_err(model_err)?)),
            Prompt::Chat(messages) => {
                if self.model.chat_template.is_none() {
                    return Err(GenError::Unsupported {
                        generator: self.name.clone(),
                        what: "chat prompts (the model has no chat template; use a suite with chat = false)".into(),
                    });
                }
                let msgs: Vec<ChatMessage> = messages
                    .iter()
                    .map(|m| {
                        let role = match m.role {
                            Role::System => "system",
                            Role::User => "user",
                            Role::Assistant => "assistant",
                        };
                        ChatMessage::new(role, m.content.clone())
                    })
                    .collect();
                self.model.encode_chat(&msgs).map_err(model_err)
            }
        }
    }
}

impl Generator for LocalModel {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn generate(&self, req: &GenRequest) -> Result<GenResponse, GenError> {
        let ids = self.prompt_ids(&req.prompt)?;
        let p = &req.params;
        let params = ModelParams {
            max_new_tokens: p.max_tokens as usize,
            temperature: p.temperature as f64,
            top_k: None,
            top_p: (p.top_p < 1.0).then_some(p.top_p as f64),
            seed: p.seed.unwrap_or(0),
            stop: p.stop.clone(),
            stop_token_ids: Vec::new(),
        };
        let g = self
            .model
            .generate(&ids, &params, &mut |_| {})
            .map_err(model_err)?;
        Ok(GenResponse {
            finish_reason: Some(match g.finish_reason {
                FinishReason::Stop => "stop".into(),
                FinishReason::Length => "length".into(),
            }),
            usage: Some(Usage {
                prompt_tokens: ids.len() as u64,
                completion_tokens: g.token_ids.len() as u64,
            }),
            text: g.text,
        })
    }

    fn loglikelihood(&self, context: &str, continuation: &str) -> Result<f64, GenError> {
        let ctx = self.with_bos(self.model.encode(context).map_err(model_err)?);
        let cont = self.model.encode(continuation).map_err(model_err)?;
        if ctx.is_empty() || cont.is_empty() {
            return Err(model_err("context and continuation must both have tokens"));
        }
        let max = self.model.config.max_position_embeddings;
        if ctx.len() + cont.len() > max {
            return Err(model_err(format!(
                "{} + {} tokens exceed the context of {max}",
                ctx.len(),
                cont.len()
            )));
        }
        let all: Vec<u32> = ctx.iter().chain(&cont).copied().collect();
        let x = Tensor::new(all.as_slice(), &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(model_err)?;
        let logits = self.model.model.forward(&x, None).map_err(model_err)?;
        // Position i predicts token i+1: the continuation is predicted from ctx.len()-1 on.
        let rows = logits
            .narrow(1, ctx.len() - 1, cont.len())
            .and_then(|t| t.squeeze(0))
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(model_err)?;
        let mut total = 0.0f64;
        for (row, &tok) in rows.iter().zip(&cont) {
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
            let lp = row
                .get(tok as usize)
                .ok_or_else(|| model_err(format!("token {tok} outside the logits")))?;
            total += *lp as f64 - lse;
        }
        if !total.is_finite() {
            return Err(model_err("non-finite log-likelihood"));
        }
        Ok(total)
    }
}
