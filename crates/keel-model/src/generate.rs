//! Text generation with a KV cache: greedy, temperature, top-k and top-p sampling (seeded),
//! stop token ids and stop sequences, a token limit, and a streaming callback.
//!
//! Streaming and stop sequences interact: text that might be the start of a stop sequence
//! is held back until it is clear it is not, so the callback never sees any part of a stop
//! sequence and the streamed pieces always concatenate to the returned text.

use crate::error::{ModelError, Result};
use crate::llama::{KvCache, Llama};
use crate::load::LoadedModel;
use candle_core::{Device, Tensor};
use keel_core::rng::{rng_for, KeelRng};
use rand::Rng;
use tokenizers::Tokenizer;

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    pub max_new_tokens: usize,
    /// 0 means greedy (argmax); otherwise logits are divided by it before sampling.
    pub temperature: f64,
    /// Keep only the k most likely tokens (`None`: all).
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches p (`None`: 1).
    pub top_p: Option<f64>,
    pub seed: u64,
    /// Generation stops before the first occurrence of any of these in the decoded text.
    pub stop: Vec<String>,
    /// Generation stops when one of these ids is sampled (it is not part of the output).
    pub stop_token_ids: Vec<u32>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            max_new_tokens: 128,
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
            stop: vec![],
            stop_token_ids: vec![],
        }
    }
}

impl SamplingParams {
    pub fn greedy(max_new_tokens: usize) -> Self {
        SamplingParams {
            max_new_tokens,
            ..Default::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(ModelError::Config(format!("sampling: {m}")));
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad("temperature must be a finite number >= 0");
        }
        if self.top_k == Some(0) {
            return bad("top_k must be >= 1");
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return bad("top_p must be in (0, 1]");
            }
        }
        if self.stop.iter().any(|s| s.is_empty()) {
            return bad("stop sequences must not be empty");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A stop token or stop sequence was produced.
    Stop,
    /// `max_new_tokens` or the model's context length was reached.
    Length,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Decoded text, without the stop token or stop sequence.
    pub text: String,
    /// Every sampled token except a final stop token (a stop sequence's tokens stay).
    pub token_ids: Vec<u32>,
    pub finish_reason: FinishReason,
}

impl Generation {
    pub fn num_tokens(&self) -> usize {
        self.token_ids.len()
    }
}

/// Draws the next token from logits according to [`SamplingParams`].
pub struct Sampler {
    params: SamplingParams,
    rng: KeelRng,
}

impl Sampler {
    pub fn new(params: &SamplingParams) -> Self {
        Sampler {
            params: params.clone(),
            rng: rng_for(params.seed, "sample"),
        }
    }

    pub fn sample(&mut self, logits: &[f32]) -> Result<u32> {
        let finite = |x: f32| if x.is_nan() { f32::NEG_INFINITY } else { x };
        if logits.is_empty() || logits.iter().all(|&x| finite(x) == f32::NEG_INFINITY) {
            return Err(ModelError::Config("model produced no finite logits".into()));
        }
        if self.params.temperature == 0.0 {
            // First maximum, so ties resolve deterministically to the lowest id.
            let mut best = 0;
            for (i, &x) in logits.iter().enumerate() {
                if finite(x) > finite(logits[best]) {
                    best = i;
                }
            }
            return Ok(best as u32);
        }
        let t = self.params.temperature as f32;
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &x)| (i as u32, finite(x) / t))
            .collect();
        // Descending by logit, ties by id: a stable order makes seeded runs reproducible.
        cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if let Some(k) = self.params.top_k {
            cand.truncate(k.max(1));
        }
        let max = cand[0].1 as f64;
        let mut probs: Vec<f64> = cand
            .iter()
            .map(|&(_, x)| ((x as f64) - max).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if let Some(top_p) = self.params.top_p {
            let mut cum = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                cum += p;
                if cum >= top_p {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
        }
        let total: f64 = probs.iter().sum();
        let mut u = self.rng.random::<f64>() * total;
        for (i, p) in probs.iter().enumerate() {
            u -= p;
            if u <= 0.0 {
                return Ok(cand[i].0);
            }
        }
        Ok(cand[probs.len() - 1].0)
    }
}

/// Length in bytes of the longest suffix of `text` that is a proper prefix of some stop
/// sequence: that much must be held back from streaming.
fn held_back(text: &str, stops: &[String]) -> usize {
    let mut best = 0;
    for s in stops {
        for (i, _) in s.char_indices().skip(1) {
            if i > best && text.ends_with(&s[..i]) {
                best = i;
            }
        }
    }
    best
}

fn earliest_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops.iter().filter_map(|s| text.find(s.as_str())).min()
}

/// Last-position logits `[vocab]` of `ids` fed after what `cache` holds.
fn next_logits(model: &Llama, ids: &[u32], cache: &mut KvCache) -> Result<Vec<f32>> {
    let x = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
    let logits = model.forward(&x, Some(cache))?;
    let last = logits.narrow(1, ids.len() - 1, 1)?.squeeze(1)?.squeeze(0)?;
    Ok(last.to_dtype(candle_core::DType::F32)?.to_vec1()?)
}

/// Generate a continuation of `prompt_ids`. `on_token` receives each newly decoded piece
/// of text as soon as it is final; the pieces concatenate to the returned `text`.
pub fn generate(
    model: &Llama,
    tokenizer: &Tokenizer,
    prompt_ids: &[u32],
    params: &SamplingParams,
    on_token: &mut dyn FnMut(&str),
) -> Result<Generation> {
    params.validate()?;
    if prompt_ids.is_empty() {
        return Err(ModelError::Config(
            "generate: the prompt has no tokens".into(),
        ));
    }
    let max_pos = model.config.max_position_embeddings;
    if prompt_ids.len() >= max_pos {
        return Err(ModelError::Config(format!(
            "generate: prompt of {} tokens leaves no room in the context of {max_pos}",
            prompt_ids.len()
        )));
    }
    let vocab = model.config.vocab_size as u32;
    if let Some(&bad) = prompt_ids.iter().find(|&&id| id >= vocab) {
        return Err(ModelError::Config(format!(
            "generate: prompt token id {bad} >= vocab_size {vocab}"
        )));
    }
    let decode = |ids: &[u32]| {
        tokenizer
            .decode(ids, true)
            .map_err(|e| ModelError::Config(format!("tokenizer decode: {e}")))
    };
    let mut sampler = Sampler::new(params);
    let mut cache = KvCache::new(model.config.num_hidden_layers);
    let mut logits = next_logits(model, prompt_ids, &mut cache)?;
    let mut ids: Vec<u32> = Vec::new();
    let mut emitted = 0usize;
    let mut text = String::new();
    let mut finish = FinishReason::Length;
    while ids.len() < params.max_new_tokens {
        let next = sampler.sample(&logits)?;
        if params.stop_token_ids.contains(&next) {
            finish = FinishReason::Stop;
            break;
        }
        ids.push(next);
        text = decode(&ids)?;
        if let Some(pos) = earliest_stop(&text, &params.stop) {
            text.truncate(pos);
            finish = FinishReason::Stop;
            break;
        }
        // A trailing U+FFFD is an incomplete UTF-8 sequence: wait for its other bytes.
        let settled = text.trim_end_matches('\u{FFFD}').len();
        let safe = settled - held_back(&text[..settled], &params.stop);
        if safe > emitted && text.is_char_boundary(emitted) {
            on_token(&text[emitted..safe]);
            emitted = safe;
        }
        if prompt_ids.len() + ids.len() >= max_pos {
            break;
        }
        logits = next_logits(model, &[next], &mut cache)?;
    }
    if text.len() > emitted && text.is_char_boundary(emitted) {
        on_token(&text[emitted..]);
    }
    Ok(Generation {
        text,
        token_ids: ids,
        finish_reason: finish,
    })
}

impl LoadedModel {
    /// [`generate`] with the model's EOS / end-of-turn ids added to the stop ids.
    pub fn generate(
        &self,
        prompt_ids: &[u32],
        params: &SamplingParams,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let mut p = params.clone();
        for &id in &self.eos_token_ids {
            if !p.stop_token_ids.contains(&id) {
                p.stop_token_ids.push(id);
            }
        }
        generate(&self.model, &self.tokenizer, prompt_ids, &p, on_token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_back_finds_partial_stop_prefixes() {
        let stops = vec!["</s>".to_string(), "\nUser:".to_string()];
        assert_eq!(held_back("hello </", &stops), 2);
        assert_eq!(held_back("hello\nUs", &stops), 3);
        assert_eq!(held_back("hello", &stops), 0);
        assert_eq!(earliest_stop("a\nUser: b </s>", &stops), Some(1));
    }

    #[test]
    fn sampler_respects_top_k_top_p_and_seed() {
        let logits = [0.0f32, 5.0, 4.9, -1.0, f32::NAN];
        let mut greedy = Sampler::new(&SamplingParams::greedy(1));
        assert_eq!(greedy.sample(&logits).unwrap(), 1);
        let p = SamplingParams {
            temperature: 1.0,
            top_k: Some(2),
            seed: 3,
            ..Default::default()
        };
        let draws: Vec<u32> = {
            let mut s = Sampler::new(&p);
            (0..200).map(|_| s.sample(&logits).unwrap()).collect()
        };
        assert!(draws.iter().all(|&d| d == 1 || d == 2));
        assert!(
            draws.contains(&1) && draws.contains(&2),
            "both top-2 tokens should appear"
        );
        let again: Vec<u32> = {
            let mut s = Sampler::new(&p);
            (0..200).map(|_| s.sample(&logits).unwrap()).collect()
        };
        assert_eq!(draws, again);
        // top_p small enough keeps only the single most likely token.
        let p = SamplingParams {
            temperature: 1.0,
            top_p: Some(0.3),
            seed: 9,
            ..Default::default()
        };
        let mut s = Sampler::new(&p);
        assert!((0..50).all(|_| s.sample(&logits).unwrap() == 1));
        assert!(Sampler::new(&p)
            .sample(&[f32::NAN, f32::NEG_INFINITY])
            .is_err());
    }

    #[test]
    fn invalid_params_are_rejected() {
        for p in [
            SamplingParams {
                temperature: -1.0,
                ..Default::default()
            },
            SamplingParams {
                top_k: Some(0),
                ..Default::default()
            },
            SamplingParams {
                top_p: Some(1.5),
                ..Default::default()
            },
            SamplingParams {
                stop: vec![String::new()],
                ..Default::default()
            },
        ] {
            assert!(p.validate().is_err(), "{p:?}");
        }
    }
}
