//! Rebuild a Hugging Face `tokenizers::Tokenizer` from the vocabulary that llama.cpp stores in
//! a GGUF file's metadata (`tokenizer.ggml.*`).
//!
//! llama.cpp keeps the BPE vocabulary, merges and token types, plus a `tokenizer.ggml.pre`
//! name that selects the pre-tokenizer regexes. We translate that into the same
//! `tokenizer.json` a Hugging Face checkpoint would carry, so a GGUF model and its HF twin
//! tokenise identically and Keel can export the tokenizer unchanged.

use candle_core::quantized::gguf_file::Value;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use tokenizers::Tokenizer;

/// llama.cpp token types (`llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// Special-token ids and flags read alongside the vocabulary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GgufSpecialTokens {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
}

fn get<'a>(md: &'a HashMap<String, Value>, key: &str) -> Result<&'a Value, String> {
    md.get(key)
        .ok_or_else(|| format!("metadata key {key} is missing"))
}

fn string_array(md: &HashMap<String, Value>, key: &str) -> Result<Vec<String>, String> {
    let arr = get(md, key)?
        .to_vec()
        .map_err(|_| format!("metadata {key} is not an array"))?;
    arr.iter()
        .enumerate()
        .map(|(i, v)| {
            v.to_string()
                .cloned()
                .map_err(|_| format!("metadata {key}[{i}] is not a string"))
        })
        .collect()
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::U8(x) => Some(*x as i64),
        Value::I8(x) => Some(*x as i64),
        Value::U16(x) => Some(*x as i64),
        Value::I16(x) => Some(*x as i64),
        Value::U32(x) => Some(*x as i64),
        Value::I32(x) => Some(*x as i64),
        Value::U64(x) => i64::try_from(*x).ok(),
        Value::I64(x) => Some(*x),
        _ => None,
    }
}

fn opt_id(md: &HashMap<String, Value>, key: &str, vocab: usize) -> Result<Option<u32>, String> {
    match md.get(key) {
        None => Ok(None),
        Some(v) => {
            let id = int_of(v).ok_or_else(|| format!("metadata {key} is not an integer"))?;
            if id < 0 || id as usize >= vocab {
                return Err(format!(
                    "metadata {key} = {id} is outside the vocabulary (size {vocab})"
                ));
            }
            Ok(Some(id as u32))
        }
    }
}

/// The pre-tokenizer llama.cpp applies for a `tokenizer.ggml.pre` name, as HF JSON.
/// Regexes mirror llama.cpp's `llm_tokenizer_bpe` table; GPT-2's split is what HF's
/// `ByteLevel(use_regex=true)` does itself.
fn pre_tokenizer_for(pre: &str) -> Result<Json, String> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    match pre {
        // Plain GPT-2 split.
        "default" | "gpt-2" | "gpt2" | "mpt" | "olmo" | "jais" => Ok(byte_level(true)),
        // Every digit on its own, then GPT-2's split (StarCoder family, SmolLM, …).
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            Ok(json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                byte_level(true)
            ]}))
        }
        // Llama 3 / tiktoken-style split (numbers in groups of up to three).
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral" => {
            let re = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
            Ok(json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false},
                byte_level(false)
            ]}))
        }
        other => Err(format!(
            "tokenizer.ggml.pre = {other:?} is not supported (known: default, gpt2, smollm, starcoder, llama-bpe, …)"
        )),
    }
}

/// Build the tokenizer and special tokens from GGUF metadata.
pub fn tokenizer_from_metadata(
    md: &HashMap<String, Value>,
) -> Result<(Tokenizer, GgufSpecialTokens), String> {
    let model = get(md, "tokenizer.ggml.model")?
        .to_string()
        .map_err(|_| "metadata tokenizer.ggml.model is not a string".to_string())?;
    if model != "gpt2" {
        return Err(format!(
            "tokenizer.ggml.model = {model:?} is not supported (only byte-level BPE, \"gpt2\")"
        ));
    }
    let tokens = string_array(md, "tokenizer.ggml.tokens")?;
    let merges = string_array(md, "tokenizer.ggml.merges")?;
    let n = tokens.len();
    let types: Vec<i64> = match md.get("tokenizer.ggml.token_type") {
        Some(v) => {
            let arr = v
                .to_vec()
                .map_err(|_| "metadata tokenizer.ggml.token_type is not an array")?;
            if arr.len() != n {
                return Err(format!(
                    "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {n}",
                    arr.len()
                ));
            }
            arr.iter().map(|v| int_of(v).unwrap_or(1)).collect()
        }
        None => vec![1; n],
    };
    let pre = match md.get("tokenizer.ggml.pre") {
        Some(v) => v
            .to_string()
            .map_err(|_| "tokenizer.ggml.pre is not a string")?
            .clone(),
        None => "default".to_string(),
    };

    let mut vocab = serde_json::Map::with_capacity(n);
    for (i, t) in tokens.iter().enumerate() {
        if vocab.insert(t.clone(), json!(i)).is_some() {
            return Err(format!("tokenizer.ggml.tokens has the token {t:?} twice"));
        }
    }
    // GGUF stores merges as "left right"; byte-level tokens never contain a literal space
    // (it is mapped to 'Ġ'), so the first space separates the pair.
    let mut pairs = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        let (a, b) = m
            .split_once(' ')
            .ok_or_else(|| format!("tokenizer.ggml.merges[{i}] = {m:?} is not a pair"))?;
        pairs.push(json!([a, b]));
    }
    let added: Vec<Json> = types
        .iter()
        .enumerate()
        .filter(|(_, &t)| t == TOKEN_TYPE_CONTROL || t == TOKEN_TYPE_USER_DEFINED)
        .map(|(i, &t)| {
            json!({"id": i, "content": tokens[i], "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": t == TOKEN_TYPE_CONTROL})
        })
        .collect();

    let special = GgufSpecialTokens {
        bos: opt_id(md, "tokenizer.ggml.bos_token_id", n)?,
        eos: opt_id(md, "tokenizer.ggml.eos_token_id", n)?,
        add_bos: matches!(
            md.get("tokenizer.ggml.add_bos_token"),
            Some(Value::Bool(true))
        ),
    };
    let post_processor = match (special.add_bos, special.bos) {
        (true, Some(bos)) => {
            let b = &tokens[bos as usize];
            json!({"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {b: {"id": b, "ids": [bos], "tokens": [b]}}})
        }
        _ => {
            json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true})
        }
    };
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer_for(&pre)?,
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": pairs}
    });
    let tok: Tokenizer = serde_json::from_value::<Tokenizer>(spec)
        .map_err(|e| format!("could not build a tokenizer from the GGUF vocabulary: {e}"))?;
    Ok((tok, special))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::String(x.to_string())
    }

    /// A toy byte-level vocabulary: single characters, one merge, one control token.
    fn toy_metadata(pre: &str) -> HashMap<String, Value> {
        let tokens = ["<|end|>", "h", "i", "hi", "Ġ", "1", "2", "Ġhi"];
        let mut md = HashMap::new();
        md.insert("tokenizer.ggml.model".into(), s("gpt2"));
        md.insert("tokenizer.ggml.pre".into(), s(pre));
        md.insert(
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        );
        md.insert(
            "tokenizer.ggml.token_type".into(),
            Value::Array(vec![
                Value::I32(3),
                Value::I32(1),
                Value::I32(1),
                Value::I32(1),
                Value::I32(1),
                Value::I32(1),
                Value::I32(1),
                Value::I32(1),
            ]),
        );
        md.insert(
            "tokenizer.ggml.merges".into(),
            Value::Array(vec![s("h i"), s("Ġ hi")]),
        );
        md.insert("tokenizer.ggml.eos_token_id".into(), Value::U32(0));
        md
    }

    #[test]
    fn builds_bpe_with_merges_digits_and_special_tokens() {
        let (tok, sp) = tokenizer_from_metadata(&toy_metadata("smollm")).unwrap();
        assert_eq!(sp.eos, Some(0));
        let enc = tok.encode("hi hi12<|end|>", false).unwrap();
        assert_eq!(enc.get_ids(), &[3, 7, 5, 6, 0]);
        assert_eq!(tok.decode(&[3, 7, 5, 6], false).unwrap(), "hi hi12");
    }

    #[test]
    fn rejects_unknown_pre_tokenizer_and_bad_ids() {
        let err = tokenizer_from_metadata(&toy_metadata("mystery")).unwrap_err();
        assert!(err.contains("mystery"), "{err}");
        let mut md = toy_metadata("gpt2");
        md.insert("tokenizer.ggml.bos_token_id".into(), Value::U32(99));
        let err = tokenizer_from_metadata(&md).unwrap_err();
        assert!(err.contains("bos_token_id") && err.contains("99"), "{err}");
        md.remove("tokenizer.ggml.merges");
        let err = tokenizer_from_metadata(&md).unwrap_err();
        assert!(err.contains("tokenizer.ggml.merges"), "{err}");
    }
}
