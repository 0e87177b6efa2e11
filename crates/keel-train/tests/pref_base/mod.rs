//! Shared set-up of the preference tests (reward model, DPO family, LoRA DPO): a freshly
//! initialised tiny checkpoint (d32, 2 layers) with the tiny world's tokenizer, and the
//! world's preference pairs.

// Each test binary uses its own subset.
#![allow(dead_code)]

use keel_data::preference::{world_pairs, PreferencePair};
use keel_data::tokenizer::{save_tokenizer, train_tokenizer, KeelTokenizer};
use keel_data::world::{generate, WorldConfig};
use keel_model::{Llama, LlamaConfig};
use keel_train::checkpoint;
use std::path::{Path, PathBuf};

/// A fresh tiny base checkpoint with the world's tokenizer; world pairs (train, validation).
pub fn setup(dir: &Path, poison: bool) -> (PathBuf, Vec<PreferencePair>, Vec<PreferencePair>) {
    let w = generate(&WorldConfig::tiny(), 0).unwrap();
    let tok = train_tokenizer(w.corpus.train.iter().map(|d| d.text.as_str()), 400).unwrap();
    let tok_path = dir.join("tokenizer.json");
    save_tokenizer(&tok, &tok_path).unwrap();
    let tk = KeelTokenizer::from_file(&tok_path).unwrap();
    let mut cfg = LlamaConfig::tiny(tk.vocab_size(), 32, 2, 4);
    cfg.max_position_embeddings = 256;
    let (vm, _m) = Llama::init(&cfg, 1).unwrap();
    if poison {
        let v = vm.data().lock().unwrap()["model.norm.weight"].clone();
        v.set(&(v.as_tensor() * f64::NAN).unwrap()).unwrap();
    }
    let json = std::fs::read(&tok_path).unwrap();
    let base = checkpoint::save_initial(&dir.join("base"), &cfg, &vm, Some(&json)).unwrap();
    let pairs = |b: &keel_data::world::TaskBanks| -> Vec<PreferencePair> {
        world_pairs(&b.preferences, Path::new("world"))
            .into_iter()
            .map(|p| p.pair)
            .collect()
    };
    (base, pairs(&w.train), pairs(&w.validation))
}

/// ChatML, as SmolLM2 and Qwen use it.
pub const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The Keel checkpoint `base` re-exported as a Hugging Face directory whose tokenizer has
/// ChatML's special tokens instead of Keel's (`<|user|>` → `<|im_start|>`, `<|end|>` →
/// `<|im_end|>`) and whose chat template is ChatML: an imported model, as far as Keel can tell.
pub fn chatml_hf_model(base: &Path, out: &Path) -> PathBuf {
    let json = std::fs::read_to_string(base.join("tokenizer.json")).unwrap();
    let json = json
        .replace("<|user|>", "<|im_start|>")
        .replace("<|end|>", "<|im_end|>");
    let tok: tokenizers::Tokenizer = json.parse().unwrap();
    let config: LlamaConfig =
        serde_json::from_slice(&std::fs::read(base.join("config.json")).unwrap()).unwrap();
    let weights = checkpoint::load_tensors(&base.join("model.safetensors")).unwrap();
    let eos = [tok.token_to_id("<|im_end|>").unwrap()];
    let meta = keel_model::hf::ExportMeta {
        config: &config,
        tokenizer: &tok,
        chat_template: Some(CHATML),
        bos_token_id: None,
        eos_token_ids: &eos,
    };
    keel_model::hf::export_hf(out, &weights, &meta).unwrap();
    out.to_path_buf()
}
