//! Generation on a tiny random model with a toy byte-level tokenizer (no downloads):
//! determinism, top-k = 1 ≡ greedy, seeded reproducibility, stop tokens and stop sequences.

mod common;

use keel_model::generate::{generate, FinishReason, Generation, SamplingParams};
use keel_model::Llama;

const PROMPT: [u32; 4] = [1, 40, 75, 259];

fn setup() -> (Llama, tokenizers::Tokenizer) {
    let c = common::config(true);
    let (_, m) = common::random_model(&c, 21);
    (m, common::tokenizer())
}

fn run(m: &Llama, t: &tokenizers::Tokenizer, p: &SamplingParams) -> (Generation, Vec<String>) {
    let mut pieces = Vec::new();
    let g = generate(m, t, &PROMPT, p, &mut |s| pieces.push(s.to_string())).unwrap();
    assert_eq!(
        pieces.concat(),
        g.text,
        "streamed pieces must add up to the text"
    );
    (g, pieces)
}

fn sampled(seed: u64) -> SamplingParams {
    SamplingParams {
        max_new_tokens: 24,
        temperature: 1.0,
        seed,
        ..Default::default()
    }
}

#[test]
fn greedy_is_deterministic_and_runs_to_length() {
    let (m, t) = setup();
    let p = SamplingParams::greedy(16);
    let (a, _) = run(&m, &t, &p);
    let (b, _) = run(&m, &t, &p);
    assert_eq!(a, b);
    assert_eq!(a.num_tokens(), 16);
    assert_eq!(a.finish_reason, FinishReason::Length);
}

#[test]
fn top_k_one_equals_greedy_at_any_temperature() {
    let (m, t) = setup();
    let (greedy, _) = run(&m, &t, &SamplingParams::greedy(16));
    for temp in [0.5, 1.0, 3.0] {
        let p = SamplingParams {
            max_new_tokens: 16,
            temperature: temp,
            top_k: Some(1),
            seed: 99,
            ..Default::default()
        };
        assert_eq!(
            run(&m, &t, &p).0.token_ids,
            greedy.token_ids,
            "temperature {temp}"
        );
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_seed_dependent() {
    let (m, t) = setup();
    let (a, _) = run(&m, &t, &sampled(7));
    let (b, _) = run(&m, &t, &sampled(7));
    let (c, _) = run(&m, &t, &sampled(8));
    assert_eq!(a, b);
    assert_ne!(
        a.token_ids, c.token_ids,
        "a random model at temperature 1 should differ across seeds"
    );
    let (g, _) = run(&m, &t, &SamplingParams::greedy(24));
    assert_ne!(
        a.token_ids, g.token_ids,
        "sampling at temperature 1 should not be greedy"
    );
    let nucleus = SamplingParams {
        top_p: Some(0.9),
        top_k: Some(50),
        ..sampled(7)
    };
    assert_eq!(run(&m, &t, &nucleus).0, run(&m, &t, &nucleus).0);
}

#[test]
fn stop_token_ends_generation_before_it() {
    let (m, t) = setup();
    let (full, _) = run(&m, &t, &SamplingParams::greedy(16));
    let stop_id = full.token_ids[5];
    let first = full.token_ids.iter().position(|&x| x == stop_id).unwrap();
    let p = SamplingParams {
        stop_token_ids: vec![stop_id],
        ..SamplingParams::greedy(16)
    };
    let (g, _) = run(&m, &t, &p);
    assert_eq!(g.finish_reason, FinishReason::Stop);
    assert_eq!(g.token_ids, full.token_ids[..first]);
}

#[test]
fn stop_sequence_truncates_text_and_is_never_streamed() {
    let (m, t) = setup();
    // Find a seed whose sample has a clean two-character window to use as a stop sequence.
    for seed in 0..50 {
        let (full, _) = run(&m, &t, &sampled(seed));
        let chars: Vec<char> = full.text.chars().collect();
        let Some(k) = (chars.len() / 2..chars.len().saturating_sub(1))
            .find(|&k| chars[k].is_ascii_graphic() && chars[k + 1].is_ascii_graphic())
        else {
            continue;
        };
        let stop: String = chars[k..k + 2].iter().collect();
        let cut = full.text.find(&stop).unwrap();
        let p = SamplingParams {
            stop: vec![stop.clone()],
            ..sampled(seed)
        };
        let (g, pieces) = run(&m, &t, &p);
        assert_eq!(g.finish_reason, FinishReason::Stop);
        assert_eq!(g.text, full.text[..cut], "stop {stop:?}");
        assert!(pieces.iter().all(|s| !s.contains(&stop)));
        assert!(g.num_tokens() <= full.num_tokens());
        return;
    }
    panic!("no seed produced a usable stop window");
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let (m, t) = setup();
    assert!(generate(&m, &t, &[], &SamplingParams::greedy(4), &mut |_| {}).is_err());
    assert!(generate(&m, &t, &[9999], &SamplingParams::greedy(4), &mut |_| {}).is_err());
    let long = vec![5u32; 128];
    assert!(generate(&m, &t, &long, &SamplingParams::greedy(4), &mut |_| {}).is_err());
    // Near the context limit generation stops with Length instead of overrunning.
    let near = vec![5u32; 126];
    let g = generate(&m, &t, &near, &SamplingParams::greedy(10), &mut |_| {}).unwrap();
    assert_eq!((g.num_tokens(), g.finish_reason), (2, FinishReason::Length));
}
