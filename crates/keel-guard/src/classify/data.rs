//! Labelled JSONL for `keel guard train`: one object per line,
//! `{"text": "...", "categories": ["S1", "S10"]}`; an empty list (or `"label": "safe"`) marks
//! a benign example.

use crate::error::{GuardError, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub text: String,
    #[serde(default)]
    pub categories: Vec<String>,
}

#[derive(Deserialize)]
struct Line {
    text: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    label: Option<String>,
}

pub fn read_jsonl(path: &Path) -> Result<Vec<Example>> {
    let text = std::fs::read_to_string(path).map_err(|e| GuardError::io(path, e))?;
    parse_jsonl(path, &text)
}

pub fn parse_jsonl(path: &Path, text: &str) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |reason: String| GuardError::Data {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let l: Line = serde_json::from_str(line).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let t = l.text.ok_or_else(|| err("missing field `text`".into()))?;
        match l.label.as_deref() {
            None | Some("safe") | Some("unsafe") => {}
            Some(other) => {
                return Err(err(format!(
                    "field `label`: `{other}` is not safe or unsafe"
                )))
            }
        }
        if l.label.as_deref() == Some("unsafe") && l.categories.is_empty() {
            return Err(err(
                "`label` is unsafe but `categories` is empty; name at least one".into(),
            ));
        }
        out.push(Example {
            text: t,
            categories: l.categories,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_line_and_field() {
        let p = Path::new("d.jsonl");
        let e = parse_jsonl(p, "{\"text\":\"a\"}\n{\"txt\":\"b\"}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "d.jsonl:2: missing field `text`");
        let e = parse_jsonl(p, "{\"text\":\"a\",\"label\":\"bad\"}")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("d.jsonl:1: field `label`"), "{e}");
        let ok = parse_jsonl(
            p,
            "{\"text\":\"a\",\"categories\":[\"S1\"]}\n\n{\"text\":\"b\",\"label\":\"safe\"}",
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok[1].categories.is_empty());
    }
}
