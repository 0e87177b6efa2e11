//! The `keel` binary end to end: the tiny demo, and clear errors on bad input.

use std::process::Command;

fn keel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keel"))
}

#[test]
fn tiny_demo_runs_every_stage_and_writes_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = keel()
        .args(["demo", "--size", "tiny", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for stage in [
        "| world |",
        "| tokenizer |",
        "| pretrain |",
        "| base eval |",
        "| samples |",
    ] {
        assert!(summary.contains(stage), "summary lacks {stage}:\n{summary}");
    }
    assert!(out.join("world/manifest.json").exists());
    assert!(out.join("pretrain/checkpoints/latest").exists());
    let metrics = std::fs::read_to_string(out.join("pretrain/metrics.jsonl")).unwrap();
    assert!(metrics.lines().any(|l| l.contains("val_bpb")));

    // The final checkpoint exports to an HF directory that `keel generate` can run.
    let latest = std::fs::read_to_string(out.join("pretrain/checkpoints/latest")).unwrap();
    let ckpt = out.join("pretrain/checkpoints").join(latest.trim());
    let hf = dir.path().join("hf");
    let o = keel()
        .arg("export")
        .arg("--model")
        .arg(&ckpt)
        .arg("--out")
        .arg(&hf)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(hf.join("model.safetensors").exists() && hf.join("config.json").exists());
    let o = keel()
        .arg("generate")
        .arg("--model")
        .arg(&hf)
        .args(["--prompt", "The town of", "--max-tokens", "5"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "generate failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn pretrain_reports_bad_corpora_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("w");
    assert!(keel()
        .args(["world", "--size", "tiny", "--out"])
        .arg(&world)
        .status()
        .unwrap()
        .success());
    let tok = dir.path().join("tok.json");
    let st = keel()
        .args(["tokenizer", "train", "--vocab-size", "300", "--corpus"])
        .arg(world.join("corpus/train.jsonl"))
        .arg("--out")
        .arg(&tok)
        .status()
        .unwrap();
    assert!(st.success());
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9 au lait\n").unwrap();
    for (bad, expect) in [(&empty, "no text"), (&latin1, "UTF-8")] {
        let o = keel()
            .args(["pretrain", "--steps", "1", "--tokenizer"])
            .arg(&tok)
            .arg("--corpus")
            .arg(bad)
            .arg("--validation")
            .arg(world.join("corpus/validation.jsonl"))
            .arg("--out")
            .arg(dir.path().join("run"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(
            err.contains(bad.file_name().unwrap().to_str().unwrap()) && err.contains(expect),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}
