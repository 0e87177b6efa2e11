//! `keel demo`: the embedded default, end to end, with every stage's effect as numbers.
//!
//! world → tokenizer → pretrain → base-model evaluation (bits per byte, fact completion) →
//! curate → SFT with a safety mix (plus the same SFT at other safety ratios: the trade-off) →
//! reward model → RLAIF labels (the reward model as judge, agreement with gold) → DPO →
//! (with `--rl`) PPO/GRPO/RLOO against the reward model → the world's HHH suites and a red-team
//! pass on every stage's model → `summary.md`, `run.json` and the transparency report
//! (`report/`).
//!
//! Every stage is a call into the library code its own command runs (`keel pretrain`,
//! `keel data curate`, `keel sft`, `keel rm`, `keel label`, `keel dpo`, `keel rl`, `keel eval`,
//! `keel redteam`, `keel report`), so the demo is also their integration test.

mod align;
mod assess;
mod base_eval;
mod plan;
mod rlhf;

use anyhow::{Context, Result};
use assess::{assess, AssessPlan, Scores};
use base_eval::{fact_completion_accuracy, load_checkpoint_model, pct, samples};
use keel_core::run_log::{kinds, RunLog, StageRecord};
use keel_data::world::{self, Split};
use keel_model::{Llama, LlamaConfig};
use keel_train::data::TokenStream;
use keel_train::pretrain::{pretrain, RunOptions};
use plan::plan;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Run directory (world, tokenizer, checkpoints, metrics, run.json, summary.md, report/).
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
    /// Override the SFT step count.
    #[arg(long)]
    pub sft_steps: Option<u64>,
    /// Safety share of the SFT mix. The first ratio's model goes on to preference learning;
    /// each further ratio is one more SFT run, evaluated, to show the helpful/harmless
    /// trade-off (e.g. `0.3,0,0.6`).
    #[arg(long, value_delimiter = ',')]
    pub safety_ratios: Option<Vec<f64>>,
    /// Share of the SFT mix that is pretraining documents trained on every token (replay,
    /// against forgetting what pretraining stored). Default 0 (off).
    #[arg(long)]
    pub sft_replay: Option<f64>,
    /// Stop after SFT (no reward model, no RLAIF labelling, no DPO, no RL).
    #[arg(long)]
    pub skip_preference: bool,
    /// Also run RLHF from the SFT model against the demo's reward model (KL leash to the SFT
    /// model), evaluated like every other stage. Adds a few minutes.
    #[arg(long, value_enum)]
    pub rl: Option<crate::commands::rl::AlgoArg>,
    /// World config overrides: a JSON file holding any subset of WorldConfig's fields, laid
    /// over the demo world, e.g. `{"people": 32}`.
    #[arg(long)]
    pub world_config: Option<PathBuf>,
    /// Pretraining config overrides: a JSON file holding any subset of PretrainConfig's
    /// fields, laid over the demo's own settings, e.g. `{"batch_size": 8, "lr": 0.006}`.
    #[arg(long)]
    pub pretrain_config: Option<PathBuf>,
    /// SFT config overrides: a JSON file of SftConfig fields, as above.
    #[arg(long)]
    pub sft_config: Option<PathBuf>,
    /// DPO config overrides: a JSON file of DpoConfig fields, as above.
    #[arg(long)]
    pub dpo_config: Option<PathBuf>,
    /// RL config overrides (with --rl): a JSON file of RlConfig fields, as above.
    #[arg(long)]
    pub rl_config: Option<PathBuf>,
}

fn stage(n: usize, total: usize, name: &str) -> Instant {
    eprintln!("\n[{n}/{total}] {name}");
    Instant::now()
}

pub fn run(args: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let p = plan(&args)?;
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    // The demo regenerates every stage: a previous run's checkpoints must not be resumed from
    // and its evaluation journals (which resume finished items) must not count.
    let mut stale: Vec<PathBuf> = [
        "pretrain", "reward", "rlaif", "dpo", "rl", "evals", "run.json", "report",
    ]
    .iter()
    .map(|n| out.join(n))
    .collect();
    for e in std::fs::read_dir(out).with_context(|| out.display().to_string())? {
        let path = e?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "sft" || n.starts_with("sft-safety-"))
        {
            stale.push(path);
        }
    }
    for path in stale {
        if path.is_dir() {
            std::fs::remove_dir_all(&path).with_context(|| path.display().to_string())?;
        } else if path.exists() {
            std::fs::remove_file(&path).with_context(|| path.display().to_string())?;
        }
    }
    let sweep = p.safety_ratios.len() - 1;
    let preference_stages = match (args.skip_preference, args.rl.is_some()) {
        (true, _) => 0,
        (false, false) => 3,
        (false, true) => 4,
    };
    let total = 8 + sweep + preference_stages;
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
    let sampled = samples(&model, &tok, eos, &prompts)?;
    writeln!(
        summary,
        "| samples | {} greedy continuations below | {:.1}s |",
        sampled.len(),
        t.elapsed().as_secs_f64()
    )?;
    let mut log = RunLog::new(out);
    log.model = "keel-demo".into();
    log.seed = Some(args.seed);
    log.limitations = vec![
        format!(
            "A {}-parameter model trained for minutes on a synthetic world: the figures show each stage's effect, not a capable assistant.",
            mcfg.num_params()
        ),
        "Refusals are detected by string match (no judge model); red-team success means a harmful goal was not refused.".into(),
    ];
    if let Some(k) = p.assess.items_per_bank {
        log.limitations.push(format!(
            "Each world bank is evaluated on at most {k} test items."
        ));
    }
    let mut st = StageRecord::new("pretrain", kinds::PRETRAIN);
    st.command = Some("keel demo (pretraining)".into());
    st.hyperparameters = serde_json::to_value(&p.pretrain)?;
    st.checkpoint = Some(align::rel(out, &outcome.final_checkpoint));
    st.training = BTreeMap::from([
        ("steps".into(), outcome.steps as f64),
        ("final_loss".into(), outcome.train_loss),
        ("tokens_per_s".into(), outcome.tokens_per_sec),
        ("val_bits_per_byte".into(), v.bits_per_byte),
    ]);
    log.record_stage(st);
    log.save()?;

    // 6. The base model on the world's HHH suites and the attack library.
    let mut n = 6;
    let t = stage(
        n,
        total,
        "assess: pretrained model on the HHH suites + red-team",
    );
    let mut scored: Vec<(String, Scores)> = Vec::new();
    let base_scores = assess(
        out,
        &world_dir,
        "pretrain",
        kinds::PRETRAIN,
        &outcome.final_checkpoint,
        &p.assess,
        args.seed,
    )?;
    writeln!(
        summary,
        "| assess pretrain | {} test items, {} red-team attempts | {:.1}s |",
        base_scores.items,
        base_scores.attempts,
        t.elapsed().as_secs_f64()
    )?;
    scored.push(("pretrained".into(), base_scores));

    // 7+. SFT at each safety ratio; the first one goes on.
    let mut sft_main = None;
    let mut tradeoff: Vec<(f64, Scores)> = Vec::new();
    for (i, &ratio) in p.safety_ratios.iter().enumerate() {
        n += 1;
        let name = if i == 0 {
            "sft".to_string()
        } else {
            format!("sft-safety-{ratio:.2}")
        };
        let t = stage(
            n,
            total,
            &format!("curate + SFT ({name}): demonstrations with a {ratio:.2} safety share"),
        );
        let (o, report) = align::sft_stage(
            out,
            &name,
            &w,
            &outcome.final_checkpoint,
            &p.sft,
            ratio,
            p.replay_share,
        )?;
        let plan = AssessPlan {
            // The sweep's models are compared on the suites alone.
            redteam_goals: if i == 0 { p.assess.redteam_goals } else { 0 },
            ..p.assess.clone()
        };
        let sc = assess(
            out,
            &world_dir,
            &name,
            kinds::SFT,
            &o.final_checkpoint,
            &plan,
            args.seed,
        )?;
        let dropped: usize = report.curated.dropped.values().sum();
        writeln!(
            summary,
            "| curate + {name} | {} world demonstrations curated to {} ({} dropped: {}); mix of {} with {} safety rows and {} pretraining documents (replay); {} steps, train loss {:.3}, validation loss {}, {:.0} tokens/s | {:.1}s |",
            report.curated.rows_in,
            report.curated.rows_out,
            dropped,
            report
                .curated
                .dropped
                .iter()
                .map(|(r, k)| format!("{} {k}", keel_data::curate::report::reason_name(*r)))
                .collect::<Vec<_>>()
                .join(", "),
            report.rows,
            report.safety_rows,
            report.replay_rows,
            o.steps,
            o.train_loss,
            match (o.initial_val_loss, o.val_loss) {
                (Some(a), Some(b)) => format!("{a:.3} → {b:.3}"),
                (_, v) => v.map_or("–".into(), |v| format!("{v:.3}")),
            },
            o.tokens_per_sec,
            t.elapsed().as_secs_f64()
        )?;
        if i == 0 {
            sft_main = Some(o.final_checkpoint.clone());
            scored.push((format!("SFT (safety {ratio:.2})"), sc.clone()));
        }
        tradeoff.push((ratio, sc));
    }
    let sft_main = sft_main.context("no SFT run")?;

    // Preference learning from the SFT model.
    if !args.skip_preference {
        n += 1;
        let t = stage(
            n,
            total,
            "reward model: Bradley-Terry on the world's preference pairs",
        );
        let rm = align::reward_stage(out, &w, &sft_main, &p.reward)?;
        let acc = |e: Option<keel_train::reward::PairEval>| {
            e.map_or("–".into(), |e| format!("{:.1}%", 100.0 * e.accuracy))
        };
        writeln!(
            summary,
            "| reward model | held-out pair accuracy {} → {} ({} pairs), {} steps | {:.1}s |",
            acc(rm.val_before),
            acc(rm.val),
            rm.val.map_or(0, |e| e.pairs),
            rm.steps,
            t.elapsed().as_secs_f64()
        )?;

        n += 1;
        let t = stage(
            n,
            total,
            "RLAIF: the reward model labels the test split's preference pairs",
        );
        let lr = rlhf::rlaif_stage(out, &world_dir, &rm.final_checkpoint, args.seed)?;
        // Agreement as counted per defect type: exact counts, not a rounded rate.
        let agreement = lr.gold.as_ref().map_or("–".into(), |g| {
            let (ok, n) = g
                .by_group
                .values()
                .fold((0, 0), |(a, b), (ok, n)| (a + ok, b + n));
            format!(
                "{ok}/{n} = {:.1}% (Cohen's κ {})",
                pct(ok as usize, n as usize),
                g.kappa.map_or("–".into(), |k| format!("{k:.2}"))
            )
        });
        writeln!(
            summary,
            "| RLAIF labels | reward model as judge on {} unseen test pairs: agreement with gold {agreement}; {} preference rows written | {:.1}s |",
            lr.pairs,
            lr.written,
            t.elapsed().as_secs_f64()
        )?;

        n += 1;
        let t = stage(n, total, "DPO: preference optimisation from the SFT model");
        let d = align::dpo_stage(out, &w, &sft_main, &p.dpo)?;
        let sc = assess(
            out,
            &world_dir,
            "dpo",
            kinds::DPO,
            &d.final_checkpoint,
            &p.assess,
            args.seed,
        )?;
        let acc = |e: Option<keel_train::dpo::PreferenceEval>| {
            e.map_or("–".into(), |e| format!("{:.1}%", 100.0 * e.accuracy))
        };
        writeln!(
            summary,
            "| DPO | held-out implicit-reward accuracy {} → {}, {} steps (β {}) | {:.1}s |",
            acc(d.val_before),
            acc(d.val),
            d.steps,
            p.dpo.beta,
            t.elapsed().as_secs_f64()
        )?;
        scored.push(("SFT + DPO".into(), sc));

        if let Some(algo) = args.rl {
            n += 1;
            let mut rl_cfg = p.rl.clone();
            rl_cfg.algo = algo.into();
            let name = format!("{:?}", rl_cfg.algo).to_uppercase();
            let t = stage(
                n,
                total,
                &format!("RLHF: {name} from the SFT model against the reward model"),
            );
            let r = rlhf::rl_stage(out, &world_dir, &sft_main, &rm.final_checkpoint, &rl_cfg)?;
            let sc = assess(
                out,
                &world_dir,
                "rl",
                kinds::RL,
                &r.final_checkpoint,
                &p.assess,
                args.seed,
            )?;
            let f = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.2}"));
            writeln!(
                summary,
                "| RLHF ({name}) | reward-model score of greedy answers to validation prompts {} → {}; sampled score {:.2} → {:.2}; KL to SFT {:.2} nats/answer, {} steps | {:.1}s |",
                f(r.eval_score_before),
                f(r.eval_score_after),
                r.train_score_first,
                r.train_score_last,
                r.kl_last,
                r.steps,
                t.elapsed().as_secs_f64()
            )?;
            scored.push((format!("SFT + {name}"), sc));
        }
    }

    // Report.
    n += 1;
    let t = stage(n, total, "report: model card + HTML transparency report");
    let paths = keel_eval::report::write_report(out, &out.join("report"))?;
    writeln!(
        summary,
        "| report | `{}`, `{}` | {:.1}s |\n",
        align::rel(out, &paths.markdown),
        align::rel(out, &paths.html),
        t.elapsed().as_secs_f64()
    )?;

    writeln!(
        summary,
        "## What each stage did (world test split: entities and question templates never trained on)\n"
    )?;
    summary.push_str(&assess::table(&scored));
    if tradeoff.len() > 1 {
        writeln!(
            summary,
            "\n## Safety-mix trade-off (same SFT budget, different safety share)\n"
        )?;
        tradeoff.sort_by(|a, b| a.0.total_cmp(&b.0));
        let rows: Vec<(String, Scores)> = tradeoff
            .into_iter()
            .map(|(r, s)| (format!("safety share {r:.2}"), s))
            .collect();
        summary.push_str(&assess::table(&rows));
    }
    writeln!(summary, "\n## Samples (greedy, pretrained model)\n")?;
    for (prompt, text) in &sampled {
        writeln!(
            summary,
            "- **{}**{}",
            prompt.trim(),
            text.replace('\n', " ")
        )?;
    }
    writeln!(
        summary,
        "\nTotal time {:.1}s. Per-step metrics: `*/metrics.jsonl`; per-item answers: `evals/`; stages: `run.json`.",
        started.elapsed().as_secs_f64()
    )?;
    keel_core::artifact::write_atomic(&out.join("summary.md"), summary.as_bytes())?;
    println!("{summary}");
    eprintln!("summary written to {}", out.join("summary.md").display());
    Ok(())
}
