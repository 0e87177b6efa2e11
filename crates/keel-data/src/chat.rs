//! Keel's default chat template, for models Keel trains itself.
//!
//! ```text
//! <|bos|><|system|>…<|end|><|user|>…<|end|><|assistant|>…<|end|>
//! ```
//! Special tokens are inserted by id; message content is encoded literally (the tokenizer
//! encodes "<|end|>" typed by a user as plain bytes), so content can never inject a turn
//! boundary. Rendering yields the ids and a loss mask that is 1 exactly on assistant content
//! tokens and on each assistant turn's closing `<|end|>`: the end-of-turn token must be trained,
//! or the model never learns to stop (the failure TRL users hit most often).
//!
//! A plain-text example (TRL's `{"text"}` format) is `<|bos|>text<|eos|>` trained on every
//! token after `<|bos|>`, EOS included.

use crate::error::{DataError, Result};
use crate::tokenizer::{KeelTokenizer, ASSISTANT, BOS, END, EOS, SYSTEM, USER};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
        }
    }
}

/// One training example: a conversation, or plain text for language-modelling SFT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatExample {
    Chat { messages: Vec<Message> },
    Text { text: String },
}

impl ChatExample {
    /// `[system?] user assistant` from a prompt/completion pair.
    pub fn prompt_completion(system: Option<&str>, prompt: &str, completion: &str) -> Self {
        let mut messages = Vec::with_capacity(3);
        if let Some(s) = system {
            messages.push(Message::new(Role::System, s));
        }
        messages.push(Message::new(Role::User, prompt));
        messages.push(Message::new(Role::Assistant, completion));
        ChatExample::Chat { messages }
    }
}

/// Why a conversation's turns are malformed. `index` is the message's position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnError {
    NoMessages,
    /// A system message anywhere but first.
    MisplacedSystem {
        index: usize,
    },
    /// Turns must alternate user, assistant, user, … after the optional system message.
    RoleOrder {
        index: usize,
        expected: Role,
        found: Role,
    },
    /// The conversation does not end with an assistant turn (nothing to train on).
    NoFinalAssistant,
    EmptyAssistant {
        index: usize,
    },
    EmptyUser {
        index: usize,
    },
}

impl std::fmt::Display for TurnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnError::NoMessages => write!(f, "no messages"),
            TurnError::MisplacedSystem { index } => {
                write!(f, "message {index}: a system message may only come first")
            }
            TurnError::RoleOrder {
                index,
                expected,
                found,
            } => write!(
                f,
                "message {index}: wrong role order: expected {}, found {}",
                expected.as_str(),
                found.as_str()
            ),
            TurnError::NoFinalAssistant => {
                write!(f, "the conversation must end with an assistant turn")
            }
            TurnError::EmptyAssistant { index } => {
                write!(f, "message {index}: empty assistant turn")
            }
            TurnError::EmptyUser { index } => write!(f, "message {index}: empty user turn"),
        }
    }
}

/// Check turn structure: optional system, then user/assistant alternating, ending with the
/// assistant; no empty user or assistant content.
pub fn check_turns(messages: &[Message]) -> std::result::Result<(), TurnError> {
    if messages.is_empty() {
        return Err(TurnError::NoMessages);
    }
    let start = usize::from(messages[0].role == Role::System);
    let mut expected = Role::User;
    for (i, m) in messages.iter().enumerate().skip(start) {
        if m.role == Role::System {
            return Err(TurnError::MisplacedSystem { index: i });
        }
        if m.role != expected {
            return Err(TurnError::RoleOrder {
                index: i,
                expected,
                found: m.role,
            });
        }
        if m.content.trim().is_empty() {
            return Err(match m.role {
                Role::Assistant => TurnError::EmptyAssistant { index: i },
                _ => TurnError::EmptyUser { index: i },
            });
        }
        expected = if expected == Role::User {
            Role::Assistant
        } else {
            Role::User
        };
    }
    if messages.last().map(|m| m.role) != Some(Role::Assistant) {
        return Err(TurnError::NoFinalAssistant);
    }
    Ok(())
}

/// A rendered example: token ids and a per-token loss mask (1 = trained on).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenizedExample {
    pub ids: Vec<u32>,
    pub mask: Vec<u8>,
}

impl TokenizedExample {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    pub fn trained_tokens(&self) -> usize {
        self.mask.iter().filter(|&&m| m == 1).count()
    }
}

/// Keel's template bound to a tokenizer's special-token ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeelChatTemplate {
    pub bos: u32,
    pub eos: u32,
    pub system: u32,
    pub user: u32,
    pub assistant: u32,
    /// End of turn: the token generation must stop on.
    pub end: u32,
}

impl KeelChatTemplate {
    pub fn new(tok: &KeelTokenizer) -> Result<Self> {
        let id = |t: &str| {
            tok.token_id(t)
                .ok_or_else(|| DataError::Tokenizer(format!("tokenizer has no special token {t}")))
        };
        Ok(KeelChatTemplate {
            bos: id(BOS)?,
            eos: id(EOS)?,
            system: id(SYSTEM)?,
            user: id(USER)?,
            assistant: id(ASSISTANT)?,
            end: id(END)?,
        })
    }

    fn role_id(&self, r: Role) -> u32 {
        match r {
            Role::System => self.system,
            Role::User => self.user,
            Role::Assistant => self.assistant,
        }
    }

    /// Ids and loss mask of a whole example (turn order is the caller's to check first with
    /// [`check_turns`]; rendering itself accepts anything).
    pub fn render(&self, tok: &KeelTokenizer, ex: &ChatExample) -> TokenizedExample {
        let mut out = TokenizedExample::default();
        let push = |ids: &[u32], m: u8, out: &mut TokenizedExample| {
            out.ids.extend_from_slice(ids);
            out.mask.extend(std::iter::repeat_n(m, ids.len()));
        };
        push(&[self.bos], 0, &mut out);
        match ex {
            ChatExample::Text { text } => {
                push(&tok.encode(text), 1, &mut out);
                push(&[self.eos], 1, &mut out);
            }
            ChatExample::Chat { messages } => {
                for m in messages {
                    let trained = u8::from(m.role == Role::Assistant);
                    push(&[self.role_id(m.role)], 0, &mut out);
                    push(&tok.encode(&m.content), trained, &mut out);
                    push(&[self.end], trained, &mut out);
                }
            }
        }
        out
    }

    /// This template as a Hugging Face Jinja chat template, written into Keel checkpoints'
    /// `tokenizer_config.json` so that any HF-style loader (Keel's own `keel chat`/`keel eval`,
    /// transformers' `apply_chat_template`) renders conversations exactly as training did.
    /// Rendered text tokenises to [`KeelChatTemplate::render_prompt`]'s ids (tested in
    /// keel-train), except that special-token strings typed inside content are not escaped.
    pub const JINJA: &'static str = "{{ '<|bos|>' }}{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

    /// Ids of a conversation so far followed by `<|assistant|>`: the prompt for generation.
    /// Stop generation on [`KeelChatTemplate::end`].
    pub fn render_prompt(&self, tok: &KeelTokenizer, messages: &[Message]) -> Vec<u32> {
        let mut ids = vec![self.bos];
        for m in messages {
            ids.push(self.role_id(m.role));
            ids.extend(tok.encode(&m.content));
            ids.push(self.end);
        }
        ids.push(self.assistant);
        ids
    }
}

/// What to do with an example longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Truncation {
    /// Skip the example (counted and reported).
    #[default]
    Drop,
    /// Cut tokens from the start of the prompt (after `<|bos|>`), keeping every trained token;
    /// examples whose trained part alone is too long are still dropped.
    TruncateLeft,
}

/// Apply `policy` so that `ex` has at most `max_len` tokens. `Ok(true)` if it was shortened,
/// `Err(len)` with the shortest achievable length if it cannot fit.
pub fn fit_length(
    ex: &mut TokenizedExample,
    max_len: usize,
    policy: Truncation,
) -> std::result::Result<bool, usize> {
    if ex.len() <= max_len {
        return Ok(false);
    }
    // Everything from the first trained token on must stay, plus <|bos|> and the token just
    // before it (the role marker that conditions the first prediction).
    let first = ex.mask.iter().position(|&m| m == 1).unwrap_or(ex.len());
    let keep_from = first.saturating_sub(1).max(1);
    let min_len = 1 + ex.len() - keep_from;
    if policy == Truncation::Drop || min_len > max_len {
        return Err(min_len.min(ex.len()));
    }
    let cut = ex.len() - max_len;
    ex.ids.drain(1..1 + cut);
    ex.mask.drain(1..1 + cut);
    Ok(true)
}

/// Human-readable view of what is trained: trained spans in `[[…]]`, special tokens by name.
pub fn show_trained(tok: &KeelTokenizer, ex: &TokenizedExample) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ex.len() {
        let m = ex.mask[i];
        let mut j = i;
        while j < ex.len() && ex.mask[j] == m {
            j += 1;
        }
        let text = tok.decode(&ex.ids[i..j]);
        if m == 1 {
            out.push_str("[[");
            out.push_str(&text);
            out.push_str("]]");
        } else {
            out.push_str(&text);
        }
        i = j;
    }
    out
}
