//! DPO with LoRA: only the adapters train (the base file is untouched and a checkpoint is a
//! PEFT adapter directory), the reference is the base without adapters, held-out preference
//! accuracy rises, stop + resume is bit-identical (LoRA dropout included), and an imported
//! model with its own Jinja chat template trains the same way.

mod pref_base;

use candle_core::{Device, Tensor};
use keel_data::chat::{ChatExample, Message, Role};
use keel_model::lora::LoraConfig;
use keel_model::Llama;
use keel_train::chat_render::ChatRenderer;
use keel_train::checkpoint;
use keel_train::dpo::{dpo, DpoConfig, DpoLoss};
use keel_train::policy::Policy;
use keel_train::pretrain::RunOptions;
use pref_base::{chatml_hf_model, setup};
use std::path::Path;

fn lora() -> LoraConfig {
    LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.1,
        ..Default::default()
    }
}

fn cfg(steps: u64) -> DpoConfig {
    DpoConfig {
        max_len: 160,
        batch_size: 8,
        max_steps: steps,
        lr: 1e-2,
        warmup_steps: 2,
        eval_every: 0,
        checkpoint_every: 3,
        keep_checkpoints: 5,
        lora: Some(lora()),
        ..Default::default()
    }
}

fn logits(m: &Llama) -> Vec<f32> {
    let ids = Tensor::new(&[[3u32, 17, 42, 9, 100, 7]], &Device::Cpu).unwrap();
    let l = m.forward(&ids, None).unwrap();
    l.flatten_all().unwrap().to_vec1().unwrap()
}

fn adapter_bytes(ckpt: &Path) -> Vec<u8> {
    std::fs::read(ckpt.join("adapter_model.safetensors")).unwrap()
}

fn ref_logps(run: &Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("reference_logps.json")).unwrap()).unwrap();
    v["train"].clone()
}

#[test]
fn lora_dpo_trains_only_adapters_learns_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (base, train, val) = setup(dir.path(), false);
    let base_bytes = std::fs::read(base.join("model.safetensors")).unwrap();
    let opts = RunOptions::default;

    // 6 steps straight vs 3 steps, then resume: identical adapters (dropout masks are keyed
    // by step, reference log-probs come from the cache).
    let a_run = dir.path().join("a");
    let a = dpo(&base, &cfg(6), &train, &val[..8], &a_run, opts()).unwrap();
    let b_run = dir.path().join("b");
    let stop = RunOptions {
        stop_after: Some(3),
        ..opts()
    };
    dpo(&base, &cfg(6), &train, &val[..8], &b_run, stop).unwrap();
    let resume = RunOptions {
        resume: true,
        ..opts()
    };
    let b = dpo(&base, &cfg(6), &train, &val[..8], &b_run, resume).unwrap();
    assert_eq!((b.resumed_from, b.steps), (Some(3), 6));
    assert_eq!(b.reference_secs, 0.0, "reference must come from the cache");
    assert!(adapter_bytes(&a.final_checkpoint) == adapter_bytes(&b.final_checkpoint));
    assert_eq!(a.val.unwrap(), b.val.unwrap());

    // A checkpoint is a PEFT adapter directory holding adapters only; the base is untouched.
    let ck = &a.final_checkpoint;
    assert!(ck.join("adapter_config.json").is_file());
    assert!(!ck.join("model.safetensors").exists());
    let tensors = checkpoint::load_tensors(&ck.join("adapter_model.safetensors")).unwrap();
    assert_eq!(tensors.len(), 28, "2 layers × 7 modules × (A, B)");
    assert!(tensors
        .keys()
        .all(|k| k.contains(".lora_A.") || k.contains(".lora_B.")));
    assert_eq!(
        std::fs::read(base.join("model.safetensors")).unwrap(),
        base_bytes
    );
    // With its adapters switched off the trained policy is exactly the base; with them on,
    // it is not.
    let trained = Policy::load(ck, None, 0).unwrap();
    assert!(trained.is_lora());
    let base_logits = logits(&keel_model::load_model(&base).unwrap().model);
    let with = logits(trained.model());
    trained.model().set_lora_enabled(false);
    assert_eq!(logits(trained.model()), base_logits);
    assert_ne!(with, base_logits);

    // Continuing from the adapter: the reference is still the base without adapters.
    let c_run = dir.path().join("c");
    let more = DpoConfig {
        lora: None,
        max_steps: 1,
        ..cfg(1)
    };
    dpo(ck, &more, &train, &val[..8], &c_run, opts()).unwrap();
    assert_eq!(ref_logps(&c_run), ref_logps(&a_run));

    // Learning: the implicit reward ranks held-out pairs.
    let long = DpoConfig {
        checkpoint_every: 0,
        ..cfg(30)
    };
    let out = dpo(&base, &long, &train, &val, &dir.path().join("long"), opts()).unwrap();
    let (before, after) = (out.val_before.unwrap(), out.val.unwrap());
    eprintln!(
        "LoRA DPO held-out: margin {:.4} -> {:.4}, accuracy {:.3} -> {:.3} on {} pairs",
        before.margin, after.margin, before.accuracy, after.accuracy, after.pairs
    );
    assert_eq!(
        before.margin, 0.0,
        "fresh adapters: the policy is the reference"
    );
    assert!(after.margin > 0.0 && after.accuracy > 0.6, "{after:?}");
}

#[test]
fn lora_dpo_from_an_imported_model_uses_its_chat_template() {
    let dir = tempfile::tempdir().unwrap();
    let (base, train, val) = setup(dir.path(), false);
    let hf = chatml_hf_model(&base, &dir.path().join("hf"));
    let renderer = ChatRenderer::for_path(&hf).unwrap();
    assert!(!renderer.is_keel());
    // Prompt + completion ids are exactly the rendered conversation, and the completion is the
    // trained span (the reply and `<|im_end|>\n`).
    let p = &train[0];
    let prompt = renderer.render_prompt(&p.prompt).unwrap();
    let completion = renderer.completion(&p.prompt, &p.chosen).unwrap();
    let mut messages = p.prompt.clone();
    messages.push(Message::new(Role::Assistant, p.chosen.clone()));
    let full = renderer.render(&ChatExample::Chat { messages }).unwrap();
    assert_eq!([&prompt[..], &completion[..]].concat(), full.ids);
    let trained: Vec<u32> = full
        .ids
        .iter()
        .zip(&full.mask)
        .filter(|(_, m)| **m == 1)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(trained, completion);
    let im_end = 6; // `<|end|>`'s id, renamed
    assert!(completion.contains(&im_end));

    let run = dir.path().join("dpo");
    let out = dpo(&hf, &cfg(2), &train, &val[..8], &run, RunOptions::default()).unwrap();
    assert!(out.train_loss.is_finite());
    assert!(out.final_checkpoint.join("adapter_config.json").is_file());
    let kto = DpoConfig {
        loss: DpoLoss::Kto,
        ..cfg(2)
    };
    let out = dpo(
        &hf,
        &kto,
        &train,
        &[],
        &dir.path().join("kto"),
        RunOptions::default(),
    )
    .unwrap();
    assert!(out.train_loss.is_finite());
}
