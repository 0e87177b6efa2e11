//! SFT dataset loading: every TRL shape, field remapping, and one test per bad-row reason.

use keel_data::chat::{ChatExample, KeelChatTemplate, Message, Role, Truncation};
use keel_data::formats::{
    load_dataset, parse_dataset, prepare, BadReason, FieldMap, Format, LoadOptions,
};
use keel_data::tokenizer::{train_tokenizer, KeelTokenizer};
use std::path::Path;

fn parse(text: &str) -> keel_data::formats::Dataset {
    parse_dataset(
        Path::new("d.jsonl"),
        text.as_bytes(),
        &LoadOptions::default(),
    )
    .unwrap()
}

fn one_bad(text: &str) -> (BadReason, String, String) {
    let ds = parse(text);
    assert_eq!(
        ds.bad.len(),
        1,
        "expected exactly one bad row in {text:?}: {:?}",
        ds.bad
    );
    let b = &ds.bad[0];
    (b.reason, b.field.clone(), b.to_string())
}

#[test]
fn reads_all_three_shapes_with_optional_system() {
    let text = concat!(
        r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."}]}"#,
        "\n\n",
        r#"{"prompt":"Capital of Brell?","completion":"Osk.","system":"Answer tersely."}"#,
        "\n",
        r#"{"text":"Brell is a town."}"#,
        "\n",
        r#"{"prompt":[{"role":"user","content":"a"}],"completion":[{"role":"assistant","content":"b"}]}"#,
        "\n"
    );
    let ds = parse(text);
    assert!(ds.bad.is_empty(), "{:?}", ds.bad);
    let lines: Vec<usize> = ds.examples.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![1, 3, 4, 5]);
    assert_eq!(
        ds.examples[1].example,
        ChatExample::prompt_completion(Some("Answer tersely."), "Capital of Brell?", "Osk.")
    );
    assert_eq!(
        ds.examples[2].example,
        ChatExample::Text {
            text: "Brell is a town.".into()
        }
    );
    let ChatExample::Chat { messages } = &ds.examples[0].example else {
        panic!()
    };
    assert_eq!(messages[0], Message::new(Role::System, "Be brief."));
    assert_eq!(
        ds.examples[3].example,
        ChatExample::prompt_completion(None, "a", "b")
    );
}

#[test]
fn field_names_can_be_mapped_and_format_forced() {
    let opts = LoadOptions {
        format: Format::PromptCompletion,
        fields: FieldMap {
            prompt: "question".into(),
            completion: "answer".into(),
            ..Default::default()
        },
        strict: false,
    };
    let ds = parse_dataset(
        Path::new("q.jsonl"),
        br#"{"question":"q?","answer":"a.","text":"ignored"}"#,
        &opts,
    )
    .unwrap();
    assert_eq!(
        ds.examples[0].example,
        ChatExample::prompt_completion(None, "q?", "a.")
    );
    // Forced format: a row without the mapped key is a missing field named by its mapped name.
    let ds = parse_dataset(
        Path::new("q.jsonl"),
        br#"{"prompt":"q?","answer":"a."}"#,
        &opts,
    )
    .unwrap();
    assert_eq!(
        (ds.bad[0].reason, ds.bad[0].field.as_str()),
        (BadReason::MissingField, "question")
    );
}

#[test]
fn bad_json_and_non_objects() {
    let (r, f, s) = one_bad("{\"prompt\":\"a\",\"completion\":\"b\"}\n{\"prompt\": oops}\n");
    assert_eq!((r, f.as_str()), (BadReason::BadJson, "<row>"));
    assert!(s.starts_with("d.jsonl:2: field `<row>`: BadJson"), "{s}");
    assert_eq!(one_bad("[1,2]\n").0, BadReason::NotAnObject);
    let ds = parse_dataset(
        Path::new("d.jsonl"),
        b"{\"text\":\"\xff\"}\n",
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(ds.bad[0].reason, BadReason::NotUtf8);
}

#[test]
fn missing_and_wrongly_typed_fields() {
    assert_eq!(one_bad(r#"{"input":"x"}"#).0, BadReason::MissingField);
    let (r, f, _) = one_bad(r#"{"prompt":"x"}"#);
    assert_eq!((r, f.as_str()), (BadReason::MissingField, "completion"));
    let (r, f, _) = one_bad(r#"{"prompt":"x","completion":7}"#);
    assert_eq!((r, f.as_str()), (BadReason::WrongType, "completion"));
    let (r, f, _) = one_bad(r#"{"messages":"hello"}"#);
    assert_eq!((r, f.as_str()), (BadReason::WrongType, "messages"));
    let (r, f, _) = one_bad(r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant"}]}"#);
    assert_eq!(
        (r, f.as_str()),
        (BadReason::MissingField, "messages[1].content")
    );
    let (r, f, _) = one_bad(
        r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":["b"]}]}"#,
    );
    assert_eq!(
        (r, f.as_str()),
        (BadReason::WrongType, "messages[1].content")
    );
    let (r, f, _) = one_bad(r#"{"text":"a","prompt":"p","completion":"c","system":3}"#);
    assert_eq!((r, f.as_str()), (BadReason::WrongType, "system"));
}

#[test]
fn unknown_role_and_wrong_role_order() {
    let (r, f, _) = one_bad(r#"{"messages":[{"role":"tool","content":"a"}]}"#);
    assert_eq!(
        (r, f.as_str()),
        (BadReason::UnknownRole, "messages[0].role")
    );
    let (r, f, s) = one_bad(
        r#"{"messages":[{"role":"assistant","content":"a"},{"role":"user","content":"b"}]}"#,
    );
    assert_eq!((r, f.as_str()), (BadReason::RoleOrder, "messages[0].role"));
    assert!(s.contains("expected user, found assistant"), "{s}");
    let (r, f, _) =
        one_bad(r#"{"messages":[{"role":"user","content":"a"},{"role":"system","content":"b"}]}"#);
    assert_eq!((r, f.as_str()), (BadReason::RoleOrder, "messages[1].role"));
    let (r, _, s) = one_bad(r#"{"messages":[{"role":"user","content":"a"}]}"#);
    assert_eq!(r, BadReason::RoleOrder);
    assert!(s.contains("must end with an assistant turn"), "{s}");
    let (r, f, _) = one_bad(
        r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"assistant","content":"c"}]}"#,
    );
    assert_eq!((r, f.as_str()), (BadReason::RoleOrder, "messages[2].role"));
}

#[test]
fn empty_turns_and_text() {
    let (r, f, _) = one_bad(
        r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"  "}]}"#,
    );
    assert_eq!(
        (r, f.as_str()),
        (BadReason::EmptyAssistant, "messages[1].content")
    );
    let (r, f, _) = one_bad(r#"{"prompt":"a","completion":""}"#);
    assert_eq!((r, f.as_str()), (BadReason::EmptyAssistant, "completion"));
    let (r, f, _) = one_bad(r#"{"prompt":"","completion":"b"}"#);
    assert_eq!((r, f.as_str()), (BadReason::EmptyUser, "prompt"));
    let (r, f, _) = one_bad(r#"{"text":""}"#);
    assert_eq!((r, f.as_str()), (BadReason::EmptyText, "text"));
}

#[test]
fn strict_fails_on_first_bad_row_default_skips_and_counts() {
    let text =
        "{\"prompt\":\"a\",\"completion\":\"b\"}\n{\"prompt\":\"a\",\"completion\":\"\"}\n{bad\n";
    let ds = parse(text);
    assert_eq!(ds.examples.len(), 1);
    let counts = ds.bad_counts();
    assert_eq!(counts[&BadReason::EmptyAssistant], 1);
    assert_eq!(counts[&BadReason::BadJson], 1);
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    let e = parse_dataset(Path::new("d.jsonl"), text.as_bytes(), &strict)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("d.jsonl:2: field `completion`: EmptyAssistant"),
        "{e}"
    );
}

#[test]
fn missing_file_names_the_path() {
    let e = load_dataset(Path::new("/nonexistent/sft.jsonl"), &LoadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/sft.jsonl"), "{e}");
}

#[test]
fn over_long_after_truncation_is_reported_and_left_truncation_keeps_the_answer() {
    let tok = KeelTokenizer::from_tokenizer(
        train_tokenizer(["some text to learn merges from"].into_iter(), 300).unwrap(),
    )
    .unwrap();
    let tpl = KeelChatTemplate::new(&tok).unwrap();
    let long_prompt = "p".repeat(40);
    let text = format!(
        "{{\"prompt\":\"{long_prompt}\",\"completion\":\"ok\"}}\n{{\"prompt\":\"q\",\"completion\":\"{}\"}}\n{{\"prompt\":\"q\",\"completion\":\"ok\"}}\n",
        "c".repeat(60)
    );
    let ds = parse(&text);
    assert!(ds.bad.is_empty());
    let max = 24;
    // Drop: both long rows go, each reported with its line.
    let p = prepare(&tok, &tpl, &ds.examples, max, Truncation::Drop, false).unwrap();
    assert_eq!(p.examples.len(), 1);
    assert_eq!(
        p.bad.iter().map(|b| (b.line, b.reason)).collect::<Vec<_>>(),
        vec![(1, BadReason::TooLong), (2, BadReason::TooLong)]
    );
    // Truncate-left: the long prompt is cut and the whole answer kept; a long answer still goes.
    let p = prepare(
        &tok,
        &tpl,
        &ds.examples,
        max,
        Truncation::TruncateLeft,
        false,
    )
    .unwrap();
    assert_eq!((p.examples.len(), p.truncated), (2, 1));
    assert_eq!(p.bad.len(), 1);
    assert_eq!(p.bad[0].line, 2);
    assert!(
        p.bad[0]
            .to_string()
            .starts_with("d.jsonl:2: field `messages`: TooLong"),
        "{}",
        p.bad[0]
    );
    let cut = &p.examples[0];
    assert_eq!(cut.len(), max);
    assert_eq!(cut.ids[0], tpl.bos);
    let full = tpl.render(&tok, &ds.examples[0].example);
    assert_eq!(cut.trained_tokens(), full.trained_tokens());
    assert_eq!(cut.ids[cut.len() - 4..], full.ids[full.len() - 4..]);
    let e = prepare(
        &tok,
        &tpl,
        &ds.examples,
        max,
        Truncation::TruncateLeft,
        true,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("d.jsonl:2: field `messages`: TooLong"), "{e}");
}
