//! What a labelling run says: counts, position consistency, and agreement with gold labels
//! (accuracy with Wilson intervals, Cohen's kappa, confusion matrix, per-defect agreement).

use super::{judge_label, LabelRecord, PairInput, Side};
use crate::judge::PairOutcome;
use crate::label::Judgement;
use crate::stats::{cohen_kappa, wilson, Estimate, Z95};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Agreement of the judge with gold labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldAgreement {
    /// Pairs with a gold label.
    pub with_gold: usize,
    /// Of those, pairs the judge labelled (judge errors excluded).
    pub scored: usize,
    /// Judge errors on gold pairs: neither agreement nor disagreement.
    pub unscored: usize,
    /// Judge picked the gold-better response, over `scored` (a tie or inconsistency is not
    /// agreement).
    pub accuracy: Option<Estimate>,
    /// The same over decisive verdicts only (ties and inconsistencies left out).
    pub decisive_accuracy: Option<Estimate>,
    /// Cohen's kappa of judge label (a / b / tie) against gold (a / b).
    pub kappa: Option<f64>,
    /// Rows: gold label; columns: judge label; order given by `labels`.
    pub labels: Vec<String>,
    pub confusion: Vec<Vec<u64>>,
    /// (agreed, scored) per value of the input's `defect` (or `category`) field.
    pub by_group: BTreeMap<String, (u64, u64)>,
}

/// What a labelling run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelReport {
    pub judge: String,
    pub pairs: usize,
    pub a_wins: usize,
    pub b_wins: usize,
    pub ties: usize,
    pub inconsistent: usize,
    /// Pairs the judge failed on (HTTP, unreadable verdict, non-finite reward).
    pub judge_errors: usize,
    /// Preference rows written.
    pub written: usize,
    /// Both orderings gave the same verdict, over pairs judged in both orders (generator
    /// judges; `None` for scorers, which see no order).
    pub position_consistency: Option<Estimate>,
    pub gold: Option<GoldAgreement>,
    /// Up to 20 judge errors, "id: message", to show what went wrong.
    pub error_examples: Vec<String>,
}

/// Summarise a run (see [`LabelReport`]).
pub fn report(
    judge: &str,
    pairs: &[PairInput],
    recs: &[LabelRecord],
    written: usize,
) -> LabelReport {
    let count = |o: PairOutcome| {
        recs.iter()
            .filter(|r| r.judgement.as_ref().is_some_and(|j| j.outcome == o))
            .count()
    };
    let swapped: Vec<&Judgement> = recs
        .iter()
        .filter_map(|r| r.judgement.as_ref())
        .filter(|j| j.a_first.is_some() && j.b_first.is_some())
        .collect();
    let consistent = swapped
        .iter()
        .filter(|j| j.outcome != PairOutcome::Inconsistent)
        .count();
    let gold_pairs: Vec<(&PairInput, &LabelRecord)> = pairs
        .iter()
        .zip(recs)
        .filter(|(p, _)| p.gold.is_some())
        .collect();
    let gold = (!gold_pairs.is_empty()).then(|| {
        let mut labels = Vec::new();
        let (mut agreed, mut decisive, mut decisive_agreed) = (0u64, 0u64, 0u64);
        let mut by_group: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (p, r) in &gold_pairs {
            let g = if p.gold == Some(Side::A) { "a" } else { "b" };
            let Some(j) = &r.judgement else {
                labels.push((Some(g), None));
                continue;
            };
            let l = judge_label(j.outcome);
            labels.push((Some(g), Some(l)));
            let ok = l == g;
            agreed += ok as u64;
            if l != "tie" {
                decisive += 1;
                decisive_agreed += ok as u64;
            }
            let group = ["defect", "category"]
                .iter()
                .find_map(|k| p.meta.get(*k).and_then(Value::as_str))
                .unwrap_or("all");
            let e = by_group.entry(group.to_string()).or_default();
            e.0 += ok as u64;
            e.1 += 1;
        }
        let scored = labels.iter().filter(|(_, j)| j.is_some()).count();
        let k = cohen_kappa(&labels);
        GoldAgreement {
            with_gold: gold_pairs.len(),
            scored,
            unscored: gold_pairs.len() - scored,
            accuracy: wilson(agreed, scored as u64, Z95),
            decisive_accuracy: wilson(decisive_agreed, decisive, Z95),
            kappa: k.kappa,
            labels: k.labels,
            confusion: k.confusion,
            by_group,
        }
    });
    LabelReport {
        judge: judge.to_string(),
        pairs: pairs.len(),
        a_wins: count(PairOutcome::AWins),
        b_wins: count(PairOutcome::BWins),
        ties: count(PairOutcome::Tie),
        inconsistent: count(PairOutcome::Inconsistent),
        judge_errors: recs.iter().filter(|r| r.judgement.is_none()).count(),
        written,
        position_consistency: wilson(consistent as u64, swapped.len() as u64, Z95),
        gold,
        error_examples: recs
            .iter()
            .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.id)))
            .take(20)
            .collect(),
    }
}

fn pct(e: &Option<Estimate>) -> String {
    match e {
        Some(e) => format!(
            "{:.1}% [{:.1}, {:.1}]",
            100.0 * e.value,
            100.0 * e.lo,
            100.0 * e.hi
        ),
        None => "n/a".into(),
    }
}

impl std::fmt::Display for LabelReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "judge {}: {} pairs", self.judge, self.pairs)?;
        writeln!(
            f,
            "  A wins {}, B wins {}, ties {}, inconsistent {}, judge errors {}; {} preference rows written",
            self.a_wins, self.b_wins, self.ties, self.inconsistent, self.judge_errors, self.written
        )?;
        writeln!(
            f,
            "  position consistency {}",
            pct(&self.position_consistency)
        )?;
        if let Some(g) = &self.gold {
            writeln!(
                f,
                "  vs gold ({} with gold, {} scored, {} unscored): accuracy {}, decisive accuracy {}, kappa {}",
                g.with_gold,
                g.scored,
                g.unscored,
                pct(&g.accuracy),
                pct(&g.decisive_accuracy),
                g.kappa.map(|k| format!("{k:.3}")).unwrap_or("n/a".into())
            )?;
            for (group, (ok, n)) in &g.by_group {
                writeln!(f, "    {group:<20} {ok}/{n}")?;
            }
        }
        Ok(())
    }
}
