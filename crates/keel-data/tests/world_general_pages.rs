//! The general pages of the pretraining corpus keep the world's split hygiene: no task prompt
//! of any split occurs in training text, and help-desk pages name only training-split
//! entities, so the request → refusal mapping and the held-out entities are still learned or
//! measured where the splits say.

use keel_data::world::{generate, Split, WorldConfig};

/// `name` as a whole word of `text`.
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

const REPLY_TITLES: [&str; 3] = [
    "Replies from the help desk",
    "What our advisers wrote back",
    "Letters the council answered",
];

#[test]
fn general_pages_hold_no_prompts_and_only_training_entities() {
    let cfg = WorldConfig {
        general_pages: 40,
        ..WorldConfig::tiny()
    };
    let w = generate(&cfg, 3).unwrap();
    let without = generate(
        &WorldConfig {
            general_pages: 0,
            ..cfg.clone()
        },
        3,
    )
    .unwrap();
    // The pages are added to the training corpus and nothing else changes.
    assert_eq!(w.corpus.train.len(), without.corpus.train.len() + 40);
    assert_eq!(w.test, without.test);

    let replies: Vec<&str> = w
        .corpus
        .train
        .iter()
        .map(|d| d.text.as_str())
        .filter(|t| REPLY_TITLES.iter().any(|h| t.starts_with(h)))
        .collect();
    assert_eq!(replies.len(), 20, "help-desk pages");
    for (name, split) in w.entities.named() {
        if split != Split::Train {
            if let Some(p) = replies.iter().find(|p| mentions(p, name)) {
                panic!("help-desk page names {split} entity {name}: {p}");
            }
        }
    }
    let train: String = w
        .corpus
        .train
        .iter()
        .map(|d| d.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for split in Split::ALL {
        let b = w.banks(split);
        for r in b.harmful.iter().chain(&b.benign_sensitive) {
            assert!(
                !train.contains(&r.prompt),
                "{split} prompt in the training corpus: {}",
                r.prompt
            );
        }
    }
}
