//! Checkpoint-independent import/export tests on a tiny random model: GGUF import equals
//! the original model, HF export → import is bit-identical, and bad files give one clear
//! error naming the file and the problem.

mod common;

use candle_core::quantized::GgmlDType;
use candle_core::Tensor;
use keel_model::hf::{export_hf, ExportMeta};
use keel_model::{load_model, load_trainable};
use std::path::Path;

const IDS: [u32; 8] = [1, 40, 75, 259, 262, 7, 100, 2];

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn export_tiny(dir: &Path, tied: bool) -> Vec<Vec<f32>> {
    let c = common::config(tied);
    let (w, m) = common::random_model(&c, 11);
    let tok = common::tokenizer();
    let meta = ExportMeta {
        config: &c,
        tokenizer: &tok,
        chat_template: Some(common::CHATML),
        bos_token_id: Some(1),
        eos_token_ids: &[2],
    };
    export_hf(dir, &w, &meta).unwrap();
    common::logits(&m, &IDS)
}

fn err_of(path: &Path) -> String {
    match load_model(path) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => {
            eprintln!("error (expected): {e}");
            e.to_string()
        }
    }
}

#[test]
fn gguf_import_undoes_permutation_and_matches_original() {
    let dir = tempfile::tempdir().unwrap();
    for tied in [true, false] {
        let c = common::config(tied);
        let (w, m) = common::random_model(&c, 3);
        let want = common::logits(&m, &IDS);
        let path = dir.path().join(format!("tiny-{tied}.gguf"));
        common::write_gguf(&path, &c, &w, GgmlDType::F32);
        let got = load_model(&path).unwrap();
        assert_eq!(got.config.tie_word_embeddings, tied);
        assert_eq!(got.config.kv_heads(), 2);
        assert_eq!(got.eos_token_ids, vec![2]);
        assert_eq!(got.chat_template.as_deref(), Some(common::CHATML));
        // f32 GGUF: the only transformation is the permutation round trip, which is exact.
        assert_eq!(max_diff(&common::logits(&got.model, &IDS), &want), 0.0);
        // Quantised GGUF: dequantised weights are close, so logits are close.
        let qpath = dir.path().join(format!("tiny-{tied}-q8.gguf"));
        common::write_gguf(&qpath, &c, &w, GgmlDType::Q8_0);
        let q = load_model(&qpath).unwrap();
        let d = max_diff(&common::logits(&q.model, &IDS), &want);
        assert!(d > 0.0 && d < 1e-2, "Q8_0 import differs by {d}");
    }
}

#[test]
fn hf_export_reimport_is_bit_identical_and_trainable() {
    let dir = tempfile::tempdir().unwrap();
    for tied in [true, false] {
        let out = dir.path().join(format!("hf-{tied}"));
        let want = export_tiny(&out, tied);
        let m = load_model(&out).unwrap();
        assert_eq!(common::logits(&m.model, &IDS), want, "tied={tied}");
        assert_eq!(m.chat_template.as_deref(), Some(common::CHATML));
        assert_eq!(
            (m.bos_token_id, m.eos_token_ids.clone()),
            (Some(1), vec![2])
        );
        let text = "hello world <|im_end|>";
        assert_eq!(
            m.encode(text).unwrap(),
            common::tokenizer().encode(text, false).unwrap().get_ids()
        );

        // Trainable: every parameter is a Var; the model reads them; export round-trips.
        let (varmap, t) = load_trainable(&out).unwrap();
        assert_eq!(
            varmap.all_vars().len(),
            keel_model::llama::parameter_shapes(&m.config).len()
        );
        assert_eq!(common::logits(&t.model, &IDS), want);
        // Fine-tunable: the loss reaches every imported parameter.
        let ids = Tensor::new(&IDS[..7], &candle_core::Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let tgt = Tensor::new(&IDS[1..], &candle_core::Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let grads = t.model.loss(&ids, &tgt, None).unwrap().backward().unwrap();
        for (name, var) in varmap.data().lock().unwrap().iter() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm.is_finite() && norm > 0.0,
                "{name}: gradient norm {norm}"
            );
        }
        let v = varmap.data().lock().unwrap()["model.norm.weight"].clone();
        v.set(&(v.as_tensor() * 2.0).unwrap()).unwrap();
        assert_ne!(
            common::logits(&t.model, &IDS),
            want,
            "model must read the Vars"
        );
        let again = dir.path().join(format!("hf-{tied}-again"));
        t.export_hf(&again).unwrap();
        assert_eq!(
            common::logits(&load_model(&again).unwrap().model, &IDS),
            common::logits(&t.model, &IDS)
        );
    }
}

#[test]
fn gguf_reexported_as_hf_matches() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::config(true);
    let (w, _) = common::random_model(&c, 5);
    let g = dir.path().join("m.gguf");
    common::write_gguf(&g, &c, &w, GgmlDType::Q8_0);
    let from_gguf = load_model(&g).unwrap();
    let out = dir.path().join("hf");
    from_gguf.export_hf(&out).unwrap();
    let back = load_model(&out).unwrap();
    assert_eq!(
        common::logits(&back.model, &IDS),
        common::logits(&from_gguf.model, &IDS)
    );
    assert_eq!(back.chat_template, from_gguf.chat_template);
    assert_eq!(back.config.rope_theta, from_gguf.config.rope_theta);
}

#[test]
fn corrupt_and_truncated_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hf");
    export_tiny(&out, true);
    let st = out.join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();

    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    let e = err_of(&out);
    assert!(
        e.contains("model.safetensors") && e.contains("truncated"),
        "{e}"
    );

    std::fs::write(&st, &bytes[..5]).unwrap();
    let e = err_of(&out);
    assert!(
        e.contains("model.safetensors") && e.contains("truncated"),
        "{e}"
    );

    let mut garbage = bytes.clone();
    garbage[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&st, &garbage).unwrap();
    let e = err_of(&out);
    assert!(
        e.contains("model.safetensors") && e.contains("corrupt"),
        "{e}"
    );
    std::fs::write(&st, &bytes).unwrap();

    // GGUF: truncated data section, garbage header.
    let c = common::config(true);
    let (w, _) = common::random_model(&c, 1);
    let g = dir.path().join("m.gguf");
    common::write_gguf(&g, &c, &w, GgmlDType::Q8_0);
    let gb = std::fs::read(&g).unwrap();
    std::fs::write(&g, &gb[..gb.len() - 100]).unwrap();
    let e = err_of(&g);
    assert!(e.contains("m.gguf") && e.contains("tensor"), "{e}");
    std::fs::write(&g, &gb[..gb.len() / 50]).unwrap();
    let e = err_of(&g);
    assert!(e.contains("m.gguf"), "{e}");
    std::fs::write(&g, b"not a gguf file at all").unwrap();
    let e = err_of(&g);
    assert!(
        e.contains("m.gguf") && e.contains("not a valid GGUF"),
        "{e}"
    );
    // A run's `checkpoints/latest` pointer passed as the model names the checkpoint it means.
    std::fs::create_dir(dir.path().join("step-00000200")).unwrap();
    let latest = dir.path().join("latest");
    std::fs::write(&latest, "step-00000200").unwrap();
    let e = err_of(&latest);
    assert!(
        e.contains("checkpoint pointer") && e.contains("step-00000200"),
        "{e}"
    );
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn config_that_does_not_match_weights_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hf");
    export_tiny(&out, true);
    let good = std::fs::read(out.join("config.json")).unwrap();
    let reset = || std::fs::write(out.join("config.json"), &good).unwrap();

    edit_config(&out, |v| v["hidden_size"] = 64.into());
    let e = err_of(&out);
    assert!(
        e.contains("model.embed_tokens.weight")
            && e.contains("[265, 64]")
            && e.contains("[265, 32]"),
        "{e}"
    );
    reset();

    edit_config(&out, |v| v["num_hidden_layers"] = 3.into());
    let e = err_of(&out);
    assert!(e.contains("missing tensor model.layers.2."), "{e}");
    reset();

    edit_config(&out, |v| v["num_hidden_layers"] = 1.into());
    let e = err_of(&out);
    assert!(
        e.contains("model.layers.1.") && e.contains("num_hidden_layers"),
        "{e}"
    );
    reset();

    edit_config(&out, |v| v["tie_word_embeddings"] = false.into());
    let e = err_of(&out);
    assert!(e.contains("missing tensor lm_head.weight"), "{e}");
    reset();

    edit_config(&out, |v| {
        v["rope_scaling"] = serde_json::json!({"type": "linear", "factor": 2.0})
    });
    let e = err_of(&out);
    assert!(
        e.contains("config.json") && e.contains("rope_scaling"),
        "{e}"
    );
    reset();

    std::fs::write(out.join("config.json"), b"{\"hidden_size\": 32,").unwrap();
    let e = err_of(&out);
    assert!(
        e.contains("config.json") && e.contains("invalid JSON"),
        "{e}"
    );
    reset();

    std::fs::write(out.join("tokenizer.json"), b"{}").unwrap();
    let e = err_of(&out);
    assert!(e.contains("tokenizer.json"), "{e}");

    std::fs::remove_file(out.join("tokenizer.json")).unwrap();
    let e = err_of(&out);
    assert!(e.contains("tokenizer.json") && e.contains("missing"), "{e}");

    let e = err_of(&dir.path().join("nope"));
    assert!(e.contains("nope") && e.contains("does not exist"), "{e}");
    load_model(&out).err().unwrap(); // still an error, never a panic
}
