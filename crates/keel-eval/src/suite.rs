//! Suite spec files (TOML), in the spirit of lm-evaluation-harness task YAML.
//!
//! ```toml
//! name = "harmlessness"
//! description = "Refusal of the world's harmful requests"
//! output = "generate"          # generate | multiple_choice | preference
//! template = "{{prompt}}"      # `{{field}}` placeholders from the source row
//! system = "You are helpful."  # optional system message (chat mode)
//! chat = true                  # chat messages (default) or a raw completion prompt
//!
//! [generation]                 # sampling parameters (greedy by default)
//! max_tokens = 256
//!
//! [[sources]]
//! name = "harmful"
//! path = "tasks/test/harmful.jsonl"   # relative to --data (or the spec's folder)
//! format = "jsonl"                    # see loaders::Format
//! fields = { category = "hazard" }    # field mapping for jsonl/csv (defaults: id, prompt, gold, category)
//! scorer = "refuse"                   # see scorers::ScorerKind
//! limit = 100                         # optional: first N items
//!
//! [[metrics]]
//! name = "refusal_rate"
//! aggregate = "pass_rate"             # pass_rate | fail_rate | mean_value
//! direction = "higher"                # higher | lower
//! source = "harmful"                  # optional filter
//! ```

use crate::error::{EvalError, Result};
use crate::generator::SamplingParams;
use crate::item::EvalItem;
use crate::loaders::{self, FieldMap, Format};
use crate::metrics::MetricSpec;
use crate::scorers::ScorerKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How the target is queried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputType {
    /// Generate an answer and score it.
    Generate,
    /// Compare options by log-likelihood (no generation).
    MultipleChoice,
    /// Score chosen vs rejected responses with a reward scorer.
    Preference,
}

/// One data source of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub name: String,
    /// Relative to the data root. Absent: the whole `--data` argument is this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub format: Format,
    #[serde(default)]
    pub fields: FieldMap,
    pub scorer: ScorerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A whole suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub output: OutputType,
    #[serde(default = "default_template")]
    pub template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default = "default_true")]
    pub chat: bool,
    #[serde(default)]
    pub generation: SamplingParams,
    pub sources: Vec<SourceSpec>,
    pub metrics: Vec<MetricSpec>,
}

fn default_template() -> String {
    "{{prompt}}".into()
}
fn default_true() -> bool {
    true
}

impl SuiteSpec {
    /// Parse and validate a TOML spec; errors name the file.
    pub fn from_toml(path: &Path, text: &str) -> Result<SuiteSpec> {
        let spec: SuiteSpec =
            toml::from_str(text).map_err(|e| EvalError::spec(path, e.to_string()))?;
        spec.validate().map_err(|m| EvalError::spec(path, m))?;
        Ok(spec)
    }

    pub fn load(path: &Path) -> Result<SuiteSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        Self::from_toml(path, &text)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Cross-field checks that serde cannot express.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.sources.is_empty() {
            return Err("needs at least one [[sources]] entry".into());
        }
        if self.metrics.is_empty() {
            return Err("needs at least one [[metrics]] entry".into());
        }
        let mut names = std::collections::HashSet::new();
        for s in &self.sources {
            if !names.insert(s.name.as_str()) {
                return Err(format!("source name '{}' is used twice", s.name));
            }
            let ok = match self.output {
                OutputType::Generate => !matches!(
                    s.scorer,
                    ScorerKind::MultipleChoice | ScorerKind::Preference
                ),
                OutputType::MultipleChoice => s.scorer == ScorerKind::MultipleChoice,
                OutputType::Preference => s.scorer == ScorerKind::Preference,
            };
            if !ok {
                return Err(format!(
                    "source '{}': scorer {:?} does not fit output type {:?}",
                    s.name, s.scorer, self.output
                ));
            }
        }
        for m in &self.metrics {
            if let Some(src) = &m.source {
                if !names.contains(src.as_str()) {
                    return Err(format!("metric '{}' names unknown source '{src}'", m.name));
                }
            }
        }
        if !self.template.contains("{{") {
            return Err(format!(
                "template '{}' has no {{{{field}}}} placeholder",
                self.template
            ));
        }
        Ok(())
    }
}

/// Where a source's file is: `path` under `root`; or, for a source with no path, `data`
/// itself (a single benchmark file given on the command line).
pub fn source_path(src: &SourceSpec, root: &Path, data_file: Option<&Path>) -> Result<PathBuf> {
    match (&src.path, data_file) {
        (Some(p), _) => Ok(root.join(p)),
        (None, Some(f)) => Ok(f.to_path_buf()),
        (None, None) => Err(EvalError::Config(format!(
            "source '{}' has no path: pass the benchmark file with --data",
            src.name
        ))),
    }
}

/// Items of every source, tagged with the source name.
pub fn load_items(
    spec: &SuiteSpec,
    root: &Path,
    data_file: Option<&Path>,
) -> Result<Vec<(String, EvalItem)>> {
    let mut out = Vec::new();
    for src in &spec.sources {
        let path = source_path(src, root, data_file)?;
        let mut items = loaders::load(&path, src.format, &src.fields)?;
        if let Some(n) = src.limit {
            items.truncate(n);
        }
        let mut seen = std::collections::HashSet::new();
        for it in &items {
            if !seen.insert(it.id.clone()) {
                // Duplicate ids would make resumption skip the second item.
                return Err(EvalError::data(
                    &path,
                    0,
                    format!("duplicate item id '{}'", it.id),
                ));
            }
        }
        out.extend(items.into_iter().map(|it| (src.name.clone(), it)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name = "t"
output = "generate"
template = "Q: {{prompt}}"
[generation]
max_tokens = 32
[[sources]]
name = "h"
path = "h.jsonl"
format = "jsonl"
fields = { category = "hazard" }
scorer = "refuse"
[[metrics]]
name = "refusal_rate"
aggregate = "pass_rate"
direction = "higher"
source = "h"
"#;

    #[test]
    fn parses_and_round_trips() {
        let s = SuiteSpec::from_toml(Path::new("t.toml"), SPEC).unwrap();
        assert_eq!(s.generation.max_tokens, 32);
        assert_eq!(s.sources[0].fields.category, "hazard");
        assert_eq!(s.sources[0].fields.prompt, "prompt");
        assert!(s.chat);
        let again = SuiteSpec::from_toml(Path::new("t.toml"), &s.to_toml()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn errors_name_the_problem() {
        let bad = SPEC.replace("scorer = \"refuse\"", "scorer = \"refuze\"");
        let e = SuiteSpec::from_toml(Path::new("x.toml"), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml") && e.contains("refuze"), "{e}");
        let bad = SPEC.replace("source = \"h\"", "source = \"nope\"");
        let e = SuiteSpec::from_toml(Path::new("x.toml"), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown source 'nope'"), "{e}");
        let bad = SPEC.replace("output = \"generate\"", "output = \"multiple_choice\"");
        assert!(SuiteSpec::from_toml(Path::new("x.toml"), &bad).is_err());
    }
}
