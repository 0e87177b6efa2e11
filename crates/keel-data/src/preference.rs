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

/// Implicit prompt: HH transcripts, message lists or plain strings sharing a prefix.
fn implicit(
    obj: &Map<String, Value>,
    f: &PrefFields,
) -> std::result::Result<PreferencePair, RowErr> {
    let get = |k: &String| obj.get(k).ok_or_else(|| missing(k));
    let (c, r) = (get(&f.chosen)?, get(&f.rejected)?);
    match (c, r) {
        (Value::String(c), Value::String(r)) if is_transcript(c) => {
            let tc = parse_transcript(c)
                .map_err(|m| (f.chosen.clone(), PrefBadReason::BadTranscript, m))?;
            let tr = parse_transcript(r)
                .map_err(|m| (f.rejected.clone(), PrefBadReason::BadTranscript, m))?;
            split_turns(tc, tr, f)
        }
        (Value::String(c), Value::String(r)) => {
            let cut = shared_prefix(c, r);
            let prompt = c[..cut].trim_end();
            if prompt.trim().is_empty() {
                return Err((
                    f.chosen.clone(),
                    PrefBadReason::NoSharedPrompt,
                    "chosen and rejected share no prompt prefix (use an explicit `prompt`)".into(),
                ));
            }
            let (cc, rc) = (
                c[cut..].trim_start().to_string(),
                r[cut..].trim_start().to_string(),
            );
            for (k, v) in [(&f.chosen, &cc), (&f.rejected, &rc)] {
                if v.trim().is_empty() {
                    return Err((
                        k.clone(),
                        PrefBadReason::EmptyCompletion,
                        "nothing after the shared prompt".into(),
                    ));
                }
            }
            make_pair(vec![Message::new(Role::User, prompt)], cc, rc, f)
        }
        (Value::Array(c), Value::Array(r)) => {
            split_turns(messages(&f.chosen, c)?, messages(&f.rejected, r)?, f)
        }
        (Value::String(_) | Value::Array(_), v) => {
            Err(wrong(&f.rejected, "must have the same type as chosen", v))
        }
        (v, _) => Err(wrong(
            &f.chosen,
            "must be a string or a list of messages",
            v,
        )),
    }
}

/// Two conversations that agree up to a final assistant reply each.
fn split_turns(
    mut c: Vec<Message>,
    mut r: Vec<Message>,
    f: &PrefFields,
) -> std::result::Result<PreferencePair, RowErr> {
    let (Some(lc), Some(lr)) = (c.pop(), r.pop()) else {
        return Err(missing(&f.chosen));
    };
    for (k, m) in [(&f.chosen, &lc), (&f.rejected, &lr)] {
        if m.role != Role::Assistant {
            return Err((
                k.clone(),
                PrefBadReason::RoleOrder,
                "the last turn must be the assistant's".into(),
            ));
        }
        if m.content.trim().is_empty() {
            return Err((
                k.clone(),
                PrefBadReason::EmptyCompletion,
                "the final assistant turn is empty".into(),
            ));
        }
    }
    if c != r {
        return Err((
            f.rejected.clone(),
            PrefBadReason::NoSharedPrompt,
            "chosen and rejected differ before their final assistant turn".into(),
        ));
    }
    check_prompt(&f.chosen, &c)?;
    make_pair(c, lc.content, lr.content, f)
}

const HUMAN: &str = "\n\nHuman:";
const ASSISTANT: &str = "\n\nAssistant:";

fn is_transcript(s: &str) -> bool {
    s.starts_with(HUMAN) || s.trim_start().starts_with("Human:")
}

/// Parse an Anthropic HH-RLHF dialogue into turns.
pub fn parse_transcript(text: &str) -> std::result::Result<Vec<Message>, String> {
    let mut rest = text.trim_start_matches(['\n', ' ']);
    rest = rest
        .strip_prefix("Human:")
        .ok_or_else(|| "transcript does not start with \"Human:\"".to_string())?;
    let mut out = Vec::new();
    let mut role = Role::User;
    loop {
        let next = [(HUMAN, Role::User), (ASSISTANT, Role::Assistant)]
            .into_iter()
            .filter_map(|(m, r)| rest.find(m).map(|i| (i, m, r)))
            .min_by_key(|x| x.0);
        let (content, after) = match next {
            Some((i, m, r)) => {
                let c = &rest[..i];
                rest = &rest[i + m.len()..];
                (c, Some(r))
            }
            None => (rest, None),
        };
        out.push(Message::new(role, content.trim()));
        match after {
            Some(r) if r == role => {
                return Err(format!(
                    "two {} turns in a row (turn {})",
                    role.as_str(),
                    out.len() + 1
                ))
            }
            Some(r) => role = r,
            None => break,
        }
    }
    Ok(out)
}

/// Byte index where two strings first differ, backed up to just after whitespace so no word
/// is split between prompt and reply.
fn shared_prefix(a: &str, b: &str) -> usize {
    let mut i = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or(a.len().min(b.len()));
    while i > 0 && !a[..i].ends_with(char::is_whitespace) {
        i = a[..i].char_indices().last().map_or(0, |(j, _)| j);
    }
    i
}

/// k-wise rows: every pair of responses with different rank, better one chosen.
fn ranked(
    obj: &Map<String, Value>,
    f: &PrefFields,
) -> std::result::Result<Vec<PreferencePair>, RowErr> {
    let prompt = prompt_at(obj, &f.prompt)?;
    let responses: Vec<String> = match obj.get(&f.responses) {
        None => return Err(missing(&f.responses)),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                Value::String(_) => Err((
                    format!("{}[{i}]", f.responses),
                    PrefBadReason::EmptyCompletion,
                    "empty reply".into(),
                )),
                v => Err(wrong(
                    &format!("{}[{i}]", f.responses),
                    "must be a string",
                    v,
                )),
            })
            .collect::<std::result::Result<_, _>>()?,
        Some(v) => return Err(wrong(&f.responses, "must be a list of strings", v)),
    };
    let k = responses.len();
    let bad_rank = |field: &str, m: String| (field.to_string(), PrefBadReason::BadRanking, m);
    // rank[i]: lower is better.
    let rank: Vec<f64> = match (obj.get(&f.scores), obj.get(&f.ranking)) {
        (Some(Value::Array(s)), _) => {
            let s: Option<Vec<f64>> = s.iter().map(Value::as_f64).collect();
            let s = s.ok_or_else(|| bad_rank(&f.scores, "scores must all be numbers".into()))?;
            if s.len() != k || s.iter().any(|v| !v.is_finite()) {
                return Err(bad_rank(
                    &f.scores,
                    format!("{} finite scores needed for {k} responses", k),
                ));
            }
            s.iter().map(|v| -v).collect()
        }
        (_, Some(Value::Array(r))) => {
            let r: Option<Vec<usize>> = r.iter().map(|v| v.as_u64().map(|x| x as usize)).collect();
            let r =
                r.ok_or_else(|| bad_rank(&f.ranking, "ranking must be response indices".into()))?;
            let mut seen = vec![false; k];
            if r.len() != k
                || r.iter()
                    .any(|&i| i >= k || std::mem::replace(&mut seen[i], true))
            {
                return Err(bad_rank(
                    &f.ranking,
                    format!("ranking must be a permutation of 0..{k}"),
                ));
            }
            let mut rank = vec![0.0; k];
            for (pos, &i) in r.iter().enumerate() {
                rank[i] = pos as f64;
            }
            rank
        }
        (None, None) => return Err(missing(&f.scores)),
        (Some(v), _) => return Err(wrong(&f.scores, "must be a list of numbers", v)),
        (_, Some(v)) => return Err(wrong(&f.ranking, "must be a list of indices", v)),
    };
    let mut out = Vec::new();
    for i in 0..k {
        for j in 0..k {
            if rank[i] < rank[j] && responses[i] != responses[j] {
                out.push(PreferencePair {
                    prompt: prompt.clone(),
                    chosen: responses[i].clone(),
                    rejected: responses[j].clone(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(bad_rank(
            &f.responses,
            "no two responses differ in rank".into(),
        ));
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
