//! The normaliser: one canonical view of a text that rules and lexicons run over, so that
//! obfuscation is not a free bypass.
//!
//! What it undoes, in order, per character of the original:
//! 1. zero-width and format characters (U+200B…U+200F, U+2060…U+2064, U+FEFF, soft hyphen,
//!    variation selectors) are dropped;
//! 2. Unicode compatibility decomposition (the "K" of NFKC: fullwidth forms, ligatures,
//!    mathematical alphanumerics, circled digits) and removal of combining marks, so "ｂöｍｂ"
//!    and "bomb" agree; this is NFKC's folding plus accent stripping;
//! 3. case folding, then homoglyphs (Cyrillic and Greek look-alikes) to Latin;
//! 4. per word: leetspeak ("h4ck", "k1ll", "$ex") when the word has a real letter, so years
//!    and phone numbers are left alone;
//! 5. spacing tricks: three or more single characters separated by short gaps ("k i l l",
//!    "k.i.l.l", "k-i-l-l") are joined into one word;
//! 6. every other character becomes a word separator, and the view is words joined by single
//!    spaces.
//!
//! Every output byte remembers the byte range of the original it came from, so a match in the
//! normalised view maps back to an exact span of what the user sent (for redaction and audit).
//! The buffers are reused between calls: the hot path allocates nothing once warm.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

#[derive(Debug, Clone, Copy)]
struct FChar {
    c: char,
    start: u32,
    end: u32,
}

/// A normalised view plus the map back to the original text's byte offsets.
#[derive(Debug, Default, Clone)]
pub struct NormText {
    pub text: String,
    starts: Vec<u32>,
    ends: Vec<u32>,
    folded: Vec<FChar>,
    words: Vec<(usize, usize)>,
}

impl NormText {
    pub fn new() -> Self {
        Self::default()
    }

    /// Normalise `input`, replacing the previous contents.
    pub fn normalize(&mut self, input: &str) {
        self.text.clear();
        self.starts.clear();
        self.ends.clear();
        self.push_segment(input, None);
    }

    /// Append another normalised segment (e.g. a decoded base64 payload). All its bytes map to
    /// `origin` in the original text when given, otherwise to their own offsets in `input`.
    pub fn push_segment(&mut self, input: &str, origin: Option<(usize, usize)>) {
        fold(input, &mut self.folded);
        if let Some((s, e)) = origin {
            for f in self.folded.iter_mut() {
                f.start = s as u32;
                f.end = e as u32;
            }
        }
        split_words(&self.folded, &mut self.words);
        let mut i = 0;
        while i < self.words.len() {
            let run = spaced_run_len(&self.folded, &self.words[i..]);
            let last = i + run.max(1) - 1;
            let (ws, _) = self.words[i];
            let (_, we) = self.words[last];
            if !self.text.is_empty() {
                // A separator maps to an empty span at the gap (one original character can
                // expand to several words, e.g. "↉" → "0 3", so clamp to stay ordered).
                let at = (*self.ends.last().unwrap_or(&0)).min(self.folded[ws].start);
                self.push_char(' ', at, at);
            }
            let has_letter = self.folded[ws..we].iter().any(|f| f.c.is_alphabetic());
            for k in ws..we {
                let f = self.folded[k];
                if run > 1 && !is_word_char(&self.folded, k) {
                    continue; // the separators inside "k.i.l.l"
                }
                let c = if has_letter { unleet(f.c) } else { f.c };
                if !c.is_alphanumeric() {
                    continue; // a leet symbol in a word without letters, e.g. "$100"
                }
                self.push_char(c, f.start, f.end);
            }
            i = last + 1;
        }
    }

    fn push_char(&mut self, c: char, start: u32, end: u32) {
        let n = c.len_utf8();
        self.text.push(c);
        for _ in 0..n {
            self.starts.push(start);
            self.ends.push(end);
        }
    }

    /// The original byte span of normalised bytes `a..b` (`a < b <= text.len()`).
    pub fn original_span(&self, a: usize, b: usize) -> (usize, usize) {
        if self.starts.is_empty() || a >= b {
            return (0, 0);
        }
        let a = a.min(self.starts.len() - 1);
        let b = b.min(self.ends.len()).max(a + 1);
        (self.starts[a] as usize, self.ends[b - 1] as usize)
    }
}

/// Normalise `input` and append every decoded payload (base64, hex) as an extra segment, and
/// the rot13 reading when the text looks rot13-encoded: the view classifiers see.
pub fn full_view(input: &str, out: &mut NormText, payloads: &mut Vec<crate::decode::Payload>) {
    out.normalize(input);
    crate::decode::find_payloads(input, payloads);
    for p in payloads.iter() {
        out.push_segment(&p.text, Some((p.start, p.end)));
    }
    if crate::decode::looks_rot13(&out.text) {
        let rot = crate::decode::rot13(&out.text);
        out.push_segment(&rot, Some((0, input.len())));
    }
}

/// Convenience for tests and one-off use: the normalised string alone.
pub fn normalize(input: &str) -> String {
    let mut n = NormText::new();
    n.normalize(input);
    n.text
}

fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{206A}'..='\u{206F}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{E0000}'..='\u{E007F}')
}

/// Cyrillic and Greek letters that render like Latin ones (after lowercasing).
fn homoglyph(c: char) -> char {
    match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'ε' | 'ё' => 'e',
        'ɡ' => 'g',
        'һ' | 'н' => 'h',
        'і' | 'ι' | 'ı' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'ӏ' => 'l',
        'м' => 'm',
        'п' | 'η' => 'n',
        'о' | 'ο' | 'σ' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'г' => 'r',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' | 'ц' => 'u',
        'ν' => 'v',
        'ш' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        'ᴢ' => 'z',
        other => other,
    }
}

fn unleet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | '!' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        '9' => 'g',
        '|' => 'l',
        other => other,
    }
}

fn is_leet_symbol(c: char) -> bool {
    matches!(c, '@' | '$' | '!' | '|')
}

/// Steps 1–3: one folded char per output char, each carrying its original byte range.
fn fold(input: &str, out: &mut Vec<FChar>) {
    out.clear();
    for (i, ch) in input.char_indices() {
        let start = i as u32;
        let end = (i + ch.len_utf8()) as u32;
        if ch.is_ascii() {
            out.push(FChar {
                c: ch.to_ascii_lowercase(),
                start,
                end,
            });
            continue;
        }
        if is_invisible(ch) {
            continue;
        }
        decompose_compatible(ch, |d| {
            if is_combining_mark(d) {
                return;
            }
            for lc in d.to_lowercase() {
                out.push(FChar {
                    c: homoglyph(lc),
                    start,
                    end,
                });
            }
        });
    }
}

/// A word character: alphanumeric, or a leet symbol directly followed by an alphanumeric.
fn is_word_char(f: &[FChar], k: usize) -> bool {
    let c = f[k].c;
    c.is_alphanumeric()
        || (is_leet_symbol(c) && f.get(k + 1).is_some_and(|n| n.c.is_alphanumeric()))
        || (is_leet_symbol(c) && k > 0 && f[k - 1].c.is_alphanumeric() && c != '!')
}

fn split_words(f: &[FChar], words: &mut Vec<(usize, usize)>) {
    words.clear();
    let mut k = 0;
    while k < f.len() {
        if !is_word_char(f, k) {
            k += 1;
            continue;
        }
        let s = k;
        while k < f.len() && is_word_char(f, k) {
            k += 1;
        }
        words.push((s, k));
    }
}

/// How many words starting at `words[0]` form a spaced-out run ("k i l l"): single-character
/// words separated by gaps of at most two non-newline characters. Runs shorter than 3 are not
/// joined (1 is returned) so ordinary text like "a b" stays as it is.
fn spaced_run_len(f: &[FChar], words: &[(usize, usize)]) -> usize {
    let mut n = 0;
    let mut first_gap: &[FChar] = &[];
    while n < words.len() && words[n].1 - words[n].0 == 1 {
        if n > 0 {
            let gap = &f[words[n - 1].1..words[n].0];
            if gap.len() > 2 || gap.iter().any(|g| g.c == '\n') {
                break;
            }
            // A change of separator ends the run: in "k-i-l-l m-e" the space splits words.
            if n == 1 {
                first_gap = gap;
            } else if gap.len() != first_gap.len()
                || gap.iter().zip(first_gap).any(|(a, b)| a.c != b.c)
            {
                break;
            }
        }
        n += 1;
    }
    if n >= 3 {
        n
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_width_accents_and_homoglyphs() {
        assert_eq!(normalize("How To Make A BOMB"), "how to make a bomb");
        assert_eq!(normalize("ｂöｍｂ"), "bomb");
        // Cyrillic а, о; Greek ο.
        assert_eq!(normalize("b\u{043e}mb \u{0430}nd gun"), "bomb and gun");
        assert_eq!(normalize("ﬁrearm"), "firearm");
    }

    #[test]
    fn strips_zero_width_and_joins_spaced_letters() {
        assert_eq!(normalize("k\u{200b}i\u{200d}ll"), "kill");
        assert_eq!(normalize("how to k i l l him"), "how to kill him");
        assert_eq!(normalize("m.e.t.h recipe"), "meth recipe");
        assert_eq!(normalize("b-o-m-b"), "bomb");
        assert_eq!(normalize("k-i-l-l h-i-m"), "kill him");
        assert_eq!(normalize("k i l l   h i m"), "kill him");
        // Two single letters are ordinary text, not a trick.
        assert_eq!(normalize("a b"), "a b");
    }

    #[test]
    fn leetspeak_only_inside_words_with_letters() {
        assert_eq!(normalize("h4ck the s3rv3r"), "hack the server");
        assert_eq!(normalize("k1ll"), "kill");
        assert_eq!(normalize("$ex"), "sex");
        assert_eq!(normalize("call 555-0100 in 2024!"), "call 555 0100 in 2024");
        assert_eq!(normalize("$100"), "100");
    }

    #[test]
    fn spans_map_back_to_original_bytes() {
        let src = "Say: ｂöｍｂ now";
        let mut n = NormText::new();
        n.normalize(src);
        let at = n.text.find("bomb").unwrap();
        let (s, e) = n.original_span(at, at + 4);
        assert_eq!(&src[s..e], "ｂöｍｂ");
        let src = "x k.i.l.l y";
        n.normalize(src);
        let at = n.text.find("kill").unwrap();
        let (s, e) = n.original_span(at, at + 4);
        assert_eq!(&src[s..e], "k.i.l.l");
    }
}
