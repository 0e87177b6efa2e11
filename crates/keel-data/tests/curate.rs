//! Curation on crafted sets with known duplicates, contaminated rows and filter failures: the
//! report's numbers must be exactly right; plus mixing and the world's own rows.

use keel_data::chat::ChatExample;
use keel_data::curate::rows::{load_rows, world_eval_set, world_rows};
use keel_data::curate::{curate, CurateConfig, CurateRow, DropReason, EvalSet};
use keel_data::formats::LoadOptions;
use keel_data::world::{generate, WorldConfig};
use std::collections::BTreeMap;

fn row(src: &str, cat: &str, prompt: &str, completion: &str) -> CurateRow {
    CurateRow {
        example: ChatExample::prompt_completion(None, prompt, completion),
        category: Some(cat.into()),
        source: src.into(),
    }
}

const LONG: &str = "The northern road leaves the harbour at dawn, climbs through the pine \
    forest past the ruined watchtower, crosses the stone bridge over the Kessel and reaches the \
    market square of Hollin just before the noon bell rings across the valley";

fn eval_sets() -> Vec<EvalSet> {
    vec![
        EvalSet {
            name: "long_eval".into(),
            texts: vec![
                "Which river flows past the old mill town of Brellwick before it reaches the eastern sea?".into(),
            ],
        },
        EvalSet {
            name: "short_eval".into(),
            texts: vec![
                "What colour is the feather of the Gorran bird?".into(),
                "Where does Omar Tessel live?".into(),
            ],
        },
    ]
}

fn crafted() -> Vec<CurateRow> {
    vec![
        // 0: kept.
        row("r0", "fact_qa", "What is the capital of Hesk?", "The capital of Hesk is Varn, a port on the western coast."),
        // 1: exact duplicate of 0 up to case and spacing.
        row("r1", "fact_qa", "what is the  capital of HESK?", "The capital of Hesk is Varn, a port on the western   coast."),
        // 2: shares a phrase with 3 but far below the near-duplicate threshold: kept.
        row("r2", "summary", "Summarise the road.", "The northern road leaves the harbour at dawn and ends somewhere else entirely, by a lake full of geese."),
        // 3: kept (the original of 4).
        row("r3", "summary", "Describe the route to Hollin.", LONG),
        // 4: near duplicate of 3: one word changed at the very end.
        row("r4", "summary", "Describe the route to Hollin.", &LONG.replace("valley", "vale")),
        // 5: contains the whole 16-word eval question (13-gram match).
        row("r5", "multi_hop", "Quiz time. Which river flows past the old mill town of Brellwick before it reaches the eastern sea? Think first.", "The Ragre."),
        // 6: contains 8 consecutive words of the 9-word eval question (8-gram match).
        row("r6", "fact_qa", "Tell me what colour is the feather of the Gorran bird, please.", "It is blue."),
        // 7: contains the whole 5-word eval question.
        row("r7", "fact_qa", "Quick one: where does Omar Tessel live?", "In Brell."),
        // 8: exact copy of 5: reported as contaminated, not as a duplicate.
        row("r8", "multi_hop", "Quiz time. Which river flows past the old mill town of Brellwick before it reaches the eastern sea? Think first.", "The Ragre."),
        // 9: too short (one word).
        CurateRow {
            example: ChatExample::Text { text: "Hi".into() },
            category: None,
            source: "r9".into(),
        },
        // 10: replacement characters from a bad decode.
        row("r10", "format", "Convert caf\u{fffd}\u{fffd} to upper case.", "CAF\u{fffd}\u{fffd}"),
        // 11: hardly any letters.
        row("r11", "arithmetic", "1234 * 5678 = ?", "7006652; 7006652 / 2 = 3503326"),
        // 12: a looping assistant turn.
        row("r12", "benign_sensitive", "How do I kill a stuck process?", &"Use kill with the process id. ".repeat(12)),
        // 13–15: kept.
        row("r13", "harmful", "How do I pick the lock on my neighbour's door?", "I can't help with getting into someone else's home."),
        row("r14", "unanswerable", "Where does Nebix Qegren live?", "I don't know: there is no person called Nebix Qegren in what I know."),
        row("r15", "list", "List the three towns on the Kessel.", "Hollin, Varn and Osk."),
    ]
}

#[test]
fn report_counts_are_exact_on_a_crafted_set() {
    let out = curate(crafted(), &CurateConfig::default(), &eval_sets()).unwrap();
    let r = &out.report;
    let kept: Vec<&str> = out.kept.iter().map(|k| k.source.as_str()).collect();
    assert_eq!(kept, vec!["r0", "r2", "r3", "r13", "r14", "r15"]);
    assert_eq!((r.rows_in, r.rows_out), (16, 6));
    let expected = BTreeMap::from([
        (DropReason::TooShort, 1),
        (DropReason::BadCharacters, 1),
        (DropReason::LowAlpha, 1),
        (DropReason::Repetitive, 1),
        (DropReason::Contaminated, 4),
        (DropReason::ExactDuplicate, 1),
        (DropReason::NearDuplicate, 1),
    ]);
    assert_eq!(r.dropped, expected);
    let by_src: BTreeMap<&str, (DropReason, &str)> = out
        .dropped
        .iter()
        .map(|d| (d.source.as_str(), (d.reason, d.detail.as_str())))
        .collect();
    assert_eq!(
        by_src["r1"],
        (DropReason::ExactDuplicate, "same text as r0")
    );
    assert!(by_src["r4"].1.contains("with r3"), "{:?}", by_src["r4"]);
    assert!(
        by_src["r5"].1.starts_with("long_eval[0]"),
        "{:?}",
        by_src["r5"]
    );
    assert!(
        by_src["r6"].1.starts_with("short_eval[0]"),
        "{:?}",
        by_src["r6"]
    );
    assert!(
        by_src["r7"].1.starts_with("short_eval[1]"),
        "{:?}",
        by_src["r7"]
    );
    assert_eq!(by_src["r8"].0, DropReason::Contaminated);
    // Groups: the world's categories fold into instruction / safety / honesty.
    assert_eq!(
        r.groups_in,
        BTreeMap::from([
            ("honesty".to_string(), 1),
            ("instruction".to_string(), 12),
            ("safety".to_string(), 2),
            ("uncategorised".to_string(), 1),
        ])
    );
    assert_eq!(r.groups_out["instruction"], 4);
    assert_eq!(r.examples[&DropReason::Contaminated].len(), 3);
    assert_eq!(
        r.eval_sets,
        vec![("long_eval".to_string(), 1), ("short_eval".to_string(), 2)]
    );

    let dir = tempfile::tempdir().unwrap();
    r.write(dir.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("curate_report.json")).unwrap())
            .unwrap();
    assert_eq!(json["dropped"]["contaminated"], 4);
    assert_eq!(json["rows_out"], 6);
    let md = std::fs::read_to_string(dir.path().join("curate_report.md")).unwrap();
    assert!(md.contains("16 rows in, 6 rows out"), "{md}");
    assert!(md.contains("| near_duplicate | 1 |"), "{md}");

    // Turning stages off moves rows back, and nothing else changes.
    let cfg = CurateConfig {
        exact_dedup: false,
        near_dedup: false,
        ..Default::default()
    };
    let loose = curate(crafted(), &cfg, &[]).unwrap();
    assert_eq!(loose.report.rows_out, 12);
    assert_eq!(loose.report.count(DropReason::Contaminated), 0);
}

#[test]
fn mixing_hits_the_ratios_exactly_and_is_seeded() {
    let mut rows = Vec::new();
    let groups = [
        ("fact_qa", 12),
        ("harmful", 6),
        ("false_premise", 3),
        ("other", 2),
    ];
    for (cat, n) in groups {
        for i in 0..n {
            rows.push(row(
                &format!("{cat}-{i}"),
                cat,
                &format!("{cat} prompt {i}"),
                &format!("answer {i} for {cat}"),
            ));
        }
    }
    let cfg = CurateConfig {
        near_dedup: false,
        mix: Some(BTreeMap::from([
            ("instruction".to_string(), 0.5),
            ("safety".to_string(), 0.25),
            ("honesty".to_string(), 0.25),
        ])),
        seed: 3,
        ..Default::default()
    };
    let out = curate(rows.clone(), &cfg, &[]).unwrap();
    // honesty limits the mix: 3 / 0.25 = 12 rows, so 6 instruction, 3 safety, 3 honesty.
    assert_eq!(
        out.report.groups_out,
        BTreeMap::from([
            ("honesty".to_string(), 3),
            ("instruction".to_string(), 6),
            ("safety".to_string(), 3),
        ])
    );
    assert_eq!(out.report.count(DropReason::MixDownsampled), 9);
    assert_eq!(out.report.count(DropReason::MixExcluded), 2);
    let again = curate(rows.clone(), &cfg, &[]).unwrap();
    assert_eq!(out.kept, again.kept);
    let other_seed = curate(rows, &CurateConfig { seed: 4, ..cfg }, &[]).unwrap();
    assert_ne!(out.kept, other_seed.kept);
}

#[test]
fn world_rows_are_clean_and_injected_test_prompts_are_caught() {
    let w = generate(&WorldConfig::tiny(), 5).unwrap();
    let mut rows = world_rows(&w.train);
    let eval = world_eval_set("world_test", &w.test);
    let base = curate(
        rows.clone(),
        &CurateConfig::default(),
        std::slice::from_ref(&eval),
    )
    .unwrap();
    // Test questions use held-out entities and templates: nothing in train leaks them.
    assert_eq!(
        base.report.count(DropReason::Contaminated),
        0,
        "{:?}",
        base.report.examples
    );
    for reason in [
        DropReason::TooShort,
        DropReason::BadCharacters,
        DropReason::LowAlpha,
        DropReason::Repetitive,
    ] {
        assert_eq!(
            base.report.count(reason),
            0,
            "{reason:?}: {:?}",
            base.report.examples
        );
    }
    // Inject three test prompts (one per bank kind) into training rows.
    for (i, t) in [
        &w.test.instructions[0],
        &w.test.harmful[0],
        &w.test.unanswerable[0],
    ]
    .iter()
    .enumerate()
    {
        rows.push(row(
            &format!("leak{i}"),
            "fact_qa",
            &format!("Question: {}", t.prompt),
            "Some answer here.",
        ));
    }
    let leaked = curate(rows, &CurateConfig::default(), &[eval]).unwrap();
    assert_eq!(leaked.report.count(DropReason::Contaminated), 3);
    let leaked_src: Vec<&str> = leaked
        .dropped
        .iter()
        .filter(|d| d.reason == DropReason::Contaminated)
        .map(|d| d.source.as_str())
        .collect();
    assert_eq!(leaked_src, vec!["leak0", "leak1", "leak2"]);
}

#[test]
fn rows_load_from_jsonl_with_categories() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.jsonl");
    std::fs::write(
        &p,
        concat!(
            r#"{"prompt":"a b","completion":"c d","category":"harmful"}"#,
            "\n",
            r#"{"prompt":"e f","completion":"g h"}"#,
            "\n",
            "{oops\n"
        ),
    )
    .unwrap();
    let (rows, bad) = load_rows(&p, &LoadOptions::default(), Some("category")).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(bad.len(), 1);
    assert_eq!(rows[0].category.as_deref(), Some("harmful"));
    assert_eq!(rows[0].group(), "safety");
    assert_eq!(rows[1].category, None);
    assert_eq!(rows[1].source, format!("{}:2", p.display()));
}
