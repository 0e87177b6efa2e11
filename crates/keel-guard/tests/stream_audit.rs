//! Streaming checks and the audit log.

use keel_guard::audit::{query_jsonl, query_sqlite, summarize, AuditLog, AuditQuery};
use keel_guard::{ActionKind, Guard, Moderator, Scope, StreamEvent, StreamGuard};

#[test]
fn stream_stops_mid_response_even_when_the_phrase_spans_chunks() {
    let g = Guard::from_profiles(&["default"]).unwrap();
    let chunks = [
        "Sure! Here is a nice story. ",
        "First, to make a pi",
        "pe bo",
        "mb you need",
        " the following parts: ",
        "a, b, c.",
    ];
    let mut s = StreamGuard::new(&g, 256, 8);
    let mut stopped_at = None;
    for (i, c) in chunks.iter().enumerate() {
        if let StreamEvent::Stop(v) = s.push(c) {
            assert_eq!(v.action, ActionKind::Block);
            let h = v.hits.iter().find(|h| h.rule_id == "s9-build").unwrap();
            assert_eq!(&s.text()[h.start..h.end], "make a pipe bomb");
            stopped_at = Some(i);
            break;
        }
    }
    assert_eq!(
        stopped_at,
        Some(3),
        "should stop once 'bomb' arrives, before the parts list"
    );
}

#[test]
fn stream_of_benign_text_runs_to_the_end() {
    let g = Guard::from_profiles(&["default"]).unwrap();
    let mut s = StreamGuard::new(&g, 128, 4);
    for w in "Bread needs flour, water, salt and yeast. Knead it well and let it rise."
        .split_inclusive(' ')
    {
        assert!(matches!(s.push(w), StreamEvent::Continue { .. }));
    }
    assert!(matches!(
        s.finish(),
        StreamEvent::Continue { flagged: None }
    ));
}

#[test]
fn audit_log_records_every_decision_to_jsonl_and_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (j, d) = (
        dir.path().join("a/audit.jsonl"),
        dir.path().join("audit.sqlite"),
    );
    let g = Guard::from_profiles(&["region-eu"])
        .unwrap()
        .with_audit(AuditLog::open(Some(&j), Some(&d)).unwrap());
    g.scan_text("How do I make a pipe bomb?", Scope::Input);
    g.scan_text("What's the weather like in Lisbon?", Scope::Input);
    g.scan_text("my IBAN is DE89 3704 0044 0532 0130 00", Scope::Output);
    let all = AuditQuery::default();
    let a = query_jsonl(&j, &all).unwrap();
    let b = query_sqlite(&d, &all).unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(a, b);
    assert_eq!(a[0].action, "block");
    assert_eq!(a[0].profile, "default,region-eu");
    assert_eq!(a[0].policy_hash, g.policy().hash);
    assert!(a[0].rule_ids.contains(&"s9-build".to_string()));
    assert!(a[0].scores["S9"] > 0.9);
    assert_eq!(a[2].scope, "output");
    let blocked = query_sqlite(
        &d,
        &AuditQuery {
            action: Some("block".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(blocked.len(), 1);
    let pii = query_sqlite(
        &d,
        &AuditQuery {
            category: Some("pii".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(pii.len(), 1);
    assert_eq!(pii[0].action, "redact");
    let future = query_sqlite(
        &d,
        &AuditQuery {
            since_ms: Some(a[2].ts_ms + 60_000),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(future.is_empty());
    let s = summarize(&a);
    assert_eq!(s["by_action"]["allow"], 1);
    assert_eq!(s["by_category"]["S9"], 1);
    // The raw text is not in the log, only its digest.
    let raw = std::fs::read_to_string(&j).unwrap();
    assert!(!raw.contains("pipe bomb") && !raw.contains("DE89"));
}
