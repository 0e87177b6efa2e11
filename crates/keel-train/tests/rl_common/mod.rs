//! Shared set-up of the RL tests: a tiny fresh checkpoint with the tiny world's tokenizer,
//! and the world's questions with numeric answers.

use keel_data::tokenizer::{save_tokenizer, train_tokenizer, KeelTokenizer};
use keel_data::world::{generate, Category, WorldConfig};
use keel_model::{Llama, LlamaConfig};
use keel_train::checkpoint;
use keel_train::rl::{prompts_from_rows, Candidate, FnReward, RlPrompt};
use std::path::{Path, PathBuf};

/// (base checkpoint dir, train prompts, validation prompts).
pub fn setup(dir: &Path) -> (PathBuf, Vec<RlPrompt>, Vec<RlPrompt>) {
    let w = generate(&WorldConfig::tiny(), 0).unwrap();
    let tok = train_tokenizer(w.corpus.train.iter().map(|d| d.text.as_str()), 400).unwrap();
    let tok_path = dir.join("tokenizer.json");
    save_tokenizer(&tok, &tok_path).unwrap();
    let tk = KeelTokenizer::from_file(&tok_path).unwrap();
    let mut cfg = LlamaConfig::tiny(tk.vocab_size(), 32, 2, 4);
    cfg.max_position_embeddings = 128;
    let (vm, _m) = Llama::init(&cfg, 1).unwrap();
    let json = std::fs::read(&tok_path).unwrap();
    let base = checkpoint::save_initial(&dir.join("base"), &cfg, &vm, Some(&json)).unwrap();
    // The world's questions whose gold is a bare number: arithmetic, ages, "answer with just
    // the number".
    let number_rows = |rows: &[keel_data::world::TaskRow]| {
        let rows: Vec<_> = rows
            .iter()
            .filter(|r| {
                matches!(
                    r.category,
                    Category::Format | Category::Arithmetic | Category::FactQa
                ) && r
                    .gold
                    .as_text()
                    .is_some_and(|g| g.chars().all(|c| c.is_ascii_digit()))
            })
            .cloned()
            .collect();
        prompts_from_rows(&rows, &tk, true).unwrap()
    };
    let train = number_rows(&w.train.instructions);
    let val = number_rows(&w.validation.instructions);
    assert!(
        train.len() >= 8 && !val.is_empty(),
        "{} {}",
        train.len(),
        val.len()
    );
    (base, train, val)
}

/// Partial credit for the format the prompts ask for: the fraction of the answer's
/// non-space characters that are digits (0 for an empty answer). A random model scores a few
/// per cent; a model that answers in bare numbers scores 1.
pub fn digit_reward() -> FnReward<impl Fn(&Candidate<'_>) -> keel_train::Result<f64>> {
    FnReward {
        name: "digit-fraction".into(),
        f: |c: &Candidate<'_>| {
            let chars: Vec<char> = c.text.chars().filter(|c| !c.is_whitespace()).collect();
            if chars.is_empty() {
                return Ok(0.0);
            }
            Ok(chars.iter().filter(|c| c.is_ascii_digit()).count() as f64 / chars.len() as f64)
        },
    }
}

/// Objective values of the metrics log, in step order.
pub fn series(run: &Path, key: &str) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get(key).and_then(|x| x.as_f64()))
        .collect()
}
