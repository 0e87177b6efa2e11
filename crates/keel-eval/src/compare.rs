//! `keel compare`: what changed between two runs (hyperparameters, data digests, metrics per
//! stage) and which metrics regressed — a gate for pipelines.
//!
//! A metric *regressed* when run B's value is worse than run A's in the metric's direction
//! and either (a) both have 95% intervals and they do not overlap, or (b) a tolerance is
//! given and the worsening exceeds it. Without intervals (point estimates only) any
//! worsening beyond the tolerance (default 0) counts: there is no noise estimate to hide
//! behind. Improvements are classified the same way; everything else is "within noise".
//! Red-team cells compare like metrics (ASR, lower is better).

use keel_core::run_log::{Direction, MetricRecord, RunLog, StageRecord};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CompareOptions {
    /// Worsening (absolute, in the metric's units) that counts as a regression even when
    /// intervals overlap; also the threshold for point estimates.
    pub tolerance: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Improved,
    Regressed,
    WithinNoise,
    /// Only in run B.
    Added,
    /// Only in run A (a lost measurement is reported, not treated as a regression).
    Removed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricDiff {
    pub stage: String,
    pub key: String,
    pub direction: Direction,
    pub a: Option<MetricRecord>,
    pub b: Option<MetricRecord>,
    /// B − A.
    pub delta: Option<f64>,
    pub status: Status,
}

/// One changed setting or input: `a` / `b` are `None` where absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub stage: String,
    pub what: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub options: CompareOptions,
    pub stages_only_a: Vec<String>,
    pub stages_only_b: Vec<String>,
    pub hyperparameters: Vec<Change>,
    pub data: Vec<Change>,
    pub metrics: Vec<MetricDiff>,
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &MetricDiff> {
        self.metrics
            .iter()
            .filter(|m| m.status == Status::Regressed)
    }
}

/// Flatten JSON into `a.b[0].c` → scalar text, so nested settings diff line by line.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn diff_maps(
    stage: &str,
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
) -> Vec<Change> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| Change {
            stage: stage.into(),
            what: k.clone(),
            a: a.get(k).cloned(),
            b: b.get(k).cloned(),
        })
        .collect()
}

fn data_map(s: &StageRecord) -> BTreeMap<String, String> {
    s.data
        .iter()
        .map(|d| {
            let desc = format!(
                "sha256 {} · rows {}",
                d.sha256
                    .as_deref()
                    .map(|h| &h[..h.len().min(12)])
                    .unwrap_or("-"),
                d.rows.map(|r| r.to_string()).unwrap_or("-".into())
            );
            (d.path.clone(), desc)
        })
        .collect()
}

/// Evaluation metrics plus red-team cells, keyed.
fn metric_map(s: &StageRecord) -> BTreeMap<String, MetricRecord> {
    let mut m: BTreeMap<String, MetricRecord> =
        s.evals.iter().map(|e| (e.key(), e.clone())).collect();
    if let Some(rt) = &s.redteam {
        for c in &rt.cells {
            let rec = MetricRecord {
                suite: "redteam".into(),
                name: format!("{} × {}", c.attack, c.category),
                axis: Some("attack_success".into()),
                value: c.asr.asr,
                ci_low: c.asr.ci_low,
                ci_high: c.asr.ci_high,
                n: c.asr.scored,
                direction: Direction::Lower,
            };
            m.insert(rec.key(), rec);
        }
    }
    m
}

/// Classify B against A for one metric.
pub fn classify(
    a: &MetricRecord,
    b: &MetricRecord,
    opts: &CompareOptions,
) -> (Option<f64>, Status) {
    let (Some(va), Some(vb)) = (a.value, b.value) else {
        return (None, Status::WithinNoise);
    };
    let delta = vb - va;
    let gain = match b.direction {
        Direction::Higher => delta,
        Direction::Lower => -delta,
    };
    let tol = opts.tolerance.unwrap_or(0.0);
    let significant = match (a.ci_low, a.ci_high, b.ci_low, b.ci_high) {
        (Some(al), Some(ah), Some(bl), Some(bh)) => {
            let disjoint = ah < bl || bh < al;
            disjoint || opts.tolerance.is_some_and(|t| gain.abs() > t)
        }
        _ => gain.abs() > tol,
    };
    let status = if gain < 0.0 && significant {
        Status::Regressed
    } else if gain > 0.0 && significant {
        Status::Improved
    } else {
        Status::WithinNoise
    };
    (Some(delta), status)
}

pub fn compare(a: &RunLog, b: &RunLog, opts: CompareOptions) -> Comparison {
    let names = |l: &RunLog| l.stages.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let (na, nb) = (names(a), names(b));
    let mut c = Comparison {
        options: opts,
        stages_only_a: na.iter().filter(|n| !nb.contains(n)).cloned().collect(),
        stages_only_b: nb.iter().filter(|n| !na.contains(n)).cloned().collect(),
        hyperparameters: Vec::new(),
        data: Vec::new(),
        metrics: Vec::new(),
    };
    for sb in &b.stages {
        let Some(sa) = a.stage(&sb.name) else {
            continue;
        };
        let (mut ha, mut hb) = (BTreeMap::new(), BTreeMap::new());
        flatten("", &sa.hyperparameters, &mut ha);
        flatten("", &sb.hyperparameters, &mut hb);
        c.hyperparameters.extend(diff_maps(&sb.name, &ha, &hb));
        c.data
            .extend(diff_maps(&sb.name, &data_map(sa), &data_map(sb)));
        let (ma, mb) = (metric_map(sa), metric_map(sb));
        let mut keys: Vec<&String> = ma.keys().chain(mb.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (x, y) = (ma.get(k), mb.get(k));
            let (delta, status) = match (x, y) {
                (Some(x), Some(y)) => classify(x, y, &opts),
                (None, _) => (None, Status::Added),
                (_, None) => (None, Status::Removed),
            };
            let direction = y.or(x).map(|m| m.direction).unwrap_or(Direction::Higher);
            c.metrics.push(MetricDiff {
                stage: sb.name.clone(),
                key: k.clone(),
                direction,
                a: x.cloned(),
                b: y.cloned(),
                delta,
                status,
            });
        }
    }
    c
}

fn val(m: &Option<MetricRecord>) -> String {
    m.as_ref()
        .map(crate::report::fmt_metric)
        .unwrap_or_else(|| "·".into())
}

/// A Markdown summary of the comparison.
pub fn to_markdown(c: &Comparison, a_name: &str, b_name: &str) -> String {
    let mut o = format!("# Compare `{a_name}` → `{b_name}`\n\n");
    let n_reg = c.regressions().count();
    let _ = writeln!(
        o,
        "**{n_reg} regression(s)** (rule: worse and 95% CIs disjoint{}).\n",
        c.options
            .tolerance
            .map(|t| format!(", or worse by more than {t}"))
            .unwrap_or_default()
    );
    for (label, v) in [
        ("only in A", &c.stages_only_a),
        ("only in B", &c.stages_only_b),
    ] {
        if !v.is_empty() {
            let _ = writeln!(o, "Stages {label}: {}\n", v.join(", "));
        }
    }
    o.push_str("## Metrics\n\n| stage | metric | A | B | Δ (B−A) | status |\n|---|---|---:|---:|---:|---|\n");
    for m in &c.metrics {
        let status = match m.status {
            Status::Regressed => "**REGRESSED**",
            Status::Improved => "improved",
            Status::WithinNoise => "within noise",
            Status::Added => "added",
            Status::Removed => "removed",
        };
        let _ = writeln!(
            o,
            "| {} | {} {} | {} | {} | {} | {status} |",
            m.stage,
            m.key,
            crate::report::arrow(m.direction),
            val(&m.a),
            val(&m.b),
            m.delta.map(|d| format!("{d:+.3}")).unwrap_or("·".into())
        );
    }
    for (title, list) in [("Hyperparameters", &c.hyperparameters), ("Data", &c.data)] {
        let _ = writeln!(o, "\n## {title} changed\n");
        if list.is_empty() {
            o.push_str("none\n");
        }
        for ch in list {
            let _ = writeln!(
                o,
                "- {}: `{}`: {} → {}",
                ch.stage,
                ch.what,
                ch.a.as_deref().unwrap_or("(absent)"),
                ch.b.as_deref().unwrap_or("(absent)")
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: f64, half: Option<f64>, d: Direction) -> MetricRecord {
        MetricRecord {
            suite: "s".into(),
            name: "x".into(),
            axis: None,
            value: Some(v),
            ci_low: half.map(|h| v - h),
            ci_high: half.map(|h| v + h),
            n: 100,
            direction: d,
        }
    }

    #[test]
    fn regression_rule_uses_direction_intervals_and_tolerance() {
        let o = CompareOptions::default();
        let hi = Direction::Higher;
        assert_eq!(
            classify(&m(0.8, Some(0.05), hi), &m(0.6, Some(0.05), hi), &o).1,
            Status::Regressed
        );
        assert_eq!(
            classify(&m(0.8, Some(0.15), hi), &m(0.7, Some(0.15), hi), &o).1,
            Status::WithinNoise
        );
        let tol = CompareOptions {
            tolerance: Some(0.05),
        };
        assert_eq!(
            classify(&m(0.8, Some(0.15), hi), &m(0.7, Some(0.15), hi), &tol).1,
            Status::Regressed
        );
        // Lower is better: a rise is a regression.
        let lo = Direction::Lower;
        assert_eq!(
            classify(&m(0.1, Some(0.02), lo), &m(0.3, Some(0.02), lo), &o).1,
            Status::Regressed
        );
        assert_eq!(
            classify(&m(0.3, Some(0.02), lo), &m(0.1, Some(0.02), lo), &o).1,
            Status::Improved
        );
        // Point estimates: any worsening beyond the tolerance.
        assert_eq!(
            classify(&m(0.5, None, hi), &m(0.49, None, hi), &o).1,
            Status::Regressed
        );
        assert_eq!(
            classify(&m(0.5, None, hi), &m(0.49, None, hi), &tol).1,
            Status::WithinNoise
        );
    }

    #[test]
    fn compare_runs_reports_changes_and_regressions() {
        let a = crate::report::fixture::run_log(std::path::Path::new("a"));
        let mut b = a.clone();
        let dpo = b.stage_mut("dpo").unwrap();
        dpo.hyperparameters["lr"] = serde_json::json!(5e-4);
        dpo.data[0].sha256 = Some("ffff".into());
        dpo.evals[1].value = Some(0.2); // harmlessness 0.8 → 0.2, CIs [0.7,0.9] vs [0.3,0.5]
        dpo.evals[1].ci_low = Some(0.1);
        dpo.evals[1].ci_high = Some(0.3);
        dpo.evals.pop();
        let c = compare(&a, &b, CompareOptions::default());
        let regs: Vec<_> = c.regressions().map(|r| r.key.as_str()).collect();
        assert_eq!(regs, ["world/harmlessness"]);
        assert!(c
            .metrics
            .iter()
            .any(|d| d.key == "world/over_refusal" && d.status == Status::Removed));
        assert_eq!(c.hyperparameters.len(), 1);
        assert_eq!(c.data.len(), 1);
        let md = to_markdown(&c, "a", "b");
        assert!(
            md.contains("**1 regression(s)**") && md.contains("**REGRESSED**"),
            "{md}"
        );
        let same = compare(&a, &a, CompareOptions::default());
        assert_eq!(same.regressions().count(), 0);
        assert!(same.hyperparameters.is_empty() && same.data.is_empty());
    }
}
