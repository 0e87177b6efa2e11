//! Per-row filters: length, character classes, and a quality heuristic after the Gopher
//! (Rae et al. 2021) and FineWeb rules.
//!
//! Length and character rules look at the whole row. The repetition rules look at the
//! assistant's text (what is trained on), and only when it has at least
//! `repetition_min_words` words: on a one-line answer the statistics are meaningless (a
//! two-word name repeated once is already "20% duplicated 2-grams").

use super::text::words;
use super::{CurateConfig, DropReason};
use std::collections::HashMap;

/// Why a row fails a filter: the reason and a human-readable detail with the measured value.
pub type Verdict = Option<(DropReason, String)>;

/// Length in words and characters.
pub fn length(cfg: &CurateConfig, text: &str) -> Verdict {
    let (nw, nc) = (words(text).len(), text.chars().count());
    if nw < cfg.min_words || nc < cfg.min_chars {
        return Some((
            DropReason::TooShort,
            format!(
                "{nw} words, {nc} chars (minimum {} words, {} chars)",
                cfg.min_words, cfg.min_chars
            ),
        ));
    }
    if nw > cfg.max_words || nc > cfg.max_chars {
        return Some((
            DropReason::TooLong,
            format!(
                "{nw} words, {nc} chars (maximum {} words, {} chars)",
                cfg.max_words, cfg.max_chars
            ),
        ));
    }
    None
}

/// Character classes: control characters (other than tab/newline/CR) and U+FFFD, the mark of
/// a decoding accident, are allowed up to `max_bad_char_ratio`; letters must make up at least
/// `min_alpha_char_ratio` of the non-space characters.
pub fn char_class(cfg: &CurateConfig, text: &str) -> Verdict {
    let (mut total, mut bad, mut alpha) = (0usize, 0usize, 0usize);
    for c in text.chars() {
        if c.is_whitespace() && !c.is_control() || matches!(c, '\n' | '\t' | '\r') {
            continue;
        }
        total += 1;
        if c.is_control() || c == '\u{fffd}' {
            bad += 1;
        }
        if c.is_alphabetic() {
            alpha += 1;
        }
    }
    let total = total.max(1) as f64;
    let bad_ratio = bad as f64 / total;
    if bad_ratio > cfg.max_bad_char_ratio {
        return Some((
            DropReason::BadCharacters,
            format!(
                "{bad} control/replacement characters ({bad_ratio:.3} > {})",
                cfg.max_bad_char_ratio
            ),
        ));
    }
    let alpha_ratio = alpha as f64 / total;
    if alpha_ratio < cfg.min_alpha_char_ratio {
        return Some((
            DropReason::LowAlpha,
            format!(
                "letters are {alpha_ratio:.3} of characters (< {})",
                cfg.min_alpha_char_ratio
            ),
        ));
    }
    None
}

/// Gopher's quality rules on the assistant text `text`:
/// - at least `min_alpha_word_ratio` of words contain a letter;
/// - the most frequent 2/3/4-gram covers at most 20/18/16% of word characters;
/// - duplicated 5-grams cover at most `max_dup_5gram_ratio` of word characters;
/// - at most `max_dup_line_ratio` of non-empty lines are repeats of an earlier line.
pub fn quality(cfg: &CurateConfig, text: &str) -> Verdict {
    let raw: Vec<&str> = text.split_whitespace().collect();
    if raw.len() < cfg.repetition_min_words {
        return None;
    }
    let with_alpha = raw
        .iter()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    let r = with_alpha as f64 / raw.len() as f64;
    if r < cfg.min_alpha_word_ratio {
        return Some((
            DropReason::LowQuality,
            format!(
                "words with a letter: {r:.3} (< {})",
                cfg.min_alpha_word_ratio
            ),
        ));
    }
    let ws = words(text);
    let chars: usize = ws.iter().map(|w| w.chars().count()).sum::<usize>().max(1);
    for (n, limit) in [(2usize, 0.20), (3, 0.18), (4, 0.16)] {
        let r = top_ngram_char_ratio(&ws, n) / chars as f64;
        if r > limit {
            return Some((
                DropReason::Repetitive,
                format!("most frequent {n}-gram covers {r:.3} of characters (> {limit})"),
            ));
        }
    }
    let r = dup_ngram_char_ratio(&ws, 5) / chars as f64;
    if r > cfg.max_dup_5gram_ratio {
        return Some((
            DropReason::Repetitive,
            format!(
                "duplicated 5-grams cover {r:.3} of characters (> {})",
                cfg.max_dup_5gram_ratio
            ),
        ));
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut seen = std::collections::HashSet::new();
    let dups = lines.iter().filter(|l| !seen.insert(**l)).count();
    let r = dups as f64 / lines.len().max(1) as f64;
    if r > cfg.max_dup_line_ratio {
        return Some((
            DropReason::Repetitive,
            format!(
                "{dups} of {} lines repeat an earlier line ({r:.3} > {})",
                lines.len(),
                cfg.max_dup_line_ratio
            ),
        ));
    }
    None
}

/// Characters covered by all occurrences of the most frequent `n`-gram (if it occurs twice+).
fn top_ngram_char_ratio(ws: &[String], n: usize) -> f64 {
    let mut counts: HashMap<&[String], usize> = HashMap::new();
    for g in ws.windows(n) {
        *counts.entry(g).or_insert(0) += 1;
    }
    counts
        .iter()
        .filter(|(_, &c)| c > 1)
        .map(|(g, &c)| (g.iter().map(|w| w.chars().count()).sum::<usize>() * c) as f64)
        .fold(0.0, f64::max)
}

/// Characters of words that lie inside some `n`-gram occurring more than once (each word
/// counted once, as in Gopher).
fn dup_ngram_char_ratio(ws: &[String], n: usize) -> f64 {
    if ws.len() < n {
        return 0.0;
    }
    let mut counts: HashMap<&[String], usize> = HashMap::new();
    for g in ws.windows(n) {
        *counts.entry(g).or_insert(0) += 1;
    }
    let mut covered = vec![false; ws.len()];
    for (i, g) in ws.windows(n).enumerate() {
        if counts[g] > 1 {
            covered[i..i + n].iter_mut().for_each(|c| *c = true);
        }
    }
    ws.iter()
        .zip(&covered)
        .filter(|(_, &c)| c)
        .map(|(w, _)| w.chars().count() as f64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_rules_fire_on_loops_not_on_prose() {
        let cfg = CurateConfig::default();
        let prose = "Brell is a river town in the north. Its market sells wool and fish, \
            and the old bridge was rebuilt after the flood of the wet year. Travellers stop \
            there on the way to the hills, where the shepherds keep their flocks all summer \
            long and come down again before the first snow.";
        assert_eq!(quality(&cfg, prose), None);
        let looped = "I am sorry I cannot help. ".repeat(20);
        let v = quality(&cfg, &looped).unwrap();
        assert_eq!(v.0, DropReason::Repetitive, "{v:?}");
        let numbers = (0..60)
            .map(|i| format!("{i}.{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(quality(&cfg, &numbers).unwrap().0, DropReason::LowQuality);
        // Short answers are not judged by these statistics.
        assert_eq!(quality(&cfg, "Osk Osk Osk"), None);
    }

    #[test]
    fn char_classes_and_length() {
        let cfg = CurateConfig::default();
        assert_eq!(char_class(&cfg, "Hello there.\n\tOk"), None);
        assert_eq!(
            char_class(&cfg, "bad \u{fffd}\u{fffd}\u{0007} bytes")
                .unwrap()
                .0,
            DropReason::BadCharacters
        );
        assert_eq!(
            char_class(&cfg, "12345 678 + 9 = ??? !!").unwrap().0,
            DropReason::LowAlpha
        );
        assert_eq!(length(&cfg, "").unwrap().0, DropReason::TooShort);
        let long = "word ".repeat(cfg.max_words + 1);
        assert_eq!(length(&cfg, &long).unwrap().0, DropReason::TooLong);
    }
}
