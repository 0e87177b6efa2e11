//! The fast classifier: hashed n-grams → one-vs-rest logistic heads. No download needed.
//! Saved as `linear.json` (metadata, calibration, metrics) + `linear.weights` (raw f32 LE).

use super::features::{featurize_view, DEFAULT_DIM};
use super::logistic::{LogReg, TrainConfig};
use super::{CategoryMetrics, Example, TextClassifier};
use crate::error::{GuardError, Result};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinearMeta {
    pub kind: String,
    pub categories: Vec<String>,
    pub model: LogReg,
    pub metrics: Vec<CategoryMetrics>,
    pub train_examples: usize,
    pub weights_sha256: String,
}

pub struct LinearClassifier {
    pub meta: LinearMeta,
    /// The weights again, feature-major (`[dim][heads]`): a prediction reads every head's
    /// weight for each of a text's ~1500 features, one cache line per feature instead of one
    /// per head (the stored row-major layout made that the largest cost of a prediction).
    by_feature: Vec<f32>,
}

thread_local! {
    static BUF: RefCell<Vec<(u32, f32)>> = const { RefCell::new(Vec::new()) };
}

/// Category codes present in `data`, sorted in taxonomy order.
pub fn label_set(data: &[Example]) -> Vec<String> {
    let mut cats: Vec<String> = data
        .iter()
        .flat_map(|e| e.categories.iter().cloned())
        .collect();
    cats.sort_by_key(|c| crate::taxonomy::order_key(c));
    cats.dedup();
    cats
}

pub fn label_matrix(data: &[Example], cats: &[String]) -> Vec<Vec<bool>> {
    data.iter()
        .map(|e| cats.iter().map(|c| e.categories.contains(c)).collect())
        .collect()
}

impl LinearClassifier {
    pub fn train(data: &[Example], cfg: &TrainConfig) -> Result<LinearClassifier> {
        let cats = label_set(data);
        if cats.is_empty() {
            return Err(GuardError::Model(
                "training data has no labelled categories".into(),
            ));
        }
        // Trained on the same view prediction scores first: normalised, payloads decoded.
        let xs: Vec<Vec<(u32, f32)>> = data
            .iter()
            .map(|e| {
                let mut v = Vec::new();
                let view = crate::normalize::decoded_views(&e.text).swap_remove(0);
                featurize_view(&view, DEFAULT_DIM, &mut v);
                v
            })
            .collect();
        let ys = label_matrix(data, &cats);
        let (model, metrics) = LogReg::train(&xs, &ys, &cats, DEFAULT_DIM, cfg);
        Ok(LinearClassifier::new(LinearMeta {
            kind: "linear".into(),
            categories: cats,
            model,
            metrics,
            train_examples: data.len(),
            weights_sha256: String::new(),
        }))
    }

    pub fn save(&mut self, dir: &Path) -> Result<()> {
        let bytes: Vec<u8> = self
            .meta
            .model
            .w
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        self.meta.weights_sha256 = keel_core::artifact::sha256_hex(&bytes);
        keel_core::artifact::write_atomic(&dir.join("linear.weights"), &bytes)?;
        keel_core::artifact::write_json_atomic(&dir.join("linear.json"), &self.meta)?;
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<LinearClassifier> {
        let mut meta: LinearMeta = keel_core::artifact::read_json(&dir.join("linear.json"))?;
        let wp = dir.join("linear.weights");
        let bytes = std::fs::read(&wp).map_err(|e| GuardError::io(&wp, e))?;
        if keel_core::artifact::sha256_hex(&bytes) != meta.weights_sha256 {
            return Err(GuardError::Model(format!(
                "{}: sha256 does not match linear.json",
                wp.display()
            )));
        }
        let n = meta.model.heads * meta.model.dim;
        if bytes.len() != n * 4
            || meta.model.b.len() != meta.model.heads
            || meta.categories.len() != meta.model.heads
        {
            return Err(GuardError::Model(format!(
                "{}: expected {n} weights for {} heads",
                wp.display(),
                meta.model.heads
            )));
        }
        meta.model.w = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(LinearClassifier::new(meta))
    }

    fn new(meta: LinearMeta) -> LinearClassifier {
        let m = &meta.model;
        let mut by_feature = vec![0.0; m.w.len()];
        for h in 0..m.heads {
            for i in 0..m.dim {
                by_feature[i * m.heads + h] = m.w[h * m.dim + i];
            }
        }
        LinearClassifier { meta, by_feature }
    }

    /// [`LogReg::predict`] from the feature-major weights: each head's margin adds the same
    /// products in the same order, so the probabilities are identical.
    fn predict_features(&self, x: &[(u32, f32)]) -> Vec<f32> {
        let m = &self.meta.model;
        // `-0.0`: the starting value of an `f32` sum.
        let mut acc = vec![-0.0f32; m.heads];
        for &(i, v) in x {
            let row = &self.by_feature[i as usize * m.heads..(i as usize + 1) * m.heads];
            for (a, w) in acc.iter_mut().zip(row) {
                *a += w * v;
            }
        }
        acc.iter()
            .enumerate()
            .map(|(h, s)| m.probability(h, m.b[h] + s))
            .collect()
    }
}

impl TextClassifier for LinearClassifier {
    fn name(&self) -> &str {
        "linear"
    }
    fn categories(&self) -> &[String] {
        &self.meta.categories
    }
    /// The highest score per category over the text's decoded views, so a base64, hex or
    /// rot13 wrapping scores like the plain request.
    fn predict(&self, text: &str) -> Vec<f32> {
        let views = crate::normalize::decoded_views(text);
        BUF.with(|b| {
            let x = &mut *b.borrow_mut();
            let scores = views.iter().map(|v| {
                featurize_view(v, self.meta.model.dim, x);
                self.predict_features(x)
            });
            super::max_per_category(scores, self.meta.categories.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_major_prediction_is_identical() {
        let data = crate::bench::data::builtin();
        let lin = LinearClassifier::train(&data, &TrainConfig::default()).unwrap();
        let mut x = Vec::new();
        for e in &data {
            featurize_view(
                &crate::normalize::normalize(&e.text),
                lin.meta.model.dim,
                &mut x,
            );
            let fast = lin.predict_features(&x);
            let slow = lin.meta.model.predict(&x);
            let bits = |v: &[f32]| v.iter().map(|p| p.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&slow), "{}", e.text);
        }
    }
}
