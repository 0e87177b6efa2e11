//! Show exactly which tokens an example trains on, for Keel's chat template and for a model's
//! own Jinja chat template.
//!
//! Keel's template gives the loss mask directly ([`KeelChatTemplate::render`]). For a Jinja
//! template the mask is derived the way TRL's `assistant_only_loss` sees it: each assistant turn
//! `i` spans from the end of `render(messages[..i], add_generation_prompt=true)` to the end of
//! `render(messages[..=i])`, i.e. its content plus the template's end-of-turn text, and every
//! token overlapping such a span is trained. This needs the template to be prefix-stable
//! (rendering a longer conversation only appends); templates that rewrite earlier turns (e.g.
//! dropping past reasoning) are handled by locating the assistant content itself, which is
//! reported as `prefix_stable = false`.
//!
//! The template is passed as a closure so this crate needs no Jinja engine: keel-model's
//! `ChatTemplate::render` fits it.

use crate::chat::Truncation;
use crate::chat::{fit_length, ChatExample, KeelChatTemplate, Message, Role, TokenizedExample};
use crate::error::{DataError, Result};
use crate::tokenizer::KeelTokenizer;
use serde::Serialize;
use std::ops::Range;
use tokenizers::Tokenizer;

/// One token: id, its vocabulary string, and whether the loss covers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedToken {
    pub id: u32,
    pub piece: String,
    pub trained: bool,
}

/// A rendered example: tokens with the mask, and the text cut into trained/untrained runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub tokens: Vec<RenderedToken>,
    /// Maximal runs of equally-masked tokens as text: `(text, trained)`.
    pub runs: Vec<(String, bool)>,
    /// False when a Jinja template rewrote earlier turns (see the module docs).
    pub prefix_stable: bool,
    /// Tokens cut from the prompt by left truncation (Keel template with a length limit).
    pub truncated: usize,
}

impl Rendered {
    pub fn total(&self) -> usize {
        self.tokens.len()
    }
    pub fn trained(&self) -> usize {
        self.tokens.iter().filter(|t| t.trained).count()
    }
    /// The text with trained runs in `[[…]]`.
    pub fn bracketed(&self) -> String {
        self.runs
            .iter()
            .map(|(t, on)| if *on { format!("[[{t}]]") } else { t.clone() })
            .collect()
    }
    /// The text with trained runs in reverse video (for terminals).
    pub fn highlighted(&self) -> String {
        self.runs
            .iter()
            .map(|(t, on)| {
                if *on {
                    format!("\x1b[7m{t}\x1b[0m")
                } else {
                    t.clone()
                }
            })
            .collect()
    }
    /// One line per token: index, id, `*` if trained, the piece.
    pub fn token_table(&self) -> String {
        self.tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(
                    "{i:>5} {:>7} {} {:?}\n",
                    t.id,
                    if t.trained { "*" } else { " " },
                    t.piece
                )
            })
            .collect()
    }
}

fn pieces(tok: &Tokenizer, ids: &[u32], mask: &[u8]) -> Vec<RenderedToken> {
    ids.iter()
        .zip(mask)
        .map(|(&id, &m)| RenderedToken {
            id,
            piece: tok.id_to_token(id).unwrap_or_else(|| format!("<id {id}>")),
            trained: m == 1,
        })
        .collect()
}

/// Runs of equal mask value, as `(start, end, trained)` token ranges.
fn mask_runs(mask: &[u8]) -> Vec<(usize, usize, bool)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < mask.len() {
        let j = i + mask[i..].iter().take_while(|&&m| m == mask[i]).count();
        out.push((i, j, mask[i] == 1));
        i = j;
    }
    out
}

/// Render with Keel's template; with `max_len`, apply the truncation policy as `keel sft`
/// does. `Ok(None)` if the example cannot fit (`keel sft` would drop it).
pub fn render_keel(
    tok: &KeelTokenizer,
    template: &KeelChatTemplate,
    ex: &ChatExample,
    max_len: Option<(usize, Truncation)>,
) -> Option<Rendered> {
    let mut t: TokenizedExample = template.render(tok, ex);
    let before = t.len();
    if let Some((max, policy)) = max_len {
        fit_length(&mut t, max, policy).ok()?;
    }
    let runs = mask_runs(&t.mask)
        .into_iter()
        .map(|(a, b, on)| (tok.decode(&t.ids[a..b]), on))
        .collect();
    Some(Rendered {
        tokens: pieces(tok.inner(), &t.ids, &t.mask),
        runs,
        prefix_stable: true,
        truncated: before - t.len(),
    })
}

/// The full rendered text and the byte ranges of it that are trained.
pub fn trained_spans<F>(render: &F, ex: &ChatExample) -> Result<(String, Vec<Range<usize>>, bool)>
where
    F: Fn(&[Message], bool) -> std::result::Result<String, String>,
{
    let tmpl_err = |e: String| DataError::invalid("<chat template>", e);
    let messages = match ex {
        ChatExample::Text { text } => {
            let all: Range<usize> = 0..text.len();
            return Ok((text.clone(), std::iter::once(all).collect(), true));
        }
        ChatExample::Chat { messages } => messages,
    };
    let full = render(messages, false).map_err(tmpl_err)?;
    let mut spans = Vec::new();
    let mut stable = true;
    let mut cursor = 0;
    for (i, m) in messages.iter().enumerate() {
        if m.role != Role::Assistant {
            continue;
        }
        let before = render(&messages[..i], true).map_err(tmpl_err)?;
        let through = render(&messages[..=i], false).map_err(tmpl_err)?;
        if stable && through.starts_with(&before) && full.starts_with(&through) {
            spans.push(before.len()..through.len());
            cursor = through.len();
            continue;
        }
        stable = false;
        let content = m.content.as_str();
        let found = full.get(cursor..).and_then(|rest| rest.find(content));
        let Some(at) = found else {
            return Err(tmpl_err(format!(
                "message {i}: the template's output does not contain the assistant content"
            )));
        };
        let start = cursor + at;
        spans.push(start..start + content.len());
        cursor = start + content.len();
    }
    Ok((full, spans, stable))
}

/// Render with a model's own template (`render(messages, add_generation_prompt)`) and
/// tokenizer. Special tokens in the template text (`<|im_start|>`, `<s>`) become their ids, as
/// when the model is trained or prompted.
pub fn render_with_template<F>(tok: &Tokenizer, render: &F, ex: &ChatExample) -> Result<Rendered>
where
    F: Fn(&[Message], bool) -> std::result::Result<String, String>,
{
    let (text, spans, prefix_stable) = trained_spans(render, ex)?;
    let enc = tok
        .encode(text.as_str(), false)
        .map_err(|e| DataError::Tokenizer(e.to_string()))?;
    let ids = enc.get_ids();
    let offsets = enc.get_offsets();
    let mask: Vec<u8> = offsets
        .iter()
        .map(|&(a, b)| u8::from(spans.iter().any(|s| a < s.end && s.start < b.max(a + 1))))
        .collect();
    // Cut the text at each run's first token so no byte is lost between runs.
    let runs = mask_runs(&mask);
    let mut out_runs = Vec::with_capacity(runs.len());
    for (k, &(a, _, on)) in runs.iter().enumerate() {
        let start = if k == 0 { 0 } else { offsets[a].0 };
        let end = runs
            .get(k + 1)
            .map_or(text.len(), |&(n, _, _)| offsets[n].0);
        out_runs.push((text.get(start..end).unwrap_or_default().to_string(), on));
    }
    Ok(Rendered {
        tokens: pieces(tok, ids, &mask),
        runs: out_runs,
        prefix_stable,
        truncated: 0,
    })
}
