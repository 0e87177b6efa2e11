//! Generic JSONL / CSV sources with a field mapping (the world's task banks use JSONL:
//! `{"id","prompt","completion","category","gold",...}`). Unknown fields are kept for
//! templates; only the mapped prompt is required.

use super::{cell, read_text, row_fields, CsvTable, FieldMap};
use crate::error::{EvalError, Result};
use crate::item::{EvalItem, Gold};
use std::path::Path;

pub fn load_jsonl(path: &Path, f: &FieldMap) -> Result<Vec<EvalItem>> {
    let text = read_text(path)?;
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| EvalError::data(path, n, format!("invalid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| EvalError::data(path, n, "row is not a JSON object"))?;
        let prompt = obj.get(&f.prompt).and_then(|p| p.as_str()).ok_or_else(|| {
            EvalError::data(
                path,
                n,
                format!("field `{}` missing or not a string", f.prompt),
            )
        })?;
        let id = match obj.get(&f.id) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(x)) => x.to_string(),
            // Rows without ids get their line number: stable across reruns of the same file.
            None => format!("line{n}"),
            Some(_) => {
                return Err(EvalError::data(
                    path,
                    n,
                    format!("field `{}` is not a string or number", f.id),
                ))
            }
        };
        let mut item = EvalItem::new(id, prompt);
        item.gold = match obj.get(&f.gold) {
            None | Some(serde_json::Value::Null) => None,
            Some(g) => Some(Gold::from_json(g).ok_or_else(|| {
                EvalError::data(
                    path,
                    n,
                    format!("field `{}` must be a string or a list of strings", f.gold),
                )
            })?),
        };
        item.category = obj
            .get(&f.category)
            .and_then(|c| c.as_str())
            .map(str::to_string);
        item.fields = obj.clone();
        items.push(item);
    }
    Ok(items)
}

pub fn load_csv(path: &Path, f: &FieldMap) -> Result<Vec<EvalItem>> {
    let t = CsvTable::read(path)?;
    let prompt_col = t.col(path, &f.prompt)?;
    let id_col = t.opt_col(&f.id);
    let gold_col = t.opt_col(&f.gold);
    let cat_col = t.opt_col(&f.category);
    let mut items = Vec::new();
    for (line, rec) in &t.rows {
        let prompt = cell(path, *line, rec, prompt_col, &f.prompt)?;
        let id = id_col
            .and_then(|c| rec.get(c))
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("line{line}"));
        let mut item = EvalItem::new(id, prompt);
        item.gold = gold_col
            .and_then(|c| rec.get(c))
            .filter(|s| !s.trim().is_empty())
            .map(|s| Gold::Text(s.to_string()));
        item.category = cat_col
            .and_then(|c| rec.get(c))
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string);
        item.fields = row_fields(&t.headers, rec);
        items.push(item);
    }
    Ok(items)
}
