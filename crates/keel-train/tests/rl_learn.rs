//! RL measurably raises the reward on world prompts while the KL to the reference stays
//! bounded: a tiny fresh model, the world's questions with numeric answers, and a
//! programmatic reward for answering in digits.

mod rl_common;

use keel_train::pretrain::RunOptions;
use keel_train::rl::{rl, Algo, RlConfig};
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
