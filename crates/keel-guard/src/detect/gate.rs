//! A literal gate in front of the rule regexes: for each pattern, up to [`MAX_SETS`] sets of
//! literal strings such that every match contains a literal from each set (from the pattern's
//! syntax tree: `(make|build)( \w+){0,4} (bomb|explosives)` needs one of make/build AND one of
//! bomb/explosives), and one Aho-Corasick pass per text that finds which literals occur. Only
//! patterns with every set satisfied are run.
//!
//! Why: the rules are `\b(verb…)( \w+){0,4} (object…)\b` shapes. A `RegexSet` over 26 of them
//! makes a lazy DFA with a huge state space and costs tens of µs per 1k characters, and running
//! each regex alone costs about as much; most texts contain none of the harmful objects, and a
//! literal scan says so in one cheap pass. The gate is a necessary condition only, so the
//! matches found are exactly those the regexes alone would find.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex_syntax::hir::{Hir, HirKind};

/// At most this many literals per set; a part needing more is not used as a condition.
const MAX_LITERALS: usize = 256;
/// At most this many sets (conditions) per pattern, the most selective ones.
const MAX_SETS: usize = 3;

/// Literal sets that must all be hit (AND), each satisfied by any one of its literals (OR).
type Requirement = Vec<Vec<Vec<u8>>>;

pub struct Gate {
    ac: Option<AhoCorasick>,
    /// For each gate literal, the (pattern, set) conditions it satisfies.
    admits: Vec<Vec<(usize, u8)>>,
    /// Per pattern, the bit mask of all its sets; 0 = no usable condition, always run.
    full: Vec<u8>,
}

impl Gate {
    /// Build the gate for `patterns`, parsed with the same settings the regexes use.
    pub fn new(patterns: &[String], unicode: bool) -> Gate {
        let mut lits: Vec<Vec<u8>> = Vec::new();
        let mut admits: Vec<Vec<(usize, u8)>> = Vec::new();
        let mut full = vec![0u8; patterns.len()];
        for (i, p) in patterns.iter().enumerate() {
            let hir = regex_syntax::ParserBuilder::new()
                .unicode(unicode)
                .build()
                .parse(p);
            let Some(req) = hir.ok().and_then(|h| required(&h)) else {
                continue;
            };
            for (k, set) in req.into_iter().enumerate() {
                full[i] |= 1 << k;
                for l in set {
                    match lits.iter().position(|x| *x == l) {
                        Some(j) => admits[j].push((i, k as u8)),
                        None => {
                            lits.push(l);
                            admits.push(vec![(i, k as u8)]);
                        }
                    }
                }
            }
        }
        let ac = (!lits.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&lits)
                .or_else(|_| AhoCorasick::builder().build(&lits))
                .expect("literal gate automaton")
        });
        Gate { ac, admits, full }
    }

    /// Set `cand[i]` (resized to the pattern count) to 1 when pattern `i` may match `text`.
    pub fn candidates(&self, text: &str, cand: &mut Vec<u8>) {
        // First the bit mask of each pattern's satisfied sets, then whether all are.
        cand.clear();
        cand.resize(self.full.len(), 0);
        if let Some(ac) = &self.ac {
            for m in ac.find_overlapping_iter(text) {
                for &(i, k) in &self.admits[m.pattern().as_usize()] {
                    cand[i] |= 1 << k;
                }
            }
        }
        for (c, &f) in cand.iter_mut().zip(&self.full) {
            *c = (*c & f == f) as u8;
        }
    }
}

/// Literal sets every match of `h` hits, or `None` when nothing fixed can be required
/// (classes, optional parts, empty strings).
fn required(h: &Hir) -> Option<Requirement> {
    match h.kind() {
        HirKind::Literal(l) => (!l.0.is_empty()).then(|| vec![vec![l.0.to_vec()]]),
        HirKind::Empty | HirKind::Class(_) | HirKind::Look(_) => None,
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required(&r.sub),
        HirKind::Repetition(_) => None,
        // One branch matches: weaken each branch to its best set and take the union.
        HirKind::Alternation(alts) => {
            let mut out: Vec<Vec<u8>> = Vec::new();
            for a in alts {
                let mut req = required(a)?;
                out.append(&mut req.swap_remove(0));
                if out.len() > MAX_LITERALS {
                    return None;
                }
            }
            out.sort();
            out.dedup();
            Some(vec![out])
        }
        // Every part is in every match: all parts' conditions hold; keep the best few.
        HirKind::Concat(parts) => {
            let mut all: Requirement = parts.iter().filter_map(required).flatten().collect();
            if all.is_empty() {
                return None;
            }
            all.sort_by_key(|set| std::cmp::Reverse(selectivity(set)));
            all.truncate(MAX_SETS);
            Some(all)
        }
    }
}

/// Longer shortest literal first (rarer in text), then fewer literals.
fn selectivity(set: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    let shortest = set.iter().map(Vec::len).min().unwrap_or(0).min(8);
    (shortest, std::cmp::Reverse(set.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(p: &str) -> Option<Vec<Vec<String>>> {
        let h = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .build()
            .parse(p)
            .unwrap();
        required(&h).map(|req| {
            req.into_iter()
                .map(|s| {
                    s.into_iter()
                        .map(|l| String::from_utf8(l).unwrap())
                        .collect()
                })
                .collect()
        })
    }

    #[test]
    fn requires_every_part_of_a_sequence() {
        assert_eq!(
            sets(r"\b(make|build)( \w+){0,4} (bomb|explosives)\b").unwrap(),
            [vec!["build", "make"], vec!["bomb", "explosives"], vec![" "]]
        );
        assert_eq!(sets(r"\btrade secrets?\b").unwrap(), [["trade secret"]]);
        assert_eq!(sets(r"\bhit ?man\b").unwrap(), [["hit"], ["man"]]);
        assert_eq!(sets(r"\w+@\w+").unwrap(), [["@"]]);
        assert_eq!(sets(r"a(bc|de)|xyz").unwrap(), [["bc", "de", "xyz"]]);
        assert!(sets(r"[a-z]+").is_none());
        assert!(sets(r"(kill)?\w").is_none());
    }

    #[test]
    fn candidates_are_a_superset_of_matches() {
        let pats: Vec<String> = [
            r"\b(make|build)( \w+){0,4} (bomb|explosives)\b",
            r"\bhow to (steal|rob)\b",
            r"[0-9]{3}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let g = Gate::new(&pats, false);
        let res: Vec<regex::Regex> = pats.iter().map(|p| regex::Regex::new(p).unwrap()).collect();
        let mut cand = Vec::new();
        for t in [
            "how to make a big bomb",
            "how to rob a bank",
            "nothing here",
            "bombastic",
            "call 555",
        ] {
            g.candidates(t, &mut cand);
            for (i, r) in res.iter().enumerate() {
                assert!(!r.is_match(t) || cand[i] == 1, "{t:?} pattern {i}");
            }
            assert_eq!(cand[2], 1, "patterns without a literal always run");
        }
        g.candidates("nothing here", &mut cand);
        assert_eq!(cand, [0, 0, 1]);
        g.candidates("bombs to make", &mut cand);
        assert_eq!(
            cand,
            [1, 0, 1],
            "literals out of order still admit: a gate, not a match"
        );
    }
}
