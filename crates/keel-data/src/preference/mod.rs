//! Preference datasets: the JSONL shapes TRL, OpenRLHF and Anthropic ship, validated row by row.
//!
//! - explicit prompt: `{"prompt": "…", "chosen": "…", "rejected": "…"}`; `prompt` may be a
//!   message list and `chosen`/`rejected` one-message assistant lists (TRL conversational)
//! - implicit prompt: `{"chosen": "…", "rejected": "…"}` where both sides share the prompt as a
//!   prefix (TRL's `extract_prompt`): strings split at the first difference (backed up to a
//!   word boundary), message lists at the first differing message
//! - Anthropic HH-RLHF transcripts: implicit prompt whose strings are
//!   `"\n\nHuman: …\n\nAssistant: …"` dialogues, parsed into turns (`.jsonl.gz` read directly)
//! - k-wise rankings: `{"prompt", "responses": [..], "scores": [..]}` (higher is better) or
//!   `"ranking": [indices, best first]`, expanded into every ordered pair (ties give none)
//! - unpaired (KTO): `{"prompt", "completion", "label": true|false}`
//!
//! As in [`crate::formats`], every bad row becomes a [`PrefBadRow`] naming `file:line`, the field
//! and a [`PrefBadReason`]; bad rows are skipped and counted unless `strict`.

use crate::chat::{check_turns, Message, Role, TurnError};
use crate::error::{DataError, Result};
use crate::world::{Defect, PreferenceRow, Split};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod implicit;
mod ranked;

use implicit::implicit;
pub use implicit::parse_transcript;
use ranked::ranked;

/// A prompt (a conversation ending in a user turn) with a preferred and a dispreferred reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferencePair {
    pub prompt: Vec<Message>,
    pub chosen: String,
    pub rejected: String,
}

/// One KTO example: a reply labelled desirable or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnpairedExample {
    pub prompt: Vec<Message>,
    pub completion: String,
    pub desirable: bool,
}

/// A pair with where it came from; `tag` is the world's defect type when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedPair {
    pub path: PathBuf,
    pub line: usize,
    pub pair: PreferencePair,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedUnpaired {
    pub path: PathBuf,
    pub line: usize,
    pub example: UnpairedExample,
}

/// Row shape; `Auto` decides per row by the keys present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrefFormat {
    #[default]
    Auto,
    Explicit,
    Implicit,
    Ranked,
    Unpaired,
}

/// Field names. Defaults are TRL's (`responses`/`scores`/`ranking` for k-wise rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrefFields {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
    pub completion: String,
    pub label: String,
    pub responses: String,
    pub scores: String,
    pub ranking: String,
}

impl Default for PrefFields {
    fn default() -> Self {
        let s = |x: &str| x.to_string();
        PrefFields {
            prompt: s("prompt"),
            chosen: s("chosen"),
            rejected: s("rejected"),
            completion: s("completion"),
            label: s("label"),
            responses: s("responses"),
            scores: s("scores"),
            ranking: s("ranking"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefLoadOptions {
    pub format: PrefFormat,
    pub fields: PrefFields,
    /// Fail on the first bad row instead of skipping it.
    pub strict: bool,
}

/// Why a preference row was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrefBadReason {
    BadJson,
    NotUtf8,
    NotAnObject,
    MissingField,
    WrongType,
    UnknownRole,
    /// The prompt's turns are out of order or it does not end with a user turn.
    RoleOrder,
    EmptyPrompt,
    EmptyCompletion,
    /// `chosen` and `rejected` are the same text: no preference to learn.
    IdenticalPair,
    /// Implicit-prompt row whose sides share no prompt, or differ before the last reply.
    NoSharedPrompt,
    /// An HH-RLHF transcript that does not parse into Human/Assistant turns.
    BadTranscript,
    /// Scores or ranking that do not match the responses.
    BadRanking,
}

/// One rejected row: `file:line: field `f`: reason: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefBadRow {
    pub path: PathBuf,
    pub line: usize,
    pub field: String,
    pub reason: PrefBadReason,
    pub message: String,
}

impl std::fmt::Display for PrefBadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: field `{}`: {:?}: {}",
            self.path.display(),
            self.line,
            self.field,
            self.reason,
            self.message
        )
    }
}

impl PrefBadRow {
    fn into_error(self) -> DataError {
        DataError::Field {
            path: self.path,
            line: self.line,
            field: self.field,
            message: format!("{:?}: {}", self.reason, self.message),
        }
    }
}

/// A loaded preference file: pairs, unpaired examples and rejected rows.
#[derive(Debug, Clone, Default)]
pub struct PreferenceDataset {
    pub pairs: Vec<SourcedPair>,
    pub unpaired: Vec<SourcedUnpaired>,
    pub bad: Vec<PrefBadRow>,
}

impl PreferenceDataset {
    pub fn bad_counts(&self) -> BTreeMap<PrefBadReason, usize> {
        let mut m = BTreeMap::new();
        for b in &self.bad {
            *m.entry(b.reason).or_insert(0) += 1;
        }
        m
    }

    /// Pairs as KTO examples (chosen desirable, rejected not) followed by the unpaired rows:
    /// what KTO trains on when given paired data, as TRL does.
    pub fn as_unpaired(&self) -> Vec<UnpairedExample> {
        let mut out: Vec<UnpairedExample> = self
            .pairs
            .iter()
            .flat_map(|p| split_pair(&p.pair))
            .collect();
        out.extend(self.unpaired.iter().map(|u| u.example.clone()));
        out
    }
}

/// A pair as two KTO examples.
pub fn split_pair(p: &PreferencePair) -> [UnpairedExample; 2] {
    [
        UnpairedExample {
            prompt: p.prompt.clone(),
            completion: p.chosen.clone(),
            desirable: true,
        },
        UnpairedExample {
            prompt: p.prompt.clone(),
            completion: p.rejected.clone(),
            desirable: false,
        },
    ]
}

/// Read and validate a JSONL file (gzip-compressed when the name ends in `.gz`).
pub fn load_preferences(path: &Path, opts: &PrefLoadOptions) -> Result<PreferenceDataset> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut out)
            .map_err(|e| DataError::invalid(path, format!("not a readable gzip file: {e}")))?;
        out
    } else {
        raw
    };
    parse_preferences(path, &bytes, opts)
}

/// Parse and validate JSONL `bytes`; `path` names the source in reports.
pub fn parse_preferences(
    path: &Path,
    bytes: &[u8],
    opts: &PrefLoadOptions,
) -> Result<PreferenceDataset> {
    let mut ds = PreferenceDataset::default();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let bad = |(field, reason, message): RowErr| PrefBadRow {
            path: path.to_path_buf(),
            line,
            field,
            reason,
            message,
        };
        let parsed = match std::str::from_utf8(raw) {
            Err(e) => Err((
                "<row>".into(),
                PrefBadReason::NotUtf8,
                format!("not valid UTF-8: {e}"),
            )),
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => match serde_json::from_str::<Value>(text.trim_end_matches('\r')) {
                Err(e) => Err(("<row>".into(), PrefBadReason::BadJson, e.to_string())),
                Ok(Value::Object(obj)) => parse_row(&obj, opts),
                Ok(_) => Err((
                    "<row>".into(),
                    PrefBadReason::NotAnObject,
                    "a row must be a JSON object".into(),
                )),
            },
        };
        match parsed {
            Ok(Parsed::Pairs(pairs)) => {
                ds.pairs.extend(pairs.into_iter().map(|pair| SourcedPair {
                    path: path.to_path_buf(),
                    line,
                    pair,
                    tag: None,
                }))
            }
            Ok(Parsed::Unpaired(example)) => ds.unpaired.push(SourcedUnpaired {
                path: path.to_path_buf(),
                line,
                example,
            }),
            Err(e) if opts.strict => return Err(bad(e).into_error()),
            Err(e) => ds.bad.push(bad(e)),
        }
    }
    Ok(ds)
}

/// The world's pairs (`tasks/<split>/preferences.jsonl` rows) with their defect as the tag.
pub fn world_pairs(rows: &[PreferenceRow], path: &Path) -> Vec<SourcedPair> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| SourcedPair {
            path: path.to_path_buf(),
            line: i + 1,
            pair: PreferencePair {
                prompt: vec![Message::new(Role::User, r.prompt.clone())],
                chosen: r.chosen.clone(),
                rejected: r.rejected.clone(),
            },
            tag: Some(defect_name(r.defect)),
        })
        .collect()
}

fn defect_name(d: Defect) -> String {
    serde_json::to_value(d)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{d:?}"))
}

/// Read a split's pairs from a directory written by `keel world`.
pub fn load_world_preferences(world_dir: &Path, split: Split) -> Result<Vec<SourcedPair>> {
    let path = world_dir
        .join("tasks")
        .join(split.as_str())
        .join("preferences.jsonl");
    let rows: Vec<PreferenceRow> = crate::jsonl::read_jsonl(&path)?;
    if rows.is_empty() {
        return Err(DataError::invalid(&path, "no preference pairs"));
    }
    Ok(world_pairs(&rows, &path))
}

type RowErr = (String, PrefBadReason, String);

enum Parsed {
    Pairs(Vec<PreferencePair>),
    Unpaired(UnpairedExample),
}

fn parse_row(
    obj: &Map<String, Value>,
    opts: &PrefLoadOptions,
) -> std::result::Result<Parsed, RowErr> {
    let f = &opts.fields;
    let has = |k: &String| obj.contains_key(k);
    let format = match opts.format {
        PrefFormat::Auto if has(&f.responses) => PrefFormat::Ranked,
        PrefFormat::Auto if has(&f.label) => PrefFormat::Unpaired,
        PrefFormat::Auto if has(&f.prompt) => PrefFormat::Explicit,
        PrefFormat::Auto if has(&f.chosen) || has(&f.rejected) => PrefFormat::Implicit,
        PrefFormat::Auto => {
            return Err((
                "<row>".into(),
                PrefBadReason::MissingField,
                format!(
                    "row has none of `{}`/`{}`, `{}`, `{}`/`{}`",
                    f.chosen, f.rejected, f.responses, f.completion, f.label
                ),
            ))
        }
        other => other,
    };
    match format {
        PrefFormat::Explicit => {
            let prompt = prompt_at(obj, &f.prompt)?;
            let chosen = reply_at(obj, &f.chosen)?;
            let rejected = reply_at(obj, &f.rejected)?;
            Ok(Parsed::Pairs(vec![make_pair(prompt, chosen, rejected, f)?]))
        }
        PrefFormat::Implicit => Ok(Parsed::Pairs(vec![implicit(obj, f)?])),
        PrefFormat::Ranked => Ok(Parsed::Pairs(ranked(obj, f)?)),
        PrefFormat::Unpaired => {
            let prompt = prompt_at(obj, &f.prompt)?;
            let completion = reply_at(obj, &f.completion)?;
            let desirable = match obj.get(&f.label) {
                None => return Err(missing(&f.label)),
                Some(Value::Bool(b)) => *b,
                Some(v) => return Err(wrong(&f.label, "must be true or false", v)),
            };
            Ok(Parsed::Unpaired(UnpairedExample {
                prompt,
                completion,
                desirable,
            }))
        }
        PrefFormat::Auto => unreachable!("resolved above"),
    }
}

fn missing(key: &str) -> RowErr {
    (key.into(), PrefBadReason::MissingField, "missing".into())
}

fn wrong(key: &str, what: &str, v: &Value) -> RowErr {
    (
        key.into(),
        PrefBadReason::WrongType,
        format!("{what}, found {}", kind(v)),
    )
}

fn make_pair(
    prompt: Vec<Message>,
    chosen: String,
    rejected: String,
    f: &PrefFields,
) -> std::result::Result<PreferencePair, RowErr> {
    if chosen == rejected {
        return Err((
            f.rejected.clone(),
            PrefBadReason::IdenticalPair,
            "chosen and rejected are the same text".into(),
        ));
    }
    Ok(PreferencePair {
        prompt,
        chosen,
        rejected,
    })
}

/// A prompt: a string (one user turn) or a message list ending in a user turn.
fn prompt_at(obj: &Map<String, Value>, key: &str) -> std::result::Result<Vec<Message>, RowErr> {
    let msgs = match obj.get(key) {
        None => return Err(missing(key)),
        Some(Value::String(s)) => vec![Message::new(Role::User, s.clone())],
        Some(Value::Array(a)) => messages(key, a)?,
        Some(v) => return Err(wrong(key, "must be a string or a list of messages", v)),
    };
    check_prompt(key, &msgs)?;
    Ok(msgs)
}

fn check_prompt(key: &str, msgs: &[Message]) -> std::result::Result<(), RowErr> {
    if msgs.iter().all(|m| m.content.trim().is_empty()) {
        return Err((
            key.into(),
            PrefBadReason::EmptyPrompt,
            "empty prompt".into(),
        ));
    }
    // A prompt plus any reply must be a valid conversation.
    let mut conv = msgs.to_vec();
    conv.push(Message::new(Role::Assistant, "x"));
    check_turns(&conv).map_err(|e| {
        let reason = match e {
            TurnError::EmptyUser { .. } => PrefBadReason::EmptyPrompt,
            _ => PrefBadReason::RoleOrder,
        };
        (
            key.to_string(),
            reason,
            format!("{e} (a prompt must end with a user turn)"),
        )
    })
}

/// A reply: a string, or a list holding one assistant message.
fn reply_at(obj: &Map<String, Value>, key: &str) -> std::result::Result<String, RowErr> {
    let text = match obj.get(key) {
        None => return Err(missing(key)),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => one_reply(key, &messages(key, a)?)?,
        Some(v) => return Err(wrong(key, "must be a string or a one-message list", v)),
    };
    if text.trim().is_empty() {
        return Err((
            key.into(),
            PrefBadReason::EmptyCompletion,
            "empty reply".into(),
        ));
    }
    Ok(text)
}

fn one_reply(key: &str, msgs: &[Message]) -> std::result::Result<String, RowErr> {
    match msgs {
        [m] if m.role == Role::Assistant => Ok(m.content.clone()),
        _ => Err((
            key.into(),
            PrefBadReason::RoleOrder,
            format!(
                "a reply must be exactly one assistant message, found {} messages",
                msgs.len()
            ),
        )),
    }
}

fn messages(key: &str, arr: &[Value]) -> std::result::Result<Vec<Message>, RowErr> {
    let mut out = Vec::with_capacity(arr.len());
    for (i, m) in arr.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(wrong(&format!("{key}[{i}]"), "must be an object", m));
        };
        let field = |k: &str| match m.get(k) {
            None => Err(missing(&format!("{key}[{i}].{k}"))),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(wrong(&format!("{key}[{i}].{k}"), "must be a string", v)),
        };
        let role = match field("role")?.as_str() {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err((
                    format!("{key}[{i}].role"),
                    PrefBadReason::UnknownRole,
                    format!("unknown role {other:?} (expected system, user or assistant)"),
                ))
            }
        };
        out.push(Message {
            role,
            content: field("content")?,
        });
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
