//! `keel data render`'s engine: trained spans under Keel's template and under a model's own
//! template (a ChatML template written as a closure, with a real BPE tokenizer).

use keel_data::chat::{ChatExample, KeelChatTemplate, Message, Role, Truncation};
use keel_data::render::{render_keel, render_with_template, trained_spans};
use keel_data::tokenizer::{train_tokenizer, KeelTokenizer};
use tokenizers::{AddedToken, Tokenizer};

fn corpus() -> Vec<String> {
    (0..50)
        .map(|i| {
            format!("the user asks where town {i} is and the assistant answers north of the river")
        })
        .collect()
}

fn keel_tok() -> KeelTokenizer {
    KeelTokenizer::from_tokenizer(train_tokenizer(corpus().into_iter(), 400).unwrap()).unwrap()
}

fn conv() -> ChatExample {
    ChatExample::Chat {
        messages: vec![
            Message::new(Role::System, "be brief"),
            Message::new(Role::User, "where is town 3"),
            Message::new(Role::Assistant, "north of the river"),
            Message::new(Role::User, "and town 4"),
            Message::new(Role::Assistant, "south"),
        ],
    }
}

#[test]
fn keel_template_trains_assistant_content_and_end() {
    let tok = keel_tok();
    let t = KeelChatTemplate::new(&tok).unwrap();
    let r = render_keel(&tok, &t, &conv(), None).unwrap();
    assert_eq!(
        r.bracketed(),
        "<|bos|><|system|>be brief<|end|><|user|>where is town 3<|end|><|assistant|>[[north of the river<|end|>]]<|user|>and town 4<|end|><|assistant|>[[south<|end|>]]"
    );
    let trained_ids: Vec<u32> = r
        .tokens
        .iter()
        .filter(|t| t.trained)
        .map(|t| t.id)
        .collect();
    let mut expect = tok.encode("north of the river");
    expect.push(t.end);
    expect.extend(tok.encode("south"));
    expect.push(t.end);
    assert_eq!(trained_ids, expect);
    assert_eq!(r.trained(), expect.len());
    assert!(r.token_table().lines().count() == r.total());
    // Too long for the limit under `drop`: nothing to show; left truncation cuts the prompt.
    assert!(render_keel(&tok, &t, &conv(), Some((10, Truncation::Drop))).is_none());
    let cut = render_keel(
        &tok,
        &t,
        &conv(),
        Some((r.total() - 2, Truncation::TruncateLeft)),
    )
    .unwrap();
    assert_eq!(cut.trained(), r.trained());
    assert_eq!((cut.total(), cut.truncated), (r.total() - 2, 2));
}

fn chatml(messages: &[Message], gen: bool) -> Result<String, String> {
    let mut s = String::new();
    for m in messages {
        s.push_str(&format!(
            "<|im_start|>{}\n{}<|im_end|>\n",
            m.role.as_str(),
            m.content
        ));
    }
    if gen {
        s.push_str("<|im_start|>assistant\n");
    }
    Ok(s)
}

fn chatml_tok() -> Tokenizer {
    let mut tok = train_tokenizer(corpus().into_iter(), 400).unwrap();
    tok.add_special_tokens(&[
        AddedToken::from("<|im_start|>", true),
        AddedToken::from("<|im_end|>", true),
    ]);
    tok
}

#[test]
fn jinja_style_template_trains_content_and_end_of_turn() {
    let (text, spans, stable) = trained_spans(&chatml, &conv()).unwrap();
    assert!(stable);
    let got: Vec<&str> = spans.iter().map(|s| &text[s.clone()]).collect();
    assert_eq!(
        got,
        vec!["north of the river<|im_end|>\n", "south<|im_end|>\n"]
    );

    let tok = chatml_tok();
    let r = render_with_template(&tok, &chatml, &conv()).unwrap();
    assert_eq!(
        r.bracketed(),
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nwhere is town 3<|im_end|>\n<|im_start|>assistant\n[[north of the river<|im_end|>\n]]<|im_start|>user\nand town 4<|im_end|>\n<|im_start|>assistant\n[[south<|im_end|>\n]]"
    );
    let end = tok.token_to_id("<|im_end|>").unwrap();
    let trained_ends = r.tokens.iter().filter(|t| t.trained && t.id == end).count();
    let all_ends = r.tokens.iter().filter(|t| t.id == end).count();
    assert_eq!((trained_ends, all_ends), (2, 5));
    let runs_text: String = r.runs.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        runs_text,
        chatml(
            match &conv() {
                ChatExample::Chat { messages } => messages,
                _ => unreachable!(),
            },
            false
        )
        .unwrap()
    );
}

/// A template that closes the whole conversation with a marker, so a shorter conversation's
/// rendering is not a prefix of a longer one's.
fn closing(messages: &[Message], gen: bool) -> Result<String, String> {
    let mut s = String::new();
    for m in messages {
        s.push_str(&format!("[{}] {}\n", m.role.as_str(), m.content));
    }
    s.push_str(if gen { "[assistant] " } else { "[done]" });
    Ok(s)
}

/// Drops earlier assistant turns' "(draft)" notes, as reasoning templates drop past thinking.
fn rewriting(messages: &[Message], _gen: bool) -> Result<String, String> {
    let last = messages.len().saturating_sub(1);
    let mut s = String::new();
    for (i, m) in messages.iter().enumerate() {
        let c = if i != last {
            m.content.replace(" (draft)", "")
        } else {
            m.content.clone()
        };
        s.push_str(&format!("[{}] {c}\n", m.role.as_str()));
    }
    Ok(s)
}

#[test]
fn non_prefix_stable_templates_fall_back_to_the_content() {
    let ex = ChatExample::Chat {
        messages: vec![
            Message::new(Role::User, "q1"),
            Message::new(Role::Assistant, "a1 (draft)"),
            Message::new(Role::User, "q2"),
            Message::new(Role::Assistant, "a2"),
        ],
    };
    let (text, spans, stable) = trained_spans(&closing, &ex).unwrap();
    assert!(!stable);
    let got: Vec<&str> = spans.iter().map(|s| &text[s.clone()]).collect();
    assert_eq!(got, vec!["a1 (draft)", "a2"]);
    // Content the template rewrote cannot be located: an error naming the message.
    let e = trained_spans(&rewriting, &ex).unwrap_err().to_string();
    assert!(e.contains("message 1"), "{e}");
    let broken = |_: &[Message], _: bool| -> Result<String, String> { Err("boom".into()) };
    let e = trained_spans(&broken, &ex).unwrap_err().to_string();
    assert!(e.contains("boom"), "{e}");
}
