//! Rule matching over the normalised view. One pass summarises the text's 4-grams
//! ([`GramSet`]); from it the regex [`Gate`] says which regex rules can match (usually none or
//! one or two) and only those run, and the lexicon's Aho-Corasick automaton runs only when
//! some term may occur. Lexicon terms are also compiled in rot13 form, so rot13-encoded
//! requests hit the same terms at no extra cost; a rot13 hit (or a text that reads as rot13)
//! triggers a second regex pass over the rot13-decoded view.

use super::gate::Gate;
use super::grams::{GramKey, GramSet};
use super::TextFacts;
use crate::decode::rot13_char;
use crate::normalize::{normalize, NormText};
use crate::policy::RuleDef;
use crate::views::{leet_words, mentions_rot13, unleet_short_numbers};
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::{Regex, RegexBuilder};

/// A match in the normalised view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleMatch {
    /// Index into the policy's rule list.
    pub rule: usize,
    pub start: usize,
    pub end: usize,
    pub rot13: bool,
}

struct Term {
    rule: usize,
    prefix: bool,
    rot13: bool,
}

/// Reusable per-scan buffers (one per thread in the engine), so a warm scan allocates nothing.
#[derive(Debug, Default, Clone)]
pub struct RuleScratch {
    grams: GramSet,
    /// Which regexes the gate admitted.
    cand: Vec<u8>,
    /// The rot13-decoded view.
    rot: String,
    /// The view with short numbers read as leetspeak.
    leet: String,
}

pub struct RuleMatcher {
    gate: Gate,
    regexes: Vec<Regex>,
    /// Rule index for each regex.
    regex_rule: Vec<usize>,
    /// The lexicon, plain and rot13; `term_keys` say when it cannot match.
    ac: Option<AhoCorasick>,
    terms: Vec<Term>,
    term_keys: Vec<GramKey>,
    /// "rot13" as the normaliser writes it ("rotie"), to rule out a mention cheaply.
    rot13_word: GramKey,
}

impl RuleMatcher {
    /// Compile the rules; patterns were validated when the policy was parsed.
    pub fn new(rules: &[RuleDef]) -> Result<Self, regex::Error> {
        let mut pats = Vec::new();
        let mut regex_rule = Vec::new();
        let mut words = Vec::new();
        let mut terms = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if let Some(p) = &r.pattern {
                pats.push(p.clone());
                regex_rule.push(i);
            }
            for t in &r.terms {
                let prefix = t.ends_with('*');
                let norm = normalize(t.trim_end_matches('*'));
                let rot: String = norm.chars().map(rot13_char).collect();
                for (w, rot13) in [(norm.clone(), false), (rot, true)] {
                    words.push(w);
                    terms.push(Term {
                        rule: i,
                        prefix,
                        rot13,
                    });
                }
            }
        }
        // ASCII classes: the normalised view is ASCII words for Latin text, and Unicode `\w`
        // and `\b` multiply lazy-DFA states until the cache thrashes and matching falls back
        // to the slow NFA simulation.
        let regexes = pats
            .iter()
            .map(|p| RegexBuilder::new(p).unicode(false).build())
            .collect::<Result<Vec<_>, _>>()?;
        let gate = Gate::new(&pats, false);
        let term_keys = words.iter().map(|w| GramKey::new(w.as_bytes())).collect();
        let ac = (!words.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&words)
                .expect("lexicon automaton")
        });
        Ok(RuleMatcher {
            gate,
            regexes,
            regex_rule,
            ac,
            terms,
            term_keys,
            rot13_word: GramKey::new(normalize("rot13").as_bytes()),
        })
    }

    /// All rule matches in `view` (the normalised `original`, whose [`TextFacts`] are
    /// given), appended to `out`. Besides the view itself: its rot13 decoding when it reads
    /// as rot13, a rot13 term matched, or the text says "rot13"; and with leetspeak in several
    /// words, the view with short numbers read as letters ("how 70 make 4 bomb").
    pub fn scan(
        &self,
        view: &NormText,
        original: &str,
        facts: &TextFacts,
        s: &mut RuleScratch,
        out: &mut Vec<RuleMatch>,
    ) {
        let text = view.text.as_str();
        s.grams.fill(text.as_bytes());
        let rot_seen = self.lexicon_pass(text, &s.grams, out);
        self.regex_pass(text, false, s, out);
        // "rot13" reads "rotie" in the view; the grams rule it out in nearly every text.
        let says_rot13 = || s.grams.may_contain(&self.rot13_word) && mentions_rot13(original);
        if rot_seen || view.looks_rot13() || says_rot13() {
            let mut rot = std::mem::take(&mut s.rot);
            rot.clear();
            rot.extend(text.chars().map(rot13_char));
            s.grams.fill(rot.as_bytes());
            self.regex_pass(&rot, true, s, out);
            s.rot = rot;
        }
        if facts.digits > 0 && leet_words(original) >= 2 {
            let mut leet = std::mem::take(&mut s.leet);
            unleet_short_numbers(text, &mut leet);
            if leet != text {
                // Byte for byte like the view, so its offsets hold. Only rules the view did
                // not already match count: a rule is not evidence twice.
                let before = out.len();
                s.grams.fill(leet.as_bytes());
                self.lexicon_pass(&leet, &s.grams, out);
                self.regex_pass(&leet, false, s, out);
                let mut i = before;
                while i < out.len() {
                    if out[..before].iter().any(|m| m.rule == out[i].rule) {
                        out.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
            s.leet = leet;
        }
    }

    /// Lexicon terms (plain and rot13) in `text`, whole words only; `true` when a rot13 form
    /// matched.
    fn lexicon_pass(&self, text: &str, grams: &GramSet, out: &mut Vec<RuleMatch>) -> bool {
        let mut rot_seen = false;
        let lexicon = self
            .ac
            .as_ref()
            .filter(|_| self.term_keys.iter().any(|k| grams.may_contain(k)));
        let Some(ac) = lexicon else {
            return false;
        };
        let b = text.as_bytes();
        for m in ac.find_overlapping_iter(text) {
            let t = &self.terms[m.pattern().as_usize()];
            let left_ok = m.start() == 0 || b[m.start() - 1] == b' ';
            let right_ok = t.prefix || m.end() == b.len() || b[m.end()] == b' ';
            if left_ok && right_ok {
                rot_seen |= t.rot13;
                // A prefix term covers the whole word it starts ("fuck*" → "fucking").
                let end = if t.prefix {
                    b[m.end()..]
                        .iter()
                        .position(|&c| c == b' ')
                        .map_or(b.len(), |p| m.end() + p)
                } else {
                    m.end()
                };
                out.push(RuleMatch {
                    rule: t.rule,
                    start: m.start(),
                    end,
                    rot13: t.rot13,
                });
            }
        }
        rot_seen
    }

    /// Run the regexes the gate admits (from the grams in `s`) over `text`.
    fn regex_pass(&self, text: &str, rot13: bool, s: &mut RuleScratch, out: &mut Vec<RuleMatch>) {
        if self.regexes.is_empty() {
            return;
        }
        self.gate.candidates(&s.grams, &mut s.cand);
        for (idx, _) in s.cand.iter().enumerate().filter(|(_, &c)| c == 1) {
            if let Some(m) = self.regexes[idx].find(text) {
                out.push(RuleMatch {
                    rule: self.regex_rule[idx],
                    start: m.start(),
                    end: m.end(),
                    rot13,
                });
            }
        }
    }
}
