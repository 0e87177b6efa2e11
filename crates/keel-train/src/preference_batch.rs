//! Preference data as token ids, and batches of (prompt, completion) sequences.
//!
//! A pair becomes prompt ids (the model's chat template up to and including the assistant
//! header: Keel's `<|assistant|>`, or its own Jinja template's generation prompt) and two
//! completions (the reply's ids plus the template's end-of-turn marker, which is scored too:
//! ending is part of the answer), rendered by a [`ChatRenderer`]. Chosen and rejected go
//! through the model in one right-padded batch, as TRL's `concatenated_forward`, with the mask
//! on completion targets only.

use crate::chat_render::ChatRenderer;
use crate::error::{Result, TrainError};
use candle_core::{Device, Tensor};
use keel_data::chat::Message;
use keel_data::preference::{PreferencePair, UnpairedExample};
use keel_model::Llama;
use serde::{Deserialize, Serialize};

/// A tokenized pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizedPair {
    pub prompt: Vec<u32>,
    pub chosen: Vec<u32>,
    pub rejected: Vec<u32>,
}

/// What tokenizing a set of pairs did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizeReport {
    /// Pairs whose prompt was cut from the left (after its first token) to fit.
    pub truncated: usize,
    /// Pairs dropped because a completion alone does not fit.
    pub dropped: usize,
    /// Pairs dropped because the chat template cannot render them (e.g. a role order the
    /// template rejects).
    #[serde(default)]
    pub unrenderable: usize,
}

/// Template-rendered prompt and completion ids.
pub struct PairTokenizer<'a> {
    pub renderer: &'a ChatRenderer,
    /// Longest prompt + completion, in tokens.
    pub max_len: usize,
}

impl<'a> PairTokenizer<'a> {
    pub fn new(renderer: &'a ChatRenderer, max_len: usize) -> Self {
        PairTokenizer { renderer, max_len }
    }

    pub fn prompt(&self, messages: &[Message]) -> Result<Vec<u32>> {
        self.renderer.render_prompt(messages)
    }

    pub fn completion(&self, prompt: &[Message], text: &str) -> Result<Vec<u32>> {
        self.renderer.completion(prompt, text)
    }

    /// Left-truncate `prompt` (keeping its first token — `<|bos|>` or the template's opening
    /// marker — and at least one more) so that it fits with the longest completion; `None` if
    /// it cannot.
    fn fit(&self, mut prompt: Vec<u32>, longest: usize) -> Option<(Vec<u32>, bool)> {
        if prompt.len() + longest <= self.max_len {
            return Some((prompt, false));
        }
        let room = self.max_len.checked_sub(longest)?;
        if room < 2 {
            return None;
        }
        let cut = prompt.len() - room;
        prompt.drain(1..1 + cut);
        Some((prompt, true))
    }

    /// Note a rendering failure (the first one is logged).
    fn unrenderable(report: &mut TokenizeReport, e: &TrainError) {
        if report.unrenderable == 0 {
            tracing::warn!("preference row dropped: {e}");
        }
        report.unrenderable += 1;
    }

    pub fn pairs(&self, pairs: &[PreferencePair]) -> (Vec<TokenizedPair>, TokenizeReport) {
        let mut report = TokenizeReport::default();
        let mut out = Vec::with_capacity(pairs.len());
        for p in pairs {
            let ids = (|| {
                Ok::<_, TrainError>((
                    self.prompt(&p.prompt)?,
                    self.completion(&p.prompt, &p.chosen)?,
                    self.completion(&p.prompt, &p.rejected)?,
                ))
            })();
            let (prompt, c, r) = match ids {
                Ok(v) => v,
                Err(e) => {
                    Self::unrenderable(&mut report, &e);
                    continue;
                }
            };
            match self.fit(prompt, c.len().max(r.len())) {
                Some((prompt, cut)) => {
                    report.truncated += usize::from(cut);
                    out.push(TokenizedPair {
                        prompt,
                        chosen: c,
                        rejected: r,
                    });
                }
                None => report.dropped += 1,
            }
        }
        (out, report)
    }

    /// KTO examples as (prompt, completion, desirable).
    pub fn unpaired(&self, exs: &[UnpairedExample]) -> (Vec<TokenizedUnpaired>, TokenizeReport) {
        let mut report = TokenizeReport::default();
        let mut out = Vec::with_capacity(exs.len());
        for e in exs {
            let ids = self
                .prompt(&e.prompt)
                .and_then(|p| Ok((p, self.completion(&e.prompt, &e.completion)?)));
            let (prompt, c) = match ids {
                Ok(v) => v,
                Err(err) => {
                    Self::unrenderable(&mut report, &err);
                    continue;
                }
            };
            match self.fit(prompt, c.len()) {
                Some((prompt, cut)) => {
                    report.truncated += usize::from(cut);
                    out.push(TokenizedUnpaired {
                        prompt,
                        completion: c,
                        desirable: e.desirable,
                    });
                }
                None => report.dropped += 1,
            }
        }
        (out, report)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizedUnpaired {
    pub prompt: Vec<u32>,
    pub completion: Vec<u32>,
    pub desirable: bool,
}

/// A right-padded batch of prompt + completion sequences, shifted into inputs and targets,
/// with the mask on completion targets.
pub struct SeqBatch {
    pub x: Tensor,
    pub y: Tensor,
    pub mask: Tensor,
    /// Completion tokens per row, `[b]` f32.
    pub lens: Tensor,
    /// Index of each row's last real token in `x` (for reward heads).
    pub last: Vec<usize>,
    /// Non-padding input tokens.
    pub tokens: usize,
}

pub fn collate_seqs(seqs: &[(&[u32], &[u32])]) -> Result<SeqBatch> {
    let t = seqs
        .iter()
        .map(|(p, c)| (p.len() + c.len()).saturating_sub(1))
        .max()
        .unwrap_or(0);
    if seqs.is_empty() || t == 0 {
        return Err(TrainError::Data("empty preference batch".into()));
    }
    let b = seqs.len();
    let (mut x, mut y, mut m) = (vec![0u32; b * t], vec![0u32; b * t], vec![0f32; b * t]);
    let (mut lens, mut last, mut tokens) = (Vec::with_capacity(b), Vec::with_capacity(b), 0);
    for (r, (p, c)) in seqs.iter().enumerate() {
        if p.is_empty() || c.is_empty() {
            return Err(TrainError::Data(format!(
                "sequence {r}: empty prompt or completion"
            )));
        }
        let full: Vec<u32> = p.iter().chain(c.iter()).copied().collect();
        let n = full.len() - 1;
        x[r * t..r * t + n].copy_from_slice(&full[..n]);
        y[r * t..r * t + n].copy_from_slice(&full[1..]);
        // Target k is token k+1: completion tokens are targets p.len()-1 .. n.
        m[r * t + p.len() - 1..r * t + n].fill(1.0);
        lens.push(c.len() as f32);
        last.push(n - 1);
        tokens += n;
    }
    let dev = &Device::Cpu;
    Ok(SeqBatch {
        x: Tensor::from_vec(x, (b, t), dev)?,
        y: Tensor::from_vec(y, (b, t), dev)?,
        mask: Tensor::from_vec(m, (b, t), dev)?,
        lens: Tensor::from_vec(lens, b, dev)?,
        last,
        tokens,
    })
}

/// Summed completion log-probs `[b]` of a batch under `model`.
pub fn batch_logps(model: &Llama, b: &SeqBatch) -> Result<Tensor> {
    Ok(model.sequence_logprobs(&b.x, &b.y, &b.mask)?)
}

/// Summed completion log-probs of many sequences without gradients, `batch` at a time: the
/// reference model's pass, and evaluation.
pub fn logps_no_grad(model: &Llama, seqs: &[(&[u32], &[u32])], batch: usize) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(batch.max(1)) {
        let b = collate_seqs(chunk)?;
        out.extend(batch_logps(model, &b)?.detach().to_vec1::<f32>()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collate_masks_completion_targets_only() {
        let (p1, c1) = (vec![1u32, 2, 3], vec![7u32, 8]);
        let (p2, c2) = (vec![1u32, 4], vec![9u32]);
        let b = collate_seqs(&[(&p1, &c1), (&p2, &c2)]).unwrap();
        assert_eq!(b.x.dims(), &[2, 4]);
        assert_eq!(
            b.y.to_vec2::<u32>().unwrap(),
            vec![vec![2, 3, 7, 8], vec![4, 9, 0, 0]]
        );
        assert_eq!(
            b.mask.to_vec2::<f32>().unwrap(),
            vec![vec![0., 0., 1., 1.], vec![0., 1., 0., 0.]]
        );
        assert_eq!(b.lens.to_vec1::<f32>().unwrap(), vec![2.0, 1.0]);
        assert_eq!(b.last, vec![3, 1]);
        assert!(collate_seqs(&[(&p1, &[][..])]).is_err());
    }
}
