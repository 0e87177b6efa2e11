//! A trained reward model, loaded for scoring: what RL, best-of-n and evaluation call.

use crate::chat_render::ChatRenderer;
use crate::error::{Result, TrainError};
use crate::preference_batch::{collate_seqs, PairTokenizer};
use crate::reward::RewardHeadMeta;
use crate::sft::{load_base, BaseModel};
use candle_core::Tensor;
use keel_data::chat::{Message, Role};
use keel_data::tokenizer::KeelTokenizer;
use keel_model::reward_head::SCORE_WEIGHT;
use std::path::Path;

pub struct RewardModel {
    pub base: BaseModel,
    pub score_weight: Tensor,
    pub tokenizer: KeelTokenizer,
    /// Keel's chat template over `tokenizer`.
    pub renderer: ChatRenderer,
    pub meta: RewardHeadMeta,
}

impl RewardModel {
    /// Load a reward checkpoint written by [`crate::reward::train_reward`]: `config.json`,
    /// `model.safetensors` (with `score.weight`), `reward_head.json`, `tokenizer.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let meta: RewardHeadMeta = keel_core::artifact::read_json(&dir.join("reward_head.json"))?;
        let base = load_base(dir)?;
        let file = dir.join("model.safetensors");
        let tensors = crate::checkpoint::load_tensors(&file)?;
        let w = tensors
            .get(&meta.score_tensor)
            .ok_or_else(|| TrainError::Checkpoint {
                path: file.clone(),
                message: format!("missing tensor {}", meta.score_tensor),
            })?;
        if w.dims() != [1, base.config.hidden_size] {
            return Err(TrainError::Checkpoint {
                path: file,
                message: format!(
                    "{SCORE_WEIGHT} has shape {:?}, expected [1, {}]",
                    w.dims(),
                    base.config.hidden_size
                ),
            });
        }
        let tok = dir.join("tokenizer.json");
        let tokenizer =
            KeelTokenizer::from_file(&tok).map_err(|e| TrainError::Data(e.to_string()))?;
        Ok(RewardModel {
            score_weight: w.to_dtype(candle_core::DType::F32)?,
            base,
            renderer: ChatRenderer::keel(
                KeelTokenizer::from_tokenizer(tokenizer.inner().clone())
                    .map_err(|e| TrainError::Data(e.to_string()))?,
            )?,
            tokenizer,
            meta,
        })
    }

    /// Reward of `response` to a single-turn `prompt`.
    pub fn score(&self, prompt: &str, response: &str) -> Result<f32> {
        let p = [Message::new(Role::User, prompt)];
        Ok(self.score_batch(&[(&p[..], response)])?[0])
    }

    /// Rewards of (conversation, reply) items, in order. Prompts longer than the model's
    /// `max_len` are cut from the left, as in training; a reply that alone does not fit is an
    /// error.
    pub fn score_batch(&self, items: &[(&[Message], &str)]) -> Result<Vec<f32>> {
        let pt = PairTokenizer::new(&self.renderer, self.meta.max_len);
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(16) {
            let mut seqs = Vec::with_capacity(chunk.len());
            for (i, (prompt, reply)) in chunk.iter().enumerate() {
                let c = pt.completion(prompt, reply)?;
                let mut p = pt.prompt(prompt)?;
                if p.len() + c.len() > pt.max_len {
                    let room = pt
                        .max_len
                        .checked_sub(c.len())
                        .filter(|r| *r >= 2)
                        .ok_or_else(|| {
                            TrainError::Data(format!(
                                "item {i}: reply of {} tokens does not fit max_len {}",
                                c.len(),
                                pt.max_len
                            ))
                        })?;
                    p.drain(1..1 + p.len() - room);
                }
                seqs.push((p, c));
            }
            let refs: Vec<(&[u32], &[u32])> = seqs.iter().map(|(p, c)| (&p[..], &c[..])).collect();
            let b = collate_seqs(&refs)?;
            let ids = Tensor::cat(&[b.x.narrow(1, 0, 1)?, b.y.clone()], 1)?;
            let last: Vec<usize> = b.last.iter().map(|l| l + 1).collect();
            let s = self
                .base
                .model
                .reward_scores(&ids, &last, &self.score_weight)?;
            out.extend(s.detach().to_vec1::<f32>()?);
        }
        Ok(out)
    }
}
