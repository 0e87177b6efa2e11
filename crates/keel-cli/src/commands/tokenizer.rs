//! `keel tokenizer`: train a byte-level BPE tokenizer on a corpus.

use anyhow::Context;
use keel_data::tokenizer::{read_corpus_files, save_tokenizer, train_tokenizer, KeelTokenizer};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokenizerCmd {
    /// Train a byte-level BPE tokenizer and save it as tokenizer.json.
    Train {
        /// Corpus files: .jsonl with a "text" field per row, or plain UTF-8 text (.txt).
        #[arg(long, required = true, num_args = 1..)]
        corpus: Vec<PathBuf>,
        /// Vocabulary size including the 7 special tokens (at least 263).
        #[arg(long, default_value_t = 2048)]
        vocab_size: usize,
        /// Where to write tokenizer.json.
        #[arg(long, default_value = "tokenizer.json")]
        out: PathBuf,
    },
}

pub fn run(cmd: TokenizerCmd) -> anyhow::Result<()> {
    match cmd {
        TokenizerCmd::Train {
            corpus,
            vocab_size,
            out,
        } => {
            let start = std::time::Instant::now();
            let texts = read_corpus_files(&corpus)?;
            let bytes: usize = texts.iter().map(String::len).sum();
            let tok = train_tokenizer(texts.iter(), vocab_size)?;
            save_tokenizer(&tok, &out)?;
            // Reload through the wrapper: proves the saved file is usable and round-trips.
            let tk = KeelTokenizer::from_file(&out)
                .with_context(|| format!("re-loading {}", out.display()))?;
            let tokens: usize = texts.iter().map(|t| tk.encode(t).len()).sum();
            println!(
                "tokenizer written to {} (vocab {}, {} docs / {:.2} MB from {} file(s), {:.2} bytes per token, {:.1}s)",
                out.display(),
                tk.vocab_size(),
                texts.len(),
                bytes as f64 / 1e6,
                corpus.len(),
                bytes as f64 / tokens.max(1) as f64,
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}
