//! What a pretrained (not yet instruction-tuned) model can be asked: greedy fact completion
//! on cloze prompts and a few sample continuations. Prompts start right after an EOS, as
//! documents did in pretraining.

use anyhow::Result;
use keel_data::world;
use keel_model::generate::{generate, SamplingParams};
use keel_model::Llama;
use std::path::Path;

fn prompt_ids(tok: &tokenizers::Tokenizer, eos: u32, text: &str) -> Result<Vec<u32>> {
    let mut ids = vec![eos];
    ids.extend(
        tok.encode(text, false)
            .map_err(anyhow::Error::msg)?
            .get_ids(),
    );
    Ok(ids)
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
        let ids = prompt_ids(tok, eos, &r.prompt)?;
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

/// Greedy continuations of `prompts` (up to 40 tokens each).
pub fn samples(
    model: &Llama,
    tok: &tokenizers::Tokenizer,
    eos: u32,
    prompts: &[String],
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for p in prompts {
        let ids = prompt_ids(tok, eos, p)?;
        let params = SamplingParams {
            stop_token_ids: vec![eos],
            ..SamplingParams::greedy(40)
        };
        let g = generate(model, tok, &ids, &params, &mut |_| {})?;
        out.push((p.clone(), g.text));
    }
    Ok(out)
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

pub fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}
