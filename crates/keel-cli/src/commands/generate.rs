//! `keel generate`: continue a prompt (or answer it as a chat turn with `--chat`) with a
//! GGUF file or a Hugging Face / Keel checkpoint directory, streaming tokens to stdout.

use anyhow::{Context, Result};
use keel_model::chat_template::ChatMessage;
use keel_model::generate::SamplingParams;
use keel_model::{load_model, LoadedModel};
use std::io::Write;
use std::path::PathBuf;

/// Sampling flags shared by `keel generate` and `keel chat`.
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// 0 = greedy (deterministic); higher = more random.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Sample only among the k most likely tokens.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sample only among the most likely tokens whose probability adds up to p.
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Stop before this text (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Seed for sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn params(&self) -> SamplingParams {
        SamplingParams {
            max_new_tokens: self.max_tokens,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            stop: self.stop.clone(),
            stop_token_ids: vec![],
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// A `.gguf` file or a checkpoint directory (config.json + model.safetensors + tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// The prompt text.
    #[arg(long)]
    pub prompt: String,
    /// Treat the prompt as a user message and wrap it in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// System message for `--chat` (otherwise the template's default, if any).
    #[arg(long, requires = "chat")]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// Load a model with a one-line note on stderr (loading a GGUF takes a few seconds).
pub fn load(path: &std::path::Path) -> Result<LoadedModel> {
    let t = std::time::Instant::now();
    let m = load_model(path).with_context(|| format!("loading model {}", path.display()))?;
    eprintln!(
        "loaded {} ({:.1}M parameters, {} layers, vocab {}) in {:.1}s",
        path.display(),
        m.config.num_params() as f64 / 1e6,
        m.config.num_hidden_layers,
        m.config.vocab_size,
        t.elapsed().as_secs_f64()
    );
    Ok(m)
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let m = load(&args.model)?;
    let ids = if args.chat {
        let mut msgs = Vec::new();
        if let Some(s) = &args.system {
            msgs.push(ChatMessage::system(s.clone()));
        }
        msgs.push(ChatMessage::user(args.prompt.clone()));
        m.encode_chat(&msgs)?
    } else {
        // A plain prompt gets whatever special tokens the tokenizer adds itself (e.g. BOS
        // for Llama tokenizers), as `transformers` does; chat templates spell them out.
        let enc = m
            .tokenizer
            .encode(args.prompt.as_str(), true)
            .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
        enc.get_ids().to_vec()
    };
    let t = std::time::Instant::now();
    let mut out = std::io::stdout().lock();
    let g = m.generate(&ids, &args.sampling.params(), &mut |piece| {
        let _ = out.write_all(piece.as_bytes());
        let _ = out.flush();
    })?;
    writeln!(out)?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "[{} prompt tokens, {} generated, finish: {:?}, {:.1} tokens/s]",
        ids.len(),
        g.num_tokens(),
        g.finish_reason,
        g.num_tokens() as f64 / secs.max(1e-9)
    );
    Ok(())
}
