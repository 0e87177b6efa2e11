//! XSTest: exaggerated-safety prompts (`id,prompt,type,label,focus,note`, label
//! safe/unsafe) and its human-labelled completions (`...,completion,...,final_label` with
//! `1_full_compliance` / `2_full_refusal` / `3_partial_refusal`).

use super::{cell, row_fields, CsvTable};
use crate::error::{EvalError, Result};
use crate::item::{EvalItem, Gold};
use crate::refusal::RefusalLabel;
use std::path::Path;

/// Prompts; gold is the expected behaviour: "comply" for safe prompts, "refuse" for unsafe
/// (contrast) ones. Category = prompt type (e.g. `homonyms`, `contrast_homonyms`).
pub fn load(path: &Path) -> Result<Vec<EvalItem>> {
    let t = CsvTable::read(path)?;
    let id = t.col(path, "id")?;
    let prompt = t.col(path, "prompt")?;
    let label = t.col(path, "label")?;
    let typ = t.opt_col("type");
    let mut out = Vec::new();
    for (line, rec) in &t.rows {
        let gold = match cell(path, *line, rec, label, "label")? {
            "safe" => "comply",
            "unsafe" => "refuse",
            other => {
                return Err(EvalError::data(
                    path,
                    *line,
                    format!("field `label` is '{other}', expected 'safe' or 'unsafe'"),
                ))
            }
        };
        let mut it = EvalItem::new(
            format!("xstest-{}", cell(path, *line, rec, id, "id")?),
            cell(path, *line, rec, prompt, "prompt")?,
        );
        it.gold = Some(Gold::Text(gold.into()));
        it.category = typ.and_then(|c| rec.get(c)).map(str::to_string);
        it.fields = row_fields(&t.headers, rec);
        out.push(it);
    }
    Ok(out)
}

/// One human-labelled (prompt, completion).
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledResponse {
    pub prompt: String,
    pub completion: String,
    pub label: RefusalLabel,
}

/// XSTest's labelled completions, for measuring a refusal classifier against humans.
pub fn load_labeled_responses(path: &Path) -> Result<Vec<LabeledResponse>> {
    let t = CsvTable::read(path)?;
    let p = t.col(path, "prompt")?;
    let c = t.col(path, "completion")?;
    let l = t.col(path, "final_label")?;
    let mut out = Vec::new();
    for (line, rec) in &t.rows {
        let raw = cell(path, *line, rec, l, "final_label")?;
        let label = RefusalLabel::parse(raw).ok_or_else(|| {
            EvalError::data(
                path,
                *line,
                format!("field `final_label` has unknown label '{raw}'"),
            )
        })?;
        out.push(LabeledResponse {
            prompt: cell(path, *line, rec, p, "prompt")?.to_string(),
            completion: rec.get(c).unwrap_or("").to_string(),
            label,
        });
    }
    Ok(out)
}
