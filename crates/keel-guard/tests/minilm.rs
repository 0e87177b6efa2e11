//! MiniLM embeddings against sentence-transformers' published figures. Needs the model
//! (scripts/fetch_minilm.sh); without it the test prints why and checks nothing — it then
//! passes vacuously, and says so, rather than pretending.

use keel_guard::classify::minilm::{find_model, MiniLm};

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn minilm_matches_sentence_transformers_reference() {
    let Some(dir) = find_model(None) else {
        eprintln!("SKIPPED minilm_matches_sentence_transformers_reference: all-MiniLM-L6-v2 not found (run scripts/fetch_minilm.sh); nothing was checked");
        return;
    };
    let m = MiniLm::load(&dir).unwrap();
    // The sentence-transformers quickstart's example and its similarity matrix for this model.
    let e = m
        .embed(&[
            "The weather is lovely today.",
            "It's so sunny outside!",
            "He drove to the stadium.",
        ])
        .unwrap();
    for v in &e {
        assert_eq!(v.len(), 384);
        assert!((cos(v, v) - 1.0).abs() < 1e-4, "not unit length");
    }
    let (s01, s02, s12) = (cos(&e[0], &e[1]), cos(&e[0], &e[2]), cos(&e[1], &e[2]));
    assert!((s01 - 0.6660).abs() < 0.01, "{s01}");
    assert!((s02 - 0.1046).abs() < 0.01, "{s02}");
    assert!((s12 - 0.1411).abs() < 0.01, "{s12}");
    // Batching with padding must not change a sentence's embedding.
    let solo = m.embed(&["He drove to the stadium."]).unwrap();
    assert!(cos(&solo[0], &e[2]) > 0.9999);
}
