//! The curation report: counts in and out, drops by reason with examples, written as JSON (for
//! machines and the demo summary) and Markdown (for people).

use super::{CurateConfig, CurateRow, DropReason};
use crate::error::Result;
use keel_core::artifact::{write_atomic, write_json_atomic};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One dropped row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedRow {
    pub source: String,
    pub category: Option<String>,
    pub reason: DropReason,
    /// The measured value or the row it duplicates / the eval item it leaks.
    pub detail: String,
    /// The row's text, cut to 300 characters.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurateReport {
    pub rows_in: usize,
    pub rows_out: usize,
    pub dropped: BTreeMap<DropReason, usize>,
    /// Up to `examples_per_reason` dropped rows per reason, in input order.
    pub examples: BTreeMap<DropReason, Vec<DroppedRow>>,
    /// Rows per mix group before and after.
    pub groups_in: BTreeMap<String, usize>,
    pub groups_out: BTreeMap<String, usize>,
    /// Eval sets checked for contamination, with their sizes.
    pub eval_sets: Vec<(String, usize)>,
    pub config: CurateConfig,
}

impl CurateReport {
    pub(super) fn build(
        cfg: &CurateConfig,
        rows_in: usize,
        kept: &[CurateRow],
        dropped: &[DroppedRow],
        groups_in: BTreeMap<String, usize>,
        eval_sets: Vec<(String, usize)>,
    ) -> Self {
        let mut counts = BTreeMap::new();
        let mut examples: BTreeMap<DropReason, Vec<DroppedRow>> = BTreeMap::new();
        for d in dropped {
            *counts.entry(d.reason).or_insert(0) += 1;
            let ex = examples.entry(d.reason).or_default();
            if ex.len() < cfg.examples_per_reason {
                ex.push(d.clone());
            }
        }
        let mut groups_out = BTreeMap::new();
        for r in kept {
            *groups_out.entry(r.group()).or_insert(0) += 1;
        }
        CurateReport {
            rows_in,
            rows_out: kept.len(),
            dropped: counts,
            examples,
            groups_in,
            groups_out,
            eval_sets,
            config: cfg.clone(),
        }
    }

    /// Rows dropped for `reason`.
    pub fn count(&self, reason: DropReason) -> usize {
        self.dropped.get(&reason).copied().unwrap_or(0)
    }

    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let pct = |n: usize| 100.0 * n as f64 / self.rows_in.max(1) as f64;
        let _ = writeln!(s, "# Data curation report\n");
        let _ = writeln!(
            s,
            "{} rows in, {} rows out ({:.1}% kept), {} dropped.\n",
            self.rows_in,
            self.rows_out,
            pct(self.rows_out),
            self.rows_in - self.rows_out
        );
        let _ = writeln!(
            s,
            "## Dropped by reason\n\n| reason | rows | % of input |\n|---|---:|---:|"
        );
        for (r, n) in &self.dropped {
            let _ = writeln!(s, "| {} | {n} | {:.1}% |", reason_name(*r), pct(*n));
        }
        let _ = writeln!(
            s,
            "\n## Mix groups\n\n| group | in | out |\n|---|---:|---:|"
        );
        for (g, n) in &self.groups_in {
            let out = self.groups_out.get(g).copied().unwrap_or(0);
            let _ = writeln!(s, "| {g} | {n} | {out} |");
        }
        if !self.eval_sets.is_empty() {
            let _ = writeln!(s, "\n## Evaluation sets checked\n");
            for (name, n) in &self.eval_sets {
                let _ = writeln!(s, "- {name}: {n} texts");
            }
            let d = &self.config.decontam;
            let _ = writeln!(
                s,
                "\n{}-gram overlap ({}-gram for eval items under {} words, whole item under {}).",
                d.n, d.short_n, d.n, d.short_n
            );
        }
        if !self.examples.is_empty() {
            let _ = writeln!(s, "\n## Examples\n");
        }
        for (r, ex) in &self.examples {
            let _ = writeln!(s, "### {}\n", reason_name(*r));
            for d in ex {
                let text = d.text.replace('\n', " ⏎ ").replace('|', "\\|");
                let _ = writeln!(s, "- `{}`: {}\n  > {}", d.source, d.detail, text);
            }
            let _ = writeln!(s);
        }
        s
    }

    /// Write `<dir>/curate_report.json` and `<dir>/curate_report.md`, atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_json_atomic(&dir.join("curate_report.json"), self)?;
        write_atomic(&dir.join("curate_report.md"), self.to_markdown().as_bytes())?;
        Ok(())
    }
}

/// The snake_case name of a reason, as in the JSON report.
pub fn reason_name(r: DropReason) -> String {
    match serde_json::to_value(r) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{r:?}"),
    }
}
