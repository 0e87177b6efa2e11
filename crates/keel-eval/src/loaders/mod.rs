//! Loaders for the world's task banks and public benchmark formats. Each turns a file into
//! [`EvalItem`]s; bad input is an error naming the file, line and field.
//!
//! CSVs go through the `csv` crate (quoted cells hold commas and CRLF line breaks);
//! `.gz` files are decompressed on the fly.

pub mod generic;
pub mod harmful_csv;
pub mod hh_rlhf;
pub mod mt_bench;
pub mod truthfulqa;
pub mod xstest;

use crate::error::{EvalError, Result};
use crate::item::EvalItem;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// File formats a suite source can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// JSON Lines with a field mapping (the world's task banks).
    Jsonl,
    /// A CSV with a header row and a field mapping.
    Csv,
    /// XSTest prompts CSV (`id,prompt,type,label,focus,note`).
    Xstest,
    /// HarmBench behaviours CSV (`Behavior,FunctionalCategory,SemanticCategory,Tags,ContextString,BehaviorID`).
    Harmbench,
    /// AdvBench `harmful_behaviors.csv` (`goal,target`).
    Advbench,
    /// Do-Not-Answer `data_en.csv` (`id,risk_area,types_of_harm,specific_harms,question,...`).
    DoNotAnswer,
    /// StrongREJECT CSV (`category,source,forbidden_prompt`).
    Strongreject,
    /// TruthfulQA `mc_task.json` (question, mc1_targets, mc2_targets).
    TruthfulqaMc,
    /// Anthropic HH-RLHF pairs JSONL (optionally .gz): chosen / rejected transcripts.
    HhRlhf,
    /// MT-bench `question.jsonl` (question_id, category, turns).
    MtBench,
}

/// Which source field feeds which item slot (for `jsonl` / `csv`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldMap {
    pub id: String,
    pub prompt: String,
    pub gold: String,
    pub category: String,
}

impl Default for FieldMap {
    fn default() -> Self {
        FieldMap {
            id: "id".into(),
            prompt: "prompt".into(),
            gold: "gold".into(),
            category: "category".into(),
        }
    }
}

/// Load `path` in `format`.
pub fn load(path: &Path, format: Format, fields: &FieldMap) -> Result<Vec<EvalItem>> {
    match format {
        Format::Jsonl => generic::load_jsonl(path, fields),
        Format::Csv => generic::load_csv(path, fields),
        Format::Xstest => xstest::load(path),
        Format::Harmbench => harmful_csv::load_harmbench(path),
        Format::Advbench => harmful_csv::load_advbench(path),
        Format::DoNotAnswer => harmful_csv::load_do_not_answer(path),
        Format::Strongreject => harmful_csv::load_strongreject(path),
        Format::TruthfulqaMc => truthfulqa::load(path),
        Format::HhRlhf => hh_rlhf::load(path),
        Format::MtBench => mt_bench::load(path),
    }
}

/// Read a whole file as text, gunzipping `.gz`.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    let is_gz = path.extension().is_some_and(|e| e == "gz");
    if is_gz {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .map_err(|e| EvalError::data(path, 0, format!("cannot gunzip: {e}")))?;
        Ok(s)
    } else {
        String::from_utf8(bytes).map_err(|e| EvalError::data(path, 0, format!("not UTF-8: {e}")))
    }
}

/// A CSV file read into header + records, each with its 1-based line number.
pub struct CsvTable {
    pub headers: Vec<String>,
    pub rows: Vec<(usize, csv::StringRecord)>,
}

impl CsvTable {
    pub fn read(path: &Path) -> Result<CsvTable> {
        let text = read_text(path)?;
        // A UTF-8 BOM would otherwise become part of the first column's name.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(text.as_bytes());
        let headers: Vec<String> = rdr
            .headers()
            .map_err(|e| EvalError::data(path, 1, format!("bad CSV header: {e}")))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                EvalError::data(path, line, format!("bad CSV row: {e}"))
            })?;
            let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
            rows.push((line, rec));
        }
        Ok(CsvTable { headers, rows })
    }

    /// Index of column `name`, or an error listing the columns the file has.
    pub fn col(&self, path: &Path, name: &str) -> Result<usize> {
        self.headers.iter().position(|h| h == name).ok_or_else(|| {
            EvalError::data(
                path,
                1,
                format!(
                    "missing column `{name}` (columns: {})",
                    self.headers.join(", ")
                ),
            )
        })
    }

    pub fn opt_col(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }
}

/// A required, non-empty cell.
pub fn cell<'a>(
    path: &Path,
    line: usize,
    rec: &'a csv::StringRecord,
    col: usize,
    name: &str,
) -> Result<&'a str> {
    match rec.get(col).map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(EvalError::data(
            path,
            line,
            format!("field `{name}` is empty"),
        )),
    }
}

/// Put every cell of a row into an item's template fields.
pub fn row_fields(
    headers: &[String],
    rec: &csv::StringRecord,
) -> serde_json::Map<String, serde_json::Value> {
    headers
        .iter()
        .zip(rec.iter())
        .map(|(h, v)| (h.clone(), serde_json::Value::String(v.to_string())))
        .collect()
}
