//! The run log: `run.json` at the top of a run folder, one record per pipeline stage.
//!
//! Every Keel command that trains, guards or evaluates a model can add its stage here, and
//! `keel report` / `keel compare` read nothing else: the model card, its charts and the
//! regression gate are all drawn from this file, so a number in a report can always be
//! traced back to the stage that measured it.
//!
//! Stability: fields are only ever added, each new one with `#[serde(default)]`, so a
//! `run.json` written by an older Keel keeps loading. Unknown fields are ignored for the
//! same reason in the other direction. [`RUN_LOG_SCHEMA`] is bumped only on a breaking
//! change, and [`RunLog::load`] refuses a newer schema instead of misreading it.
//!
//! ```no_run
//! use keel_core::run_log::{RunLog, StageRecord, MetricRecord, Direction};
//! # fn main() -> keel_core::Result<()> {
//! let mut log = RunLog::load_or_new(std::path::Path::new("runs/demo"))?;
//! log.model = "keel-demo-1m".into();
//! let mut stage = StageRecord::new("sft", "sft");
//! stage.evals.push(MetricRecord::new("world", "helpfulness", 0.62, Direction::Higher));
//! log.record_stage(stage); // replaces an earlier "sft" record in place
//! log.save()?;
//! # Ok(()) }
//! ```

use crate::artifact::{read_json, write_json_atomic};
use crate::error::{CoreError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the run log inside a run folder.
pub const RUN_LOG_FILE: &str = "run.json";
/// Schema version written by this Keel.
pub const RUN_LOG_SCHEMA: u32 = 1;

/// Stage kinds Keel's own commands write; other strings are allowed (and shown verbatim).
pub mod kinds {
    pub const BASE: &str = "base";
    pub const PRETRAIN: &str = "pretrain";
    pub const SFT: &str = "sft";
    pub const REWARD: &str = "reward";
    pub const DPO: &str = "dpo";
    pub const RL: &str = "rl";
    pub const GUARD: &str = "guard";
    pub const EVAL: &str = "eval";
}

/// Evaluation axes: how a report groups metrics into its stage × metric table.
pub mod axes {
    pub const HELPFUL: &str = "helpful";
    pub const HARMLESS: &str = "harmless";
    pub const HONEST: &str = "honest";
    pub const OVER_REFUSAL: &str = "over_refusal";
    pub const ATTACK_SUCCESS: &str = "attack_success";
    /// Table order.
    pub const ALL: [&str; 5] = [HELPFUL, HARMLESS, HONEST, OVER_REFUSAL, ATTACK_SUCCESS];
}

/// Whether a larger value of a metric is better (reports colour changes and flag
/// regressions with it). Serialised as `"higher"` / `"lower"`, like keel-eval's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
}

/// The whole run: which model, which seed, and its stages in the order they ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLog {
    pub schema_version: u32,
    /// The model's name as the report should show it (e.g. `SmolLM2-135M-Instruct`).
    #[serde(default)]
    pub model: String,
    /// What the run started from (a checkpoint path or hub id), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Keel version that last wrote the file.
    #[serde(default)]
    pub keel_version: String,
    #[serde(default)]
    pub stages: Vec<StageRecord>,
    /// Known limitations, shown verbatim in the model card.
    #[serde(default)]
    pub limitations: Vec<String>,
    /// The folder this log lives in (not serialised).
    #[serde(skip)]
    dir: PathBuf,
}

/// One stage of the pipeline (a training step, a guard in front of the model, an eval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// Unique within the run; [`RunLog::record_stage`] replaces a record with the same name.
    pub name: String,
    /// See [`kinds`]: `pretrain`, `sft`, `reward`, `dpo`, `rl`, `guard`, `base`, `eval`…
    pub kind: String,
    /// The command line that ran the stage, for reproduction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The stage's settings as given (learning rate, epochs, β, …).
    #[serde(default)]
    pub hyperparameters: serde_json::Value,
    #[serde(default)]
    pub data: Vec<DataRecord>,
    /// The checkpoint the stage produced (or evaluated), relative to the run folder if inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Training figures: `final_loss`, `tokens_per_s`, `steps`, `wall_s`, …
    #[serde(default)]
    pub training: BTreeMap<String, f64>,
    /// Evaluation results measured on this stage's model.
    #[serde(default)]
    pub evals: Vec<MetricRecord>,
    /// Guard policies / profiles in force while the evals ran.
    #[serde(default)]
    pub policies: Vec<PolicyRecord>,
    /// Red-team results against this stage's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redteam: Option<RedteamRecord>,
    /// Free-form remarks (e.g. "evaluated on a 50-item subset").
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A dataset a stage read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    pub path: String,
    /// `train`, `eval`, `redteam`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Rows used (after curation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Rows dropped by curation, by reason (`duplicate`, `too_long`, `pii`, …).
    #[serde(default)]
    pub dropped: BTreeMap<String, u64>,
}

/// One evaluation number with its interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// The suite that produced it (`world`, `do_not_answer`, `truthfulqa`, …).
    pub suite: String,
    /// The metric within the suite (`helpfulness`, `refusal_rate`, `mc1`, …).
    pub name: String,
    /// See [`axes`]; `None` leaves the metric out of the axis summary but in the tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axis: Option<String>,
    /// `None` when nothing was scored.
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_high: Option<f64>,
    /// Items that contributed to the value.
    #[serde(default)]
    pub n: u64,
    pub direction: Direction,
}

impl MetricRecord {
    /// A point value with no interval yet (fill `ci_low`/`ci_high`/`n`/`axis` as known).
    pub fn new(suite: &str, name: &str, value: f64, direction: Direction) -> Self {
        MetricRecord {
            suite: suite.into(),
            name: name.into(),
            axis: None,
            value: Some(value),
            ci_low: None,
            ci_high: None,
            n: 0,
            direction,
        }
    }
    /// `suite/name`: the key metrics are matched on across stages and runs.
    pub fn key(&self) -> String {
        format!("{}/{}", self.suite, self.name)
    }
}

/// A guard policy in force: its profile names and the effective policy's sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// e.g. `default` or `education-minors+region-eu`.
    pub name: String,
    pub policy_hash: String,
}

/// Red-team results: attack success rate per harm category × attack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedteamRecord {
    #[serde(default)]
    pub judge: String,
    pub overall: AsrRecord,
    pub cells: Vec<AsrCell>,
}

/// Successes over scored attempts, with a 95% interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AsrRecord {
    pub successes: u64,
    pub scored: u64,
    pub asr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_high: Option<f64>,
}

/// One heatmap cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsrCell {
    pub category: String,
    pub attack: String,
    #[serde(flatten)]
    pub asr: AsrRecord,
}

impl StageRecord {
    pub fn new(name: &str, kind: &str) -> Self {
        StageRecord {
            name: name.into(),
            kind: kind.into(),
            command: None,
            hyperparameters: serde_json::Value::Object(Default::default()),
            data: Vec::new(),
            checkpoint: None,
            training: BTreeMap::new(),
            evals: Vec::new(),
            policies: Vec::new(),
            redteam: None,
            notes: Vec::new(),
        }
    }

    /// Add or replace (by `suite/name`) an evaluation result.
    pub fn upsert_eval(&mut self, m: MetricRecord) {
        match self.evals.iter_mut().find(|e| e.key() == m.key()) {
            Some(e) => *e = m,
            None => self.evals.push(m),
        }
    }
}

impl RunLog {
    /// An empty log for `dir` (nothing is written until [`RunLog::save`]).
    pub fn new(dir: &Path) -> Self {
        RunLog {
            schema_version: RUN_LOG_SCHEMA,
            model: String::new(),
            base_model: None,
            seed: None,
            keel_version: env!("CARGO_PKG_VERSION").into(),
            stages: Vec::new(),
            limitations: Vec::new(),
            dir: dir.to_path_buf(),
        }
    }

    /// Read `dir/run.json`; an error if it is missing, malformed or from a newer schema.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(RUN_LOG_FILE);
        let mut log: RunLog = read_json(&path)?;
        if log.schema_version > RUN_LOG_SCHEMA {
            return Err(CoreError::invalid(
                &path,
                format!(
                    "schema_version {} is newer than this Keel understands ({RUN_LOG_SCHEMA})",
                    log.schema_version
                ),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = log.stages.iter().find(|s| !seen.insert(s.name.as_str())) {
            return Err(CoreError::invalid(
                &path,
                format!("stage name '{}' appears twice", dup.name),
            ));
        }
        log.dir = dir.to_path_buf();
        Ok(log)
    }

    /// [`RunLog::load`] if `dir/run.json` exists, else [`RunLog::new`].
    pub fn load_or_new(dir: &Path) -> Result<Self> {
        if dir.join(RUN_LOG_FILE).exists() {
            Self::load(dir)
        } else {
            Ok(Self::new(dir))
        }
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the `run.json` this log saves to.
    pub fn path(&self) -> PathBuf {
        self.dir.join(RUN_LOG_FILE)
    }

    /// Add a stage at the end, or replace the stage with the same name in place (so rerunning
    /// a stage keeps the pipeline order).
    pub fn record_stage(&mut self, stage: StageRecord) {
        match self.stages.iter_mut().find(|s| s.name == stage.name) {
            Some(s) => *s = stage,
            None => self.stages.push(stage),
        }
    }

    pub fn stage(&self, name: &str) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.name == name)
    }

    pub fn stage_mut(&mut self, name: &str) -> Option<&mut StageRecord> {
        self.stages.iter_mut().find(|s| s.name == name)
    }

    /// Write `dir/run.json` atomically.
    pub fn save(&mut self) -> Result<()> {
        self.keel_version = env!("CARGO_PKG_VERSION").into();
        write_json_atomic(&self.path(), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_replaces_by_name_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RunLog::load_or_new(dir.path()).unwrap();
        log.model = "m".into();
        log.record_stage(StageRecord::new("pretrain", kinds::PRETRAIN));
        let mut sft = StageRecord::new("sft", kinds::SFT);
        sft.training.insert("final_loss".into(), 1.5);
        log.record_stage(sft.clone());
        sft.training.insert("final_loss".into(), 1.25);
        sft.upsert_eval(MetricRecord::new("w", "help", 0.5, Direction::Higher));
        sft.upsert_eval(MetricRecord::new("w", "help", 0.6, Direction::Higher));
        log.record_stage(sft);
        log.save().unwrap();
        let back = RunLog::load(dir.path()).unwrap();
        assert_eq!(back, log);
        let names: Vec<_> = back.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["pretrain", "sft"]);
        let sft = back.stage("sft").unwrap();
        assert_eq!(sft.training["final_loss"], 1.25);
        assert_eq!(sft.evals.len(), 1);
        assert_eq!(sft.evals[0].value, Some(0.6));
    }

    #[test]
    fn old_minimal_files_load_and_bad_ones_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(RUN_LOG_FILE);
        // A minimal file (only required fields) plus an unknown field from a future minor.
        std::fs::write(
            &p,
            r#"{"schema_version":1,"stages":[{"name":"a","kind":"x","future":1}]}"#,
        )
        .unwrap();
        let log = RunLog::load(dir.path()).unwrap();
        assert_eq!(log.stages[0].kind, "x");
        std::fs::write(&p, r#"{"schema_version":99}"#).unwrap();
        let e = RunLog::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("run.json") && e.contains("newer"), "{e}");
        std::fs::write(
            &p,
            r#"{"schema_version":1,"stages":[{"name":"a","kind":"x"},{"name":"a","kind":"y"}]}"#,
        )
        .unwrap();
        let e = RunLog::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
        std::fs::write(&p, "{").unwrap();
        assert!(RunLog::load(dir.path()).is_err());
    }
}
