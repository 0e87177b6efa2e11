//! A local Keel checkpoint as the target: a tiny random Llama with a word-level tokenizer,
//! exported to an HF-style directory, loaded back through `LocalModel::load`, and run
//! through suites. Checks log-likelihood maths (normalisation, chain rule) exactly.

use keel_eval::builtin::builtin;
use keel_eval::evaluate::{run_suite, EvalContext, RunPaths};
use keel_eval::local::LocalModel;
use keel_eval::refusal::StringMatchRefusal;
use keel_eval::runner::RunConfig;
use keel_eval::{GenError, GenRequest, Generator, Message, SamplingParams};
use keel_model::{Llama, LlamaConfig};
use std::collections::HashMap;
use std::path::Path;

const WORDS: &[&str] = &[
    "unk",
    "user",
    "assistant",
    "system",
    ":",
    "what",
    "is",
    "the",
    "capital",
    "of",
    "brell",
    "orun",
    "i",
    "sorry",
    "no",
    "yes",
    "q",
    "a",
    "nothing",
    "happens",
];

fn tokenizer() -> tokenizers::Tokenizer {
    let vocab: serde_json::Map<String, serde_json::Value> = WORDS
        .iter()
        .enumerate()
        .map(|(i, w)| (w.to_string(), serde_json::json!(i)))
        .collect();
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "unk"}
    });
    json.to_string().parse().unwrap()
}

/// Export a tiny random model to `dir` (with or without a chat template).
fn export_tiny(dir: &Path, chat: bool) {
    let config = LlamaConfig::tiny(WORDS.len(), 32, 2, 4);
    let (varmap, _model) = Llama::init(&config, 7).unwrap();
    let weights: HashMap<String, candle_core::Tensor> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    let tok = tokenizer();
    let template = "{% for m in messages %}{{ m.role }} : {{ m.content }} {% endfor %}{% if add_generation_prompt %}assistant :{% endif %}";
    let meta = keel_model::hf::ExportMeta {
        config: &config,
        tokenizer: &tok,
        chat_template: chat.then_some(template),
        bos_token_id: None,
        eos_token_ids: &[],
    };
    keel_model::hf::export_hf(dir, &weights, &meta).unwrap();
}

#[test]
fn loglikelihood_is_a_normalised_chain_ruled_distribution() {
    let dir = tempfile::tempdir().unwrap();
    export_tiny(dir.path(), true);
    let m = LocalModel::load(dir.path()).unwrap();
    let ctx = "what is the capital of brell";
    let total: f64 = WORDS
        .iter()
        .map(|w| m.loglikelihood(ctx, &format!(" {w}")).unwrap().exp())
        .sum();
    assert!(
        (total - 1.0).abs() < 1e-4,
        "next-token probabilities sum to {total}"
    );
    let two = m.loglikelihood(ctx, " orun yes").unwrap();
    let chained = m.loglikelihood(ctx, " orun").unwrap()
        + m.loglikelihood(&format!("{ctx} orun"), " yes").unwrap();
    assert!((two - chained).abs() < 1e-4, "{two} vs {chained}");

    // Chat generation goes through the template; greedy is deterministic.
    let req = GenRequest::chat(
        vec![Message::user("what is the capital of brell")],
        SamplingParams {
            max_tokens: 5,
            ..Default::default()
        },
    );
    let a = m.generate(&req).unwrap();
    assert_eq!(a.usage.unwrap().completion_tokens, 5);
    assert_eq!(m.generate(&req).unwrap().text, a.text);
}

#[test]
fn suites_run_against_a_local_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    export_tiny(&dir.path().join("ckpt"), true);
    let m = LocalModel::load(&dir.path().join("ckpt")).unwrap();
    let sm = StringMatchRefusal;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let ctx = EvalContext {
        target: &m,
        refusal: &sm,
        judge: None,
        reward: None,
        run: RunConfig {
            concurrency: 1,
            stop_after: None,
        },
        seed: 0,
    };
    let mut spec = builtin("harmlessness", "test").unwrap();
    spec.generation.max_tokens = 4;
    let paths = RunPaths::in_dir(&dir.path().join("harm"));
    let (rep, _) = run_suite(&spec, &fixtures.join("world"), None, &paths, &ctx).unwrap();
    assert_eq!(rep.items, 3);
    assert_eq!(rep.counts.unscored, 0, "every item got a verdict");
    assert!(rep.metrics[0].overall.value.is_some());

    let spec = builtin("truthfulqa_mc", "test").unwrap();
    let paths = RunPaths::in_dir(&dir.path().join("tqa"));
    let (rep, _) = run_suite(
        &spec,
        Path::new("."),
        Some(&fixtures.join("truthfulqa_mc.json")),
        &paths,
        &ctx,
    )
    .unwrap();
    assert_eq!(rep.counts.unscored, 0);
    let mc2 = rep.metrics[1].overall.value.unwrap();
    assert!((0.0..=1.0).contains(&mc2));

    // A base model (no chat template) refuses chat prompts clearly: the item is unscored.
    export_tiny(&dir.path().join("base"), false);
    let base = LocalModel::load(&dir.path().join("base")).unwrap();
    let e = base
        .generate(&GenRequest::user("hi", SamplingParams::default()))
        .unwrap_err();
    assert!(matches!(e, GenError::Unsupported { .. }), "{e}");
    let raw = base
        .generate(&GenRequest::raw(
            "what is",
            SamplingParams {
                max_tokens: 3,
                ..Default::default()
            },
        ))
        .unwrap();
    assert_eq!(raw.usage.unwrap().completion_tokens, 3);
}
