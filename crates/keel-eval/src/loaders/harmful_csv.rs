//! Harmful-prompt benchmarks in CSV: HarmBench, AdvBench, Do-Not-Answer, StrongREJECT.
//! Every item gets gold "refuse" (the expected behaviour) and its harm category.

use super::{cell, row_fields, CsvTable};
use crate::error::Result;
use crate::item::{EvalItem, Gold};
use std::path::Path;

fn harmful(id: String, prompt: String, category: Option<String>) -> EvalItem {
    let mut it = EvalItem::new(id, prompt);
    it.category = category.filter(|c| !c.trim().is_empty());
    it.gold = Some(Gold::Text("refuse".into()));
    it
}

/// HarmBench behaviours. Contextual behaviours are sent as context, a separator, then the
/// behaviour, as HarmBench's own prompt builder does.
pub fn load_harmbench(path: &Path) -> Result<Vec<EvalItem>> {
    let t = CsvTable::read(path)?;
    let b = t.col(path, "Behavior")?;
    let sem = t.col(path, "SemanticCategory")?;
    let id = t.col(path, "BehaviorID")?;
    let ctx = t.opt_col("ContextString");
    let mut out = Vec::new();
    for (line, rec) in &t.rows {
        let behavior = cell(path, *line, rec, b, "Behavior")?;
        let prompt = match ctx.and_then(|c| rec.get(c)).map(str::trim) {
            Some(c) if !c.is_empty() => format!("{c}\n\n---\n\n{behavior}"),
            _ => behavior.to_string(),
        };
        let mut it = harmful(
            cell(path, *line, rec, id, "BehaviorID")?.to_string(),
            prompt,
            rec.get(sem).map(str::to_string),
        );
        it.fields = row_fields(&t.headers, rec);
        out.push(it);
    }
    Ok(out)
}

/// AdvBench `harmful_behaviors.csv`: `goal,target` (target = the affirmative prefix an
/// attack aims for; kept as a field for prefix-injection attacks).
pub fn load_advbench(path: &Path) -> Result<Vec<EvalItem>> {
    let t = CsvTable::read(path)?;
    let goal = t.col(path, "goal")?;
    let mut out = Vec::new();
    for (i, (line, rec)) in t.rows.iter().enumerate() {
        let mut it = harmful(
            format!("advbench-{i}"),
            cell(path, *line, rec, goal, "goal")?.to_string(),
            Some("harmful_behaviors".into()),
        );
        it.fields = row_fields(&t.headers, rec);
        out.push(it);
    }
    Ok(out)
}

/// Do-Not-Answer `data_en.csv`; category = risk area (types_of_harm kept as a field).
pub fn load_do_not_answer(path: &Path) -> Result<Vec<EvalItem>> {
    let t = CsvTable::read(path)?;
    let id = t.col(path, "id")?;
    let q = t.col(path, "question")?;
    let risk = t.col(path, "risk_area")?;
    let mut out = Vec::new();
    for (line, rec) in &t.rows {
        let mut it = harmful(
            format!("dna-{}", cell(path, *line, rec, id, "id")?),
            cell(path, *line, rec, q, "question")?.to_string(),
            rec.get(risk).map(str::to_string),
        );
        // The file also carries six models' answers; keep only the descriptive columns.
        it.fields = row_fields(&t.headers, rec)
            .into_iter()
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "id" | "risk_area" | "types_of_harm" | "specific_harms" | "question"
                )
            })
            .collect();
        out.push(it);
    }
    Ok(out)
}

/// StrongREJECT CSV: `category,source,forbidden_prompt`.
pub fn load_strongreject(path: &Path) -> Result<Vec<EvalItem>> {
    let t = CsvTable::read(path)?;
    let p = t.col(path, "forbidden_prompt")?;
    let cat = t.col(path, "category")?;
    let mut out = Vec::new();
    for (i, (line, rec)) in t.rows.iter().enumerate() {
        let mut it = harmful(
            format!("strongreject-{i}"),
            cell(path, *line, rec, p, "forbidden_prompt")?.to_string(),
            rec.get(cat).map(str::to_string),
        );
        it.fields = row_fields(&t.headers, rec);
        out.push(it);
    }
    Ok(out)
}
