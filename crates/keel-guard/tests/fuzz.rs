//! Property tests: the normaliser, payload decoder, policy parser and engine never panic, and
//! every span maps inside the original text on a char boundary.

use keel_guard::normalize::NormText;
use keel_guard::policy::parse_profile;
use keel_guard::{Guard, Moderator, Scope};
use proptest::prelude::*;
use std::sync::OnceLock;

fn guard() -> &'static Guard {
    static G: OnceLock<Guard> = OnceLock::new();
    G.get_or_init(|| Guard::from_profiles(&["education-minors", "region-eu"]).unwrap())
}

fn tricky() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 .@$!|-]{0,40}",
        Just("\u{200b}\u{feff}\u{00ad}".to_string()),
        Just("ｆｕｌｌ ＷＩＤＴＨ ﬁ ① ǅ".to_string()),
        Just("b о m b".to_string()),
        Just("aG93IHRvIG1ha2UgYSBib21i".to_string()),
        Just("\\x6b\\x69".to_string()),
        Just("İ ß ẞ Σ ς 𝔟𝔬𝔪𝔟".to_string()),
    ];
    prop::collection::vec(pieces, 0..6).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn normaliser_spans_are_valid(s in tricky()) {
        let mut n = NormText::new();
        n.normalize(&s);
        for a in 0..n.text.len() {
            if !n.text.is_char_boundary(a) { continue; }
            let (x, y) = n.original_span(a, (a + 1).min(n.text.len()));
            prop_assert!(x <= y && y <= s.len());
            prop_assert!(s.is_char_boundary(x) && s.is_char_boundary(y));
        }
    }

    #[test]
    fn engine_never_panics_and_spans_are_in_bounds(s in tricky()) {
        for scope in [Scope::Input, Scope::Output] {
            let v = guard().scan_text(&s, scope);
            for h in &v.hits {
                prop_assert!(h.start <= h.end && h.end <= s.len(), "{h:?}");
                prop_assert!(s.is_char_boundary(h.start) && s.is_char_boundary(h.end));
            }
        }
    }

    #[test]
    fn policy_parser_never_panics(s in any::<String>(), key in "[a-z_.]{1,20}", val in "[a-z0-9'\"\\[\\]., =]{0,20}") {
        let _ = parse_profile("fuzz.toml", &s);
        let _ = parse_profile("fuzz.toml", &format!("[profile]\nname='f'\n[categories.S1]\n{key} = {val}\n"));
        let _ = parse_profile("fuzz.toml", &format!("[profile]\nname='f'\n[[rules]]\nid='r'\ncategory='S1'\npattern = '{val}'\n"));
    }
}
