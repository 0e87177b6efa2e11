//! Metrics as JSONL, one object per line, like TRL's and nanochat's logs: easy to `jq`, easy
//! to plot, and append-only so a crash loses at most the line being written.

use keel_core::CoreError;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    pub fn new(path: &Path) -> Self {
        MetricsLog {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&self, record: &serde_json::Value) -> keel_core::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| CoreError::io(&self.path, e))?;
        writeln!(f, "{record}").map_err(|e| CoreError::io(&self.path, e))
    }

    /// On resume: keep only records up to `step`, so the log reads as one continuous run.
    pub fn truncate_after(&self, step: u64) -> keel_core::Result<()> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Ok(());
        };
        let kept: String = text
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                    .is_some_and(|s| s <= step)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        keel_core::artifact::write_atomic(&self.path, kept.as_bytes())
    }

    pub fn read_all(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.path)
            .map(|t| {
                t.lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}
