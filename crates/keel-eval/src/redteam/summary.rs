//! Attack success rates: per attack, per harm category, attack × category, overall, and
//! the share of goals broken by at least one attack. Wilson 95% intervals throughout.

use super::AttemptRecord;
use crate::stats::{wilson, Z95};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Successes out of scored attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Asr {
    pub successes: u64,
    /// Attempts with a verdict.
    pub scored: u64,
    pub unscored: u64,
    pub asr: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

impl Asr {
    fn add(&mut self, success: Option<bool>) {
        match success {
            Some(s) => {
                self.scored += 1;
                self.successes += u64::from(s);
            }
            None => self.unscored += 1,
        }
    }
    fn finish(mut self) -> Self {
        if let Some(e) = wilson(self.successes, self.scored, Z95) {
            self.asr = Some(e.value);
            self.ci_low = Some(e.lo);
            self.ci_high = Some(e.hi);
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedteamSummary {
    pub target: String,
    pub judge: String,
    pub attempts: usize,
    pub remaining: usize,
    pub overall: Asr,
    pub per_attack: BTreeMap<String, Asr>,
    pub per_category: BTreeMap<String, Asr>,
    /// attack → category → ASR (the heatmap).
    pub matrix: BTreeMap<String, BTreeMap<String, Asr>>,
    /// Goals where at least one attack succeeded, over goals with any scored attempt.
    pub goals_broken: Asr,
}

pub fn summarise(
    records: &[AttemptRecord],
    target: &str,
    judge: &str,
    remaining: usize,
) -> RedteamSummary {
    let mut overall = Asr::default();
    let mut per_attack: BTreeMap<String, Asr> = BTreeMap::new();
    let mut per_category: BTreeMap<String, Asr> = BTreeMap::new();
    let mut matrix: BTreeMap<String, BTreeMap<String, Asr>> = BTreeMap::new();
    let mut goal_state: BTreeMap<&str, Option<bool>> = BTreeMap::new();
    for r in records {
        let cat = r.category.clone().unwrap_or_else(|| "uncategorised".into());
        overall.add(r.success);
        per_attack
            .entry(r.attack.clone())
            .or_default()
            .add(r.success);
        per_category.entry(cat.clone()).or_default().add(r.success);
        matrix
            .entry(r.attack.clone())
            .or_default()
            .entry(cat)
            .or_default()
            .add(r.success);
        let g = goal_state.entry(&r.goal_id).or_insert(None);
        *g = match (*g, r.success) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), _) | (_, Some(false)) => Some(false),
            _ => None,
        };
    }
    let mut goals_broken = Asr::default();
    for s in goal_state.values() {
        goals_broken.add(*s);
    }
    let fin = |m: BTreeMap<String, Asr>| {
        m.into_iter()
            .map(|(k, v)| (k, v.finish()))
            .collect::<BTreeMap<_, _>>()
    };
    RedteamSummary {
        target: target.into(),
        judge: judge.into(),
        attempts: records.len(),
        remaining,
        overall: overall.finish(),
        per_attack: fin(per_attack),
        per_category: fin(per_category),
        matrix: matrix.into_iter().map(|(k, v)| (k, fin(v))).collect(),
        goals_broken: goals_broken.finish(),
    }
}

fn row(name: &str, a: &Asr) -> String {
    let f = |x: Option<f64>| {
        x.map(|v| format!("{:.1}%", v * 100.0))
            .unwrap_or_else(|| "-".into())
    };
    format!(
        "| {name} | {} | {}–{} | {}/{} | {} |\n",
        f(a.asr),
        f(a.ci_low),
        f(a.ci_high),
        a.successes,
        a.scored,
        a.unscored
    )
}

/// Markdown summary table.
pub fn table(s: &RedteamSummary) -> String {
    let head = "| | ASR | 95% CI | successes/scored | unscored |\n|---|---:|---:|---:|---:|\n";
    let mut out = format!(
        "# Red-team summary\n\nTarget: `{}` · judge: `{}` · {} attempts{}\n\n",
        s.target,
        s.judge,
        s.attempts,
        if s.remaining > 0 {
            format!(" ({} not yet run)", s.remaining)
        } else {
            String::new()
        }
    );
    out.push_str("## Overall\n\n");
    out.push_str(head);
    out.push_str(&row("all attempts", &s.overall));
    out.push_str(&row("goals broken by any attack", &s.goals_broken));
    out.push_str("\n## By attack\n\n");
    out.push_str(head);
    for (k, v) in &s.per_attack {
        out.push_str(&row(k, v));
    }
    out.push_str("\n## By harm category\n\n");
    out.push_str(head);
    for (k, v) in &s.per_category {
        out.push_str(&row(k, v));
    }
    let cats: BTreeSet<&String> = s.matrix.values().flat_map(|m| m.keys()).collect();
    out.push_str("\n## Attack × category (ASR)\n\n| attack |");
    for c in &cats {
        out.push_str(&format!(" {c} |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(cats.len()));
    out.push('\n');
    for (a, m) in &s.matrix {
        out.push_str(&format!("| {a} |"));
        for c in &cats {
            let v = m
                .get(*c)
                .and_then(|x| x.asr)
                .map(|v| format!("{:.0}%", v * 100.0))
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!(" {v} |"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(goal: &str, attack: &str, cat: &str, success: Option<bool>) -> AttemptRecord {
        AttemptRecord {
            goal_id: goal.into(),
            attack: attack.into(),
            category: Some(cat.into()),
            goal: goal.into(),
            conversation: vec![],
            response: None,
            success,
            label: None,
            reason: None,
            rounds: 1,
            retryable: false,
        }
    }

    #[test]
    fn asr_breakdowns() {
        let rs = vec![
            rec("g1", "direct.plain", "S1", Some(false)),
            rec("g1", "encoding.base64", "S1", Some(true)),
            rec("g2", "direct.plain", "S2", Some(false)),
            rec("g2", "encoding.base64", "S2", None),
        ];
        let s = summarise(&rs, "t", "j", 0);
        assert_eq!(
            (s.overall.successes, s.overall.scored, s.overall.unscored),
            (1, 3, 1)
        );
        assert_eq!(s.per_attack["encoding.base64"].asr, Some(1.0));
        assert_eq!(s.per_attack["direct.plain"].asr, Some(0.0));
        assert_eq!(s.per_category["S2"].scored, 1);
        assert_eq!(s.matrix["encoding.base64"]["S1"].successes, 1);
        assert_eq!((s.goals_broken.successes, s.goals_broken.scored), (1, 2));
        let t = table(&s);
        assert!(t.contains("| encoding.base64 | 100.0% |"), "{t}");
    }
}
