//! Parquet datasets: `datasets`' messages schema round-trips, flat prompt/completion columns with
//! remapped names, bad rows named by row index, and corrupt files as errors (never a panic).

use keel_data::chat::{ChatExample, Message, Role};
use keel_data::formats::{load_dataset, BadReason, FieldMap, Format, LoadOptions, RowUnit};
use keel_data::parquet::{examples_to_parquet, is_parquet, write_examples, ParquetCompression};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::sync::Arc;

fn chat(msgs: &[(Role, &str)]) -> ChatExample {
    ChatExample::Chat {
        messages: msgs.iter().map(|(r, c)| Message::new(*r, *c)).collect(),
    }
}

#[test]
fn messages_and_text_round_trip_in_both_compressions() {
    let examples = vec![
        chat(&[
            (Role::System, "Be brief."),
            (Role::User, "Where is Brell?"),
            (Role::Assistant, "In the north."),
        ]),
        ChatExample::Text {
            text: "Brell is a town.".into(),
        },
        chat(&[
            (Role::User, "a"),
            (Role::Assistant, "b"),
            (Role::User, "c ü"),
            (Role::Assistant, "d"),
        ]),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, c) in [
        ("s.parquet", ParquetCompression::Snappy),
        ("z.parquet", ParquetCompression::Zstd),
        ("n.parquet", ParquetCompression::None),
    ] {
        let path = dir.path().join(name);
        assert_eq!(write_examples(&path, &examples, c).unwrap(), 3);
        assert!(is_parquet(&std::fs::read(&path).unwrap()));
        let ds = load_dataset(&path, &LoadOptions::default()).unwrap();
        assert!(ds.bad.is_empty(), "{:?}", ds.bad);
        let got: Vec<ChatExample> = ds.examples.iter().map(|e| e.example.clone()).collect();
        assert_eq!(got, examples, "{name}");
        assert_eq!(
            ds.examples.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert!(ds.examples.iter().all(|e| e.unit == RowUnit::Row));
    }
}

#[test]
fn bad_rows_are_named_by_row_index_and_strict_fails() {
    let examples = vec![
        chat(&[(Role::User, "q"), (Role::Assistant, "a")]),
        chat(&[(Role::Assistant, "a"), (Role::User, "q")]),
        chat(&[(Role::User, "q"), (Role::Assistant, "  ")]),
        chat(&[]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.parquet");
    write_examples(&path, &examples, ParquetCompression::Snappy).unwrap();
    let ds = load_dataset(&path, &LoadOptions::default()).unwrap();
    assert_eq!(ds.examples.len(), 1);
    let bad: Vec<(usize, BadReason, &str)> = ds
        .bad
        .iter()
        .map(|b| (b.line, b.reason, b.field.as_str()))
        .collect();
    assert_eq!(
        bad,
        vec![
            (1, BadReason::RoleOrder, "messages[0].role"),
            (2, BadReason::EmptyAssistant, "messages[1].content"),
            (3, BadReason::MissingField, "messages"),
        ]
    );
    let shown = ds.bad[0].to_string();
    assert!(
        shown.starts_with(&format!(
            "{}:row 1: field `messages[0].role`",
            path.display()
        )),
        "{shown}"
    );
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    let err = load_dataset(&path, &strict).unwrap_err().to_string();
    assert!(
        err.contains("bad.parquet") && err.contains("row 1: field `messages[0].role`"),
        "{err}"
    );
}

/// A flat file as many exporters write it: required string columns, an id column, one null.
fn flat_file(path: &std::path::Path) {
    let schema = parse_message_type(
        "message schema { required int64 id; required binary question (STRING); optional binary answer (STRING); }",
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut buf = Vec::new();
    let mut w = SerializedFileWriter::new(&mut buf, Arc::new(schema), Arc::new(props)).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<Int64Type>()
        .write_batch(&[10, 11, 12], None, None)
        .unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    let qs: Vec<ByteArray> = ["Capital of Brell?", "Two plus two?", "Why?"]
        .iter()
        .map(|s| ByteArray::from(*s))
        .collect();
    col.typed::<ByteArrayType>()
        .write_batch(&qs, None, None)
        .unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    let answers = [ByteArray::from("Osk."), ByteArray::from("Four.")];
    col.typed::<ByteArrayType>()
        .write_batch(&answers, Some(&[1, 1, 0]), None)
        .unwrap();
    col.close().unwrap();
    assert!(rg.next_column().unwrap().is_none());
    rg.close().unwrap();
    w.close().unwrap();
    std::fs::write(path, buf).unwrap();
}

#[test]
fn flat_columns_with_mapped_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qa.parquet");
    flat_file(&path);
    let opts = LoadOptions {
        format: Format::PromptCompletion,
        fields: FieldMap {
            prompt: "question".into(),
            completion: "answer".into(),
            ..Default::default()
        },
        strict: false,
    };
    let ds = load_dataset(&path, &opts).unwrap();
    assert_eq!(
        ds.examples
            .iter()
            .map(|e| e.example.clone())
            .collect::<Vec<_>>(),
        vec![
            ChatExample::prompt_completion(None, "Capital of Brell?", "Osk."),
            ChatExample::prompt_completion(None, "Two plus two?", "Four."),
        ]
    );
    assert_eq!(ds.bad.len(), 1);
    assert_eq!(
        (ds.bad[0].line, ds.bad[0].reason, ds.bad[0].field.as_str()),
        (2, BadReason::MissingField, "answer")
    );
}

#[test]
fn corrupt_parquet_is_an_error_naming_the_file() {
    let good = examples_to_parquet(
        &[chat(&[(Role::User, "q"), (Role::Assistant, "a")])],
        ParquetCompression::Snappy,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Keep both magics so it is taken for Parquet, but damage the middle in several ways.
    let n = good.len();
    let variants: Vec<Vec<u8>> = vec![
        [&good[..4], &good[n - 4..]].concat(),
        [&good[..4], &[0u8; 20][..], &good[n - 4..]].concat(),
        {
            let mut v = good.clone();
            for b in &mut v[4..n / 2] {
                *b = 0xff;
            }
            v
        },
        {
            let mut v = good.clone();
            let k = n - 8;
            v[k] = 0xff; // footer length points outside the file
            v
        },
    ];
    for (i, bytes) in variants.into_iter().enumerate() {
        let path = dir.path().join(format!("c{i}.parquet"));
        std::fs::write(&path, bytes).unwrap();
        match load_dataset(&path, &LoadOptions::default()) {
            Err(e) => assert!(e.to_string().contains(&format!("c{i}.parquet")), "{e}"),
            // Damage confined to page bytes can still decode into a row that validation judges.
            Ok(ds) => assert_eq!(ds.examples.len() + ds.bad.len(), 1, "variant {i}"),
        }
    }
}
