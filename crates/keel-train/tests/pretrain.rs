//! End-to-end trainer behaviour: learning, exact resume, NaN guard, bad checkpoints.

use candle_nn::VarMap;
use keel_model::{Llama, LlamaConfig};
use keel_train::checkpoint;
use keel_train::data::TokenStream;
use keel_train::pretrain::{pretrain, PretrainConfig, RunOptions};
use keel_train::TrainError;
use std::collections::HashMap;
use std::path::Path;

fn stream(n: usize, vocab: u32, seed: u32) -> TokenStream {
    // A learnable sequence: a repeating phrase with a little seeded variation.
    let mut ids = Vec::with_capacity(n);
    let mut x = seed;
    for i in 0..n {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let base = (i % 7) as u32 + 1;
        ids.push(if x.is_multiple_of(10) {
            (x >> 16) % vocab
        } else {
            base
        });
    }
    let bytes = vec![1; n];
    TokenStream { ids, bytes }
}

fn model_cfg() -> LlamaConfig {
    LlamaConfig::tiny(16, 32, 2, 4)
}

fn train_cfg() -> PretrainConfig {
    PretrainConfig {
        seq_len: 16,
        batch_size: 4,
        max_steps: 12,
        warmup_steps: 2,
        lr: 1e-2,
        eval_every: 6,
        eval_windows: 4,
        checkpoint_every: 4,
        keep_checkpoints: 5,
        seed: 3,
        ..Default::default()
    }
}

fn weights(dir: &Path) -> HashMap<String, Vec<f32>> {
    checkpoint::load_tensors(&dir.join("model.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn loss_falls_and_validation_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = train_cfg();
    cfg.max_steps = 60;
    cfg.eval_every = 0;
    let out = pretrain(
        &model_cfg(),
        &cfg,
        &stream(4000, 16, 1),
        &stream(600, 16, 2),
        dir.path(),
        RunOptions::default(),
    )
    .unwrap();
    let v = out.validation.unwrap();
    // Uniform guessing over 16 tokens costs ln 16 = 2.77 nats.
    assert!(v.loss < 1.5, "validation loss {} did not fall", v.loss);
    assert!((v.bits_per_byte - v.loss / std::f64::consts::LN_2).abs() < 1e-9);
    let log = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("\"loss\"")).count(), 60);
}

#[test]
fn resumed_run_is_bit_identical() {
    let (train, val) = (stream(3000, 16, 1), stream(400, 16, 2));
    let a = tempfile::tempdir().unwrap();
    let full = pretrain(
        &model_cfg(),
        &train_cfg(),
        &train,
        &val,
        a.path(),
        RunOptions::default(),
    )
    .unwrap();

    let b = tempfile::tempdir().unwrap();
    let first = pretrain(
        &model_cfg(),
        &train_cfg(),
        &train,
        &val,
        b.path(),
        RunOptions {
            stop_after: Some(8),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(first.steps, 8);
    let second = pretrain(
        &model_cfg(),
        &train_cfg(),
        &train,
        &val,
        b.path(),
        RunOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(second.resumed_from, Some(8));
    assert_eq!(second.steps, 12);
    let (wa, wb) = (
        weights(&full.final_checkpoint),
        weights(&second.final_checkpoint),
    );
    assert_eq!(wa.len(), wb.len());
    for (k, va) in &wa {
        assert_eq!(va, &wb[k], "tensor {k} differs after resume");
    }
    // The log reads as one run: 12 training records, no duplicates.
    let log = std::fs::read_to_string(b.path().join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("\"loss\"")).count(), 12);
}

#[test]
fn non_finite_loss_stops_with_last_checkpoint_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = train_cfg();
    cfg.lr = 1e30; // diverges after the first update
    cfg.warmup_steps = 0;
    cfg.grad_clip = 0.0;
    cfg.checkpoint_every = 1;
    let err = pretrain(
        &model_cfg(),
        &cfg,
        &stream(3000, 16, 1),
        &stream(400, 16, 2),
        dir.path(),
        RunOptions::default(),
    )
    .unwrap_err();
    let TrainError::NonFinite {
        step,
        last_checkpoint,
        ..
    } = &err
    else {
        panic!("expected NonFinite, got {err}");
    };
    let ck = last_checkpoint
        .clone()
        .expect("a checkpoint was written before divergence");
    assert!(*step >= 2);
    assert!(err.to_string().contains(&ck.display().to_string()));
    // The surviving checkpoint is the latest one and loads cleanly with finite weights.
    assert_eq!(checkpoint::latest(dir.path()).unwrap().unwrap(), ck);
    for (k, v) in weights(&ck) {
        assert!(
            v.iter().all(|x| x.is_finite()),
            "{k} not finite in surviving checkpoint"
        );
    }
}

#[test]
fn corrupt_and_mismatched_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = PretrainConfig {
        max_steps: 2,
        ..train_cfg()
    };
    let out = pretrain(
        &model_cfg(),
        &cfg,
        &stream(3000, 16, 1),
        &stream(400, 16, 2),
        dir.path(),
        RunOptions::default(),
    )
    .unwrap();
    let file = out.final_checkpoint.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();

    // Truncated file.
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let (_vm, _m) = Llama::init(&model_cfg(), 0).unwrap();
    let vm: VarMap = _vm;
    let err = checkpoint::load_weights_into(&model_cfg(), &vm, &file)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("corrupt"),
        "{err}"
    );

    // Garbage file.
    std::fs::write(&file, b"\x00\x01not a safetensors file").unwrap();
    let err = checkpoint::load_weights_into(&model_cfg(), &vm, &file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");

    // Weights that do not match the config.
    std::fs::write(&file, &bytes).unwrap();
    let other = LlamaConfig::tiny(16, 64, 2, 4);
    let (vm2, _m2) = Llama::init(&other, 0).unwrap();
    let err = checkpoint::load_weights_into(&other, &vm2, &file)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("shape") && err.contains("model.safetensors"),
        "{err}"
    );
}

#[test]
fn token_outside_vocab_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let err = pretrain(
        &model_cfg(),
        &train_cfg(),
        &stream(3000, 40, 1),
        &stream(400, 16, 2),
        dir.path(),
        RunOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("outside the model's vocabulary"), "{err}");
}
