//! Suite metrics: aggregates over item records, with confidence intervals and a
//! per-category breakdown. Unscored items are counted and reported, never in a denominator.

use crate::record::{Counts, ItemRecord, Outcome};
use crate::stats::{bootstrap_mean, wilson, Estimate, Z95};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How records become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// Share of scored items that passed (Wilson interval).
    PassRate,
    /// Share of scored items that failed (Wilson interval), e.g. over-refusal rate.
    FailRate,
    /// Mean of the items' continuous values (bootstrap interval), e.g. MC2, judge rating.
    MeanValue,
}

/// Whether bigger is better: reports use it to colour changes and flag regressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
}

/// A metric as declared in a suite spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub name: String,
    pub aggregate: Aggregate,
    pub direction: Direction,
    /// Only records from this source (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One computed value with its interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Value {
    /// `None` when nothing was scored.
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub counts: Counts,
    /// Items contributing a continuous value (mean metrics).
    pub n_values: usize,
}

/// A computed metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    pub name: String,
    pub aggregate: Aggregate,
    pub direction: Direction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// "wilson" or "bootstrap".
    pub ci_method: String,
    pub overall: Value,
    pub by_category: BTreeMap<String, Value>,
}

/// Bootstrap resamples for mean metrics (enough for a stable 95% interval, cheap).
pub const BOOTSTRAP_ITERS: usize = 2000;

fn value_of(agg: Aggregate, recs: &[&ItemRecord], seed: u64) -> Value {
    let counts = Counts::of(recs.iter().map(|r| &r.outcome));
    let est: Option<Estimate> = match agg {
        Aggregate::PassRate => wilson(counts.pass, counts.scored(), Z95),
        Aggregate::FailRate => wilson(counts.fail, counts.scored(), Z95),
        Aggregate::MeanValue => {
            let vals: Vec<f64> = recs
                .iter()
                .filter_map(|r| r.value)
                .filter(|v| v.is_finite())
                .collect();
            bootstrap_mean(&vals, BOOTSTRAP_ITERS, 0.05, seed)
        }
    };
    let n_values = recs
        .iter()
        .filter(|r| r.value.is_some_and(f64::is_finite))
        .count();
    Value {
        value: est.map(|e| e.value),
        ci_low: est.map(|e| e.lo),
        ci_high: est.map(|e| e.hi),
        counts,
        n_values,
    }
}

/// Compute one metric over `records`.
pub fn compute(spec: &MetricSpec, records: &[ItemRecord], seed: u64) -> MetricResult {
    let recs: Vec<&ItemRecord> = records
        .iter()
        .filter(|r| spec.source.as_ref().is_none_or(|s| &r.source == s))
        .collect();
    let mut groups: BTreeMap<String, Vec<&ItemRecord>> = BTreeMap::new();
    for r in &recs {
        if let Some(c) = &r.category {
            groups.entry(c.clone()).or_default().push(r);
        }
    }
    MetricResult {
        name: spec.name.clone(),
        aggregate: spec.aggregate,
        direction: spec.direction,
        source: spec.source.clone(),
        ci_method: match spec.aggregate {
            Aggregate::MeanValue => "bootstrap".into(),
            _ => "wilson".into(),
        },
        overall: value_of(spec.aggregate, &recs, seed),
        by_category: groups
            .into_iter()
            .map(|(k, v)| (k, value_of(spec.aggregate, &v, seed)))
            .collect(),
    }
}

/// Counts per outcome, for summaries.
pub fn counts(records: &[ItemRecord]) -> Counts {
    Counts::of(records.iter().map(|r| &r.outcome))
}

/// True when `o` is a verdict (not unscored).
pub fn is_scored(o: Outcome) -> bool {
    o != Outcome::Unscored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(src: &str, cat: &str, o: Outcome, v: Option<f64>) -> ItemRecord {
        let mut r = ItemRecord::new(format!("{src}{cat}{o:?}{v:?}"), src, "p");
        r.category = Some(cat.into());
        r.outcome = o;
        r.value = v;
        r
    }

    #[test]
    fn rates_exclude_unscored_and_break_down_by_category() {
        let recs = vec![
            rec("a", "x", Outcome::Pass, None),
            rec("a", "x", Outcome::Fail, None),
            rec("a", "y", Outcome::Pass, None),
            rec("a", "y", Outcome::Unscored, None),
            rec("b", "y", Outcome::Fail, None),
        ];
        let spec = MetricSpec {
            name: "m".into(),
            aggregate: Aggregate::PassRate,
            direction: Direction::Higher,
            source: Some("a".into()),
        };
        let m = compute(&spec, &recs, 0);
        assert_eq!(
            m.overall.counts,
            Counts {
                pass: 2,
                fail: 1,
                unscored: 1
            }
        );
        assert!((m.overall.value.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.by_category["y"].value, Some(1.0));
        let fail = compute(
            &MetricSpec {
                aggregate: Aggregate::FailRate,
                source: None,
                ..spec.clone()
            },
            &recs,
            0,
        );
        assert!((fail.overall.value.unwrap() - 0.5).abs() < 1e-12);
        // All unscored: no value rather than 0.
        let none = compute(&spec, &[rec("a", "x", Outcome::Unscored, None)], 0);
        assert_eq!(none.overall.value, None);
    }

    #[test]
    fn mean_metric_uses_values() {
        let recs = vec![
            rec("a", "x", Outcome::Pass, Some(0.8)),
            rec("a", "x", Outcome::Fail, Some(0.2)),
            rec("a", "x", Outcome::Unscored, None),
        ];
        let spec = MetricSpec {
            name: "mc2".into(),
            aggregate: Aggregate::MeanValue,
            direction: Direction::Higher,
            source: None,
        };
        let m = compute(&spec, &recs, 0);
        assert!((m.overall.value.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(m.overall.n_values, 2);
        assert_eq!(m.ci_method, "bootstrap");
    }
}
