//! TruthfulQA multiple choice (`mc_task.json`): a JSON array of
//! `{"question", "mc1_targets": {answer: 0|1, ...}, "mc2_targets": {...}}`.
//! Answer order is kept as in the file (a custom map visitor; serde_json's default map
//! would sort it).

use super::read_text;
use crate::error::{EvalError, Result};
use crate::item::{EvalItem, McTargets};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::path::Path;

struct Targets(Vec<(String, bool)>);

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Targets;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object mapping answer text to 0 or 1")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Targets, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, u8>()? {
                    if v > 1 {
                        return Err(serde::de::Error::custom(format!(
                            "answer '{k}' has label {v}, expected 0 or 1"
                        )));
                    }
                    out.push((k, v == 1));
                }
                Ok(Targets(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct Row {
    question: String,
    mc1_targets: Targets,
    #[serde(default)]
    mc2_targets: Option<Targets>,
}

pub fn load(path: &Path) -> Result<Vec<EvalItem>> {
    let text = read_text(path)?;
    let rows: Vec<Row> = serde_json::from_str(&text)
        .map_err(|e| EvalError::data(path, e.line(), format!("invalid TruthfulQA MC JSON: {e}")))?;
    let mut out = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        let n_true = row.mc1_targets.0.iter().filter(|(_, t)| *t).count();
        if n_true != 1 {
            return Err(EvalError::data(
                path,
                0,
                format!("question {i} ('{}'): mc1_targets must have exactly one true answer, has {n_true}", row.question),
            ));
        }
        let mut it = EvalItem::new(format!("truthfulqa-{i}"), row.question);
        it.mc = Some(McTargets {
            mc1: row.mc1_targets.0,
            mc2: row.mc2_targets.map(|t| t.0).unwrap_or_default(),
        });
        out.push(it);
    }
    Ok(out)
}
