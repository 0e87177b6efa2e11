//! SFT dataset formats: the shapes TRL users already have, in JSONL or Parquet (the on-disk
//! format of Hugging Face `datasets`; see [`crate::parquet`]).
//!
//! - conversational: `{"messages": [{"role": "system"|"user"|"assistant", "content": "…"}, …]}`
//! - prompt-completion: `{"prompt": "…", "completion": "…"}` (optional `"system"`); the
//!   conversational variant with `prompt`/`completion` as message lists is accepted too
//! - language modelling: `{"text": "…"}`
//!
//! Field names can be remapped (`--input-key`/`--output-key`, as in OpenRLHF). Every row is
//! validated before any training: each bad row becomes a [`BadRow`] naming `file:line`, the
//! field and the reason. By default bad rows are skipped and counted; `strict` turns the first
//! into an error. A file is Parquet when it starts with Parquet's `PAR1` magic; there `line` is
//! the 0-based row index (as in `ds[i]`) and reports say `file:row N`.

use crate::chat::{
    check_turns, fit_length, ChatExample, KeelChatTemplate, Message, Role, TokenizedExample,
    Truncation, TurnError,
};
use crate::error::{DataError, Result};
use crate::tokenizer::KeelTokenizer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which shape rows have. `Auto` decides per row by which keys are present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    #[default]
    Auto,
    Messages,
    PromptCompletion,
    Text,
}

/// Field names to read. Defaults are TRL's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FieldMap {
    pub messages: String,
    /// `--input-key`.
    pub prompt: String,
    /// `--output-key`.
    pub completion: String,
    pub system: String,
    pub text: String,
}

impl Default for FieldMap {
    fn default() -> Self {
        FieldMap {
            messages: "messages".into(),
            prompt: "prompt".into(),
            completion: "completion".into(),
            system: "system".into(),
            text: "text".into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOptions {
    pub format: Format,
    pub fields: FieldMap,
    /// Fail on the first bad row instead of skipping it.
    pub strict: bool,
}

/// Why a row was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadReason {
    BadJson,
    NotUtf8,
    NotAnObject,
    MissingField,
    WrongType,
    UnknownRole,
    RoleOrder,
    EmptyAssistant,
    EmptyUser,
    EmptyText,
    /// Longer than the sequence length even after the truncation policy.
    TooLong,
}

/// What [`BadRow::line`] counts: 1-based JSONL lines or 0-based Parquet rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowUnit {
    #[default]
    Line,
    Row,
}

/// One rejected row: `file:line: field `f`: reason: message` (`file:row N: …` for Parquet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRow {
    pub path: PathBuf,
    pub line: usize,
    pub field: String,
    pub reason: BadReason,
    pub message: String,
    #[serde(default)]
    pub unit: RowUnit,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let row = match self.unit {
            RowUnit::Line => "",
            RowUnit::Row => "row ",
        };
        write!(
            f,
            "{}:{row}{}: field `{}`: {:?}: {}",
            self.path.display(),
            self.line,
            self.field,
            self.reason,
            self.message
        )
    }
}

impl BadRow {
    pub fn into_error(self) -> DataError {
        match self.unit {
            RowUnit::Line => DataError::Field {
                path: self.path,
                line: self.line,
                field: self.field,
                message: format!("{:?}: {}", self.reason, self.message),
            },
            RowUnit::Row => DataError::Invalid {
                message: format!(
                    "row {}: field `{}`: {:?}: {}",
                    self.line, self.field, self.reason, self.message
                ),
                path: self.path,
            },
        }
    }
}

/// A parsed example with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedExample {
    pub path: PathBuf,
    pub line: usize,
    pub example: ChatExample,
    /// Whether `line` is a JSONL line or a Parquet row index.
    pub unit: RowUnit,
}

/// A loaded dataset file: good rows and rejected rows.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub examples: Vec<SourcedExample>,
    pub bad: Vec<BadRow>,
}

impl Dataset {
    /// Rejected rows counted by reason.
    pub fn bad_counts(&self) -> BTreeMap<BadReason, usize> {
        count_reasons(&self.bad)
    }
}

pub fn count_reasons(bad: &[BadRow]) -> BTreeMap<BadReason, usize> {
    let mut m = BTreeMap::new();
    for b in bad {
        *m.entry(b.reason).or_insert(0) += 1;
    }
    m
}

/// Read and validate a dataset file: Parquet if it starts with `PAR1`, JSONL otherwise.
pub fn load_dataset(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if crate::parquet::is_parquet(&bytes) {
        let rows = crate::parquet::parquet_rows(path, bytes)?;
        return validate_rows(path, RowUnit::Row, rows, opts);
    }
    parse_dataset(path, &bytes, opts)
}

/// Validate rows already decoded to JSON values (`(position, row)`), e.g. from Parquet.
pub fn validate_rows(
    path: &Path,
    unit: RowUnit,
    rows: impl IntoIterator<Item = (usize, Value)>,
    opts: &LoadOptions,
) -> Result<Dataset> {
    let mut ds = Dataset::default();
    for (line, value) in rows {
        let parsed = match value {
            Value::Object(obj) => parse_row(&obj, opts),
            _ => Err((
                "<row>".into(),
                BadReason::NotAnObject,
                "a row must be an object".into(),
            )),
        };
        push_parsed(&mut ds, path, line, unit, parsed, opts.strict)?;
    }
    Ok(ds)
}

fn push_parsed(
    ds: &mut Dataset,
    path: &Path,
    line: usize,
    unit: RowUnit,
    parsed: std::result::Result<ChatExample, RowErr>,
    strict: bool,
) -> Result<()> {
    match parsed {
        Ok(example) => ds.examples.push(SourcedExample {
            path: path.to_path_buf(),
            line,
            example,
            unit,
        }),
        Err((field, reason, message)) => {
            let b = BadRow {
                path: path.to_path_buf(),
                line,
                field,
                reason,
                message,
                unit,
            };
            if strict {
                return Err(b.into_error());
            }
            ds.bad.push(b);
        }
    }
    Ok(())
}

/// Parse and validate JSONL `bytes`; `path` names the source in reports.
pub fn parse_dataset(path: &Path, bytes: &[u8], opts: &LoadOptions) -> Result<Dataset> {
    let mut ds = Dataset::default();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let parsed = match std::str::from_utf8(raw) {
            Err(e) => Err((
                "<row>".into(),
                BadReason::NotUtf8,
                format!("not valid UTF-8: {e}"),
            )),
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => match serde_json::from_str::<Value>(text.trim_end_matches('\r')) {
                Err(e) => Err(("<row>".into(), BadReason::BadJson, e.to_string())),
                Ok(Value::Object(obj)) => parse_row(&obj, opts),
                Ok(_) => Err((
                    "<row>".into(),
                    BadReason::NotAnObject,
                    "a row must be a JSON object".into(),
                )),
            },
        };
        push_parsed(&mut ds, path, i + 1, RowUnit::Line, parsed, opts.strict)?;
    }
    Ok(ds)
}

type RowErr = (String, BadReason, String);

fn parse_row(
    obj: &Map<String, Value>,
    opts: &LoadOptions,
) -> std::result::Result<ChatExample, RowErr> {
    let f = &opts.fields;
    let format = match opts.format {
        Format::Auto if obj.contains_key(&f.messages) => Format::Messages,
        Format::Auto if obj.contains_key(&f.prompt) || obj.contains_key(&f.completion) => {
            Format::PromptCompletion
        }
        Format::Auto if obj.contains_key(&f.text) => Format::Text,
        Format::Auto => {
            return Err((
                "<row>".into(),
                BadReason::MissingField,
                format!(
                    "row has none of `{}`, `{}`/`{}`, `{}`",
                    f.messages, f.prompt, f.completion, f.text
                ),
            ))
        }
        other => other,
    };
    let example = match format {
        Format::Messages => ChatExample::Chat {
            messages: messages_at(obj, &f.messages)?,
        },
        Format::PromptCompletion => {
            let mut messages = Vec::new();
            if let Some(s) = obj.get(&f.system) {
                let s = s.as_str().ok_or_else(|| {
                    (
                        f.system.clone(),
                        BadReason::WrongType,
                        "must be a string".into(),
                    )
                })?;
                messages.push(Message::new(Role::System, s));
            }
            messages.extend(turns_at(obj, &f.prompt, Role::User)?);
            messages.extend(turns_at(obj, &f.completion, Role::Assistant)?);
            ChatExample::Chat { messages }
        }
        Format::Text => {
            let text = string_at(obj, &f.text)?;
            if text.trim().is_empty() {
                return Err((f.text.clone(), BadReason::EmptyText, "empty text".into()));
            }
            return Ok(ChatExample::Text { text });
        }
        Format::Auto => unreachable!("resolved above"),
    };
    let ChatExample::Chat { messages } = &example else {
        unreachable!()
    };
    check_turns(messages).map_err(|e| turn_error(&format, f, e))?;
    Ok(example)
}

fn turn_error(format: &Format, f: &FieldMap, e: TurnError) -> RowErr {
    let field = match (format, &e) {
        (
            Format::Messages,
            TurnError::RoleOrder { index, .. } | TurnError::MisplacedSystem { index },
        ) => {
            format!("{}[{index}].role", f.messages)
        }
        (
            Format::Messages,
            TurnError::EmptyAssistant { index } | TurnError::EmptyUser { index },
        ) => {
            format!("{}[{index}].content", f.messages)
        }
        (Format::Messages, _) => f.messages.clone(),
        (_, TurnError::EmptyAssistant { .. } | TurnError::NoFinalAssistant) => f.completion.clone(),
        _ => f.prompt.clone(),
    };
    let reason = match e {
        TurnError::EmptyAssistant { .. } => BadReason::EmptyAssistant,
        TurnError::EmptyUser { .. } => BadReason::EmptyUser,
        TurnError::NoMessages => BadReason::MissingField,
        _ => BadReason::RoleOrder,
    };
    (field, reason, e.to_string())
}

fn string_at(obj: &Map<String, Value>, key: &str) -> std::result::Result<String, RowErr> {
    match obj.get(key) {
        None => Err((key.into(), BadReason::MissingField, "missing".into())),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err((
            key.into(),
            BadReason::WrongType,
            format!("must be a string, found {}", kind(v)),
        )),
    }
}

/// A prompt or completion: a string (one turn of `role`) or a list of messages.
fn turns_at(
    obj: &Map<String, Value>,
    key: &str,
    role: Role,
) -> std::result::Result<Vec<Message>, RowErr> {
    match obj.get(key) {
        Some(Value::Array(_)) => messages_at(obj, key),
        _ => Ok(vec![Message::new(role, string_at(obj, key)?)]),
    }
}

fn messages_at(obj: &Map<String, Value>, key: &str) -> std::result::Result<Vec<Message>, RowErr> {
    let arr = match obj.get(key) {
        None => return Err((key.into(), BadReason::MissingField, "missing".into())),
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err((
                key.into(),
                BadReason::WrongType,
                format!("must be a list of messages, found {}", kind(v)),
            ))
        }
    };
    let mut out = Vec::with_capacity(arr.len());
    for (i, m) in arr.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err((
                format!("{key}[{i}]"),
                BadReason::WrongType,
                format!("must be an object, found {}", kind(m)),
            ));
        };
        let role = match string_at(m, "role") {
            Ok(r) => r,
            Err((_, reason, msg)) => return Err((format!("{key}[{i}].role"), reason, msg)),
        };
        let role = match role.as_str() {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err((
                    format!("{key}[{i}].role"),
                    BadReason::UnknownRole,
                    format!("unknown role {other:?} (expected system, user or assistant)"),
                ))
            }
        };
        let content = match string_at(m, "content") {
            Ok(c) => c,
            Err((_, reason, msg)) => return Err((format!("{key}[{i}].content"), reason, msg)),
        };
        out.push(Message { role, content });
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Tokenized, length-checked examples ready for a trainer, with the rows dropped on the way.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub examples: Vec<TokenizedExample>,
    /// Rows dropped for length (reason [`BadReason::TooLong`]).
    pub bad: Vec<BadRow>,
    /// Rows kept after cutting the start of their prompt.
    pub truncated: usize,
}

/// Render `examples` with Keel's template and apply the length policy (`max_len` tokens,
/// special tokens included). With `strict`, the first row that cannot fit is an error.
pub fn prepare(
    tok: &KeelTokenizer,
    template: &KeelChatTemplate,
    examples: &[SourcedExample],
    max_len: usize,
    truncation: Truncation,
    strict: bool,
) -> Result<Prepared> {
    prepare_with(examples, max_len, truncation, strict, |ex| {
        Ok(template.render(tok, ex))
    })
}

/// [`prepare`] with any renderer (e.g. a model's own Jinja chat template); a render error is
/// reported against the row's file and line.
pub fn prepare_with(
    examples: &[SourcedExample],
    max_len: usize,
    truncation: Truncation,
    strict: bool,
    mut render: impl FnMut(&ChatExample) -> std::result::Result<TokenizedExample, String>,
) -> Result<Prepared> {
    let mut out = Prepared::default();
    for s in examples {
        let mut t = render(&s.example).map_err(|message| DataError::Invalid {
            path: s.path.clone(),
            message: format!("line {}: {message}", s.line),
        })?;
        match fit_length(&mut t, max_len, truncation) {
            Ok(cut) => {
                out.truncated += usize::from(cut);
                out.examples.push(t);
            }
            Err(min_len) => {
                let field = match &s.example {
                    ChatExample::Text { .. } => "text",
                    ChatExample::Chat { .. } => "messages",
                };
                let b = BadRow {
                    path: s.path.clone(),
                    line: s.line,
                    unit: s.unit,
                    field: field.into(),
                    reason: BadReason::TooLong,
                    message: format!(
                        "{} tokens; {min_len} after {truncation:?} truncation, over the limit of {max_len}",
                        t.len()
                    ),
                };
                if strict {
                    return Err(b.into_error());
                }
                out.bad.push(b);
            }
        }
    }
    Ok(out)
}
