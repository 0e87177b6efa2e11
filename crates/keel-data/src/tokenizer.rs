//! Byte-level BPE tokenizer training and a small wrapper for the rest of Keel.
//!
//! The tokenizer is a standard Hugging Face `tokenizer.json` (GPT-2 style byte-level BPE:
//! ByteLevel pre-tokenizer without prefix space, ByteLevel decoder). All 256 bytes are in the
//! initial alphabet, so any UTF-8 string encodes and decodes back exactly. Chat special tokens
//! take ids 0..7 in the order of [`SPECIAL_TOKENS`].

use crate::error::{DataError, Result};
use crate::world::CorpusDoc;
use std::path::{Path, PathBuf};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, NormalizerWrapper, PostProcessorWrapper, Tokenizer, TokenizerBuilder,
};

pub const PAD: &str = "<|pad|>";
pub const BOS: &str = "<|bos|>";
pub const EOS: &str = "<|eos|>";
pub const SYSTEM: &str = "<|system|>";
pub const USER: &str = "<|user|>";
pub const ASSISTANT: &str = "<|assistant|>";
pub const END: &str = "<|end|>";

/// Reserved tokens; `SPECIAL_TOKENS[i]` has id `i`.
pub const SPECIAL_TOKENS: [&str; 7] = [PAD, BOS, EOS, SYSTEM, USER, ASSISTANT, END];

/// Smallest useful vocabulary: the special tokens plus the 256 byte tokens.
pub const MIN_VOCAB_SIZE: usize = SPECIAL_TOKENS.len() + 256;

/// Train a byte-level BPE tokenizer on `texts`.
pub fn train_tokenizer<I, S>(texts: I, vocab_size: usize) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    if vocab_size < MIN_VOCAB_SIZE {
        return Err(DataError::Tokenizer(format!(
            "vocab_size {vocab_size} is below the minimum of {MIN_VOCAB_SIZE} (256 bytes + {} special tokens)",
            SPECIAL_TOKENS.len()
        )));
    }
    let texts: Vec<S> = texts.collect();
    if texts.iter().all(|t| t.as_ref().trim().is_empty()) {
        return Err(DataError::Tokenizer(
            "cannot train on an empty corpus".into(),
        ));
    }
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(
            SPECIAL_TOKENS
                .iter()
                .map(|t| AddedToken::from(*t, true))
                .collect(),
        )
        .build();
    let mut tok = TokenizerBuilder::<
        BPE,
        NormalizerWrapper,
        ByteLevel,
        PostProcessorWrapper,
        ByteLevelDecoder,
    >::new()
    .with_model(BPE::default())
    .with_normalizer(None)
    .with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)))
    .with_post_processor(None)
    .with_decoder(Some(ByteLevelDecoder::default()))
    .build()
    .map_err(|e| DataError::Tokenizer(e.to_string()))?;
    tok.train(&mut trainer, texts.into_iter())
        .map_err(|e| DataError::Tokenizer(format!("training failed: {e}")))?;
    Ok(Tokenizer::from(tok))
}

/// Read training texts from files: `.jsonl` files as `{"text"}` rows (other fields ignored),
/// anything else as one UTF-8 text. An empty or non-UTF-8 file is an error naming it.
pub fn read_corpus_files(files: &[PathBuf]) -> Result<Vec<String>> {
    if files.is_empty() {
        return Err(DataError::Tokenizer("no corpus files given".into()));
    }
    let mut texts = Vec::new();
    for f in files {
        let before = texts.len();
        if f.extension().is_some_and(|e| e == "jsonl") {
            let docs: Vec<CorpusDoc> = crate::jsonl::read_jsonl(f)?;
            texts.extend(
                docs.into_iter()
                    .map(|d| d.text)
                    .filter(|t| !t.trim().is_empty()),
            );
        } else {
            let bytes = std::fs::read(f).map_err(|e| DataError::io(f, e))?;
            let text = String::from_utf8(bytes).map_err(|e| {
                DataError::invalid(
                    f,
                    format!(
                        "not valid UTF-8 (first bad byte at offset {})",
                        e.utf8_error().valid_up_to()
                    ),
                )
            })?;
            if !text.trim().is_empty() {
                texts.push(text);
            }
        }
        if texts.len() == before {
            return Err(DataError::invalid(f, "corpus file contains no text"));
        }
    }
    Ok(texts)
}

/// Train on corpus files (see [`read_corpus_files`]).
pub fn train_tokenizer_from_files(files: &[PathBuf], vocab_size: usize) -> Result<Tokenizer> {
    train_tokenizer(read_corpus_files(files)?.into_iter(), vocab_size)
}

/// Save as a standard `tokenizer.json`, atomically.
pub fn save_tokenizer(tok: &Tokenizer, path: &Path) -> Result<()> {
    let json = tok
        .to_string(true)
        .map_err(|e| DataError::invalid(path, format!("cannot serialise tokenizer: {e}")))?;
    keel_core::artifact::write_atomic(path, json.as_bytes())?;
    Ok(())
}

/// A loaded Keel tokenizer: plain-text encode/decode plus the chat special-token ids.
///
/// `encode` treats text literally: a user message containing "<|end|>" is encoded as ordinary
/// bytes, never as the special token, so chat formatting cannot be injected through content.
/// Chat templates insert special tokens by id ([`KeelTokenizer::token_id`]).
pub struct KeelTokenizer {
    inner: Tokenizer,
    pad: u32,
    bos: u32,
    eos: u32,
}

impl std::fmt::Debug for KeelTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeelTokenizer(vocab_size={})", self.vocab_size())
    }
}

impl KeelTokenizer {
    /// Load a `tokenizer.json`; errors name the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let tok = Tokenizer::from_bytes(&bytes)
            .map_err(|e| DataError::invalid(path, format!("not a valid tokenizer.json: {e}")))?;
        Self::from_tokenizer(tok).map_err(|e| match e {
            DataError::Tokenizer(m) => DataError::invalid(path, m),
            other => other,
        })
    }

    /// Wrap a tokenizer, checking that it has Keel's special tokens and round-trips bytes.
    pub fn from_tokenizer(mut inner: Tokenizer) -> Result<Self> {
        for (i, t) in SPECIAL_TOKENS.iter().enumerate() {
            match inner.token_to_id(t) {
                Some(id) if id as usize == i => {}
                got => {
                    return Err(DataError::Tokenizer(format!(
                        "special token {t} should have id {i}, found {got:?}"
                    )))
                }
            }
        }
        inner.set_encode_special_tokens(true);
        let tk = KeelTokenizer {
            inner,
            pad: 0,
            bos: 1,
            eos: 2,
        };
        // Every byte value must survive a round trip, or encode/decode would silently corrupt.
        let probe: String = (1u8..=127)
            .map(char::from)
            .chain("é漢🙂<|end|>".chars())
            .collect();
        let ids = tk.try_encode(&probe)?;
        let back = tk.try_decode(&ids)?;
        if back != probe {
            return Err(DataError::Tokenizer(
                "tokenizer does not round-trip text exactly (not byte-level BPE?)".into(),
            ));
        }
        Ok(tk)
    }

    pub fn try_encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| DataError::Tokenizer(format!("encode failed: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn try_decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| DataError::Tokenizer(format!("decode failed: {e}")))
    }

    /// Token ids of `text`, without adding any special token.
    /// Byte-level BPE (checked when the tokenizer was loaded) encodes every string.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.try_encode(text)
            .expect("byte-level BPE encodes every string")
    }

    /// Text of `ids`; special tokens are kept as their literal text, unknown ids are skipped,
    /// and byte sequences that are not valid UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.try_decode(ids)
            .expect("byte-level decoding cannot fail")
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size including special tokens (the embedding table size).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn pad_id(&self) -> u32 {
        self.pad
    }
    pub fn bos_id(&self) -> u32 {
        self.bos
    }
    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}
