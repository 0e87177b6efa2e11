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
        .args([
            "demo",
            "--size",
            "tiny",
            "--rl",
            "grpo",
            "--sft-replay",
            "0.2",
            "--out",
        ])
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
        "| assess pretrain |",
        "| curate + sft |",
        "| reward model |",
        "| RLAIF labels |",
        "| DPO |",
        "| RLHF (GRPO) |",
        "| report |",
        "| SFT (safety 0.30) |",
        "| SFT + DPO |",
        "| SFT + GRPO |",
    ] {
        assert!(summary.contains(stage), "summary lacks {stage}:\n{summary}");
    }
    // Every model stage is evaluated and recorded; the report renders from the run log.
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let stages = log["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pretrain", "sft", "reward", "dpo", "rl"]);
    // SFT mixed pretraining documents back in (replay), and logged where it started from.
    assert!(stages[1]["hyperparameters"]["replay_rows"].as_u64() > Some(0));
    let sft_metrics = std::fs::read_to_string(out.join("sft/metrics.jsonl")).unwrap();
    assert!(
        sft_metrics.starts_with("{\"step\":0,\"val_loss\""),
        "{sft_metrics}"
    );
    for s in stages {
        let evals = s["evals"].as_array().unwrap();
        if s["name"] != "reward" {
            for m in ["helpfulness", "harmlessness", "over_refusal", "abstention"] {
                assert!(
                    evals
                        .iter()
                        .any(|e| e["name"] == m && e["n"].as_u64() > Some(0)),
                    "stage {} lacks {m}: {evals:?}",
                    s["name"]
                );
            }
            assert!(s["redteam"]["overall"]["scored"].as_u64() > Some(0));
        }
    }
    assert!(out.join("report/model_card.md").exists() && out.join("report/report.html").exists());
    assert!(out.join("sft/data/curate_report.json").exists());
    // RLAIF: the reward model's labels, with agreement against the world's gold.
    let rlaif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("rlaif/report.json")).unwrap())
            .unwrap();
    assert!(rlaif["gold"]["scored"].as_u64() > Some(0), "{rlaif}");
    assert!(out.join("rlaif/preferences.jsonl").exists());
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

#[test]
fn rl_reward_flags_that_do_not_fit_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = ["rl", "--model", "m", "--world", "w", "--out"];
    for (extra, expect) in [
        (
            &["--reward", "reward-model"][..],
            "--reward reward-model needs --reward-model DIR",
        ),
        (
            &["--reward-model", "rm"][..],
            "--reward-model needs --reward reward-model",
        ),
        (
            &["--reward", "reward-model", "--reward-model", "no-such-rm"][..],
            "reward model no-such-rm",
        ),
    ] {
        let o = keel()
            .args(base)
            .arg(dir.path().join("run"))
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(err.contains(expect), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
