//! RL measurably raises the reward on world prompts while the KL to the reference stays
//! bounded: a tiny fresh model, the world's questions with numeric answers, and a
//! programmatic reward for answering in digits.

mod rl_common;

use keel_train::pretrain::RunOptions;
use keel_train::rl::{rl, Algo, RewardSource, RlConfig};
use rl_common::{digit_reward, series, setup};

fn cfg(algo: Algo, kl_coef: f64) -> RlConfig {
    RlConfig {
        algo,
        max_steps: 50,
        prompts_per_step: 4,
        completions_per_prompt: 4,
        max_new_tokens: 8,
        num_ppo_epochs: 2,
        micro_batch_size: 16,
        lr: 1e-2,
        kl_coef,
        missing_eos_penalty: 0.0,
        eval_every: 0,
        eval_prompts: 8,
        checkpoint_every: 0,
        ..Default::default()
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Train; return (early sampled score, late sampled score, late KL per sequence, greedy
/// evaluation score before, after).
fn train(algo: Algo, kl_coef: f64) -> (f64, f64, f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let (base, train, val) = setup(dir.path());
    let run = dir.path().join("run");
    let c = cfg(algo, kl_coef);
    let out = rl(
        &base,
        &c,
        &train,
        &val,
        &digit_reward(),
        &run,
        RunOptions::default(),
    )
    .unwrap();
    assert!(out.final_checkpoint.join("model.safetensors").is_file());
    let scores = series(&run, "objective/scores");
    let kl = series(&run, "objective/kl");
    assert_eq!((scores.len(), kl.len()), (50, 50));
    let r = (
        mean(&scores[..5]),
        mean(&scores[45..]),
        mean(&kl[45..]),
        out.eval_score_before.unwrap(),
        out.eval_score_after.unwrap(),
    );
    eprintln!(
        "{algo:?} β={kl_coef}: sampled score {:.3} → {:.3}, greedy eval {:?} → {:?}, \
         late KL {:.2} nats/completion, {:.1}s",
        r.0, r.1, out.eval_score_before, out.eval_score_after, r.2, out.seconds
    );
    r
}

/// The reward rises well above a random model's few per cent, and the KL penalty keeps the
/// policy within a few nats of the reference: answering only in digits from a near-uniform
/// start would cost about ln(400/20) ≈ 3 nats per token, 24 per completion. (With β = 0.05
/// and a per-token share of the reward of about 1/8, the KL-regularised optimum puts about
/// 40 % of its mass on digit tokens, at about 4 nats per completion.) GRPO's advantages are
/// normalised by the group's std, so its β is on another scale.
fn learns(algo: Algo, beta: f64) -> f64 {
    let (early, late, kl, before, after) = train(algo, beta);
    assert!(
        late > early + 0.05 && late > 2.5 * early,
        "{algo:?}: sampled reward did not rise: {early:.3} → {late:.3}"
    );
    assert!(
        after > before + 0.3,
        "{algo:?}: greedy reward on validation prompts did not rise: {before:.3} → {after:.3}"
    );
    assert!(kl > 0.0 && kl < 8.0, "{algo:?}: KL to reference {kl}");
    kl
}

#[test]
fn ppo_raises_the_reward_with_bounded_kl() {
    let kl = learns(Algo::Ppo, 0.05);
    // Without the penalty the same run drifts much further from the reference.
    let free_kl = train(Algo::Ppo, 0.0).2;
    assert!(
        free_kl > 2.0 * kl,
        "KL without penalty {free_kl}, with {kl}"
    );
}

#[test]
fn grpo_raises_the_reward_with_bounded_kl() {
    let _ = learns(Algo::Grpo, 0.4);
}

#[test]
fn rloo_raises_the_reward_with_bounded_kl() {
    let _ = learns(Algo::Rloo, 0.05);
}

/// RLHF proper: a reward model learns from preference pairs that bare numbers beat other
/// replies, then PPO against that model (not the rule behind the pairs) raises the model's
/// score of the policy's answers, with the KL to the reference bounded.
#[test]
fn ppo_against_a_trained_reward_model_raises_its_score() {
    use keel_data::chat::{Message, Role};
    use keel_data::preference::PreferencePair;
    use keel_train::reward::{train_reward, RewardConfig};
    use keel_train::rl::RewardModelSource;

    let dir = tempfile::tempdir().unwrap();
    let (base, train, val) = setup(dir.path());
    // Rejected replies look like what the policy says before training (random tokens of the
    // world's vocabulary, and words from the question) or hedge; none has a digit. So the
    // reward model must learn "answers in digits", not "is not a hedge".
    let tok =
        keel_data::tokenizer::KeelTokenizer::from_file(&dir.path().join("tokenizer.json")).unwrap();
    let mut rng = keel_core::rng::rng_for(0, "test/rm-pairs");
    let hedges = [
        "I am not sure.",
        "Maybe ask someone else.",
        "That is hard to say.",
    ];
    let mut pairs = |ps: &[keel_train::rl::RlPrompt]| -> Vec<PreferencePair> {
        use rand::Rng;
        let mut out = Vec::new();
        for (i, p) in ps.iter().enumerate() {
            let gold = p.gold.as_ref().unwrap().as_text().unwrap().to_string();
            let n = rng.random_range(2..8);
            let ids: Vec<u32> = (0..n)
                .map(|_| rng.random_range(0..tok.vocab_size() as u32))
                .collect();
            let words: Vec<&str> = p.text.split_whitespace().collect();
            let k = rng.random_range(0..words.len());
            for rejected in [
                hedges[i % hedges.len()].to_string(),
                tok.decode(&ids),
                words[k..(k + 3).min(words.len())].join(" "),
            ] {
                let rejected: String = rejected.chars().filter(|c| !c.is_ascii_digit()).collect();
                if !rejected.trim().is_empty() {
                    out.push(PreferencePair {
                        prompt: vec![Message::new(Role::User, p.text.clone())],
                        chosen: gold.clone(),
                        rejected,
                    });
                }
            }
        }
        out
    };
    let (train_pairs, val_pairs) = (pairs(&train), pairs(&val));
    let rc = RewardConfig {
        max_len: 96,
        batch_size: 8,
        max_steps: 40,
        lr: 3e-3,
        warmup_steps: 4,
        eval_every: 0,
        ..Default::default()
    };
    let rm = train_reward(
        &base,
        &rc,
        &train_pairs,
        &val_pairs,
        &dir.path().join("rm"),
        RunOptions::default(),
    )
    .unwrap();
    let (acc, margin) = (rm.val.unwrap().accuracy, rm.val.unwrap().margin);
    eprintln!("reward model: held-out accuracy {acc:.3}, margin {margin:.2}");
    assert!(acc >= 0.9, "reward model held-out accuracy {acc}");
    let reward = RewardModelSource::load(&rm.final_checkpoint).unwrap();
    assert!(reward.name().starts_with("reward-model:"));

    let run = dir.path().join("ppo");
    let beta = 0.05;
    let out = rl(
        &base,
        &RlConfig {
            max_steps: 100,
            ..cfg(Algo::Ppo, beta)
        },
        &train,
        &val,
        &reward,
        &run,
        RunOptions::default(),
    )
    .unwrap();
    let scores = series(&run, "objective/scores");
    let kl = series(&run, "objective/kl");
    let (early, late) = (mean(&scores[..5]), mean(&scores[scores.len() - 5..]));
    let late_kl = mean(&kl[kl.len() - 5..]);
    eprintln!(
        "PPO vs reward model: sampled score {early:.3} → {late:.3} (reward model margin \
         {margin:.2}), greedy eval {:?} → {:?}, late KL {late_kl:.2}, {:.1}s",
        out.eval_score_before, out.eval_score_after, out.seconds
    );
    // Measured: −2.17 → −0.71 against a margin of 3.63, KL 6.0 nats per completion; on a later
    // world (its texts changed the tokenizer and the model) −2.01 → 1.61, KL 17.9. Greedy
    // answers of a model this small barely move (the evaluation prompts are only 8), so the
    // sampled score, which is what PPO optimises, carries the assertion.
    assert!(
        late - early > 0.25 * margin,
        "sampled reward-model score did not rise: {early} → {late} (margin {margin})"
    );
    // The leash: PPO maximises reward − β·KL, and the reference itself scores `early` at zero
    // KL, so a policy that drifted further than its reward gain pays for has failed the
    // objective (a fixed nat bound instead depends on the world and tokenizer).
    assert!(
        late_kl > 0.0 && (late - early) - beta * late_kl > 0.0,
        "KL {late_kl} costs more than the score gained: {early} → {late} at β {beta}"
    );
}
