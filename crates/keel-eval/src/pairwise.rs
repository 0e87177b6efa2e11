//! Pairwise judging of two finished runs of the same suite: each item's two answers go to a
//! judge twice (positions swapped, see [`crate::judge`]), and the outcomes give a win rate
//! and a length-controlled win rate ([`crate::winrate`]).
//!
//! Working from two `results.jsonl` files (rather than generating here) means any two
//! targets — a checkpoint and its parent, a model with and without a guard — can be
//! compared after the fact, and a crashed judging run resumes from `pairwise.jsonl`.

use crate::error::{EvalError, Result};
use crate::generator::Generator;
use crate::judge::{PairOutcome, PairwiseJudge};
use crate::record::{ItemRecord, Resumable};
use crate::runner::{read_journal, run_resumable, RunConfig, RunSummary};
use crate::winrate::{win_rate, JudgedPair, WinRate};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One judged item, journaled in `pairwise.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    /// `source/id` of the item in both results files.
    pub key: String,
    pub outcome: Option<PairOutcome>,
    pub len_a: usize,
    pub len_b: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Resumable for PairRecord {
    fn key(&self) -> String {
        self.key.clone()
    }
    fn is_final(&self) -> bool {
        // A judge failure (network) is worth retrying on the next run.
        self.outcome.is_some()
    }
}

/// `winrate.json`: the summary plus what was compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairwiseReport {
    pub a: String,
    pub b: String,
    pub judge: String,
    /// Items with an answer in both files.
    pub paired: usize,
    /// Items whose judging failed (not in the win rate).
    pub unscored: usize,
    pub remaining: usize,
    pub win_rate: WinRate,
}

/// Judge A's answers against B's for every item both answered; write `out/pairwise.jsonl`
/// (journal) and `out/winrate.json`. A wins when the judge prefers A in both orders.
pub fn judge_results(
    a_results: &Path,
    b_results: &Path,
    judge: &dyn Generator,
    out: &Path,
    run: RunConfig,
    seed: u64,
) -> Result<(PairwiseReport, RunSummary)> {
    let a: std::collections::HashMap<String, ItemRecord> = read_journal(a_results)?;
    let b: std::collections::HashMap<String, ItemRecord> = read_journal(b_results)?;
    let mut items: Vec<(String, String, String, String)> = a
        .iter()
        .filter_map(|(k, ra)| {
            let rb = b.get(k)?;
            Some((
                k.clone(),
                ra.prompt.clone(),
                ra.response.clone()?,
                rb.response.clone()?,
            ))
        })
        .collect();
    if items.is_empty() {
        return Err(EvalError::Config(format!(
            "{} and {} share no answered items (same suite and data?)",
            a_results.display(),
            b_results.display()
        )));
    }
    items.sort_by(|x, y| x.0.cmp(&y.0));
    let pj = PairwiseJudge::new(judge);
    let (records, summary) = run_resumable(
        &items,
        &out.join("pairwise.jsonl"),
        run,
        |it| it.0.clone(),
        |(key, q, ra, rb)| {
            let jp = JudgedPair::new(PairOutcome::Tie, ra, rb);
            let (outcome, reason) = match pj.compare(q, ra, rb) {
                Ok(o) => (Some(o), None),
                Err(e) => (None, Some(format!("judge: {e}"))),
            };
            PairRecord {
                key: key.clone(),
                outcome,
                len_a: jp.len_a,
                len_b: jp.len_b,
                reason,
            }
        },
    )?;
    let pairs: Vec<JudgedPair> = records
        .iter()
        .filter_map(|r| {
            r.outcome.map(|outcome| JudgedPair {
                outcome,
                len_a: r.len_a,
                len_b: r.len_b,
            })
        })
        .collect();
    let report = PairwiseReport {
        a: a_results.display().to_string(),
        b: b_results.display().to_string(),
        judge: judge.name(),
        paired: items.len(),
        unscored: records.len() - pairs.len(),
        remaining: summary.remaining,
        win_rate: win_rate(&pairs, crate::metrics::BOOTSTRAP_ITERS, seed),
    };
    keel_core::artifact::write_json_atomic(&out.join("winrate.json"), &report)?;
    Ok((report, summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::text_fn;
    use crate::record::Outcome;

    fn write(path: &Path, answers: &[(&str, &str)]) {
        let lines: Vec<String> = answers
            .iter()
            .map(|(id, ans)| {
                let mut r = ItemRecord::new(*id, "s", format!("q{id}"));
                r.response = Some(ans.to_string());
                r.outcome = Outcome::Pass;
                serde_json::to_string(&r).unwrap()
            })
            .collect();
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn swapped_judging_gives_win_rate_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
        write(
            &pa,
            &[("1", "good answer"), ("2", "good answer"), ("3", "good")],
        );
        write(&pb, &[("1", "bad"), ("2", "bad"), ("4", "bad")]);
        // A fair judge: prefers whichever shown answer contains "good".
        let judge = text_fn("fair", |prompt: &str| {
            let a_start = prompt.find("[The Start of Assistant A's Answer]").unwrap();
            let b_start = prompt.find("[The Start of Assistant B's Answer]").unwrap();
            let a_good = prompt[a_start..b_start].contains("good");
            if a_good { "[[A]]" } else { "[[B]]" }.to_string()
        });
        let out = dir.path().join("pw");
        let cfg = RunConfig {
            concurrency: 2,
            stop_after: Some(1),
        };
        let (r1, s1) = judge_results(&pa, &pb, &judge, &out, cfg, 0).unwrap();
        assert_eq!((r1.paired, s1.processed, s1.remaining), (2, 1, 1));
        let cfg = RunConfig {
            concurrency: 2,
            stop_after: None,
        };
        let (r, s) = judge_results(&pa, &pb, &judge, &out, cfg, 0).unwrap();
        assert_eq!((s.skipped, s.processed), (1, 1));
        assert_eq!((r.win_rate.wins, r.win_rate.n), (2, 2));
        assert!(out.join("winrate.json").exists());
        let none = dir.path().join("c.jsonl");
        write(&none, &[("9", "x")]);
        assert!(judge_results(&pa, &none, &judge, &out, cfg, 0).is_err());
    }
}
