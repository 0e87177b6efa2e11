//! `keel rm` and `keel dpo` command modules, driven through clap on a tiny world, before the
//! lead wires them into the binary (the modules are included by path).

// `dpo.rs` reaches `rm.rs` as `super::rm`, which is the crate root here.
#[allow(dead_code)]
#[path = "../src/commands/dpo.rs"]
mod dpo;
#[path = "../src/commands/lora_args.rs"]
mod lora_args;
#[allow(dead_code)]
#[path = "../src/commands/rm.rs"]
mod rm;

use clap::Parser;
use keel_core::rng::{rng_for, save_state};
use keel_data::tokenizer::{save_tokenizer, train_tokenizer, KeelTokenizer};
use keel_data::world::{generate, WorldConfig};
use keel_model::{Llama, LlamaConfig};
use keel_train::checkpoint::{self, TrainerState};
use keel_train::optim::AdamW;

#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    Rm(rm::RmArgs),
    Dpo(dpo::DpoArgs),
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    match Cli::try_parse_from(std::iter::once("keel").chain(args.iter().copied()))?.cmd {
        Cmd::Rm(a) => rm::run(a),
        Cmd::Dpo(a) => dpo::run(a),
    }
}

#[test]
fn rm_and_dpo_commands_run_on_a_world_and_reject_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = generate(&WorldConfig::tiny(), 0).unwrap();
    w.write(&d.join("world")).unwrap();
    let tok = train_tokenizer(w.corpus.train.iter().map(|x| x.text.as_str()), 400).unwrap();
    save_tokenizer(&tok, &d.join("tokenizer.json")).unwrap();
    let tk = KeelTokenizer::from_file(&d.join("tokenizer.json")).unwrap();
    let mut cfg = LlamaConfig::tiny(tk.vocab_size(), 32, 1, 4);
    cfg.max_position_embeddings = 256;
    let (vm, _m) = Llama::init(&cfg, 1).unwrap();
    let opt = AdamW::new(
        checkpoint::named_vars(&cfg, &vm).unwrap(),
        Default::default(),
    );
    let state = TrainerState {
        step: 0,
        tokens_seen: 0,
        data_rng: save_state(&rng_for(0, "x")),
        optimizer_t: 0,
        trainer_config: serde_json::json!({}),
    };
    let json = std::fs::read(d.join("tokenizer.json")).unwrap();
    let base = checkpoint::save(&d.join("base"), &cfg, &vm, &opt, &state, Some(&json), 1).unwrap();
    let (b, wd) = (base.to_str().unwrap(), d.join("world"));
    let wd = wd.to_str().unwrap();
    let rm_out = d.join("rm");
    run(&[
        "rm",
        "--model",
        b,
        "--world",
        wd,
        "--out",
        rm_out.to_str().unwrap(),
        "--steps",
        "2",
        "--max-len",
        "160",
    ])
    .unwrap();
    let rm: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rm_out.join("rm.json")).unwrap()).unwrap();
    assert_eq!(rm["steps"], 2);
    assert!(rm["val"]["accuracy"].is_number());
    let dpo_out = d.join("dpo");
    run(&[
        "dpo",
        "--model",
        b,
        "--world",
        wd,
        "--loss",
        "ipo",
        "--out",
        dpo_out.to_str().unwrap(),
        "--steps",
        "2",
        "--max-len",
        "160",
    ])
    .unwrap();
    assert!(dpo_out.join("reference_logps.json").exists());
    // A file of only bad rows is an error naming the file; --strict names the line.
    let bad = d.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"prompt\": \"p\", \"chosen\": \"same\", \"rejected\": \"same\"}\n",
    )
    .unwrap();
    let e = run(&[
        "dpo",
        "--model",
        b,
        "--data",
        bad.to_str().unwrap(),
        "--out",
        d.join("x").to_str().unwrap(),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("no usable"), "{e}");
    let e = run(&[
        "rm",
        "--model",
        b,
        "--data",
        bad.to_str().unwrap(),
        "--strict",
        "--out",
        d.join("y").to_str().unwrap(),
    ])
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("bad.jsonl:1: field `rejected`"),
        "{e:#}"
    );
    // Unknown loss is a clap error, not a panic.
    assert!(run(&["dpo", "--model", b, "--world", wd, "--loss", "xpo", "--out", "z"]).is_err());
}
