//! MT-bench `question.jsonl`: `{"question_id", "category", "turns": [..], "reference"?}`.
//! The first turn is the prompt, later turns are follow-ups sent after the model answers.

use super::read_text;
use crate::error::{EvalError, Result};
use crate::item::{EvalItem, Gold};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct Row {
    question_id: serde_json::Value,
    #[serde(default)]
    category: Option<String>,
    turns: Vec<String>,
    #[serde(default)]
    reference: Option<Vec<String>>,
}

pub fn load(path: &Path) -> Result<Vec<EvalItem>> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line)
            .map_err(|e| EvalError::data(path, i + 1, format!("invalid MT-bench row: {e}")))?;
        let mut turns = row.turns.into_iter();
        let first = turns
            .next()
            .ok_or_else(|| EvalError::data(path, i + 1, "field `turns` is empty"))?;
        let id = match &row.question_id {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut it = EvalItem::new(format!("mtbench-{id}"), first);
        it.followups = turns.collect();
        it.category = row.category;
        // Reference answers exist for maths/reasoning/coding; the judge sees the first.
        it.gold = row
            .reference
            .and_then(|r| r.into_iter().next())
            .map(Gold::Text);
        out.push(it);
    }
    Ok(out)
}
