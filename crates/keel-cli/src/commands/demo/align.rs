//! The alignment stages of the demo, each a call into the same library code its own command
//! runs: curate the world's demonstrations at a safety-mix ratio, supervised fine-tuning,
//! a reward model on the world's preference pairs, and DPO from the SFT model. Each stage's
//! settings and training figures go into the run's `run.json`.

use anyhow::Result;
use keel_core::run_log::{DataRecord, RunLog, StageRecord};
use keel_data::chat::ChatExample;
use keel_data::curate::rows::{world_eval_set, world_rows};
use keel_data::curate::{curate, CurateConfig, CurateReport};
use keel_data::preference::{world_pairs, PreferencePair};
use keel_data::world::World;
use keel_train::dpo::{dpo, DpoConfig, DpoOutcome};
use keel_train::pretrain::RunOptions;
use keel_train::reward::{train_reward, RewardConfig, RewardOutcome};
use keel_train::sft::{sft_chat, SftConfig, SftOutcome};
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

pub fn quiet_opts() -> RunOptions<'static> {
    RunOptions {
        show_progress: true,
        ..Default::default()
    }
}

/// Add (or replace) a stage in `run_dir/run.json`, keeping evals already recorded on it.
pub fn record(run_dir: &Path, mut stage: StageRecord) -> Result<()> {
    let mut log = RunLog::load_or_new(run_dir)?;
    if let Some(old) = log.stage(&stage.name) {
        stage.evals = old.evals.clone();
        stage.redteam = old.redteam.clone();
    }
    log.record_stage(stage);
    log.save()?;
    Ok(())
}

/// The world's train-split demonstrations, curated (filters, dedupe, decontamination against
/// every test-split prompt; report written to `out_dir`), then mixed: every instruction and
/// honesty row once, plus safety rows until they are `safety_ratio` of the result.
///
/// A third of the safety rows are refusals (harmful → refuse and redirect) and two thirds
/// look-alikes (benign-but-sensitive → answer), each drawn from a seeded shuffle and cycled
/// when needed. Over-refusal is the usual cost of safety tuning ("sensitive word → refuse"),
/// and contrastive look-alikes are the usual remedy. Measured (1600-step pretraining, share
/// 0.3, test split): with the world's 62 training look-alike questions and this split,
/// over-refusal was 14% on seeds 0 and 1 (harmful refused 75% and 79%); with 41 questions and
/// half and half it was 42% on seed 0. Keeping the helpful rows fixed makes runs at different
/// ratios differ in safety data only.
pub fn curated_demonstrations(
    world: &World,
    safety_ratio: f64,
    seed: u64,
    out_dir: &Path,
) -> Result<(Vec<ChatExample>, CurateReport, usize)> {
    let cfg = CurateConfig {
        seed,
        ..Default::default()
    };
    let evals = [world_eval_set("world/test", &world.test)];
    let out = curate(world_rows(&world.train), &cfg, &evals)?;
    out.report.write(out_dir)?;
    let (safety, helpful): (Vec<_>, Vec<_>) =
        out.kept.into_iter().partition(|r| r.group() == "safety");
    let mut rng = keel_core::rng::rng_for(seed, "demo/safety-mix");
    let (mut refusals, mut lookalikes): (Vec<_>, Vec<_>) = safety
        .into_iter()
        .partition(|r| r.category.as_deref() == Some("harmful"));
    refusals.shuffle(&mut rng);
    lookalikes.shuffle(&mut rng);
    let want = (safety_ratio / (1.0 - safety_ratio) * helpful.len() as f64).round() as usize;
    if want > 0 && (refusals.is_empty() || lookalikes.is_empty()) {
        anyhow::bail!(
            "curation left {} refusal and {} look-alike demonstrations; the safety mix needs both",
            refusals.len(),
            lookalikes.len()
        );
    }
    let mut mixed: Vec<ChatExample> = helpful.into_iter().map(|r| r.example).collect();
    // Safety row i is a refusal when it carries the running count of refusals past a whole
    // number: REFUSAL_FRACTION of the rows, evenly spread; each pool is cycled in order.
    let refusals_before = |i: usize| (i as f64 * REFUSAL_FRACTION).floor() as usize;
    mixed.extend((0..want).map(|i| {
        let r = refusals_before(i);
        if refusals_before(i + 1) > r {
            refusals[r % refusals.len()].example.clone()
        } else {
            lookalikes[(i - r) % lookalikes.len()].example.clone()
        }
    }));
    mixed.shuffle(&mut rng);
    Ok((mixed, out.report, want))
}

/// `mixed` with pretraining documents added until they are `share` of the result, each a
/// plain-text example trained on every token (replay).
///
/// Why: full fine-tuning on a few thousand demonstrations overwrites facts the small model
/// stored in pretraining (the pretrained model completed "Brula Qekrek works as a" with the
/// right trade; after SFT it answered "What job does Brula Qekrek have?" with a wrong one), and
/// held-out helpfulness is recall of exactly those facts. Mixing some of the pretraining
/// corpus back in is the usual remedy (InstructGPT's "ptx" term does the same for RLHF).
///
/// Off by default (`--sft-replay`). Measured on an earlier world (seed 0, safety share 0.3,
/// test split, share 0.25 vs none): after 800 pretraining steps it helped everywhere (fact QA
/// 12 → 19 of 78, harmful refused 71% → 80%, over-refusal 44% → 33%); after 1600 it traded
/// (fact QA 39 → 41, over-refusal 12% → 9%, but harmful refused 95% → 70%: at a fixed step
/// count the documents dilute the refusal demonstrations).
pub fn with_replay(
    mut mixed: Vec<ChatExample>,
    corpus: &[keel_data::world::CorpusDoc],
    share: f64,
    seed: u64,
) -> (Vec<ChatExample>, usize) {
    let want = (share / (1.0 - share) * mixed.len() as f64).round() as usize;
    if want == 0 || corpus.is_empty() {
        return (mixed, 0);
    }
    let mut rng = keel_core::rng::rng_for(seed, "demo/replay");
    let mut docs: Vec<&keel_data::world::CorpusDoc> = corpus.iter().collect();
    docs.shuffle(&mut rng);
    mixed.extend((0..want).map(|i| ChatExample::Text {
        text: docs[i % docs.len()].text.clone(),
    }));
    mixed.shuffle(&mut rng);
    (mixed, want)
}

/// Share of the safety rows that are refusals; the rest are look-alikes answered.
const REFUSAL_FRACTION: f64 = 1.0 / 3.0;

/// What SFT trained on: the curation report and the mix drawn from it.
pub struct DemoMix {
    pub curated: CurateReport,
    /// Demonstrations in the mix, and how many of them are (possibly repeated) safety rows.
    pub rows: usize,
    pub safety_rows: usize,
    /// Pretraining documents mixed in (replay).
    pub replay_rows: usize,
}

/// SFT from `base` on curated demonstrations (validation: the world's validation split).
pub fn sft_stage(
    run_dir: &Path,
    name: &str,
    world: &World,
    base: &Path,
    cfg: &SftConfig,
    safety_ratio: f64,
    replay_share: f64,
) -> Result<(SftOutcome, DemoMix)> {
    let t = Instant::now();
    let dir = run_dir.join(name);
    let (train, report, safety_rows) =
        curated_demonstrations(world, safety_ratio, cfg.seed, &dir.join("data"))?;
    let (train, replay_rows) = with_replay(train, &world.corpus.train, replay_share, cfg.seed);
    let val: Vec<ChatExample> = world_rows(&world.validation)
        .into_iter()
        .map(|r| r.example)
        .collect();
    let out = sft_chat(base, cfg, &train, &val, &dir, quiet_opts())?;
    let report = DemoMix {
        curated: report,
        rows: train.len(),
        safety_rows,
        replay_rows,
    };
    let mut st = StageRecord::new(name, keel_core::run_log::kinds::SFT);
    st.command = Some(format!("keel demo (SFT, safety mix {safety_ratio})"));
    st.hyperparameters = serde_json::to_value(cfg)?;
    st.hyperparameters["safety_ratio"] = serde_json::json!(safety_ratio);
    st.hyperparameters["safety_rows"] = serde_json::json!(safety_rows);
    st.hyperparameters["replay_share"] = serde_json::json!(replay_share);
    st.hyperparameters["replay_rows"] = serde_json::json!(replay_rows);
    st.data.push(DataRecord {
        path: "world/tasks/train (instructions, harmful, benign_sensitive, unanswerable, false_premise)"
            .into(),
        role: Some("train".into()),
        sha256: None,
        rows: Some(train.len() as u64),
        dropped: report
            .curated
            .dropped
            .iter()
            .map(|(r, n)| (keel_data::curate::report::reason_name(*r), *n as u64))
            .collect(),
    });
    st.checkpoint = Some(rel(run_dir, &out.final_checkpoint));
    st.training = BTreeMap::from([
        ("steps".into(), out.steps as f64),
        ("final_loss".into(), out.train_loss),
        ("tokens_per_s".into(), out.tokens_per_sec),
        ("wall_s".into(), t.elapsed().as_secs_f64()),
    ]);
    if let Some(v) = out.val_loss {
        st.training.insert("val_loss".into(), v);
    }
    record(run_dir, st)?;
    Ok((out, report))
}

/// The world's preference pairs of one split (chosen vs a rejected answer with a typed defect).
pub fn pairs(banks: &keel_data::world::TaskBanks) -> Vec<PreferencePair> {
    world_pairs(&banks.preferences, Path::new("world"))
        .into_iter()
        .map(|p| p.pair)
        .collect()
}

/// A reward model on the SFT model's trunk; accuracy on the validation split's pairs.
pub fn reward_stage(
    run_dir: &Path,
    world: &World,
    sft: &Path,
    cfg: &RewardConfig,
) -> Result<RewardOutcome> {
    let t = Instant::now();
    let (train, val) = (pairs(&world.train), pairs(&world.validation));
    let out = train_reward(
        sft,
        cfg,
        &train,
        &val,
        &run_dir.join("reward"),
        quiet_opts(),
    )?;
    let val = out
        .val_before
        .zip(out.val)
        .map(|(b, a)| (b.accuracy, a.accuracy, a.margin));
    let st = preference_record(
        run_dir,
        ("reward", keel_core::run_log::kinds::REWARD, "reward model"),
        serde_json::to_value(cfg)?,
        out.train_pairs,
        &out.final_checkpoint,
        [
            ("steps", out.steps as f64),
            ("final_loss", out.train_loss),
            ("tokens_per_s", out.tokens_per_sec),
            ("wall_s", t.elapsed().as_secs_f64()),
        ],
        val,
    )?;
    record(run_dir, st)?;
    Ok(out)
}

/// DPO from the SFT model (its own frozen copy as the reference).
pub fn dpo_stage(run_dir: &Path, world: &World, sft: &Path, cfg: &DpoConfig) -> Result<DpoOutcome> {
    let t = Instant::now();
    let (train, val) = (pairs(&world.train), pairs(&world.validation));
    let out = dpo(sft, cfg, &train, &val, &run_dir.join("dpo"), quiet_opts())?;
    let val = out
        .val_before
        .zip(out.val)
        .map(|(b, a)| (b.accuracy, a.accuracy, a.margin));
    let mut st = preference_record(
        run_dir,
        ("dpo", keel_core::run_log::kinds::DPO, "DPO"),
        serde_json::to_value(cfg)?,
        out.train_items,
        &out.final_checkpoint,
        [
            ("steps", out.steps as f64),
            ("final_loss", out.train_loss),
            ("tokens_per_s", out.tokens_per_sec),
            ("wall_s", t.elapsed().as_secs_f64()),
        ],
        val,
    )?;
    st.training.insert("reference_s".into(), out.reference_secs);
    record(run_dir, st)?;
    Ok(out)
}

/// The run-log record of a stage trained on the world's preference pairs: settings, the
/// pairs file (with its sha256), the checkpoint, training figures and, when evaluated,
/// held-out accuracy before/after and the final margin.
fn preference_record(
    run_dir: &Path,
    (name, kind, what): (&str, &str, &str),
    hyperparameters: serde_json::Value,
    rows: usize,
    checkpoint: &Path,
    training: [(&str, f64); 4],
    val: Option<(f64, f64, f64)>,
) -> Result<StageRecord> {
    let path = "world/tasks/train/preferences.jsonl";
    let mut st = StageRecord::new(name, kind);
    st.command = Some(format!("keel demo ({what})"));
    st.hyperparameters = hyperparameters;
    st.data.push(DataRecord {
        path: path.into(),
        role: Some("train".into()),
        sha256: Some(keel_core::artifact::sha256_file(&run_dir.join(path))?),
        rows: Some(rows as u64),
        dropped: Default::default(),
    });
    st.checkpoint = Some(rel(run_dir, checkpoint));
    st.training = training.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    if let Some((before, after, margin)) = val {
        st.training.insert("val_accuracy_before".into(), before);
        st.training.insert("val_accuracy".into(), after);
        st.training.insert("val_margin".into(), margin);
    }
    Ok(st)
}

pub fn rel(run_dir: &Path, p: &Path) -> String {
    p.strip_prefix(run_dir).unwrap_or(p).display().to_string()
}
