//! The demo's plan: the world it generates and the sizes of its model and runs, by `--size`,
//! with the user's JSON overrides laid over them.

use super::assess::AssessPlan;
use super::DemoArgs;
use anyhow::{Context, Result};
use keel_data::world::WorldConfig;
use keel_train::dpo::DpoConfig;
use keel_train::pretrain::PretrainConfig;
use keel_train::reward::RewardConfig;
use keel_train::rl::RlConfig;
use keel_train::sft::SftConfig;
use keel_train::sft_pack::PackingMode;

/// `base` with the fields of the JSON object in `path` laid over it, so a user can change one
/// setting of the demo's plan; a field the config does not have is an error, not ignored.
pub fn overlay<T>(base: T, path: Option<&std::path::Path>) -> Result<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let Some(path) = path else { return Ok(base) };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read config overrides", path.display()))?;
    let patch: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let serde_json::Value::Object(patch) = patch else {
        anyhow::bail!("{}: config overrides must be a JSON object", path.display());
    };
    let mut merged = serde_json::to_value(base)?;
    for (k, v) in patch {
        match merged.get_mut(&k) {
            Some(slot) => *slot = v,
            None => anyhow::bail!("{}: unknown config field '{k}'", path.display()),
        }
    }
    serde_json::from_value(merged)
        .with_context(|| format!("{}: invalid config overrides", path.display()))
}

/// The default demo's world: a third of [`WorldConfig::default`]'s entities, each described
/// in 36 articles (every person also in 48 stories) instead of 6 and 8.
///
/// Why: a 1M-parameter model pretrained for minutes must store every entity's facts before
/// SFT can teach it to answer about held-out entities. Measured on this world (800 steps of
/// 8×128 tokens, before the general pages; the demo now pretrains for 1200): with 6
/// articles the corpus repeats 11 times and the model memorises the documents' wording
/// (train loss 0.5, validation 0.99) rather than the facts; with 36 freshly drawn articles
/// per entity (same facts, new template draws and sentence orders: knowledge augmentation)
/// it sees the corpus about twice and validation loss falls to 0.87. SFT then answered 42%
/// of validation-split fact questions (the earlier 6-article, 400×16-token
/// pretraining: 13%).
fn demo_world() -> WorldConfig {
    WorldConfig {
        regions: 4,
        rivers: 6,
        towns: 16,
        people: 64,
        creatures: 16,
        products: 24,
        validation_fraction: 0.15,
        test_fraction: 0.15,
        articles_per_entity: 36,
        stories_per_person: 48,
        // Four questions per fact, each in a different phrasing: SFT then sees each
        // demonstration a few times rather than a dozen (test-split fact QA 10 → 14 of 78).
        questions_per_fact: 4,
        arithmetic_docs: 100,
        // Pages of everyday answers and help-desk refusals in the pretraining corpus. Measured
        // (seed 0, `--safety-ratios 0.3 --skip-preference`): without them SFT train loss stayed
        // at 3.40 and refusals came out as garbage; with 200 it fell to 0.40 and harmful-request
        // refusal rose 71% (over-refusal 44%, still high).
        general_pages: 200,
        arithmetic_questions: 200,
        unanswerable_questions: 200,
        false_premise_questions: 200,
        harmful_per_hazard: 16,
        benign_questions: 200,
        preferences_per_defect: 120,
    }
}

/// Sizes of the demo's model and runs, by `--size`.
pub struct Plan {
    pub world: WorldConfig,
    pub vocab: usize,
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    pub pretrain: PretrainConfig,
    pub cloze_items: usize,
    pub sft: SftConfig,
    pub safety_ratios: Vec<f64>,
    /// Share of each SFT mix that is pretraining documents (see `align::with_replay`).
    pub replay_share: f64,
    pub reward: RewardConfig,
    pub dpo: DpoConfig,
    /// RLHF against the reward model (with `--rl`; the algorithm comes from the flag).
    pub rl: RlConfig,
    pub assess: AssessPlan,
}

pub fn plan(args: &DemoArgs) -> Result<Plan> {
    let tiny = args.size == "tiny";
    let pretrain = PretrainConfig {
        seq_len: if tiny { 64 } else { 128 },
        // Small batches, many steps: at a fixed token budget, 800 steps of 8 rows stored
        // facts better than 400 of 16 (validation loss 0.99 vs 1.05).
        batch_size: 8,
        // 1200 steps (about three passes over the corpus), not 800: the loss was still falling
        // at 800, and every later stage lives on the facts stored here. Measured (seed 0,
        // `--safety-ratios 0.3 --skip-preference`, test split, an earlier world), 800 → 1600
        // steps: pretrained cloze recall of train-split facts 35% → 65%; after SFT, held-out
        // fact QA 12 → 39 of 78, helpfulness 7% → 22%. 1600 steps made the whole demo 9m46s
        // when this machine ran slow (5,000 tokens/s); 1200 took 7m29s at 5,400 tokens/s, with
        // SFT helpfulness 24% (1600: 20%) on the same world.
        max_steps: if tiny { 30 } else { 1200 },
        lr: 3e-3,
        warmup_steps: if tiny { 5 } else { 40 },
        eval_every: if tiny { 15 } else { 400 },
        eval_windows: if tiny { 8 } else { 48 },
        checkpoint_every: if tiny { 15 } else { 600 },
        seed: args.seed,
        ..Default::default()
    };
    let mut pretrain = overlay(pretrain, args.pretrain_config.as_deref())?;
    if let Some(s) = args.pretrain_steps {
        pretrain.max_steps = s;
    }
    let sft = SftConfig {
        seq_len: if tiny { 128 } else { 192 },
        // Rows of several demonstrations each, attention-masked per demonstration.
        packing: PackingMode::Packing,
        batch_size: 8,
        max_steps: if tiny { 20 } else { 200 },
        // 6e-4, not 1e-3: at 1e-3 SFT overwrote what pretraining stored and answered 14 of 78
        // held-out test fact questions; at 3e-4 it answered 28 but never learned to refuse;
        // 6e-4 answered 23 and refused 89% of harmful requests (over-refusal 19%). Those runs
        // predate the general pages; the lr was not re-tuned after they were added.
        lr: 6e-4,
        warmup_steps: if tiny { 2 } else { 20 },
        eval_every: 0,
        checkpoint_every: 0,
        keep_checkpoints: 1,
        seed: args.seed,
        ..Default::default()
    };
    let mut sft = overlay(sft, args.sft_config.as_deref())?;
    if let Some(s) = args.sft_steps {
        sft.max_steps = s;
    }
    let safety_ratios = args.safety_ratios.clone().unwrap_or_else(|| {
        if tiny {
            vec![0.3]
        } else {
            vec![0.3, 0.0, 0.6]
        }
    });
    if safety_ratios.is_empty() || safety_ratios.iter().any(|r| !(0.0..0.95).contains(r)) {
        anyhow::bail!("--safety-ratios: each ratio must be in [0, 0.95), got {safety_ratios:?}");
    }
    let replay_share = args.sft_replay.unwrap_or(0.0);
    if !(0.0..0.95).contains(&replay_share) {
        anyhow::bail!("--sft-replay: the share must be in [0, 0.95), got {replay_share}");
    }
    let reward = RewardConfig {
        max_len: sft.seq_len,
        batch_size: 8,
        max_steps: if tiny { 10 } else { 40 },
        lr: 1e-3,
        warmup_steps: 4,
        eval_every: 0,
        checkpoint_every: 0,
        keep_checkpoints: 1,
        seed: args.seed,
        ..Default::default()
    };
    let dpo = overlay(
        DpoConfig {
            max_len: sft.seq_len,
            batch_size: 8,
            max_steps: if tiny { 10 } else { 40 },
            lr: 2e-4,
            // DPO + NLL on the chosen answers (RPO), to keep refusals likely while the margin
            // widens: plain DPO lowers the chosen answers' likelihood too, and the freed mass
            // went to "I don't know: there is no person called …" on harmful prompts.
            // Measured from a demo SFT model (1600-step pretraining, the world before its
            // benign questions were extended, test split, 56 harmful prompts refused 53 before
            // DPO): α 0.5 → 26 refused (β 0.5: 36; lr 5e-5: 34; IPO: 11); α 2 → 43; α 4 → 55
            // and 53 (two data orders); α 8 → 55 and 53. The cost at α 4: over-refusal 12% →
            // 21% and 40% (same two orders). With the 1200-step default, DPO took harmful
            // refusal 91% → 93% and over-refusal 21% → 16% (seed 0).
            rpo_alpha: 4.0,
            warmup_steps: 4,
            eval_every: 0,
            checkpoint_every: 0,
            keep_checkpoints: 1,
            seed: args.seed,
            ..Default::default()
        },
        args.dpo_config.as_deref(),
    )?;
    let rl = overlay(
        RlConfig {
            max_steps: if tiny { 3 } else { 40 },
            prompts_per_step: if tiny { 4 } else { 8 },
            completions_per_prompt: 4,
            max_new_tokens: if tiny { 16 } else { 48 },
            lr: 1e-4,
            // Measured (seed 0, test split, SFT 0.3 → PPO): at β 0.05 the policy drifted 6.7
            // nats per answer and reward-hacked, harmful refused 71% → 16% though the reward
            // model ranks unsafe compliance last on every held-out pair; at β 0.2 (KL 2.0)
            // refusals held (77%) but over-refusal rose 44% → 60%. Neither is a fix; the demo
            // shows the first, the classic failure RLHF's KL leash exists for.
            kl_coef: 0.05,
            eval_every: 0,
            eval_prompts: if tiny { 4 } else { 48 },
            checkpoint_every: 0,
            keep_checkpoints: 1,
            seed: args.seed,
            ..Default::default()
        },
        args.rl_config.as_deref(),
    )?;
    Ok(Plan {
        world: overlay(
            if tiny {
                WorldConfig::tiny()
            } else {
                demo_world()
            },
            args.world_config.as_deref(),
        )?,
        vocab: if tiny { 512 } else { 2048 },
        d_model: if tiny { 64 } else { 128 },
        layers: if tiny { 2 } else { 4 },
        heads: 4,
        pretrain,
        cloze_items: if tiny { 20 } else { 300 },
        sft,
        safety_ratios,
        replay_share,
        reward,
        dpo,
        rl,
        assess: AssessPlan {
            items_per_bank: if tiny { Some(8) } else { None },
            redteam_goals: if tiny { 3 } else { 14 },
            max_tokens: 48,
        },
    })
}
