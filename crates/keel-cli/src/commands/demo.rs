//! `keel demo`: the embedded default, end to end, with every stage's effect as numbers.
//!
//! world → tokenizer → pretrain → base-model evaluation (validation bits per byte and
//! fact-completion accuracy on held-out phrasings) → sample generations → `summary.md`.
//! Later stages (SFT, preference learning, guard, red-team) extend this same command.

use anyhow::{Context, Result};
use keel_data::world::{self, Split, WorldConfig};
use keel_model::generate::{generate, SamplingParams};
use keel_model::{Llama, LlamaConfig};
use keel_train::data::TokenStream;
use keel_train::pretrain::{pretrain, PretrainConfig, RunOptions};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Run directory (world, tokenizer, checkpoints, metrics, summary.md).
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// `default` (the ~10-minute pipeline) or `tiny` (seconds, for smoke tests).
    #[arg(long, default_value = "default", value_parser = ["default", "tiny"])]
    pub size: String,
    /// Override the pretraining step count.
    #[arg(long)]
    pub pretrain_steps: Option<u64>,
}

/// Sizes of the demo's model and runs, by `--size`.
struct Plan {
    world: WorldConfig,
    vocab: usize,
    d_model: usize,
    layers: usize,
    heads: usize,
    pretrain: PretrainConfig,
    cloze_items: usize,
}

fn plan(args: &DemoArgs) -> Plan {
    let tiny = args.size == "tiny";
    let mut pretrain = PretrainConfig {
        seq_len: if tiny { 64 } else { 128 },
        batch_size: if tiny { 8 } else { 16 },
        max_steps: if tiny { 30 } else { 400 },
        lr: 3e-3,
        warmup_steps: if tiny { 5 } else { 40 },
        eval_every: if tiny { 15 } else { 100 },
        eval_windows: if tiny { 8 } else { 48 },
        checkpoint_every: if tiny { 15 } else { 200 },
        seed: args.seed,
        ..Default::default()
    };
    if let Some(s) = args.pretrain_steps {
        pretrain.max_steps = s;
    }
    Plan {
        world: if tiny {
            WorldConfig::tiny()
        } else {
            WorldConfig::default()
        },
        vocab: if tiny { 512 } else { 2048 },
        d_model: if tiny { 64 } else { 128 },
        layers: if tiny { 2 } else { 4 },
        heads: 4,
        pretrain,
        cloze_items: if tiny { 20 } else { 300 },
    }
}

/// Greedy-complete each cloze prompt; correct when the continuation starts with the answer.
pub fn fact_completion_accuracy(
    model: &Llama,
    tok: &tokenizers::Tokenizer,
    eos: u32,
    rows: &[world::rows::ClozeRow],
) -> Result<(usize, usize)> {
    let bar = keel_train::progress::bar(rows.len() as u64, "cloze", true);
    let mut correct = 0;
    for r in rows {
        // Documents start right after an EOS in pretraining, so prompts do too.
        let mut ids = vec![eos];
        ids.extend(
            tok.encode(r.prompt.as_str(), false)
                .map_err(anyhow::Error::msg)?
                .get_ids(),
        );
        let answer_len = tok
            .encode(r.answer.as_str(), false)
            .map_err(anyhow::Error::msg)?
            .len();
        let params = SamplingParams {
            stop_token_ids: vec![eos],
            ..SamplingParams::greedy(answer_len + 2)
        };
        let g = generate(model, tok, &ids, &params, &mut |_| {})?;
        if g.text.trim_start().starts_with(r.answer.trim()) {
            correct += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((correct, rows.len()))
}

fn samples(
    model: &Llama,
    tok: &tokenizers::Tokenizer,
    eos: u32,
    prompts: &[String],
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for p in prompts {
        let mut ids = vec![eos];
        ids.extend(
            tok.encode(p.as_str(), false)
                .map_err(anyhow::Error::msg)?
                .get_ids(),
        );
        let params = SamplingParams {
            stop_token_ids: vec![eos],
            ..SamplingParams::greedy(40)
        };
        let g = generate(model, tok, &ids, &params, &mut |_| {})?;
        out.push((p.clone(), g.text));
    }
    Ok(out)
}

fn stage(n: usize, total: usize, name: &str) -> Instant {
    eprintln!("\n[{n}/{total}] {name}");
    Instant::now()
}

pub fn run(args: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let p = plan(&args);
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    let total = 5;
    let mut summary = String::new();
    writeln!(summary, "# Keel demo run\n")?;
    writeln!(
        summary,
        "Seed {}, size `{}`. Every figure below comes from this run.\n",
        args.seed, args.size
    )?;
    writeln!(summary, "| stage | result | time |\n|---|---|---|")?;

    // 1. World.
    let t = stage(1, total, "world: generating the synthetic world");
    let w = world::generate(&p.world, args.seed)?;
    let world_dir = out.join("world");
    let ws = w.write(&world_dir)?;
    eprint!("{ws}");
    writeln!(
        summary,
        "| world | {} entities, {:.2} MB training text, {} files (manifest with sha256) | {:.1}s |",
        ws.entities,
        ws.corpus_train_text_bytes as f64 / 1e6,
        ws.files.len(),
        t.elapsed().as_secs_f64()
    )?;

    // 2. Tokenizer.
    let t = stage(2, total, "tokenizer: training byte-level BPE");
    let tok = keel_data::tokenizer::train_tokenizer(
        w.corpus.train.iter().map(|d| d.text.as_str()),
        p.vocab,
    )?;
    let tok_path = out.join("tokenizer.json");
    keel_data::tokenizer::save_tokenizer(&tok, &tok_path)?;
    let eos = super::pretrain::eos_id(&tok, &tok_path)?;
    let train_docs: Vec<String> = w.corpus.train.iter().map(|d| d.text.clone()).collect();
    let val_docs: Vec<String> = w.corpus.validation.iter().map(|d| d.text.clone()).collect();
    let train = TokenStream::from_docs(&tok, &train_docs, eos)?;
    let val = TokenStream::from_docs(&tok, &val_docs, eos)?;
    let probe_docs: Vec<String> = w
        .corpus
        .heldout_phrasing
        .iter()
        .map(|d| d.text.clone())
        .collect();
    let probe = TokenStream::from_docs(&tok, &probe_docs, eos)?;
    let bytes: u64 = train.bytes.iter().map(|&b| b as u64).sum();
    writeln!(
        summary,
        "| tokenizer | vocab {}, {} training tokens ({:.2} bytes/token) | {:.1}s |",
        tok.get_vocab_size(true),
        train.len(),
        bytes as f64 / train.len() as f64,
        t.elapsed().as_secs_f64()
    )?;

    // 3. Pretraining.
    let t = stage(
        3,
        total,
        "pretrain: next-token prediction on the world corpus",
    );
    let mut mcfg = LlamaConfig::tiny(tok.get_vocab_size(true), p.d_model, p.layers, p.heads);
    mcfg.max_position_embeddings = 512;
    mcfg.eos_token_id = Some(eos);
    mcfg.bos_token_id = tok.token_to_id(keel_data::tokenizer::BOS);
    let tok_json = std::fs::read(&tok_path)?;
    let pre_dir = out.join("pretrain");
    let outcome = pretrain(
        &mcfg,
        &p.pretrain,
        &train,
        &val,
        &pre_dir,
        RunOptions {
            tokenizer_json: Some(tok_json),
            show_progress: true,
            ..Default::default()
        },
    )?;
    let v = outcome
        .validation
        .context("pretraining ended without an evaluation")?;
    writeln!(
        summary,
        "| pretrain | {} params, {} steps, train loss {:.3}, {:.0} tokens/s | {:.1}s |",
        mcfg.num_params(),
        outcome.steps,
        outcome.train_loss,
        outcome.tokens_per_sec,
        t.elapsed().as_secs_f64()
    )?;

    // 4. Base-model evaluation.
    let t = stage(4, total, "evaluate: base model");
    let model = load_checkpoint_model(&outcome.final_checkpoint)?;
    let test_cloze: Vec<_> = w
        .banks(Split::Test)
        .facts
        .iter()
        .filter(|r| r.heldout_phrasing)
        .take(p.cloze_items)
        .cloned()
        .collect();
    let train_cloze: Vec<_> = w
        .banks(Split::Train)
        .facts
        .iter()
        .take(p.cloze_items)
        .cloned()
        .collect();
    let (tc, tn) = fact_completion_accuracy(&model, &tok, eos, &test_cloze)?;
    let (rc, rn) = fact_completion_accuracy(&model, &tok, eos, &train_cloze)?;
    let untrained = Llama::init(&mcfg, args.seed.wrapping_add(1))?.1;
    let bpb = |m: &Llama, s: &TokenStream| {
        keel_train::pretrain::evaluate(m, s, p.pretrain.seq_len, p.pretrain.eval_windows)
    };
    let before = bpb(&untrained, &val)?;
    let probe_after = bpb(&model, &probe)?;
    let probe_before = bpb(&untrained, &probe)?;
    writeln!(
        summary,
        "| base eval | validation bits/byte {:.3} (untrained {:.3}); held-out phrasings bits/byte {:.3} (untrained {:.3}); fact completion: test split, held-out phrasings {}/{} = {:.1}%, train split {}/{} = {:.1}% | {:.1}s |",
        v.bits_per_byte,
        before.bits_per_byte,
        probe_after.bits_per_byte,
        probe_before.bits_per_byte,
        tc,
        tn,
        pct(tc, tn),
        rc,
        rn,
        pct(rc, rn),
        t.elapsed().as_secs_f64()
    )?;

    // 5. Samples.
    let t = stage(5, total, "samples: greedy continuations");
    let prompts: Vec<String> = test_cloze
        .iter()
        .take(4)
        .map(|r| r.prompt.clone())
        .collect();
    let s = samples(&model, &tok, eos, &prompts)?;
    writeln!(
        summary,
        "| samples | {} greedy continuations below | {:.1}s |\n",
        s.len(),
        t.elapsed().as_secs_f64()
    )?;
    writeln!(summary, "## Samples (greedy, base model)\n")?;
    for (prompt, text) in &s {
        writeln!(
            summary,
            "- **{}**{}",
            prompt.trim(),
            text.replace('\n', " ")
        )?;
    }
    writeln!(
        summary,
        "\nTotal time {:.1}s. Metrics per step: `pretrain/metrics.jsonl`.",
        started.elapsed().as_secs_f64()
    )?;
    keel_core::artifact::write_atomic(&out.join("summary.md"), summary.as_bytes())?;
    println!("{summary}");
    eprintln!("summary written to {}", out.join("summary.md").display());
    Ok(())
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// A Keel checkpoint directory as a model (weights checked name by name).
pub fn load_checkpoint_model(dir: &Path) -> Result<Llama> {
    let (cfg, _) = keel_train::checkpoint::read_meta(dir)?;
    let (vm, _) = Llama::init(&cfg, 0)?;
    keel_train::checkpoint::load_weights_into(&cfg, &vm, &dir.join("model.safetensors"))?;
    let vb =
        candle_nn::VarBuilder::from_varmap(&vm, candle_core::DType::F32, &candle_core::Device::Cpu);
    Ok(Llama::load(&cfg, vb)?)
}
