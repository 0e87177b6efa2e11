//! Rows to curate: an example, its category and where it came from; builders from the world's
//! task banks and from dataset files.

use super::decontam::EvalSet;
use crate::chat::{ChatExample, Role};
use crate::error::{DataError, Result};
use crate::formats::{load_dataset, BadRow, LoadOptions, RowUnit};
use crate::world::{Category, TaskBanks, TaskRow};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// One row to curate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurateRow {
    pub example: ChatExample,
    /// Category label as the data has it (the world's `fact_qa`, `harmful`, …, or any label).
    pub category: Option<String>,
    /// Where it came from, for reports: a world row id or `file:line`.
    pub source: String,
}

/// The mix group of a category: the world's ten categories fold into `instruction`, `safety`
/// and `honesty` (the groups its SFT mix is built from); other labels are their own group,
/// and rows without one are `uncategorised`.
pub fn mix_group(category: Option<&str>) -> String {
    let Some(c) = category else {
        return "uncategorised".into();
    };
    let world: Option<Category> = serde_json::from_value(Value::String(c.into())).ok();
    match world {
        Some(
            Category::FactQa
            | Category::MultiHop
            | Category::Arithmetic
            | Category::List
            | Category::Format
            | Category::Summary,
        ) => "instruction".into(),
        Some(Category::Harmful | Category::BenignSensitive) => "safety".into(),
        Some(Category::Unanswerable | Category::FalsePremise) => "honesty".into(),
        None => c.to_string(),
    }
}

fn category_label(c: Category) -> String {
    match serde_json::to_value(c) {
        Ok(Value::String(s)) => s,
        _ => format!("{c:?}"),
    }
}

impl CurateRow {
    /// A world task row as a prompt-completion example.
    pub fn from_task(r: &TaskRow) -> Self {
        CurateRow {
            example: ChatExample::prompt_completion(None, &r.prompt, &r.completion),
            category: Some(category_label(r.category)),
            source: r.id.clone(),
        }
    }

    /// Every message's content (or the text), one per line: what filters and dedup look at.
    pub fn text(&self) -> String {
        match &self.example {
            ChatExample::Text { text } => text.clone(),
            ChatExample::Chat { messages } => messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// The trained text: assistant turns (the whole text for plain-text rows).
    pub fn assistant_text(&self) -> String {
        match &self.example {
            ChatExample::Text { text } => text.clone(),
            ChatExample::Chat { messages } => messages
                .iter()
                .filter(|m| m.role == Role::Assistant)
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    pub fn group(&self) -> String {
        mix_group(self.category.as_deref())
    }
}

/// The SFT rows of a split's banks (instructions, harmful, benign-sensitive, unanswerable,
/// false-premise), with their categories.
pub fn world_rows(b: &TaskBanks) -> Vec<CurateRow> {
    b.instructions
        .iter()
        .chain(&b.harmful)
        .chain(&b.benign_sensitive)
        .chain(&b.unanswerable)
        .chain(&b.false_premise)
        .map(CurateRow::from_task)
        .collect()
}

/// Every prompt of a split's banks (task rows, preference pairs, cloze items): what an
/// evaluation on that split shows the model. Answers are left out on purpose: refusals and
/// abstentions are templated, so a test refusal legitimately equals a training one.
pub fn world_eval_set(name: &str, b: &TaskBanks) -> EvalSet {
    let tasks = b
        .instructions
        .iter()
        .chain(&b.harmful)
        .chain(&b.benign_sensitive)
        .chain(&b.unanswerable)
        .chain(&b.false_premise)
        .map(|r| r.prompt.clone());
    let prefs = b.preferences.iter().map(|p| p.prompt.clone());
    let cloze = b.facts.iter().map(|f| f.prompt.clone());
    EvalSet {
        name: name.into(),
        texts: tasks.chain(prefs).chain(cloze).collect(),
    }
}

/// Load and validate a dataset file (JSONL or Parquet) into rows, reading each row's category
/// from `category_key` when given. Returns the rows and the rows validation rejected.
pub fn load_rows(
    path: &Path,
    opts: &LoadOptions,
    category_key: Option<&str>,
) -> Result<(Vec<CurateRow>, Vec<BadRow>)> {
    let ds = load_dataset(path, opts)?;
    let cats = match category_key {
        Some(k) => categories(path, k)?,
        None => HashMap::new(),
    };
    let rows = ds
        .examples
        .into_iter()
        .map(|s| {
            let source = match s.unit {
                RowUnit::Line => format!("{}:{}", path.display(), s.line),
                RowUnit::Row => format!("{}:row {}", path.display(), s.line),
            };
            CurateRow {
                category: cats.get(&s.line).cloned(),
                example: s.example,
                source,
            }
        })
        .collect();
    Ok((rows, ds.bad))
}

/// `line → category` for rows whose `key` is a string (other rows have none).
fn categories(path: &Path, key: &str) -> Result<HashMap<usize, String>> {
    Ok(raw_rows(path)?
        .into_iter()
        .filter_map(|(i, v)| Some((i, v.get(key)?.as_str()?.to_string())))
        .collect())
}

/// Rows as JSON values keyed like [`load_dataset`] (JSONL line or Parquet row); lines that do
/// not parse are left out (validation reports them).
fn raw_rows(path: &Path) -> Result<Vec<(usize, Value)>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if crate::parquet::is_parquet(&bytes) {
        return crate::parquet::parquet_rows(path, bytes);
    }
    Ok(bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(i, l)| serde_json::from_slice(l).ok().map(|v| (i + 1, v)))
        .collect())
}

/// An eval set from a JSONL or Parquet file: per row, the string field `key` if present, else
/// the user turns of `messages`, else `text`. Rows with none of these are skipped.
pub fn load_eval_set(path: &Path, key: &str) -> Result<EvalSet> {
    let texts = raw_rows(path)?
        .into_iter()
        .filter_map(|(_, v)| eval_text(&v, key))
        .collect();
    Ok(EvalSet {
        name: path.display().to_string(),
        texts,
    })
}

fn eval_text(v: &Value, key: &str) -> Option<String> {
    if let Some(s) = v.get(key).and_then(Value::as_str) {
        return Some(s.to_string());
    }
    if let Some(ms) = v.get("messages").and_then(Value::as_array) {
        let users: Vec<&str> = ms
            .iter()
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .collect();
        return (!users.is_empty()).then(|| users.join("\n"));
    }
    v.get("text").and_then(Value::as_str).map(str::to_string)
}
