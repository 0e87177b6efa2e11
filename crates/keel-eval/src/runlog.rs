//! Bridge from the harness's own result files to the run log (`run.json`, see
//! [`keel_core::run_log`]): a suite's metrics become [`MetricRecord`]s tagged with an
//! evaluation axis, a red-team summary becomes a [`RedteamRecord`] heatmap.

use crate::evaluate::SuiteReport;
use crate::metrics::{Aggregate, Direction, MetricResult};
use crate::redteam::summary::{Asr, RedteamSummary};
use keel_core::run_log::{
    self, axes, AsrCell, AsrRecord, DataRecord, MetricRecord, PolicyRecord, RedteamRecord, RunLog,
    StageRecord,
};
use std::path::Path;

/// The evaluation axis a built-in suite's metric measures, for the report's summary table.
/// Unknown metrics get `None` (they still appear in the full tables).
pub fn axis_for(suite: &str, metric: &str) -> Option<&'static str> {
    match (suite, metric) {
        (_, "helpfulness") | ("mt_bench", _) => Some(axes::HELPFUL),
        (_, "harmlessness") => Some(axes::HARMLESS),
        ("harmbench" | "advbench" | "do_not_answer" | "strongreject", "refusal_rate") => {
            Some(axes::HARMLESS)
        }
        (_, "over_refusal") => Some(axes::OVER_REFUSAL),
        (_, "honesty" | "abstention" | "premise" | "false_premise" | "mc1" | "mc2") => {
            Some(axes::HONEST)
        }
        (_, "attack_success_rate") => Some(axes::ATTACK_SUCCESS),
        _ => None,
    }
}

fn direction(d: Direction) -> run_log::Direction {
    match d {
        Direction::Higher => run_log::Direction::Higher,
        Direction::Lower => run_log::Direction::Lower,
    }
}

/// One metric of a suite as a run-log record (overall value, 95% interval, n).
pub fn metric_record(suite: &str, m: &MetricResult) -> MetricRecord {
    let v = &m.overall;
    MetricRecord {
        suite: suite.to_string(),
        name: m.name.clone(),
        axis: axis_for(suite, &m.name).map(str::to_string),
        value: v.value,
        ci_low: v.ci_low,
        ci_high: v.ci_high,
        n: match m.aggregate {
            Aggregate::MeanValue => v.n_values as u64,
            _ => v.counts.scored(),
        },
        direction: direction(m.direction),
    }
}

/// Every metric of a suite report.
pub fn suite_records(r: &SuiteReport) -> Vec<MetricRecord> {
    r.metrics
        .iter()
        .map(|m| metric_record(&r.suite, m))
        .collect()
}

fn asr(a: &Asr) -> AsrRecord {
    AsrRecord {
        successes: a.successes,
        scored: a.scored,
        asr: a.asr,
        ci_low: a.ci_low,
        ci_high: a.ci_high,
    }
}

/// A red-team summary as a run-log record: overall ASR plus the attack × category cells.
pub fn redteam_record(s: &RedteamSummary) -> RedteamRecord {
    let cells = s
        .matrix
        .iter()
        .flat_map(|(attack, cats)| {
            cats.iter().map(move |(cat, a)| AsrCell {
                category: cat.clone(),
                attack: attack.clone(),
                asr: asr(a),
            })
        })
        .collect();
    RedteamRecord {
        judge: s.judge.clone(),
        overall: asr(&s.overall),
        cells,
    }
}

/// The red-team overall ASR as a metric (axis `attack_success`, lower is better), so it sits
/// in the stage × metric table and the regression gate next to the suites' metrics.
pub fn redteam_metric(s: &RedteamSummary) -> MetricRecord {
    MetricRecord {
        suite: "redteam".into(),
        name: "attack_success_rate".into(),
        axis: Some(axes::ATTACK_SUCCESS.into()),
        value: s.overall.asr,
        ci_low: s.overall.ci_low,
        ci_high: s.overall.ci_high,
        n: s.overall.scored,
        direction: run_log::Direction::Lower,
    }
}

/// What a command adds to a run-log stage besides its results.
#[derive(Debug, Clone, Default)]
pub struct StageInfo<'a> {
    /// Stage name (records with the same name are updated, not duplicated).
    pub stage: &'a str,
    /// Stage kind, used only when the stage is new (see `keel_core::run_log::kinds`).
    pub kind: &'a str,
    /// A data file the command read (digested; `rows` = items it held).
    pub data_file: Option<&'a Path>,
    pub rows: Option<u64>,
    pub role: &'a str,
    pub policy: Option<PolicyRecord>,
    pub command: Option<String>,
    pub checkpoint: Option<String>,
    /// The model's name, used for the run when the log does not name one yet.
    pub model: Option<String>,
}

/// Load (or start) `run_dir/run.json`, find or create the stage, let `fill` add results,
/// add the data file / policy / command, and save atomically.
pub fn update_stage(
    run_dir: &Path,
    info: &StageInfo,
    fill: impl FnOnce(&mut StageRecord),
) -> crate::Result<()> {
    let mut log = RunLog::load_or_new(run_dir)?;
    if log.model.is_empty() {
        if let Some(m) = &info.model {
            log.model = m.clone();
        }
    }
    let mut stage = log
        .stage(info.stage)
        .cloned()
        .unwrap_or_else(|| StageRecord::new(info.stage, info.kind));
    fill(&mut stage);
    if let Some(f) = info.data_file {
        let rec = DataRecord {
            path: f.display().to_string(),
            role: Some(info.role.to_string()),
            sha256: Some(keel_core::artifact::sha256_file(f)?),
            rows: info.rows,
            dropped: Default::default(),
        };
        // One file can serve several roles (eval set and red-team goals): key on both.
        match stage
            .data
            .iter_mut()
            .find(|d| d.path == rec.path && d.role == rec.role)
        {
            Some(d) => *d = rec,
            None => stage.data.push(rec),
        }
    }
    if let Some(p) = &info.policy {
        if !stage.policies.contains(p) {
            stage.policies.push(p.clone());
        }
    }
    if let Some(c) = &info.checkpoint {
        stage.checkpoint = Some(c.clone());
    }
    if let Some(c) = &info.command {
        // One stage may be filled by several commands (one per suite): keep each, one a line.
        let cur = stage.command.take().unwrap_or_default();
        stage.command = Some(if cur.lines().any(|l| l == c) {
            cur
        } else if cur.is_empty() {
            c.clone()
        } else {
            format!("{cur}\n{c}")
        });
    }
    log.record_stage(stage);
    log.save()?;
    Ok(())
}

/// Record a suite run's metrics into `run_dir/run.json` (see [`update_stage`]); a partial
/// run (items left) is noted on the stage so the report says so.
pub fn record_suite(run_dir: &Path, info: &StageInfo, report: &SuiteReport) -> crate::Result<()> {
    update_stage(run_dir, info, |s| {
        for m in suite_records(report) {
            s.upsert_eval(m);
        }
        s.notes
            .retain(|n| !n.starts_with(&format!("{}: ", report.suite)));
        if report.remaining > 0 {
            s.notes.push(format!(
                "{}: {} of {} items evaluated",
                report.suite,
                report.items - report.remaining,
                report.items
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redteam::summary::summarise;
    use crate::redteam::AttemptRecord;

    #[test]
    fn redteam_cells_and_axes() {
        let rec = |g: &str, a: &str, s: bool| AttemptRecord {
            goal_id: g.into(),
            attack: a.into(),
            category: Some("S1".into()),
            goal: g.into(),
            conversation: vec![],
            response: None,
            success: Some(s),
            label: None,
            reason: None,
            rounds: 1,
            retryable: false,
        };
        let s = summarise(
            &[
                rec("g1", "a", true),
                rec("g2", "a", false),
                rec("g1", "b", false),
            ],
            "t",
            "j",
            0,
        );
        let r = redteam_record(&s);
        assert_eq!(r.cells.len(), 2);
        let a = r.cells.iter().find(|c| c.attack == "a").unwrap();
        assert_eq!((a.asr.successes, a.asr.scored), (1, 2));
        assert_eq!(redteam_metric(&s).n, 3);
        assert_eq!(axis_for("do_not_answer", "refusal_rate"), Some("harmless"));
        assert_eq!(axis_for("truthfulqa_mc", "mc2"), Some("honest"));
        assert_eq!(axis_for("x", "y"), None);
    }
}
