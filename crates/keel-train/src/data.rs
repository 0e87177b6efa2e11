//! Token streams for next-token prediction.
//!
//! Documents are tokenized, joined with EOS (so the model learns where text ends) and
//! sampled as random windows of `seq_len + 1` tokens: the first `seq_len` are inputs, the last
//! `seq_len` targets. The window offsets come from a seeded generator whose state is part of
//! every checkpoint, which is what makes resume exact.

use crate::error::{Result, TrainError};
use candle_core::{Device, Tensor};
use keel_core::rng::KeelRng;
use rand::Rng;

/// A tokenized corpus split.
#[derive(Debug, Clone, Default)]
pub struct TokenStream {
    pub ids: Vec<u32>,
    /// UTF-8 bytes of text each token stands for (0 for special tokens): bits-per-byte needs it.
    pub bytes: Vec<u32>,
}

impl TokenStream {
    /// Tokenize `docs`, appending `eos` after each.
    pub fn from_docs(tok: &tokenizers::Tokenizer, docs: &[String], eos: u32) -> Result<Self> {
        let table = token_byte_lengths(tok);
        let enc = tok
            .encode_batch(docs.iter().map(|d| d.as_str()).collect::<Vec<_>>(), false)
            .map_err(|e| TrainError::Data(format!("tokenizing corpus: {e}")))?;
        let mut s = TokenStream::default();
        for e in enc {
            for &id in e.get_ids() {
                s.ids.push(id);
                s.bytes.push(table.get(id as usize).copied().unwrap_or(0));
            }
            s.ids.push(eos);
            s.bytes.push(0);
        }
        Ok(s)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// A random batch `(inputs, targets)`, each `[batch, seq_len]`.
    pub fn sample_batch(
        &self,
        rng: &mut KeelRng,
        batch: usize,
        seq_len: usize,
    ) -> Result<(Tensor, Tensor)> {
        if self.ids.len() < seq_len + 2 {
            return Err(TrainError::Data(format!(
                "corpus has {} tokens, fewer than one window of seq_len {} + 1",
                self.ids.len(),
                seq_len
            )));
        }
        let mut x = Vec::with_capacity(batch * seq_len);
        let mut y = Vec::with_capacity(batch * seq_len);
        for _ in 0..batch {
            let off = rng.random_range(0..self.ids.len() - seq_len - 1);
            x.extend_from_slice(&self.ids[off..off + seq_len]);
            y.extend_from_slice(&self.ids[off + 1..off + seq_len + 1]);
        }
        Ok((
            Tensor::from_vec(x, (batch, seq_len), &Device::Cpu)?,
            Tensor::from_vec(y, (batch, seq_len), &Device::Cpu)?,
        ))
    }

    /// Consecutive non-overlapping windows for evaluation: `(inputs, targets, target bytes)`.
    pub fn eval_windows(
        &self,
        seq_len: usize,
        max_windows: usize,
    ) -> Vec<(Vec<u32>, Vec<u32>, u64)> {
        let mut out = Vec::new();
        let mut off = 0;
        while off + seq_len < self.ids.len() && out.len() < max_windows {
            let x = self.ids[off..off + seq_len].to_vec();
            let y = self.ids[off + 1..off + seq_len + 1].to_vec();
            let b = self.bytes[off + 1..off + seq_len + 1]
                .iter()
                .map(|&b| b as u64)
                .sum();
            out.push((x, y, b));
            off += seq_len;
        }
        out
    }
}

/// Bytes per token id. Byte-level BPE writes each byte as one printable character, so the
/// character count of a token's string is its byte count; special tokens stand for no text.
pub fn token_byte_lengths(tok: &tokenizers::Tokenizer) -> Vec<u32> {
    let vocab = tok.get_vocab_size(true);
    let specials: std::collections::HashSet<u32> = tok
        .get_added_tokens_decoder()
        .iter()
        .filter(|(_, t)| t.special)
        .map(|(id, _)| *id)
        .collect();
    (0..vocab as u32)
        .map(|id| {
            if specials.contains(&id) {
                0
            } else {
                tok.id_to_token(id)
                    .map(|s| s.chars().count() as u32)
                    .unwrap_or(0)
            }
        })
        .collect()
}
