//! Shared set-up of the SFT tests: a freshly initialised tiny checkpoint (d32, 2 layers) with
//! the tiny world's tokenizer, and the world's SFT examples rendered with Keel's template.

use keel_data::chat::{KeelChatTemplate, TokenizedExample};
use keel_data::sft_mix::world_sft_examples;
use keel_data::tokenizer::{save_tokenizer, train_tokenizer, KeelTokenizer};
use keel_data::world::{generate, Split, WorldConfig};
use keel_model::{Llama, LlamaConfig};
use keel_train::checkpoint;
use std::path::{Path, PathBuf};

/// (base checkpoint dir, tokenizer, train examples, validation examples), examples ≤ 128 tokens.
pub fn setup(
    dir: &Path,
) -> (
    PathBuf,
    KeelTokenizer,
    Vec<TokenizedExample>,
    Vec<TokenizedExample>,
) {
    let w = generate(&WorldConfig::tiny(), 0).unwrap();
    let tok = train_tokenizer(w.corpus.train.iter().map(|d| d.text.as_str()), 400).unwrap();
    let tok_path = dir.join("tokenizer.json");
    save_tokenizer(&tok, &tok_path).unwrap();
    let tk = KeelTokenizer::from_file(&tok_path).unwrap();
    let cfg = LlamaConfig::tiny(tk.vocab_size(), 32, 2, 4);
    let (vm, _m) = Llama::init(&cfg, 1).unwrap();
    let json = std::fs::read(&tok_path).unwrap();
    let base = checkpoint::save_initial(&dir.join("base"), &cfg, &vm, Some(&json)).unwrap();
    let tpl = KeelChatTemplate::new(&tk).unwrap();
    let render = |split| -> Vec<TokenizedExample> {
        world_sft_examples(&w, split, 0.2, 0)
            .unwrap()
            .examples
            .iter()
            .map(|e| tpl.render(&tk, e))
            .filter(|t| t.len() <= 128)
            .collect()
    };
    let (train, val) = (render(Split::Train), render(Split::Validation));
    (base, tk, train, val)
}
