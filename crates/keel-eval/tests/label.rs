//! RLAIF labelling on the synthetic world's preference pairs (which have gold): scripted
//! judges prove the position swap, the TRL output, the agreement report and the handling of
//! judge errors; a real HTTP judge runs the same path end to end.

use keel_data::world::{generate, write::bank_path, Split, WorldConfig};
use keel_eval::judge::PairOutcome;
use keel_eval::label::{
    label_pairs, label_world, read_pairs, write_label_run, GeneratorJudge, LabelConfig,
    ScorerJudge, Side,
};
use keel_eval::reward::FnScorer;
use keel_eval::{FnGenerator, GenError, GenRequest, GenResponse};
use std::collections::HashSet;
use std::path::Path;

fn world(dir: &Path) -> std::path::PathBuf {
    generate(&WorldConfig::tiny(), 5)
        .unwrap()
        .write(dir)
        .unwrap();
    bank_path(dir, Split::Test, "preferences")
}

/// The two answers shown to a pairwise judge, in the order shown.
fn shown(prompt: &str) -> (String, String) {
    let between = |s: &str, a: &str, b: &str| -> String {
        let i = s.find(a).unwrap() + a.len();
        let j = s[i..].find(b).unwrap() + i;
        s[i..j].trim().to_string()
    };
    (
        between(
            prompt,
            "[The Start of Assistant A's Answer]",
            "[The End of Assistant A's Answer]",
        ),
        between(
            prompt,
            "[The Start of Assistant B's Answer]",
            "[The End of Assistant B's Answer]",
        ),
    )
}

#[test]
fn oracle_biased_and_failing_judges_on_world_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let prefs = world(dir.path());
    let pairs = read_pairs(&prefs, 1).unwrap();
    assert!(pairs.len() >= 12, "{}", pairs.len());
    // The coin flip puts gold on both sides, so kappa is defined.
    assert!(pairs.iter().any(|p| p.gold == Some(Side::A)));
    assert!(pairs.iter().any(|p| p.gold == Some(Side::B)));
    assert!(pairs.iter().all(|p| p.meta.contains_key("defect")));
    let chosen: HashSet<String> = std::fs::read_to_string(&prefs)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["chosen"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();

    // An oracle that knows which texts were chosen: perfect agreement in both orders.
    let oracle = GeneratorJudge::new(FnGenerator::new("oracle", |req: &GenRequest| {
        let (first, _) = shown(req.prompt.last_user_text());
        Ok(GenResponse::text(if chosen.contains(&first) {
            "A is right. [[A]]"
        } else {
            "[[B]]"
        }))
    }));
    let cfg = LabelConfig {
        concurrency: 2,
        ..LabelConfig::default()
    };
    let run = label_pairs(&oracle, &pairs, &cfg);
    let r = &run.report;
    let g = r.gold.as_ref().unwrap();
    assert_eq!(
        (g.with_gold, g.scored, g.unscored),
        (pairs.len(), pairs.len(), 0)
    );
    assert_eq!(g.accuracy.unwrap().value, 1.0);
    assert!((g.kappa.unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(r.position_consistency.unwrap().value, 1.0);
    assert_eq!(run.rows.len(), pairs.len());
    for row in &run.rows {
        assert!(chosen.contains(row["chosen"].as_str().unwrap()));
        assert_eq!(row["gold_agrees"], true);
        assert!(row["judgement"]["a_first"].is_string() && row["defect"].is_string());
    }
    write_label_run(&dir.path().join("out"), &run).unwrap();
    let written = std::fs::read_to_string(dir.path().join("out/preferences.jsonl")).unwrap();
    assert_eq!(written.lines().count(), pairs.len());
    assert!(dir.path().join("out/report.json").is_file());

    // Always "[[A]]": position bias. Every pair is inconsistent: nothing written, no agreement.
    let biased = GeneratorJudge::new(FnGenerator::new("first", |_r: &GenRequest| {
        Ok(GenResponse::text("[[A]]"))
    }));
    let run = label_pairs(&biased, &pairs, &LabelConfig::default());
    assert_eq!(run.report.inconsistent, pairs.len());
    assert_eq!(run.rows.len(), 0);
    assert_eq!(run.report.position_consistency.unwrap().value, 0.0);
    assert_eq!(
        run.report.gold.as_ref().unwrap().accuracy.unwrap().value,
        0.0
    );
    assert!(run
        .report
        .gold
        .as_ref()
        .unwrap()
        .decisive_accuracy
        .is_none());
    let kept = label_pairs(
        &biased,
        &pairs,
        &LabelConfig {
            keep_inconsistent: true,
            ..LabelConfig::default()
        },
    );
    assert_eq!(kept.rows.len(), pairs.len());
    assert!(kept.rows.iter().all(|r| r["inconsistent"] == true));

    // A judge that fails on every third pair and mumbles on others: those are unscored, and
    // the rest are still measured.
    let flaky = GeneratorJudge::new(FnGenerator::new("flaky", |req: &GenRequest| {
        let (first, second) = shown(req.prompt.last_user_text());
        match (first.len() + second.len()) % 3 {
            0 => Err(GenError::Other("server down".into())),
            1 => Ok(GenResponse::text("they are both fine")),
            _ => Ok(GenResponse::text(if chosen.contains(&first) {
                "[[A]]"
            } else {
                "[[B]]"
            })),
        }
    }));
    let run = label_pairs(&flaky, &pairs, &LabelConfig::default());
    let g = run.report.gold.as_ref().unwrap();
    assert!(run.report.judge_errors > 0 && g.scored > 0);
    assert_eq!(g.unscored, run.report.judge_errors);
    assert_eq!(g.scored + g.unscored, pairs.len());
    assert_eq!(
        g.accuracy.unwrap().value,
        1.0,
        "errors never count as disagreement"
    );
    assert_eq!(run.rows.len(), g.scored);
    assert!(run
        .report
        .error_examples
        .iter()
        .any(|e| e.contains("server down")));
    assert!(run
        .report
        .error_examples
        .iter()
        .any(|e| e.contains("unparseable")));
}

#[test]
fn reward_model_judge_and_world_helper() {
    let dir = tempfile::tempdir().unwrap();
    world(dir.path());
    // A "reward" that prefers shorter answers: right on verbose pairs, wrong on refusal ones.
    let short = ScorerJudge(FnScorer("short".into(), |_p: &str, r: &str| {
        Ok(-(r.len() as f64))
    }));
    let run = label_world(dir.path(), Split::Test, &short, &LabelConfig::default(), 3).unwrap();
    let g = run.report.gold.as_ref().unwrap();
    assert!(
        run.report.position_consistency.is_none(),
        "a scorer has no order"
    );
    let (ok, n) = g.by_group["verbose"];
    assert_eq!(ok, n);
    let acc = g.accuracy.unwrap().value;
    assert!(acc > 0.0 && acc < 1.0, "{acc}");
    assert!(run.rows.iter().all(|r| r["judgement"]["scores"].is_array()));
    // Equal scores are ties: dropped, or kept with the flag.
    let flat = ScorerJudge(FnScorer("flat".into(), |_p: &str, _r: &str| Ok(0.0)));
    let run = label_world(dir.path(), Split::Test, &flat, &LabelConfig::default(), 3).unwrap();
    assert_eq!((run.report.ties, run.rows.len()), (run.report.pairs, 0));
    let keep = LabelConfig {
        keep_ties: true,
        ..LabelConfig::default()
    };
    let run = label_world(dir.path(), Split::Test, &flat, &keep, 3).unwrap();
    assert!(run.rows.iter().all(|r| r["tie"] == true));
    assert_eq!(
        run.records[0].judgement.as_ref().unwrap().outcome,
        PairOutcome::Tie
    );
}

#[test]
fn bad_pair_files_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pairs.jsonl");
    let cases = [
        ("{\"prompt\": \"q\", \"chosen\": \"a\"}", "only one of"),
        (
            "{\"prompt\": \"q\", \"response_a\": \"a\", \"response_b\": \"b\", \"gold\": \"c\"}",
            "gold",
        ),
        ("{\"chosen\": \"a\", \"rejected\": \"b\"}", "prompt"),
        ("[1, 2]", "JSON object"),
        (
            "{\"prompt\": 3, \"chosen\": \"a\", \"rejected\": \"b\"}",
            "must be a string",
        ),
    ];
    for (line, want) in cases {
        let good = "{\"prompt\": \"q\", \"response_a\": \"a\", \"response_b\": \"b\"}";
        std::fs::write(&p, format!("{good}\n\n{line}\n")).unwrap();
        let e = read_pairs(&p, 0).unwrap_err().to_string();
        assert!(e.contains("pairs.jsonl:3") && e.contains(want), "{e}");
    }
    assert!(read_pairs(&dir.path().join("missing.jsonl"), 0).is_err());
}
