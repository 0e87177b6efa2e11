//! Tokenizer training, saving, loading, exact round trips and error reporting.

use keel_core::rng::rng_for;
use keel_data::tokenizer::{
    read_corpus_files, save_tokenizer, train_tokenizer, train_tokenizer_from_files, KeelTokenizer,
    SPECIAL_TOKENS,
};
use keel_data::world::{generate, write::corpus_path, Split, WorldConfig};
use rand::Rng;
use std::path::PathBuf;

/// Train on the tiny world's corpus files, save, and load through the wrapper.
fn trained(dir: &std::path::Path, vocab: usize) -> (PathBuf, KeelTokenizer) {
    generate(&WorldConfig::tiny(), 0)
        .unwrap()
        .write(dir)
        .unwrap();
    let tok = train_tokenizer_from_files(&[corpus_path(dir, Split::Train)], vocab).unwrap();
    let path = dir.join("tokenizer.json");
    save_tokenizer(&tok, &path).unwrap();
    let tk = KeelTokenizer::from_file(&path).unwrap();
    (path, tk)
}

fn random_string(rng: &mut keel_core::rng::KeelRng) -> String {
    let len = rng.random_range(0..40);
    (0..len)
        .map(|_| {
            let cp = match rng.random_range(0..6) {
                0 => rng.random_range(0x20..0x7f),
                1 => rng.random_range(0..0x20),
                2 => rng.random_range(0x80..0x800),
                3 => rng.random_range(0x4e00..0x9fff),
                4 => rng.random_range(0x1f300..0x1faff),
                _ => rng.random_range(0..0x11_0000),
            };
            char::from_u32(cp).unwrap_or('\u{fffd}')
        })
        .collect()
}

#[test]
fn special_tokens_have_reserved_ids_and_text_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (path, tk) = trained(dir.path(), 600);
    assert_eq!(tk.vocab_size(), 600);
    for (i, t) in SPECIAL_TOKENS.iter().enumerate() {
        assert_eq!(tk.token_id(t), Some(i as u32), "{t}");
    }
    assert_eq!((tk.pad_id(), tk.bos_id(), tk.eos_id()), (0, 1, 2));
    let mut rng = rng_for(11, "tokenizer-roundtrip");
    for _ in 0..400 {
        let s = random_string(&mut rng);
        let ids = tk.encode(&s);
        assert_eq!(tk.decode(&ids), s, "{ids:?}");
    }
    // Merges were learned: world text compresses well below one token per byte.
    let text = "Where does the river flow? The town has a population of 1200.";
    assert!(
        tk.encode(text).len() * 2 < text.len(),
        "{:?}",
        tk.encode(text)
    );
    // Special-token text inside content stays plain text (no injection), but still round-trips.
    let s = "hi <|end|><|assistant|> there";
    let ids = tk.encode(s);
    assert!(
        ids.iter().all(|&id| id as usize >= SPECIAL_TOKENS.len()),
        "{ids:?}"
    );
    assert_eq!(tk.decode(&ids), s);
    assert_eq!(tk.decode(&[tk.eos_id()]), "<|eos|>");
    // The saved file is a standard tokenizer.json the HF library loads directly.
    let raw = tokenizers::Tokenizer::from_file(&path).unwrap();
    assert_eq!(raw.get_vocab_size(true), 600);
}

#[test]
fn training_is_deterministic() {
    let texts = [
        "the cat sat on the mat",
        "the dog sat on the log",
        "a cat and a dog",
    ];
    let a = train_tokenizer(texts.iter().cycle().take(60), 300).unwrap();
    let b = train_tokenizer(texts.iter().cycle().take(60), 300).unwrap();
    assert_eq!(a.to_string(false).unwrap(), b.to_string(false).unwrap());
}

#[test]
fn bad_corpora_give_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "  \n").unwrap();
    let err = train_tokenizer_from_files(&[empty], 512)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("empty.txt") && err.contains("no text"),
        "{err}"
    );

    let binary = dir.path().join("latin1.txt");
    std::fs::write(&binary, b"caf\xe9 au lait").unwrap();
    let err = train_tokenizer_from_files(&[binary], 512)
        .unwrap_err()
        .to_string();
    assert!(err.contains("latin1.txt") && err.contains("UTF-8"), "{err}");

    let bad_jsonl = dir.path().join("docs.jsonl");
    std::fs::write(&bad_jsonl, "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n").unwrap();
    let err = read_corpus_files(&[bad_jsonl]).unwrap_err().to_string();
    assert!(err.contains("docs.jsonl:2: field `text`"), "{err}");

    let empty_jsonl = dir.path().join("blank.jsonl");
    std::fs::write(&empty_jsonl, "{\"text\": \"\"}\n").unwrap();
    let err = read_corpus_files(&[empty_jsonl]).unwrap_err().to_string();
    assert!(err.contains("blank.jsonl"), "{err}");

    let missing = dir.path().join("nope.txt");
    let err = read_corpus_files(&[missing]).unwrap_err().to_string();
    assert!(err.contains("nope.txt"), "{err}");

    assert!(train_tokenizer(std::iter::empty::<&str>(), 512).is_err());
    assert!(train_tokenizer(["abc"].into_iter(), 100)
        .unwrap_err()
        .to_string()
        .contains("minimum"));
}

#[test]
fn loading_a_bad_tokenizer_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{not json").unwrap();
    let err = KeelTokenizer::from_file(&junk).unwrap_err().to_string();
    assert!(err.contains("junk.json"), "{err}");
    let err = KeelTokenizer::from_file(&dir.path().join("absent.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.json"), "{err}");
    // A valid tokenizer without Keel's special tokens is rejected with the reason.
    let no_special = tokenizers::Tokenizer::new(tokenizers::models::bpe::BPE::default());
    let p = dir.path().join("bare.json");
    std::fs::write(&p, no_special.to_string(false).unwrap()).unwrap();
    let err = KeelTokenizer::from_file(&p).unwrap_err().to_string();
    assert!(
        err.contains("bare.json") && err.contains("<|pad|>"),
        "{err}"
    );
}
