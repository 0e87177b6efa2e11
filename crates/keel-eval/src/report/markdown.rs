//! The Markdown model card, with Hugging Face front matter (`model-index` holds the final
//! evaluated stage's results, the model the card describes).

use super::{arrow, columns, fmt_metric, limitations, metric, redteam_grid};
use keel_core::run_log::{RunLog, StageRecord};
use std::fmt::Write;

/// A YAML double-quoted scalar (valid for any string).
pub fn yaml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Table cells may not contain `|` or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The stage whose model the card describes: the last one with evaluation results.
pub fn final_stage(log: &RunLog) -> Option<&StageRecord> {
    log.stages.iter().rev().find(|s| !s.evals.is_empty())
}

fn front_matter(log: &RunLog) -> String {
    let mut y = String::from("---\n");
    let name = if log.model.is_empty() {
        "model"
    } else {
        &log.model
    };
    let _ = writeln!(y, "model_name: {}", yaml_str(name));
    if let Some(b) = &log.base_model {
        let _ = writeln!(y, "base_model: {}", yaml_str(b));
    }
    y.push_str("tags:\n- keel\n- alignment\n");
    if let Some(stage) = final_stage(log) {
        let _ = writeln!(y, "model-index:\n- name: {}\n  results:", yaml_str(name));
        let mut suites: Vec<&str> = stage.evals.iter().map(|m| m.suite.as_str()).collect();
        suites.dedup();
        for suite in suites {
            let _ = writeln!(
                y,
                "  - task:\n      type: text-generation\n      name: Text Generation\n    \
                 dataset:\n      name: {}\n      type: {}\n    metrics:",
                yaml_str(suite),
                yaml_str(suite)
            );
            for m in stage.evals.iter().filter(|m| m.suite == suite) {
                let Some(v) = m.value else { continue };
                let _ = writeln!(
                    y,
                    "    - type: {}\n      value: {v:.4}\n      name: {}",
                    yaml_str(&m.name),
                    yaml_str(&format!("{} ({}, n={})", m.name, stage.name, m.n))
                );
            }
            let _ = writeln!(
                y,
                "    source:\n      name: Keel run log\n      url: {}",
                yaml_str("run.json")
            );
        }
    }
    y.push_str("---\n\n");
    y
}

fn eval_table(log: &RunLog, out: &mut String) {
    let cols = columns(log);
    if cols.is_empty() {
        out.push_str("No evaluation results recorded.\n\n");
        return;
    }
    out.push_str("Value [95% CI]; ↑ higher is better, ↓ lower is better.\n\n| stage |");
    for c in &cols {
        let axis = c.axis.as_deref().unwrap_or("other");
        let _ = write!(out, " {} {} ({axis}) |", cell(&c.key), arrow(c.direction));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(cols.len()));
    out.push('\n');
    for s in &log.stages {
        let _ = write!(out, "| {} |", cell(&s.name));
        for c in &cols {
            let v = metric(s, &c.key)
                .map(|m| format!("{} (n={})", fmt_metric(m), m.n))
                .unwrap_or_else(|| "·".into());
            let _ = write!(out, " {v} |");
        }
        out.push('\n');
    }
    out.push('\n');
}

fn redteam(log: &RunLog, out: &mut String) {
    for s in &log.stages {
        let (Some(rt), Some((cats, atts, cells))) = (&s.redteam, redteam_grid(s)) else {
            continue;
        };
        let o = &rt.overall;
        let _ = writeln!(
            out,
            "### {} (judge: {})\n\nOverall ASR {} ({}/{}).\n",
            s.name,
            if rt.judge.is_empty() { "-" } else { &rt.judge },
            o.asr
                .map(|v| format!("{:.1}%", v * 100.0))
                .unwrap_or("-".into()),
            o.successes,
            o.scored
        );
        out.push_str("| category \\ attack |");
        for a in &atts {
            let _ = write!(out, " {} |", cell(a));
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(atts.len()));
        out.push('\n');
        for (cat, row) in cats.iter().zip(&cells) {
            let _ = write!(out, "| {} |", cell(cat));
            for c in row {
                match c {
                    Some(c) => {
                        let _ = write!(
                            out,
                            " {:.0}% ({}/{}) |",
                            c.asr * 100.0,
                            c.successes,
                            c.scored
                        );
                    }
                    None => out.push_str(" · |"),
                }
            }
            out.push('\n');
        }
        out.push('\n');
    }
}

fn data_and_training(log: &RunLog, out: &mut String) {
    out.push_str("## Data\n\n| stage | path | role | sha256 | rows | dropped by curation |\n");
    out.push_str("|---|---|---|---|---:|---|\n");
    for s in &log.stages {
        for d in &s.data {
            let dropped = d
                .dropped
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | `{}` | {} | {} |",
                cell(&s.name),
                cell(&d.path),
                d.role.as_deref().unwrap_or("-"),
                d.sha256
                    .as_deref()
                    .map(|h| &h[..h.len().min(16)])
                    .unwrap_or("-"),
                d.rows.map(|r| r.to_string()).unwrap_or("-".into()),
                if dropped.is_empty() {
                    "-".into()
                } else {
                    cell(&dropped)
                }
            );
        }
    }
    out.push_str("\n## Stages\n\n");
    for s in &log.stages {
        let _ = writeln!(out, "### {} ({})\n", s.name, s.kind);
        if let Some(c) = &s.command {
            let _ = writeln!(out, "Command:\n\n```sh\n{}\n```\n", c.replace("```", "'''"));
        }
        if let Some(c) = &s.checkpoint {
            let _ = writeln!(out, "Checkpoint: `{c}`\n");
        }
        if !s.training.is_empty() {
            let figs: Vec<String> = s
                .training
                .iter()
                .map(|(k, v)| format!("{k} = {v:.4}"))
                .collect();
            let _ = writeln!(out, "Training: {}\n", figs.join(" · "));
        }
        let hp = serde_json::to_string_pretty(&s.hyperparameters).unwrap_or_default();
        if hp != "{}" && hp != "null" {
            let _ = writeln!(out, "Hyperparameters:\n\n```json\n{hp}\n```\n");
        }
    }
}

/// The whole model card.
pub fn render(log: &RunLog) -> String {
    let mut out = front_matter(log);
    let name = if log.model.is_empty() {
        "model"
    } else {
        &log.model
    };
    let _ = writeln!(out, "# Model card: {name}\n");
    let stages: Vec<String> = log
        .stages
        .iter()
        .map(|s| format!("{} ({})", s.name, s.kind))
        .collect();
    let _ = writeln!(
        out,
        "Produced by Keel {} · seed {} · stages: {}\n",
        log.keel_version,
        log.seed.map(|s| s.to_string()).unwrap_or("-".into()),
        stages.join(" → ")
    );
    if let Some(b) = &log.base_model {
        let _ = writeln!(out, "Base model: `{b}`\n");
    }
    out.push_str("## Evaluation\n\n");
    eval_table(log, &mut out);
    if log.stages.iter().any(|s| s.redteam.is_some()) {
        out.push_str("## Red-team: attack success rate (category × attack)\n\n");
        redteam(log, &mut out);
    }
    data_and_training(log, &mut out);
    out.push_str("## Policies in force\n\n");
    let mut any = false;
    for s in &log.stages {
        for p in &s.policies {
            any = true;
            let _ = writeln!(
                out,
                "- {}: `{}` (policy sha256 `{}`)",
                s.name, p.name, p.policy_hash
            );
        }
    }
    if !any {
        out.push_str("- none (no guard recorded)");
    }
    out.push_str("\n\n## Known limitations\n\n");
    for l in limitations(log) {
        let _ = writeln!(out, "- {l}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_has_front_matter_tables_and_every_section() {
        let log = crate::report::fixture::run_log(std::path::Path::new("."));
        let md = render(&log);
        assert!(md.starts_with("---\nmodel_name: \"tiny-model\"\n"), "{md}");
        let fm = &md[..md[3..].find("---").unwrap() + 3];
        assert!(
            fm.contains("model-index:") && fm.contains("value: 0.8000"),
            "{fm}"
        );
        assert!(md.contains("| dpo | 0.600 [0.500, 0.700] (n=50) |"), "{md}");
        assert!(md.contains("| S2 | 50% (2/4) | · |"), "{md}");
        assert!(md.contains("duplicate: 3") && md.contains("\"lr\""));
        assert!(md.contains("`feedbeef`") && md.contains("Synthetic data only."));
        assert_eq!(yaml_str("a\"b\\\n"), "\"a\\\"b\\\\\\n\"");
    }
}
