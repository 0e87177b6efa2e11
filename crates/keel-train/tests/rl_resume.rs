//! RL runs resume exactly (policy, value head, optimizer, adaptive KL coefficient), stop on
//! a non-finite reward naming the last good checkpoint, and refuse mismatched resumes.

mod rl_common;

use keel_train::checkpoint;
use keel_train::pretrain::RunOptions;
use keel_train::rl::{rl, Algo, Candidate, FnReward, RlConfig};
use keel_train::TrainError;
use rl_common::{digit_reward, series, setup};
use std::path::Path;

fn cfg() -> RlConfig {
    RlConfig {
        algo: Algo::Ppo,
        max_steps: 6,
        prompts_per_step: 2,
        completions_per_prompt: 2,
        max_new_tokens: 6,
        micro_batch_size: 3,
        num_mini_batches: 2,
        lr: 1e-2,
        kl_coef: 0.05,
        kl_target: Some(0.5),
        kl_horizon: 50.0,
        eval_every: 3,
        eval_prompts: 2,
        checkpoint_every: 2,
        keep_checkpoints: 5,
        ..Default::default()
    }
}

fn tensors(file: &Path) -> Vec<(String, Vec<f32>)> {
    let mut t: Vec<_> = checkpoint::load_tensors(file)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

#[test]
fn resumed_ppo_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (base, train, val) = setup(dir.path());
    let reward = digit_reward();
    let a = dir.path().join("a");
    let full = rl(
        &base,
        &cfg(),
        &train,
        &val,
        &reward,
        &a,
        RunOptions::default(),
    )
    .unwrap();
    assert_eq!(full.steps, 6);
    let b = dir.path().join("b");
    let stop = RunOptions {
        stop_after: Some(3),
        ..Default::default()
    };
    let first = rl(&base, &cfg(), &train, &val, &reward, &b, stop).unwrap();
    assert_eq!(first.steps, 3);
    let resume = || RunOptions {
        resume: true,
        ..Default::default()
    };
    let second = rl(&base, &cfg(), &train, &val, &reward, &b, resume()).unwrap();
    assert_eq!((second.resumed_from, second.steps), (Some(3), 6));
    for f in ["model.safetensors", "optimizer.safetensors"] {
        assert_eq!(
            tensors(&full.final_checkpoint.join(f)),
            tensors(&second.final_checkpoint.join(f)),
            "{f} differs after resume"
        );
    }
    let head =
        |run: &Path| tensors(&run.join("checkpoints/rl-step-00000006/value_head.safetensors"));
    assert_eq!(head(&a), head(&b), "value head differs after resume");
    assert_eq!(
        full.kl_coef, second.kl_coef,
        "adaptive KL coefficient differs"
    );
    assert_ne!(
        full.kl_coef,
        cfg().kl_coef,
        "the adaptive coefficient should have moved"
    );
    // The resumed log reads as one run.
    assert_eq!(
        series(&a, "objective/scores"),
        series(&b, "objective/scores")
    );
    assert_eq!(series(&b, "kl_coef").len(), 6);

    // Another reward source is another run: refused.
    let other = FnReward {
        name: "other".into(),
        f: |_: &Candidate<'_>| Ok(0.0),
    };
    let e = rl(&base, &cfg(), &train, &val, &other, &b, resume()).unwrap_err();
    assert!(e.to_string().contains("differs"), "{e}");
}

#[test]
fn non_finite_reward_stops_training_naming_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (base, train, val) = setup(dir.path());
    // Finite for the first 2 × 4 scores of steps 1-2 (and the 2 greedy evaluations), NaN after.
    let calls = std::cell::Cell::new(0usize);
    let reward = FnReward {
        name: "breaks".into(),
        f: |_: &Candidate<'_>| {
            calls.set(calls.get() + 1);
            Ok(if calls.get() > 2 + 8 { f64::NAN } else { 0.5 })
        },
    };
    let run = dir.path().join("run");
    let e = rl(
        &base,
        &cfg(),
        &train,
        &val,
        &reward,
        &run,
        RunOptions::default(),
    )
    .unwrap_err();
    match &e {
        TrainError::NonFinite {
            what,
            step,
            last_checkpoint,
            ..
        } => {
            assert_eq!((*what, *step), ("reward", 3));
            assert!(last_checkpoint
                .as_ref()
                .is_some_and(|p| p.ends_with("step-00000002")));
        }
        other => panic!("expected a NonFinite error, got {other}"),
    }
}

#[test]
fn bad_prompts_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let (base, mut train, val) = setup(dir.path());
    train[1].ids = vec![];
    let e = rl(
        &base,
        &cfg(),
        &train,
        &val,
        &digit_reward(),
        &dir.path().join("r"),
        RunOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("training prompt 1"), "{e}");
    let e = rl(
        &base,
        &RlConfig {
            algo: Algo::Rloo,
            completions_per_prompt: 1,
            ..cfg()
        },
        &train,
        &val,
        &digit_reward(),
        &dir.path().join("r"),
        RunOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("completions_per_prompt"), "{e}");
}
