//! Turning chat examples into training ids + loss masks for whichever model is being trained:
//! Keel's own template for models Keel trained (special tokens by id), or the model's own Jinja
//! chat template (SmolLM2's ChatML, Llama 3's headers, …) for imported models.
//!
//! For a Jinja template the assistant spans are found the way TRL's assistant-only loss does
//! it, without per-template rules: render the conversation up to each assistant turn with the
//! generation prompt, then including that turn; the extra text is the turn's trained part
//! (content plus the template's end-of-turn marker, so the model learns to stop). The pieces
//! are tokenised one by one and concatenated, so a span's tokens never straddle the boundary.

use crate::error::{Result, TrainError};
use keel_data::chat::{ChatExample, KeelChatTemplate, Role, TokenizedExample};
use keel_data::tokenizer::KeelTokenizer;
use keel_model::chat_template::{ChatMessage, ChatTemplate};
use keel_model::LoadedModel;

// One renderer per training run: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ChatRenderer {
    Keel {
        tok: Box<KeelTokenizer>,
        template: KeelChatTemplate,
    },
    Jinja {
        tok: Box<tokenizers::Tokenizer>,
        template: ChatTemplate,
        bos: Option<u32>,
        eos: Option<u32>,
    },
}

impl ChatRenderer {
    /// Keel's template when the tokenizer has Keel's chat special tokens, else the model's own
    /// template; an error when it has neither.
    pub fn for_model(m: &LoadedModel) -> Result<ChatRenderer> {
        if let Ok(tok) = KeelTokenizer::from_tokenizer(m.tokenizer.clone()) {
            if let Ok(template) = KeelChatTemplate::new(&tok) {
                return Ok(ChatRenderer::Keel {
                    tok: Box::new(tok),
                    template,
                });
            }
        }
        let template = m.chat_template()?.ok_or_else(|| {
            TrainError::Data(format!(
                "{}: the model has neither Keel's chat tokens nor a chat template",
                m.source.display()
            ))
        })?;
        Ok(ChatRenderer::Jinja {
            tok: Box::new(m.tokenizer.clone()),
            template,
            bos: m.bos_token_id,
            eos: m.eos_token_ids.first().copied(),
        })
    }

    /// [`ChatRenderer::for_model`] for a model on disk; a Keel checkpoint's renderer comes from
    /// its `tokenizer.json` alone, without loading weights.
    pub fn for_path(path: &std::path::Path) -> Result<ChatRenderer> {
        let tj = path.join("tokenizer.json");
        if tj.is_file() {
            if let Ok(tok) = KeelTokenizer::from_file(&tj) {
                if let Ok(template) = KeelChatTemplate::new(&tok) {
                    return Ok(ChatRenderer::Keel {
                        tok: Box::new(tok),
                        template,
                    });
                }
            }
        }
        ChatRenderer::for_model(&keel_model::load_model(path)?)
    }

    /// Keel's template over `tok` (which must have Keel's chat special tokens).
    pub fn keel(tok: KeelTokenizer) -> Result<ChatRenderer> {
        let template = KeelChatTemplate::new(&tok).map_err(|e| TrainError::Data(e.to_string()))?;
        Ok(ChatRenderer::Keel {
            tok: Box::new(tok),
            template,
        })
    }

    pub fn is_keel(&self) -> bool {
        matches!(self, ChatRenderer::Keel { .. })
    }

    pub fn render(&self, ex: &ChatExample) -> Result<TokenizedExample> {
        match self {
            ChatRenderer::Keel { tok, template } => Ok(template.render(tok, ex)),
            ChatRenderer::Jinja {
                tok,
                template,
                bos,
                eos,
            } => match ex {
                ChatExample::Text { text } => {
                    let mut out = TokenizedExample::default();
                    if let Some(b) = bos {
                        out.ids.push(*b);
                        out.mask.push(0);
                    }
                    push(tok, text, 1, &mut out)?;
                    if let Some(e) = eos {
                        out.ids.push(*e);
                        out.mask.push(1);
                    }
                    Ok(out)
                }
                ChatExample::Chat { messages } => {
                    let msgs: Vec<ChatMessage> = messages
                        .iter()
                        .map(|m| ChatMessage::new(m.role.as_str(), m.content.clone()))
                        .collect();
                    let mut out = TokenizedExample::default();
                    let mut done = String::new();
                    for (i, m) in messages.iter().enumerate() {
                        if m.role != Role::Assistant {
                            continue;
                        }
                        let prompt = template.render(&msgs[..i], true)?;
                        let full = template.render(&msgs[..=i], false)?;
                        let (Some(new_prompt), Some(turn)) = (
                            prompt.strip_prefix(done.as_str()),
                            full.strip_prefix(prompt.as_str()),
                        ) else {
                            return Err(TrainError::Data(format!(
                                "the chat template does not render turn {i} as an extension of \
                                 the turns before it; cannot tell which tokens to train on"
                            )));
                        };
                        push(tok, new_prompt, 0, &mut out)?;
                        push(tok, turn, 1, &mut out)?;
                        done = full;
                    }
                    Ok(out)
                }
            },
        }
    }

    /// Prompt ids for generation (conversation so far + the assistant header).
    pub fn render_prompt(&self, messages: &[keel_data::chat::Message]) -> Result<Vec<u32>> {
        match self {
            ChatRenderer::Keel { tok, template } => Ok(template.render_prompt(tok, messages)),
            ChatRenderer::Jinja { tok, template, .. } => {
                let msgs: Vec<ChatMessage> = messages
                    .iter()
                    .map(|m| ChatMessage::new(m.role.as_str(), m.content.clone()))
                    .collect();
                let text = template.render(&msgs, true)?;
                let mut out = TokenizedExample::default();
                push(tok, &text, 0, &mut out)?;
                Ok(out.ids)
            }
        }
    }

    /// Ids of an assistant reply `text` to the conversation `prompt`, as they follow
    /// [`ChatRenderer::render_prompt`]'s ids: the reply plus the template's end-of-turn marker
    /// (Keel: `<|end|>`; Jinja: whatever the template appends after the content, found as in
    /// [`ChatRenderer::render`]), tokenised on its own (TRL tokenises completions separately).
    pub fn completion(&self, prompt: &[keel_data::chat::Message], text: &str) -> Result<Vec<u32>> {
        match self {
            ChatRenderer::Keel { tok, template } => {
                let mut ids = tok.encode(text);
                ids.push(template.end);
                Ok(ids)
            }
            ChatRenderer::Jinja { tok, template, .. } => {
                let mut msgs: Vec<ChatMessage> = prompt
                    .iter()
                    .map(|m| ChatMessage::new(m.role.as_str(), m.content.clone()))
                    .collect();
                let head = template.render(&msgs, true)?;
                msgs.push(ChatMessage::new(Role::Assistant.as_str(), text.to_string()));
                let full = template.render(&msgs, false)?;
                let turn = full.strip_prefix(head.as_str()).ok_or_else(|| {
                    TrainError::Data(
                        "the chat template does not render a reply as an extension of its \
                         prompt; cannot tell which tokens are the completion"
                            .into(),
                    )
                })?;
                let mut out = TokenizedExample::default();
                push(tok, turn, 1, &mut out)?;
                Ok(out.ids)
            }
        }
    }
}

/// Tokenise `text` (special-token strings map to their ids) and append it with mask `m`.
fn push(tok: &tokenizers::Tokenizer, text: &str, m: u8, out: &mut TokenizedExample) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let enc = tok
        .encode(text, false)
        .map_err(|e| TrainError::Data(format!("tokenizer: {e}")))?;
    out.ids.extend_from_slice(enc.get_ids());
    out.mask.extend(std::iter::repeat_n(m, enc.get_ids().len()));
    Ok(())
}
