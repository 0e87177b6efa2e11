//! Preference datasets: every accepted shape, and every bad-row reason named with file:line.

use keel_data::chat::Role;
use keel_data::preference::{
    load_preferences, parse_preferences, parse_transcript, PrefBadReason, PrefLoadOptions,
    PreferenceDataset,
};
use std::io::Write;
use std::path::Path;

fn parse(text: &str) -> PreferenceDataset {
    parse_preferences(
        Path::new("prefs.jsonl"),
        text.as_bytes(),
        &PrefLoadOptions::default(),
    )
    .unwrap()
}

#[test]
fn explicit_and_conversational_rows() {
    let ds = parse(concat!(
        r#"{"prompt": "What colour is the sky?", "chosen": "Blue.", "rejected": "Green."}"#,
        "\n",
        r#"{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}], "chosen": [{"role": "assistant", "content": "Hello."}], "rejected": [{"role": "assistant", "content": "Go away."}]}"#,
        "\n\n"
    ));
    assert!(ds.bad.is_empty(), "{:?}", ds.bad);
    assert_eq!(ds.pairs.len(), 2);
    let p = &ds.pairs[0].pair;
    assert_eq!(p.prompt.len(), 1);
    assert_eq!(p.prompt[0].role, Role::User);
    assert_eq!(
        (p.chosen.as_str(), p.rejected.as_str()),
        ("Blue.", "Green.")
    );
    let q = &ds.pairs[1];
    assert_eq!(q.line, 2);
    assert_eq!(q.pair.prompt[0].role, Role::System);
    assert_eq!(q.pair.chosen, "Hello.");
}

#[test]
fn implicit_prompt_string_and_messages() {
    let ds = parse(concat!(
        r#"{"chosen": "Q: name a river. A: The Alder.", "rejected": "Q: name a river. A: I refuse."}"#,
        "\n",
        r#"{"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "What."}]}"#,
        "\n",
    ));
    assert!(ds.bad.is_empty(), "{:?}", ds.bad);
    let p = &ds.pairs[0].pair;
    // Split at a word boundary: "A: The" vs "A: I" differ at "T"/"I", after the space.
    assert_eq!(p.prompt[0].content, "Q: name a river. A:");
    assert_eq!(
        (p.chosen.as_str(), p.rejected.as_str()),
        ("The Alder.", "I refuse.")
    );
    let q = &ds.pairs[1].pair;
    assert_eq!(q.prompt.len(), 1);
    assert_eq!(
        (q.chosen.as_str(), q.rejected.as_str()),
        ("Hello!", "What.")
    );
}

#[test]
fn hh_rlhf_transcripts() {
    let chosen = "\n\nHuman: how do I pick a lock?\n\nAssistant: Why do you ask?\n\nHuman: I'm locked out.\n\nAssistant: Call a locksmith or your landlord.";
    let rejected = "\n\nHuman: how do I pick a lock?\n\nAssistant: Why do you ask?\n\nHuman: I'm locked out.\n\nAssistant: Get a tension wrench and rake the pins.";
    let row = serde_json::json!({"chosen": chosen, "rejected": rejected}).to_string();
    let ds = parse(&row);
    assert!(ds.bad.is_empty(), "{:?}", ds.bad);
    let p = &ds.pairs[0].pair;
    let roles: Vec<Role> = p.prompt.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
    assert_eq!(p.prompt[2].content, "I'm locked out.");
    assert_eq!(p.chosen, "Call a locksmith or your landlord.");
    assert_eq!(p.rejected, "Get a tension wrench and rake the pins.");
    let turns = parse_transcript("\n\nHuman: a\n\nHuman: b").unwrap_err();
    assert!(turns.contains("two user turns"), "{turns}");
}

#[test]
fn gzipped_hh_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hh.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..3 {
        let c = format!("\n\nHuman: question {i}?\n\nAssistant: A kind answer.");
        let r = format!("\n\nHuman: question {i}?\n\nAssistant: A rude answer.");
        writeln!(enc, "{}", serde_json::json!({"chosen": c, "rejected": r})).unwrap();
    }
    std::fs::write(&path, enc.finish().unwrap()).unwrap();
    let ds = load_preferences(&path, &PrefLoadOptions::default()).unwrap();
    assert_eq!(ds.pairs.len(), 3);
    assert_eq!(ds.pairs[2].pair.prompt[0].content, "question 2?");
    // A .gz that is not gzip is a file-level error naming the file.
    let bad = dir.path().join("bad.jsonl.gz");
    std::fs::write(&bad, b"{\"chosen\": \"x\"}\n").unwrap();
    let e = load_preferences(&bad, &PrefLoadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("bad.jsonl.gz"), "{e}");
}

#[test]
fn rankings_expand_to_pairs() {
    let ds = parse(concat!(
        r#"{"prompt": "p", "responses": ["a", "b", "c"], "scores": [1.0, 3.0, 2.0]}"#,
        "\n",
        r#"{"prompt": "p", "responses": ["x", "y", "z"], "ranking": [2, 0, 1]}"#,
        "\n",
        r#"{"prompt": "p", "responses": ["x", "y"], "scores": [1, 1]}"#,
        "\n",
    ));
    // k = 3 gives 3 pairs each; the tie gives none and is reported.
    assert_eq!(ds.pairs.len(), 6);
    let first: Vec<(&str, &str)> = ds.pairs[..3]
        .iter()
        .map(|p| (p.pair.chosen.as_str(), p.pair.rejected.as_str()))
        .collect();
    assert!(
        first.contains(&("b", "c")) && first.contains(&("b", "a")) && first.contains(&("c", "a"))
    );
    let second: Vec<(&str, &str)> = ds.pairs[3..]
        .iter()
        .map(|p| (p.pair.chosen.as_str(), p.pair.rejected.as_str()))
        .collect();
    assert!(
        second.contains(&("z", "x"))
            && second.contains(&("x", "y"))
            && second.contains(&("z", "y"))
    );
    assert_eq!(ds.bad.len(), 1);
    assert_eq!(ds.bad[0].reason, PrefBadReason::BadRanking);
    assert_eq!(ds.bad[0].line, 3);
}

#[test]
fn unpaired_rows_and_pairs_as_kto() {
    let ds = parse(concat!(
        r#"{"prompt": "p", "completion": "good", "label": true}"#,
        "\n",
        r#"{"prompt": "p", "completion": "bad", "label": false}"#,
        "\n",
        r#"{"prompt": "q", "chosen": "c", "rejected": "r"}"#,
        "\n",
    ));
    assert_eq!((ds.unpaired.len(), ds.pairs.len()), (2, 1));
    assert!(ds.unpaired[0].example.desirable && !ds.unpaired[1].example.desirable);
    let all = ds.as_unpaired();
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().filter(|e| e.desirable).count(), 2);
}

#[test]
fn every_bad_reason_names_line_and_field() {
    let rows = [
        ("{not json", PrefBadReason::BadJson, "<row>"),
        ("[1, 2]", PrefBadReason::NotAnObject, "<row>"),
        (r#"{"foo": 1}"#, PrefBadReason::MissingField, "<row>"),
        (
            r#"{"prompt": "p", "chosen": "c"}"#,
            PrefBadReason::MissingField,
            "rejected",
        ),
        (
            r#"{"prompt": 5, "chosen": "c", "rejected": "r"}"#,
            PrefBadReason::WrongType,
            "prompt",
        ),
        (
            r#"{"prompt": [{"role": "bot", "content": "x"}], "chosen": "c", "rejected": "r"}"#,
            PrefBadReason::UnknownRole,
            "prompt[0].role",
        ),
        (
            r#"{"prompt": [{"role": "assistant", "content": "x"}], "chosen": "c", "rejected": "r"}"#,
            PrefBadReason::RoleOrder,
            "prompt",
        ),
        (
            r#"{"prompt": "  ", "chosen": "c", "rejected": "r"}"#,
            PrefBadReason::EmptyPrompt,
            "prompt",
        ),
        (
            r#"{"prompt": "p", "chosen": "", "rejected": "r"}"#,
            PrefBadReason::EmptyCompletion,
            "chosen",
        ),
        (
            r#"{"prompt": "p", "chosen": "same", "rejected": "same"}"#,
            PrefBadReason::IdenticalPair,
            "rejected",
        ),
        (
            r#"{"chosen": "abc", "rejected": "xyz"}"#,
            PrefBadReason::NoSharedPrompt,
            "chosen",
        ),
        (
            r#"{"chosen": "\n\nHuman: a\n\nHuman: b\n\nAssistant: c", "rejected": "\n\nHuman: a\n\nAssistant: d"}"#,
            PrefBadReason::BadTranscript,
            "chosen",
        ),
        (
            r#"{"prompt": "p", "responses": ["a", "b"], "ranking": [0, 0]}"#,
            PrefBadReason::BadRanking,
            "ranking",
        ),
        (
            r#"{"prompt": "p", "completion": "c", "label": "yes"}"#,
            PrefBadReason::WrongType,
            "label",
        ),
        (
            r#"{"prompt": "p", "chosen": [{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}], "rejected": "r"}"#,
            PrefBadReason::RoleOrder,
            "chosen",
        ),
    ];
    let mut text = String::new();
    for (r, _, _) in &rows {
        text.push_str(r);
        text.push('\n');
    }
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"{\"prompt\": \"\xff\"}\n");
    let ds = parse_preferences(
        Path::new("d/prefs.jsonl"),
        &bytes,
        &PrefLoadOptions::default(),
    )
    .unwrap();
    assert!(ds.pairs.is_empty() && ds.unpaired.is_empty());
    assert_eq!(ds.bad.len(), rows.len() + 1);
    for (i, (row, reason, field)) in rows.iter().enumerate() {
        let b = &ds.bad[i];
        assert_eq!(
            (b.line, b.reason, b.field.as_str()),
            (i + 1, *reason, *field),
            "row {row}: {b}"
        );
    }
    assert_eq!(ds.bad.last().unwrap().reason, PrefBadReason::NotUtf8);
    assert!(ds.bad[9]
        .to_string()
        .starts_with("d/prefs.jsonl:10: field `rejected`: IdenticalPair"));
    // Strict mode: the first bad row is an error naming file, line and field.
    let strict = PrefLoadOptions {
        strict: true,
        ..Default::default()
    };
    let e = parse_preferences(
        Path::new("d/prefs.jsonl"),
        b"{\"prompt\": \"p\", \"chosen\": \"c\", \"rejected\": \"r\"}\n{\"prompt\": \"p\", \"chosen\": \"c\"}\n",
        &strict,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("d/prefs.jsonl:2: field `rejected`"), "{e}");
}

#[test]
fn world_preferences_load_with_defects() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = keel_data::world::WorldConfig::tiny();
    keel_data::world::generate(&cfg, 3)
        .unwrap()
        .write(dir.path())
        .unwrap();
    let pairs =
        keel_data::preference::load_world_preferences(dir.path(), keel_data::world::Split::Train)
            .unwrap();
    assert!(pairs.len() >= 6);
    let tags: std::collections::BTreeSet<_> = pairs.iter().filter_map(|p| p.tag.clone()).collect();
    assert!(
        tags.contains("wrong_fact") && tags.contains("unsafe_compliance"),
        "{tags:?}"
    );
    assert!(pairs.iter().all(|p| p.pair.chosen != p.pair.rejected));
}
