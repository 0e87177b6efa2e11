//! `keel report`: a run folder's `run.json` rendered as a Markdown model card (Hugging Face
//! front matter with `model-index`) and a self-contained HTML page with inline SVG charts.
//!
//! Everything shown comes from the run log; the only things computed here are layout
//! choices (which metric goes on which chart axis) and limitations that follow from the
//! numbers themselves (small samples, unscored items).

pub mod charts;
pub mod html;
pub mod markdown;

use keel_core::run_log::{axes, Direction, MetricRecord, RunLog, StageRecord};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Core(#[from] keel_core::CoreError),
    #[error("drawing a chart: {0}")]
    Chart(String),
    #[error("{0}: no stages recorded, nothing to report")]
    Empty(PathBuf),
}

/// A metric column: one `suite/name` key, in the order the tables show them.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub key: String,
    pub axis: Option<String>,
    pub direction: Direction,
}

fn axis_rank(axis: Option<&str>) -> usize {
    axis.and_then(|a| axes::ALL.iter().position(|x| *x == a))
        .unwrap_or(axes::ALL.len())
}

/// Every metric key any stage recorded, grouped by axis (helpful, harmless, honest,
/// over-refusal, attack success, then the rest), first appearance within a group.
pub fn columns(log: &RunLog) -> Vec<Column> {
    let mut cols: Vec<Column> = Vec::new();
    for m in log.stages.iter().flat_map(|s| &s.evals) {
        if !cols.iter().any(|c| c.key == m.key()) {
            cols.push(Column {
                key: m.key(),
                axis: m.axis.clone(),
                direction: m.direction,
            });
        }
    }
    cols.sort_by_key(|c| axis_rank(c.axis.as_deref())); // stable: keeps first appearance
    cols
}

/// The stage's value for a metric key.
pub fn metric<'a>(stage: &'a StageRecord, key: &str) -> Option<&'a MetricRecord> {
    stage.evals.iter().find(|m| m.key() == key)
}

/// `0.620 [0.550, 0.700]`, or `-` when nothing was scored.
pub fn fmt_metric(m: &MetricRecord) -> String {
    match (m.value, m.ci_low, m.ci_high) {
        (Some(v), Some(lo), Some(hi)) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
        (Some(v), _, _) => format!("{v:.3}"),
        _ => "-".into(),
    }
}

pub fn arrow(d: Direction) -> &'static str {
    match d {
        Direction::Higher => "↑",
        Direction::Lower => "↓",
    }
}

fn point(m: &MetricRecord) -> Option<charts::Point> {
    m.value.map(|v| charts::Point {
        v,
        lo: m.ci_low,
        hi: m.ci_high,
    })
}

/// The trade-off chart's axes: x = the first harmless metric; y = the helpful, over-refusal,
/// honest or attack-success metric measured on the most stages alongside x (ties go to
/// that order). `None` when the run lacks either.
pub fn tradeoff_axes<'a>(log: &RunLog, cols: &'a [Column]) -> Option<(&'a Column, &'a Column)> {
    let x = cols
        .iter()
        .find(|c| c.axis.as_deref() == Some(axes::HARMLESS))?;
    let order = [
        axes::HELPFUL,
        axes::OVER_REFUSAL,
        axes::HONEST,
        axes::ATTACK_SUCCESS,
    ];
    let y = order
        .iter()
        .filter_map(|a| cols.iter().find(|c| c.axis.as_deref() == Some(*a)))
        .map(|c| (tradeoff_points(log, x, c).len(), c))
        .filter(|(n, _)| *n > 0)
        .fold(None::<(usize, &Column)>, |best, (n, c)| match best {
            Some((bn, _)) if bn >= n => best,
            _ => Some((n, c)),
        })?
        .1;
    Some((x, y))
}

/// Points for the trade-off chart: stages that measured both axes.
pub fn tradeoff_points(
    log: &RunLog,
    x: &Column,
    y: &Column,
) -> Vec<(String, charts::Point, charts::Point)> {
    log.stages
        .iter()
        .filter_map(|s| {
            let px = metric(s, &x.key).and_then(point)?;
            let py = metric(s, &y.key).and_then(point)?;
            Some((s.name.clone(), px, py))
        })
        .collect()
}

/// Series for the stage-lines chart: metrics whose every value is a rate in [0, 1]
/// (means on other scales, e.g. 1–10 ratings, stay in the tables only).
pub fn stage_series(log: &RunLog, cols: &[Column]) -> Vec<(String, Vec<Option<charts::Point>>)> {
    cols.iter()
        .filter_map(|c| {
            let vals: Vec<Option<charts::Point>> = log
                .stages
                .iter()
                .map(|s| metric(s, &c.key).and_then(point))
                .collect();
            let ok = vals.iter().flatten().all(|p| (0.0..=1.0).contains(&p.v));
            (ok && vals.iter().any(Option::is_some))
                .then(|| (format!("{} {}", c.key, arrow(c.direction)), vals))
        })
        .collect()
}

/// The heatmap grid of one stage's red-team record: (categories, attacks, cells).
pub type Grid = (Vec<String>, Vec<String>, Vec<Vec<Option<charts::Cell>>>);

pub fn redteam_grid(stage: &StageRecord) -> Option<Grid> {
    let rt = stage.redteam.as_ref()?;
    let mut cats: Vec<String> = rt.cells.iter().map(|c| c.category.clone()).collect();
    let mut atts: Vec<String> = rt.cells.iter().map(|c| c.attack.clone()).collect();
    cats.sort();
    cats.dedup();
    atts.sort();
    atts.dedup();
    let cells = cats
        .iter()
        .map(|cat| {
            atts.iter()
                .map(|att| {
                    rt.cells
                        .iter()
                        .find(|c| &c.category == cat && &c.attack == att)
                        .and_then(|c| {
                            c.asr.asr.map(|asr| charts::Cell {
                                asr,
                                successes: c.asr.successes,
                                scored: c.asr.scored,
                            })
                        })
                })
                .collect()
        })
        .collect();
    Some((cats, atts, cells))
}

/// Limitations that follow from the recorded numbers, plus the run's own list.
pub fn limitations(log: &RunLog) -> Vec<String> {
    let mut out = log.limitations.clone();
    let small: Vec<String> = log
        .stages
        .iter()
        .flat_map(|s| s.evals.iter().map(move |m| (s, m)))
        .filter(|(_, m)| m.n > 0 && m.n < 100)
        .map(|(s, m)| format!("{} on {} (n={})", m.key(), s.name, m.n))
        .collect();
    if !small.is_empty() {
        out.push(format!(
            "Small samples give wide 95% intervals; differences inside overlapping intervals \
             are not evidence of change: {}.",
            small.join(", ")
        ));
    }
    let unscored: Vec<String> = log
        .stages
        .iter()
        .flat_map(|s| s.evals.iter().map(move |m| (s, m)))
        .filter(|(_, m)| m.value.is_none())
        .map(|(s, m)| format!("{} on {}", m.key(), s.name))
        .collect();
    if !unscored.is_empty() {
        out.push(format!("No scored items for: {}.", unscored.join(", ")));
    }
    for s in &log.stages {
        for n in &s.notes {
            out.push(format!("{}: {n}", s.name));
        }
    }
    out
}

/// Paths `write_report` produced.
#[derive(Debug, Clone)]
pub struct ReportPaths {
    pub markdown: PathBuf,
    pub html: PathBuf,
}

/// Read `run_dir/run.json` and write `model_card.md` and `report.html` into `out_dir`.
pub fn write_report(run_dir: &Path, out_dir: &Path) -> Result<ReportPaths, ReportError> {
    let log = RunLog::load(run_dir)?;
    if log.stages.is_empty() {
        return Err(ReportError::Empty(log.path()));
    }
    let md = markdown::render(&log);
    let page = html::render(&log)?;
    let paths = ReportPaths {
        markdown: out_dir.join("model_card.md"),
        html: out_dir.join("report.html"),
    };
    keel_core::artifact::write_atomic(&paths.markdown, md.as_bytes())?;
    keel_core::artifact::write_atomic(&paths.html, page.as_bytes())?;
    Ok(paths)
}

#[cfg(test)]
pub(crate) mod fixture {
    use keel_core::run_log::*;

    /// A two-stage run with every section filled, for the renderers' tests.
    pub fn run_log(dir: &std::path::Path) -> RunLog {
        let mut log = RunLog::new(dir);
        log.model = "tiny-model".into();
        log.seed = Some(7);
        let m = |suite: &str, name: &str, axis: &str, v: f64, d: Direction| MetricRecord {
            suite: suite.into(),
            name: name.into(),
            axis: Some(axis.into()),
            value: Some(v),
            ci_low: Some((v - 0.1).max(0.0)),
            ci_high: Some((v + 0.1).min(1.0)),
            n: 50,
            direction: d,
        };
        for (i, name) in ["sft", "dpo"].iter().enumerate() {
            let mut s = StageRecord::new(name, name);
            s.hyperparameters = serde_json::json!({"lr": 1e-4 * (i + 1) as f64, "epochs": 2});
            s.data.push(DataRecord {
                path: format!("data/{name}.jsonl"),
                role: Some("train".into()),
                sha256: Some(format!("{i}abc")),
                rows: Some(100),
                dropped: [("duplicate".to_string(), 3u64)].into(),
            });
            s.training.insert("final_loss".into(), 2.0 - i as f64);
            let f = i as f64;
            s.evals.push(m(
                "world",
                "helpfulness",
                axes::HELPFUL,
                0.5 + 0.1 * f,
                Direction::Higher,
            ));
            s.evals.push(m(
                "world",
                "harmlessness",
                axes::HARMLESS,
                0.4 + 0.4 * f,
                Direction::Higher,
            ));
            s.evals.push(m(
                "world",
                "over_refusal",
                axes::OVER_REFUSAL,
                0.1 + 0.2 * f,
                Direction::Lower,
            ));
            s.policies.push(PolicyRecord {
                name: "default".into(),
                policy_hash: "feedbeef".into(),
            });
            s.redteam = Some(RedteamRecord {
                judge: "string-match".into(),
                overall: AsrRecord {
                    successes: 3,
                    scored: 8,
                    asr: Some(0.375),
                    ci_low: None,
                    ci_high: None,
                },
                cells: vec![
                    AsrCell {
                        category: "S1".into(),
                        attack: "direct".into(),
                        asr: AsrRecord {
                            successes: 1,
                            scored: 4,
                            asr: Some(0.25),
                            ci_low: None,
                            ci_high: None,
                        },
                    },
                    AsrCell {
                        category: "S2".into(),
                        attack: "base64".into(),
                        asr: AsrRecord {
                            successes: 2,
                            scored: 4,
                            asr: Some(0.5),
                            ci_low: None,
                            ci_high: None,
                        },
                    },
                ],
            });
            log.record_stage(s);
        }
        log.limitations.push("Synthetic data only.".into());
        log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_group_by_axis_and_tradeoff_picks_axes() {
        let log = fixture::run_log(Path::new("."));
        let keys: Vec<_> = columns(&log).into_iter().map(|c| c.key).collect();
        assert_eq!(
            keys,
            [
                "world/helpfulness",
                "world/harmlessness",
                "world/over_refusal"
            ]
        );
        let cols = columns(&log);
        let (x, y) = tradeoff_axes(&log, &cols).unwrap();
        assert_eq!(
            (x.key.as_str(), y.key.as_str()),
            ("world/harmlessness", "world/helpfulness")
        );
        let pts = tradeoff_points(&log, x, y);
        assert_eq!(pts.len(), 2);
        assert!((pts[1].1.v - 0.8).abs() < 1e-9);
        let (cats, atts, cells) = redteam_grid(&log.stages[0]).unwrap();
        assert_eq!((cats.len(), atts.len()), (2, 2));
        assert!(cells[0][0].is_none() && cells[0][1].is_some()); // S1 × base64 absent
        assert!(limitations(&log).iter().any(|l| l.contains("n=50")));
    }

    #[test]
    fn write_report_refuses_an_empty_run() {
        let dir = tempfile::tempdir().unwrap();
        RunLog::new(dir.path()).save().unwrap();
        let e = write_report(dir.path(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no stages"), "{e}");
        let e = write_report(&dir.path().join("missing"), dir.path()).unwrap_err();
        assert!(e.to_string().contains("run.json"), "{e}");
    }
}
