//! Anthropic HH-RLHF pairs: JSONL (often .gz) of `{"chosen": T, "rejected": T}` where each
//! T is a whole transcript "\n\nHuman: … \n\nAssistant: …". The two transcripts share the
//! dialogue up to the final assistant turn; we split there into context + two responses.

use super::read_text;
use crate::error::{EvalError, Result};
use crate::item::{EvalItem, PrefPair};
use serde::Deserialize;
use std::path::Path;

const ASSISTANT: &str = "\n\nAssistant:";
const HUMAN: &str = "\n\nHuman:";

#[derive(Deserialize)]
struct Row {
    chosen: String,
    rejected: String,
}

/// Split a chosen/rejected transcript pair at the last assistant turn they share.
pub fn split_pair(chosen: &str, rejected: &str) -> Option<PrefPair> {
    let common = chosen
        .char_indices()
        .zip(rejected.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i)
        .unwrap_or(chosen.len().min(rejected.len()));
    // The marker must end inside the shared prefix.
    let cut = chosen[..common].rfind(ASSISTANT)? + ASSISTANT.len();
    Some(PrefPair {
        context: chosen[..cut].to_string(),
        chosen: chosen[cut..].trim().to_string(),
        rejected: rejected[cut..].trim().to_string(),
    })
}

/// The last human turn of a context, for display.
fn last_human(context: &str) -> String {
    let body = context.strip_suffix(ASSISTANT).unwrap_or(context);
    match body.rfind(HUMAN) {
        Some(i) => body[i + HUMAN.len()..].trim().to_string(),
        None => body.trim().to_string(),
    }
}

pub fn load(path: &Path) -> Result<Vec<EvalItem>> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line)
            .map_err(|e| EvalError::data(path, i + 1, format!("invalid HH-RLHF row: {e}")))?;
        let pair = split_pair(&row.chosen, &row.rejected).ok_or_else(|| {
            EvalError::data(
                path,
                i + 1,
                "chosen and rejected share no '\\n\\nAssistant:' turn",
            )
        })?;
        let mut it = EvalItem::new(format!("hh-{}", i + 1), last_human(&pair.context));
        it.pair = Some(pair);
        out.push(it);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_last_shared_assistant_turn() {
        let c = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how do I X?\n\nAssistant: Like this.";
        let r = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how do I X?\n\nAssistant: No.";
        let p = split_pair(c, r).unwrap();
        assert!(p.context.ends_with("how do I X?\n\nAssistant:"));
        assert_eq!(
            (p.chosen.as_str(), p.rejected.as_str()),
            ("Like this.", "No.")
        );
        assert_eq!(last_human(&p.context), "how do I X?");
        // Responses that share a first word still split at the turn, not mid-answer.
        let p = split_pair(
            "\n\nHuman: q\n\nAssistant: Sure, yes",
            "\n\nHuman: q\n\nAssistant: Sure, no",
        )
        .unwrap();
        assert_eq!(p.chosen, "Sure, yes");
        assert!(split_pair("abc", "abd").is_none());
    }
}
