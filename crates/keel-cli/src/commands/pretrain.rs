//! `keel pretrain`: next-token prediction on a text corpus, from scratch.

use anyhow::{bail, Context, Result};
use keel_data::tokenizer::read_corpus_files;
use keel_model::LlamaConfig;
use keel_train::data::TokenStream;
use keel_train::pretrain::{pretrain, PretrainConfig, RunOptions};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct PretrainArgs {
    /// Training corpus files: `{"text": …}` JSONL (one document per row) or UTF-8 text (one document per file).
    #[arg(long, required = true, num_args = 1..)]
    pub corpus: Vec<PathBuf>,
    /// Validation corpus files (same formats), for validation loss and bits per byte.
    #[arg(long, required = true, num_args = 1..)]
    pub validation: Vec<PathBuf>,
    /// A Hugging Face `tokenizer.json`.
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Run directory: checkpoints, metrics.jsonl, run.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Model width.
    #[arg(long, default_value_t = 128)]
    pub d_model: usize,
    #[arg(long, default_value_t = 4)]
    pub layers: usize,
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// Training config as JSON (any subset of fields; flags below override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long)]
    pub seq_len: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub grad_accum: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue from the run directory's latest checkpoint.
    #[arg(long)]
    pub resume: bool,
}

/// The end-of-text token of a tokenizer: Keel's own, or the usual names in HF tokenizers.
pub fn eos_id(tok: &tokenizers::Tokenizer, path: &Path) -> Result<u32> {
    for name in [
        "<|eos|>",
        "<|endoftext|>",
        "</s>",
        "<|im_end|>",
        "<|end_of_text|>",
    ] {
        if let Some(id) = tok.token_to_id(name) {
            return Ok(id);
        }
    }
    bail!(
        "{}: no end-of-text token (<|eos|>, <|endoftext|>, </s>) in the vocabulary",
        path.display()
    )
}

pub fn load_tokenizer(path: &Path) -> Result<tokenizers::Tokenizer> {
    tokenizers::Tokenizer::from_file(path)
        .map_err(|e| anyhow::anyhow!("{}: not a readable tokenizer.json: {e}", path.display()))
}

pub fn train_config(args: &PretrainArgs) -> Result<PretrainConfig> {
    let mut cfg: PretrainConfig = match &args.config {
        Some(p) => {
            serde_json::from_slice(&std::fs::read(p).with_context(|| p.display().to_string())?)
                .with_context(|| format!("{}: invalid training config", p.display()))?
        }
        None => PretrainConfig::default(),
    };
    if let Some(v) = args.steps {
        cfg.max_steps = v;
    }
    if let Some(v) = args.seq_len {
        cfg.seq_len = v;
    }
    if let Some(v) = args.batch_size {
        cfg.batch_size = v;
    }
    if let Some(v) = args.grad_accum {
        cfg.grad_accum = v;
    }
    if let Some(v) = args.lr {
        cfg.lr = v;
    }
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
    Ok(cfg)
}

pub fn run(args: PretrainArgs) -> Result<()> {
    let tok = load_tokenizer(&args.tokenizer)?;
    let eos = eos_id(&tok, &args.tokenizer)?;
    let cfg = train_config(&args)?;
    let mut model_cfg = LlamaConfig::tiny(
        tok.get_vocab_size(true),
        args.d_model,
        args.layers,
        args.heads,
    );
    model_cfg.max_position_embeddings = model_cfg.max_position_embeddings.max(cfg.seq_len);
    model_cfg.eos_token_id = Some(eos);
    model_cfg.bos_token_id = tok.token_to_id("<|bos|>");
    model_cfg.validate()?;

    let train = TokenStream::from_docs(&tok, &read_corpus_files(&args.corpus)?, eos)?;
    let val = TokenStream::from_docs(&tok, &read_corpus_files(&args.validation)?, eos)?;
    eprintln!(
        "pretrain: {} params, {} train tokens, {} validation tokens, {} steps × {} tokens",
        model_cfg.num_params(),
        train.len(),
        val.len(),
        cfg.max_steps,
        cfg.batch_size * cfg.seq_len * cfg.grad_accum
    );
    let tokenizer_json = std::fs::read(&args.tokenizer)?;
    let out = pretrain(
        &model_cfg,
        &cfg,
        &train,
        &val,
        &args.out,
        RunOptions {
            resume: args.resume,
            tokenizer_json: Some(tokenizer_json),
            show_progress: true,
            ..Default::default()
        },
    )?;
    keel_core::artifact::write_json_atomic(&args.out.join("pretrain.json"), &out)?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
