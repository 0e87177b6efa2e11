//! A literal gate in front of the rule regexes. From each pattern's syntax tree it derives
//! *clauses*, ways the pattern can match, each a few sets of literal strings such that the
//! match contains a literal from every set: `\b(how to|help me)( \w+){0,3} (steal|rob)\b`
//! gives one clause {how to, help me} AND {" steal", " rob"}; a top-level alternation of
//! unlike branches, `\b(diagnose (me|my)|(medical|legal) advice)\b`, gives one clause per
//! branch ({diagnose me, diagnose my}) OR ({medical advice, legal advice}). Adjacent fixed
//! parts are joined into longer literals (`synthesi[sz]e`, `hit ?man`, `" " (lsd|meth)`), which
//! are rarer, and a word boundary next to a word character becomes a space of the
//! [boundary view](super::grams) (`\bmen\b` asks for " men "). A [`GramSet`] of the text says
//! which literals may occur, and only patterns with some clause satisfied are run.
//!
//! Why: the rules are `\b(verb…)( \w+){0,4} (object…)\b` shapes. A `RegexSet` over 26 of them
//! makes a lazy DFA with a huge state space and costs tens of µs per 1k characters, and
//! running each regex alone costs 0.5–2 µs per 1k characters; most texts contain none of the
//! harmful objects, and the gate says so. Clauses per branch (rather than one union per
//! pattern) matter: "how much" alone must not admit the medical-advice rule because one of its
//! branches starts with "how". The gate is a necessary condition only, so the matches found
//! are exactly those the regexes alone would find.

use super::grams::{boundary_view, GramKey, GramSet};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// At most this many literals per set; a part needing more is not used as a condition.
const MAX_LITERALS: usize = 256;
/// At most this many sets (conditions) per clause, the most selective ones.
const MAX_SETS: usize = 3;
/// At most this many clauses per pattern; past it, alternatives are merged (weaker, still
/// necessary).
const MAX_CLAUSES: usize = 32;
/// A character class of at most this many characters is spelt out (`[sz]`).
const MAX_CLASS: usize = 4;
/// Stands for a word boundary inside a literal until the set is final (never in UTF-8).
const BOUNDARY: u8 = 0xFF;

/// Any one of these literals (OR).
type Set = Vec<Vec<u8>>;
/// Every set must be hit (AND); an empty clause is always satisfied.
type Clause = Vec<Set>;

/// The clauses of every pattern, flattened into index ranges (pattern → clauses → sets →
/// literals), so evaluating the gate walks a few contiguous arrays.
pub struct Gate {
    literals: Vec<Vec<u8>>,
    keys: Vec<GramKey>,
    /// Per pattern, its range in `clauses`; an empty range means "always run".
    patterns: Vec<(u32, u32)>,
    /// Per clause, its range in `sets`.
    clauses: Vec<(u32, u32)>,
    /// Per set, its range in `set_literals`.
    sets: Vec<(u32, u32)>,
    set_literals: Vec<u32>,
    /// Parallel to `set_literals`: the literal's first gram slot, tested first and in place
    /// (most literals of most sets are absent, and fail on it).
    set_firsts: Vec<u16>,
}

impl Gate {
    /// Build the gate for `patterns`, parsed with the same settings the regexes use.
    pub fn new(patterns: &[String], unicode: bool) -> Gate {
        let mut gate = Gate {
            literals: Vec::new(),
            keys: Vec::new(),
            patterns: Vec::new(),
            clauses: Vec::new(),
            sets: Vec::new(),
            set_literals: Vec::new(),
            set_firsts: Vec::new(),
        };
        let mut index: std::collections::HashMap<Vec<u8>, u32> = Default::default();
        for p in patterns {
            let hir = regex_syntax::ParserBuilder::new()
                .unicode(unicode)
                .build()
                .parse(p);
            let clauses = match hir {
                Ok(h) => info(&h, &vec![Vec::new()]).clauses,
                Err(_) => vec![Vec::new()],
            };
            let first_clause = gate.clauses.len() as u32;
            if clauses.iter().all(|c| !c.is_empty()) {
                for clause in clauses {
                    let first_set = gate.sets.len() as u32;
                    for set in clause {
                        let first = gate.set_literals.len() as u32;
                        for l in set {
                            let id = *index.entry(l.clone()).or_insert_with(|| {
                                gate.keys.push(GramKey::new(&l));
                                gate.literals.push(l);
                                gate.literals.len() as u32 - 1
                            });
                            gate.set_literals.push(id);
                            let first = gate.keys[id as usize].first();
                            // `set_clause` keeps only literals long enough to have a gram.
                            gate.set_firsts
                                .push(first.expect("gate literals have at least 4 bytes"));
                        }
                        gate.sets.push((first, gate.set_literals.len() as u32));
                    }
                    gate.clauses.push((first_set, gate.sets.len() as u32));
                }
            }
            gate.patterns
                .push((first_clause, gate.clauses.len() as u32));
        }
        gate
    }

    /// Every literal the gate may test, for inspection.
    pub fn literals(&self) -> &[Vec<u8>] {
        &self.literals
    }

    /// Set `cand[i]` (resized to the pattern count) to 1 when pattern `i` may match the text
    /// summarised by `grams`.
    pub fn candidates(&self, grams: &GramSet, cand: &mut Vec<u8>) {
        let range = |(a, b): (u32, u32)| a as usize..b as usize;
        let set_may_occur = |&set: &(u32, u32)| {
            let r = range(set);
            self.set_firsts[r.clone()]
                .iter()
                .zip(&self.set_literals[r])
                .any(|(&first, &l)| {
                    grams.has_slot(first) && grams.may_contain(&self.keys[l as usize])
                })
        };
        let clause_holds = |&c: &(u32, u32)| self.sets[range(c)].iter().all(set_may_occur);
        cand.clear();
        cand.extend(self.patterns.iter().map(|&(a, b)| {
            let run = a == b || self.clauses[range((a, b))].iter().any(clause_holds);
            run as u8
        }));
    }
}

/// What a syntax-tree node tells the gate.
struct Info {
    /// Every string the node can match, when that is a small finite set (a literal, `a|b`,
    /// `[sz]`, `s?`, a concatenation of these).
    exact: Option<Set>,
    /// Clauses, one of which every match satisfies. Never empty; an empty clause means nothing
    /// fixed can be required (classes, optional parts).
    clauses: Vec<Clause>,
}

fn anything() -> Vec<Clause> {
    vec![Vec::new()]
}

fn inexact(clauses: Vec<Clause>) -> Info {
    Info {
        exact: None,
        clauses,
    }
}

/// The strings "one of `a` then one of `b`", or `None` past [`MAX_LITERALS`].
fn cross(a: &Set, b: &Set) -> Option<Set> {
    (a.len() * b.len() <= MAX_LITERALS).then(|| {
        a.iter()
            .flat_map(|x| b.iter().map(move |y| [x.as_slice(), y].concat()))
            .collect()
    })
}

/// A node that matches exactly one of `own`, after one of `prefix`.
fn exact_after(own: Set, prefix: &Set) -> Info {
    let clauses = match cross(prefix, &own) {
        Some(joined) => set_clause(&joined),
        None => set_clause(&own),
    };
    Info {
        exact: Some(own),
        clauses,
    }
}

/// What `h` tells the gate, where every match of `h` is immediately preceded by one of
/// `prefix` (the fixed text before it in a concatenation, `[""]` when none): the clauses hold
/// for the prefix and the match together, so the boundary before `\b(buy|get)( \w+)…` still
/// makes " buy" of the branch's first word.
fn info(h: &Hir, prefix: &Set) -> Info {
    match h.kind() {
        HirKind::Literal(l) => exact_after(vec![l.0.to_vec()], prefix),
        HirKind::Look(Look::WordAscii | Look::WordUnicode) => {
            exact_after(vec![vec![BOUNDARY]], prefix)
        }
        // Zero-width: joins the literals on either side.
        HirKind::Empty | HirKind::Look(_) => exact_after(vec![Vec::new()], prefix),
        HirKind::Class(c) => match class_strings(c) {
            Some(set) => exact_after(set, prefix),
            None => inexact(anything()),
        },
        HirKind::Capture(c) => info(&c.sub, prefix),
        HirKind::Repetition(r) => match (r.min, r.max) {
            (1, Some(1)) => info(&r.sub, prefix),
            (0, Some(1)) => match info(&r.sub, prefix).exact {
                Some(mut set) if set.len() < MAX_LITERALS => {
                    set.push(Vec::new());
                    exact_after(set, prefix)
                }
                _ => inexact(anything()),
            },
            (0, _) => inexact(anything()),
            // The first repetition follows the prefix.
            _ => inexact(info(&r.sub, prefix).clauses),
        },
        HirKind::Alternation(alts) => {
            let infos: Vec<Info> = alts.iter().map(|a| info(a, prefix)).collect();
            let union = infos
                .iter()
                .map(|i| i.exact.clone())
                .collect::<Option<Vec<Set>>>()
                .map(|sets| sets.concat())
                .filter(|u| u.len() <= MAX_LITERALS);
            match union {
                Some(mut u) => {
                    u.sort();
                    u.dedup();
                    exact_after(u, prefix)
                }
                None => inexact(any_of(infos.into_iter().flat_map(|i| i.clauses).collect())),
            }
        }
        HirKind::Concat(parts) => concat(parts, prefix),
    }
}

/// A concatenation: runs of fixed parts are joined into literals (each part learns the run
/// before it), and every part's conditions hold.
fn concat(parts: &[Hir], prefix: &Set) -> Info {
    let mut acc: Vec<Clause> = anything();
    // The strings the current run of fixed parts can spell, starting with the prefix.
    let mut run: Set = prefix.clone();
    // The whole concatenation's strings while every part is fixed.
    let mut own: Option<Set> = Some(vec![Vec::new()]);
    for p in parts {
        let i = info(p, &run);
        match i.exact {
            Some(e) => {
                own = own.and_then(|o| cross(&o, &e));
                run = match cross(&run, &e) {
                    Some(r) => r,
                    None => {
                        acc = and(acc, set_clause(&run));
                        e
                    }
                };
            }
            None => {
                own = None;
                acc = and(acc, set_clause(&run));
                acc = and(acc, i.clauses);
                run = vec![Vec::new()];
            }
        }
    }
    match own {
        Some(mut o) => {
            o.sort();
            o.dedup();
            exact_after(o, prefix)
        }
        None => inexact(and(acc, set_clause(&run))),
    }
}

/// The clause "one of `set` occurs" (in the boundary view); nothing when the set allows a
/// string too short for a [`GramKey`] to rule out (such strings occur nearly everywhere).
fn set_clause(set: &Set) -> Vec<Clause> {
    let mut s: Set = set.iter().filter_map(|l| in_boundary_view(l)).collect();
    if s.is_empty() || s.iter().any(|l| l.len() < 4) {
        return anything();
    }
    s.sort();
    s.dedup();
    vec![vec![s]]
}

/// A literal with [`BOUNDARY`] marks as it reads in the boundary view, or `None` when a mark
/// cannot hold (between two word characters, or two non-word ones). A boundary at the edge of
/// the literal next to a word character becomes a space: the byte beyond is a non-word byte
/// or the end of the text, and either reads as a space.
fn in_boundary_view(l: &[u8]) -> Option<Vec<u8>> {
    #[derive(PartialEq)]
    enum Side {
        Word,
        NonWord,
        /// A non-ASCII byte: a word character or not depending on the regex's Unicode mode.
        Unknown,
        Outside,
    }
    let side = |b: Option<&u8>| match b {
        None => Side::Outside,
        Some(&c) if c.is_ascii_alphanumeric() || c == b'_' => Side::Word,
        Some(c) if c.is_ascii() => Side::NonWord,
        Some(_) => Side::Unknown,
    };
    let mut out = Vec::with_capacity(l.len() + 2);
    let (mut lead, mut trail) = (false, false);
    for (i, &c) in l.iter().enumerate() {
        if c != BOUNDARY {
            out.push(boundary_view(c));
            continue;
        }
        let left = side(l[..i].iter().rev().find(|&&x| x != BOUNDARY));
        let right = side(l[i + 1..].iter().find(|&&x| x != BOUNDARY));
        match (left, right) {
            (Side::Word, Side::Word) | (Side::NonWord, Side::NonWord) => return None,
            (Side::Outside, Side::Word) => lead = true,
            (Side::Word, Side::Outside) => trail = true,
            _ => {}
        }
    }
    if lead {
        out.insert(0, b' ');
    }
    if trail {
        out.push(b' ');
    }
    Some(out)
}

/// The characters of a small class, as strings.
fn class_strings(c: &Class) -> Option<Set> {
    let mut out = Vec::new();
    match c {
        Class::Unicode(u) => {
            for r in u.ranges() {
                for ch in r.start()..=r.end() {
                    out.push(ch.to_string().into_bytes());
                    if out.len() > MAX_CLASS {
                        return None;
                    }
                }
            }
        }
        Class::Bytes(b) => {
            for r in b.ranges() {
                for byte in r.start()..=r.end() {
                    out.push(vec![byte]);
                    if out.len() > MAX_CLASS {
                        return None;
                    }
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// AND of two clause lists (cross product), merging alternatives first when there are too
/// many combinations.
fn and(mut a: Vec<Clause>, mut b: Vec<Clause>) -> Vec<Clause> {
    if a.len() * b.len() > MAX_CLAUSES {
        b = weaken(b);
    }
    if a.len() * b.len() > MAX_CLAUSES {
        a = weaken(a);
    }
    a.iter()
        .flat_map(|x| b.iter().map(move |y| both(x, y)))
        .collect()
}

/// OR of `clauses`, simplified: true if any is; one clause when each is a single set.
fn any_of(mut clauses: Vec<Clause>) -> Vec<Clause> {
    if clauses.iter().any(|c| c.is_empty()) {
        return anything();
    }
    if clauses.iter().all(|c| c.len() == 1) || clauses.len() > MAX_CLAUSES {
        return weaken(clauses);
    }
    clauses.dedup();
    clauses
}

/// One clause implied by any of `clauses`: the union of each one's most selective set (exact
/// when each clause is a single set).
fn weaken(clauses: Vec<Clause>) -> Vec<Clause> {
    if clauses.len() == 1 {
        return clauses;
    }
    let mut set: Set = Vec::new();
    for mut c in clauses {
        if c.is_empty() {
            return anything();
        }
        // Clauses keep their sets most selective first.
        set.append(&mut c.swap_remove(0));
        if set.len() > MAX_LITERALS {
            return anything();
        }
    }
    set.sort();
    set.dedup();
    vec![vec![set]]
}

/// AND of two clauses: all sets of both, the most selective [`MAX_SETS`] first.
fn both(a: &Clause, b: &Clause) -> Clause {
    let mut c: Clause = a.iter().chain(b).cloned().collect();
    c.sort_by_key(|set| std::cmp::Reverse(selectivity(set)));
    c.dedup();
    c.truncate(MAX_SETS);
    c
}

/// Longer shortest literal first (rarer in text), then fewer literals.
fn selectivity(set: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    let shortest = set.iter().map(Vec::len).min().unwrap_or(0).min(8);
    (shortest, std::cmp::Reverse(set.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clauses(p: &str) -> Vec<Vec<Vec<String>>> {
        let h = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .build()
            .parse(p)
            .unwrap();
        info(&h, &vec![Vec::new()])
            .clauses
            .into_iter()
            .map(|c| {
                c.into_iter()
                    .map(|s| {
                        s.into_iter()
                            .map(|l| String::from_utf8(l).unwrap())
                            .collect()
                    })
                    .collect()
            })
            .collect()
    }

    fn admitted(g: &Gate, text: &str) -> Vec<u8> {
        let mut grams = GramSet::default();
        grams.fill(text.as_bytes());
        let mut cand = Vec::new();
        g.candidates(&grams, &mut cand);
        cand
    }

    #[test]
    fn requires_every_part_of_a_sequence() {
        assert_eq!(
            clauses(r"\b(make|build)( \w+){0,4} (bomb|explosives)\b"),
            [[vec![" bomb ", " explosives "], vec![" build", " make"]]]
        );
        assert_eq!(
            clauses(r"\btrade secrets?\b"),
            [[[" trade secret ", " trade secrets "]]]
        );
        assert_eq!(clauses(r"\bhit ?man\b"), [[[" hit man ", " hitman "]]]);
        assert_eq!(
            clauses(r"\bsynthesi[sz]e\b"),
            [[[" synthesise ", " synthesize "]]]
        );
        // A boundary between two word characters cannot hold; that alternative is dropped.
        assert_eq!(clauses(r"\b(ab\bcd|wxyz)\b"), [[[" wxyz "]]]);
        assert_eq!(clauses(r"\bmen\b"), [[[" men "]]]);
        assert_eq!(clauses(r"\w+@\w+"), [Vec::<Vec<String>>::new()]);
        assert_eq!(clauses(r"ab(cd|ef)|wxyz"), [[vec!["abcd", "abef", "wxyz"]]]);
        assert_eq!(clauses(r"[a-z]+"), [Vec::<Vec<String>>::new()]);
        assert_eq!(clauses(r"(kill)?\w"), [Vec::<Vec<String>>::new()]);
        // The first repetition follows what comes before.
        assert_eq!(clauses(r"(ab|cd)xy+"), [[["abxy", "cdxy"]]]);
    }

    #[test]
    fn unlike_branches_stay_separate_clauses() {
        assert_eq!(
            clauses(
                r"\b(diagnose (me|my)|(medical|legal)( \w+)? advice|how much (mg|milligrams))\b"
            ),
            [
                vec![vec![" diagnose me", " diagnose my"]],
                vec![vec![" advice"], vec![" legal", " medical"]],
                vec![vec![" how much mg", " how much milligrams"]],
            ]
        );
        // Too many alternatives to keep apart: merged into one weaker clause.
        let many: Vec<String> = (0..40)
            .map(|i| format!("w{i:02}x( \\w+)? (aaa|bbb)"))
            .collect();
        let c = clauses(&many.join("|"));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].len(), 1);
        assert_eq!(c[0][0].len(), 40);
    }

    #[test]
    fn candidates_are_a_superset_of_matches() {
        let pats: Vec<String> = [
            r"\b(make|build)( \w+){0,4} (bomb|explosives)\b",
            r"\bhow to (steal|rob)\b",
            r"[0-9]{3}",
            r"\b(diagnose (me|my)|(medical|legal)( \w+)? advice)\b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let g = Gate::new(&pats, false);
        let res: Vec<regex::Regex> = pats.iter().map(|p| regex::Regex::new(p).unwrap()).collect();
        for t in [
            "how to make a big bomb",
            "how to rob a bank",
            "nothing here",
            "bombastic",
            "call 555",
            "please diagnose my rash",
            "legal tax advice needed",
        ] {
            let cand = admitted(&g, t);
            for (i, r) in res.iter().enumerate() {
                assert!(!r.is_match(t) || cand[i] == 1, "{t:?} pattern {i}");
            }
            assert_eq!(cand[2], 1, "patterns without a literal always run");
        }
        assert_eq!(admitted(&g, "nothing here"), [0, 0, 1, 0]);
        assert_eq!(
            admitted(&g, "a bomb to make"),
            [1, 0, 1, 0],
            "literals out of order still admit: a gate, not a match"
        );
        assert_eq!(
            admitted(&g, "my medical history, diagnose it"),
            [0, 0, 1, 0],
            "each branch needs all of its own literals"
        );
    }
}
