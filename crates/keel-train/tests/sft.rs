//! SFT: the loss mask (by gradients), mask errors, exact resume, and learning on world data,
//! in padding and packing mode.

mod world_base;

use candle_core::{Tensor, Var};
use keel_data::chat::TokenizedExample;
use keel_train::checkpoint;
use keel_train::pretrain::RunOptions;
use keel_train::sft::{evaluate, load_base, sft, PackingMode, SftConfig};
use keel_train::sft_batch::collate;
use keel_train::sft_pack::collate_packed;
use std::path::Path;
use world_base::setup;

fn cfg() -> SftConfig {
    SftConfig {
        seq_len: 128,
        batch_size: 8,
        max_steps: 10,
        warmup_steps: 2,
        lr: 3e-3,
        eval_every: 5,
        checkpoint_every: 4,
        keep_checkpoints: 5,
        ..Default::default()
    }
}

#[test]
fn loss_mask_zeroes_prompt_gradients_and_trains_assistant_and_end() {
    let dir = tempfile::tempdir().unwrap();
    let (base, tk, train, _) = setup(dir.path());
    let end = tk.token_id(keel_data::tokenizer::END).unwrap();
    let m = load_base(&base).unwrap();
    let rows: Vec<&TokenizedExample> = train.iter().take(3).collect();
    let b = collate(&rows, 0).unwrap();
    // d loss / d logits through the same masked cross-entropy the trainer uses.
    let logits = m.model.forward(&b.x, None).unwrap().detach();
    let (bs, t, v) = logits.dims3().unwrap();
    let lv = Var::from_tensor(&logits.reshape((bs * t, v)).unwrap()).unwrap();
    let loss = keel_model::ops::cross_entropy(lv.as_tensor(), &b.y, Some(&b.mask)).unwrap();
    let g = loss
        .backward()
        .unwrap()
        .get(lv.as_tensor())
        .unwrap()
        .clone();
    let row_norms: Vec<f32> = g.sqr().unwrap().sum(1).unwrap().to_vec1().unwrap();
    let mask: Vec<f32> = b.mask.flatten_all().unwrap().to_vec1().unwrap();
    let y: Vec<u32> = b.y.flatten_all().unwrap().to_vec1().unwrap();
    let (mut zero, mut live, mut ends) = (0, 0, 0);
    for (r, ex) in rows.iter().enumerate() {
        for k in 0..t {
            let i = r * t + k;
            let is_target = k + 1 < ex.len();
            let trained = is_target && ex.mask[k + 1] == 1;
            assert_eq!(mask[i] == 1.0, trained, "mask row {r} pos {k}");
            if trained {
                assert!(
                    row_norms[i] > 0.0,
                    "assistant target at row {r} pos {k} has no gradient"
                );
                live += 1;
                ends += usize::from(y[i] == end && k + 2 == ex.len());
            } else {
                assert_eq!(
                    row_norms[i], 0.0,
                    "prompt/pad position row {r} pos {k} has gradient"
                );
                zero += 1;
            }
        }
    }
    assert_eq!(
        ends, 3,
        "each example's closing <|end|> is a trained target"
    );
    assert!(zero > 0 && live > 0);
    // The trainer's fused loss agrees, and ignores the targets of masked-out positions.
    let fused = m
        .model
        .loss(&b.x, &b.y, Some(&b.mask))
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((fused - loss.to_scalar::<f32>().unwrap()).abs() < 1e-4);
    let y2: Vec<u32> = y
        .iter()
        .zip(&mask)
        .map(|(&id, &mk)| if mk == 0.0 { (id + 5) % v as u32 } else { id })
        .collect();
    let y2 = Tensor::from_vec(y2, (bs, t), &candle_core::Device::Cpu).unwrap();
    let perturbed = m
        .model
        .loss(&b.x, &y2, Some(&b.mask))
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(
        fused.to_bits(),
        perturbed.to_bits(),
        "prompt targets changed the loss"
    );
}

#[test]
fn all_zero_mask_and_masked_end_token_are_errors() {
    let ex = TokenizedExample {
        ids: vec![1, 4, 9, 6],
        mask: vec![0, 0, 0, 0],
    };
    let e = collate(&[&ex], 0).err().unwrap().to_string();
    assert!(e.contains("all-zero loss mask"), "{e}");
    let e = collate_packed(&[vec![&ex, &ex]], 0)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("all-zero loss mask"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let (base, _tk, mut train, _) = setup(dir.path());
    *train[3].mask.last_mut().unwrap() = 0;
    for packing in [PackingMode::Padding, PackingMode::Packing] {
        let e = sft(
            &base,
            &SftConfig { packing, ..cfg() },
            &train,
            &[],
            &dir.path().join(format!("run-{packing:?}")),
            RunOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("example 3") && e.contains("end-of-turn token"),
            "{e}"
        );
    }
}

#[test]
fn resumed_sft_is_bit_identical() {
    resume_is_bit_identical(PackingMode::Padding);
}

#[test]
fn resumed_packed_sft_is_bit_identical() {
    resume_is_bit_identical(PackingMode::Packing);
}

fn resume_is_bit_identical(packing: PackingMode) {
    let cfg = || SftConfig {
        packing,
        ..crate::cfg()
    };
    let dir = tempfile::tempdir().unwrap();
    let (base, _tk, train, val) = setup(dir.path());
    let val = &val[..8];
    let full = sft(
        &base,
        &cfg(),
        &train,
        val,
        &dir.path().join("a"),
        RunOptions::default(),
    )
    .unwrap();
    let b = dir.path().join("b");
    let first = sft(
        &base,
        &cfg(),
        &train,
        val,
        &b,
        RunOptions {
            stop_after: Some(4),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(first.steps, 4);
    let second = sft(
        &base,
        &cfg(),
        &train,
        val,
        &b,
        RunOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((second.resumed_from, second.steps), (Some(4), 10));
    let load = |d: &Path| checkpoint::load_tensors(&d.join("model.safetensors")).unwrap();
    let (wa, wb) = (load(&full.final_checkpoint), load(&second.final_checkpoint));
    for (k, ta) in &wa {
        let (va, vb): (Vec<f32>, Vec<f32>) = (
            ta.flatten_all().unwrap().to_vec1().unwrap(),
            wb[k].flatten_all().unwrap().to_vec1().unwrap(),
        );
        assert_eq!(va, vb, "tensor {k} differs after resume");
    }
    let log = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("\"loss\"")).count(), 10);
    // Resuming with different data is refused.
    let e = sft(
        &base,
        &cfg(),
        &train[1..],
        val,
        &b,
        RunOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("differs"), "{e}");
}

#[test]
fn sft_on_world_data_lowers_validation_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _tk, train, val) = setup(dir.path());
    let before = evaluate(&load_base(&base).unwrap().model, &val, 0).unwrap();
    let c = SftConfig {
        max_steps: 40,
        eval_every: 0,
        checkpoint_every: 0,
        ..cfg()
    };
    let out = sft(
        &base,
        &c,
        &train,
        &val,
        &dir.path().join("run"),
        RunOptions::default(),
    )
    .unwrap();
    let after = out.val_loss.unwrap();
    // The run measured the same starting point itself, and logged it as step 0.
    let initial = out
        .initial_val_loss
        .expect("fresh run with validation data");
    assert!((initial - before).abs() < 1e-4, "{initial} vs {before}");
    let log = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["step"], 0);
    assert!((first["val_loss"].as_f64().unwrap() - before).abs() < 1e-4);
    eprintln!(
        "val loss {before:.3} -> {after:.3}, train {:.3}, {} examples, {:.2} epochs, {:.0} tok/s",
        out.train_loss, out.train_examples, out.epochs, out.tokens_per_sec
    );
    assert!(
        after < before - 1.0,
        "validation loss {before} -> {after} did not fall enough"
    );
    // The fine-tuned checkpoint is a loadable model directory with the tokenizer.
    assert!(load_base(&out.final_checkpoint)
        .unwrap()
        .tokenizer_json
        .is_some());
}

/// A Keel checkpoint carries Keel's template as Jinja in `tokenizer_config.json`: loading it
/// like any HF model renders a conversation to exactly the ids training used, and generation
/// stops at the end-of-turn token.
#[test]
fn keel_checkpoints_chat_through_their_jinja_template_with_training_ids() {
    use keel_data::chat::{KeelChatTemplate, Message, Role};
    use keel_model::chat_template::ChatMessage;
    let dir = tempfile::tempdir().unwrap();
    let (base, tk, _, _) = setup(dir.path());
    let m = keel_model::load_model(&base).unwrap();
    let tpl = KeelChatTemplate::new(&tk).unwrap();
    let conv = [
        ("system", "Answer briefly."),
        ("user", "Where does Ada Brook live?"),
        ("assistant", "In Millford, by the river."),
        ("user", "And what is 12 + 30?"),
    ];
    let role = |r: &str| match r {
        "system" => Role::System,
        "user" => Role::User,
        _ => Role::Assistant,
    };
    let keel: Vec<Message> = conv
        .iter()
        .map(|(r, c)| Message::new(role(r), *c))
        .collect();
    let hf: Vec<ChatMessage> = conv.iter().map(|(r, c)| ChatMessage::new(*r, *c)).collect();
    assert_eq!(
        m.encode_chat(&hf).unwrap(),
        tpl.render_prompt(&tk, &keel),
        "Jinja rendering must tokenise to the training ids"
    );
    assert!(m.eos_token_ids.contains(&tpl.end), "{:?}", m.eos_token_ids);
}

#[test]
fn packed_sft_trains_and_lowers_unpacked_validation_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _tk, train, val) = setup(dir.path());
    let before = evaluate(&load_base(&base).unwrap().model, &val, 0).unwrap();
    let c = SftConfig {
        packing: PackingMode::Packing,
        batch_size: 4,
        max_steps: 40,
        eval_every: 0,
        checkpoint_every: 0,
        ..cfg()
    };
    let out = sft(
        &base,
        &c,
        &train,
        &val,
        &dir.path().join("run"),
        RunOptions::default(),
    )
    .unwrap();
    // val_loss is computed unpacked (one example per row), so it is comparable to `before`.
    let after = out.val_loss.unwrap();
    let rows = out.packed_rows.unwrap();
    eprintln!(
        "packed: val loss {before:.3} -> {after:.3}, {} examples in {rows} rows, {:.2} epochs, \
         padding {:.3}, {:.0} tok/s",
        out.train_examples, out.epochs, out.padding_fraction, out.tokens_per_sec
    );
    assert!(
        rows * 2 < out.train_examples,
        "{rows} rows for {} examples",
        out.train_examples
    );
    assert!(
        out.padding_fraction < 0.2,
        "padding {}",
        out.padding_fraction
    );
    assert!(
        after < before - 1.0,
        "validation loss {before} -> {after} did not fall enough"
    );
}

/// Throughput and padding of the two modes on the tiny world's SFT data (same model, same
/// tokens per row budget). Timing only: `cargo test -p keel-train --test sft -- --ignored
/// --nocapture measure_padding_vs_packing`.
#[test]
#[ignore]
fn measure_padding_vs_packing() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _tk, train, _val) = setup(dir.path());
    for packing in [PackingMode::Padding, PackingMode::Packing] {
        let c = SftConfig {
            packing,
            max_steps: 30,
            eval_every: 0,
            checkpoint_every: 0,
            ..cfg()
        };
        let out = sft(
            &base,
            &c,
            &train,
            &[],
            &dir.path().join(format!("{packing:?}")),
            RunOptions::default(),
        )
        .unwrap();
        eprintln!(
            "{packing:?}: {:.0} tok/s, padding fraction {:.3}, {} examples, rows {:?}",
            out.tokens_per_sec, out.padding_fraction, out.train_examples, out.packed_rows
        );
    }
}
