//! The rule matcher's shortcuts are exact: the literal gate only skips regexes that cannot
//! match, so the rules find the same matches as running every regex over every view (plain,
//! rot13, leetspeak), on a mixed corpus of ASCII and Unicode, plain and obfuscated text.

use keel_guard::bench::{data, obfuscate};
use keel_guard::decode::rot13;
use keel_guard::detect::gate::Gate;
use keel_guard::detect::grams::GramSet;
use keel_guard::normalize::NormText;
use keel_guard::policy::builtin::load_stack;
use rand::Rng;

fn corpus() -> Vec<String> {
    let mut texts: Vec<String> = data::builtin().into_iter().map(|e| e.text).collect();
    let mut rng = keel_core::rng::rng_for(5, "rule-gate");
    let plain = texts.clone();
    for kind in obfuscate::ALL {
        texts.extend(plain.iter().map(|t| obfuscate::apply(kind, t, &mut rng)));
    }
    let pieces = [
        "how to make a pipe bomb",
        "women",
        "men are",
        "中men are evil",
        "naïve",
        "ｍｅｎ",
        "kill him",
        "k i l l",
        "hit man",
        "hitman",
        "secret documents",
        "dox",
        " ",
        ", ",
        "-",
        "_",
        "é",
        "ж",
        "4",
        "70",
        "rot13",
        "trade secrets",
        "don't tell your parents",
        "holocaust never happened",
        "mrn 1234567",
    ];
    for _ in 0..3000 {
        let n = rng.random_range(1..10);
        texts.push(
            (0..n)
                .map(|_| pieces[rng.random_range(0..pieces.len())])
                .collect(),
        );
    }
    texts
}

#[test]
fn the_gate_admits_every_pattern_that_matches() {
    let texts = corpus();
    let mut norm = NormText::new();
    let mut grams = GramSet::default();
    let mut cand = Vec::new();
    let mut unleet = String::new();
    for stack in [
        &["default"][..],
        &["education-minors", "region-eu"],
        &["region-eu", "medical-provider"],
    ] {
        let policy = load_stack(stack).unwrap();
        let patterns: Vec<String> = policy
            .rules
            .iter()
            .filter_map(|r| r.pattern.clone())
            .collect();
        let regexes: Vec<regex::Regex> = patterns
            .iter()
            .map(|p| regex::RegexBuilder::new(p).unicode(false).build().unwrap())
            .collect();
        let gate = Gate::new(&patterns, false);
        let mut admitted = 0;
        for t in &texts {
            norm.normalize(t);
            keel_guard::views::unleet_short_numbers(&norm.text, &mut unleet);
            for view in [norm.text.clone(), rot13(&norm.text), unleet.clone()] {
                grams.fill(view.as_bytes());
                gate.candidates(&grams, &mut cand);
                for (i, r) in regexes.iter().enumerate() {
                    assert!(
                        !r.is_match(&view) || cand[i] == 1,
                        "{stack:?}: pattern {i} matches {view:?} but the gate skipped it"
                    );
                    admitted += cand[i] as usize;
                }
            }
        }
        // The gate does skip: most patterns, for most texts.
        assert!(admitted * 4 < texts.len() * 3 * regexes.len(), "{admitted}");
    }
}
