//! Rollouts: k completions of one prompt, sampled together with the KV cache.
//!
//! The k rows share the prompt, so they are one batch of equal length: the prompt is
//! prefilled once as a `[k, p]` batch and the rows then decode in lockstep, one `[k, 1]`
//! forward per token. Rows that have stopped keep feeding a token (their outputs are
//! ignored) so the batch shape never changes mid-sequence. Each row draws from its own
//! [`Sampler`] (keel-model's generator, seeded per row), so a row's tokens depend only on
//! (seed, row), not on which other rows were in the batch.
//!
//! Only the sampled ids are kept. The log-probabilities that PPO's ratios need are recomputed
//! afterwards by the trainer's own forward, so sampling and training cannot disagree.

use crate::error::{Result, TrainError};
use candle_core::{DType, Device, Tensor};
use keel_model::generate::{Sampler, SamplingParams};
use keel_model::{KvCache, Llama};
use tokenizers::Tokenizer;

/// One sampled completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Sampled ids; the stop token is the last one when `finished` (it is an action the
    /// policy took, and the reward is credited to it).
    pub ids: Vec<u32>,
    /// Decoded text, without the stop token.
    pub text: String,
    /// Ended with a stop token rather than the token or context limit.
    pub finished: bool,
}

/// How to sample.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutParams {
    pub max_new_tokens: usize,
    /// 0 = greedy (evaluation); otherwise plain temperature sampling over the full
    /// vocabulary (no top-k/top-p: the trainer's log-probs must describe the same
    /// distribution).
    pub temperature: f64,
    /// Ids that end a completion (Keel's `<|end|>`, EOS).
    pub stop_ids: Vec<u32>,
}

/// Sample `seeds.len()` completions of `prompt` (one per seed) in one batch.
pub fn sample_group(
    model: &Llama,
    tokenizer: &Tokenizer,
    prompt: &[u32],
    params: &RolloutParams,
    seeds: &[u64],
) -> Result<Vec<Completion>> {
    let k = seeds.len();
    let max_pos = model.config.max_position_embeddings;
    if prompt.is_empty() || prompt.len() >= max_pos {
        return Err(TrainError::Data(format!(
            "prompt of {} tokens does not fit the context of {max_pos} with room to answer",
            prompt.len()
        )));
    }
    if k == 0 {
        return Ok(vec![]);
    }
    let mut samplers: Vec<Sampler> = seeds
        .iter()
        .map(|&seed| {
            Sampler::new(&SamplingParams {
                temperature: params.temperature,
                seed,
                ..Default::default()
            })
        })
        .collect();
    let rows: Vec<u32> = (0..k).flat_map(|_| prompt.iter().copied()).collect();
    let x = Tensor::from_vec(rows, (k, prompt.len()), &Device::Cpu)?;
    let mut cache = KvCache::new(model.config.num_hidden_layers);
    let mut logits = model.forward_last(&x, Some(&mut cache))?;
    let mut out: Vec<Completion> = (0..k)
        .map(|_| Completion {
            ids: vec![],
            text: String::new(),
            finished: false,
        })
        .collect();
    let mut active = vec![true; k];
    let limit = params.max_new_tokens.min(max_pos - prompt.len());
    for step in 0..limit {
        let rows = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let mut next = vec![0u32; k];
        for i in 0..k {
            if !active[i] {
                next[i] = out[i]
                    .ids
                    .last()
                    .copied()
                    .unwrap_or(prompt[prompt.len() - 1]);
                continue;
            }
            let tok = samplers[i].sample(&rows[i])?;
            out[i].ids.push(tok);
            next[i] = tok;
            if params.stop_ids.contains(&tok) {
                out[i].finished = true;
                active[i] = false;
            }
        }
        if !active.iter().any(|&a| a) || step + 1 == limit {
            break;
        }
        let x = Tensor::from_vec(next, (k, 1), &Device::Cpu)?;
        logits = model.forward_last(&x, Some(&mut cache))?;
    }
    for c in &mut out {
        let visible = if c.finished {
            &c.ids[..c.ids.len() - 1]
        } else {
            &c.ids[..]
        };
        c.text = tokenizer
            .decode(visible, true)
            .map_err(|e| TrainError::Data(format!("tokenizer decode: {e}")))?;
    }
    Ok(out)
}

/// The seed of completion `j` of prompt slot `i` at iteration `step`: a pure function, so a
/// resumed run samples exactly what the uninterrupted one would have.
pub fn completion_seed(seed: u64, step: u64, i: usize, j: usize) -> u64 {
    // SplitMix64 finaliser over the packed coordinates.
    let mut z = seed
        ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ ((i as u64) << 32)
            .wrapping_add(j as u64)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_model::generate::generate;
    use keel_model::LlamaConfig;

    fn byte_tokenizer() -> Tokenizer {
        use tokenizers::models::wordlevel::WordLevel;
        let vocab = (0..40u32).map(|i| (format!("t{i}"), i)).collect();
        let wl = WordLevel::builder()
            .vocab(vocab)
            .unk_token("t0".into())
            .build()
            .unwrap();
        Tokenizer::new(wl)
    }

    #[test]
    fn batched_rows_match_single_sequence_generation() {
        let mut cfg = LlamaConfig::tiny(40, 32, 2, 4);
        cfg.max_position_embeddings = 64;
        let (_vm, m) = Llama::init(&cfg, 2).unwrap();
        let tok = byte_tokenizer();
        let prompt = [1u32, 5, 7, 9];
        let params = RolloutParams {
            max_new_tokens: 12,
            temperature: 1.0,
            stop_ids: vec![3, 4],
        };
        let seeds = [11, 12, 13, 14, 15];
        let group = sample_group(&m, &tok, &prompt, &params, &seeds).unwrap();
        for (c, &seed) in group.iter().zip(&seeds) {
            // keel-model's single-sequence generator with the same seed draws the same ids.
            let g = generate(
                &m,
                &tok,
                &prompt,
                &SamplingParams {
                    max_new_tokens: 12,
                    temperature: 1.0,
                    seed,
                    stop_token_ids: vec![3, 4],
                    ..Default::default()
                },
                &mut |_| {},
            )
            .unwrap();
            let visible = if c.finished {
                &c.ids[..c.ids.len() - 1]
            } else {
                &c.ids[..]
            };
            assert_eq!(visible, &g.token_ids[..], "seed {seed}");
            assert_eq!(
                c.finished,
                g.finish_reason == keel_model::generate::FinishReason::Stop
            );
            assert!(c.ids.len() <= 12);
        }
        assert_ne!(group[0].ids, group[1].ids, "different seeds should differ");
        assert_ne!(completion_seed(0, 1, 0, 1), completion_seed(0, 1, 1, 0));
        let long: Vec<u32> = vec![1; 64];
        assert!(sample_group(&m, &tok, &long, &params, &seeds).is_err());
    }
}
