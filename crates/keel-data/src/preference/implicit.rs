//! Implicit-prompt preference rows (TRL's `extract_prompt`): `chosen` and `rejected` carry
//! the prompt themselves, as Anthropic HH-RLHF transcripts, message lists or plain strings,
//! and the prompt is the part they share.

use super::{
    check_prompt, make_pair, messages, missing, wrong, PrefBadReason, PrefFields, PreferencePair,
    RowErr,
};
use crate::chat::{Message, Role};
use serde_json::{Map, Value};

/// Implicit prompt: HH transcripts, message lists or plain strings sharing a prefix.
pub(super) fn implicit(
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
