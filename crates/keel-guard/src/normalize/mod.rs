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

use crate::decode::Rot13Evidence;
use crate::offset_map::OffsetMap;
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

mod chars;

pub(crate) use chars::unleet;
use chars::{homoglyph, is_invisible, is_leet_symbol, ASCII_LOWER, ASCII_UNLEET};

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
    map: OffsetMap,
    folded: Vec<FChar>,
    words: Vec<(usize, usize)>,
    rot13: Rot13Evidence,
}

impl NormText {
    pub fn new() -> Self {
        Self::default()
    }

    /// Normalise `input`, replacing the previous contents.
    pub fn normalize(&mut self, input: &str) {
        self.text.clear();
        self.map.clear();
        self.rot13 = Rot13Evidence::default();
        self.push_segment(input, None);
    }

    /// [`crate::decode::looks_rot13`] of the text, from counts kept while building it.
    pub fn looks_rot13(&self) -> bool {
        self.rot13.looks_rot13()
    }

    /// Append another normalised segment (e.g. a decoded base64 payload). All its bytes map to
    /// `origin` in the original text when given, otherwise to their own offsets in `input`.
    pub fn push_segment(&mut self, input: &str, origin: Option<(usize, usize)>) {
        // Built as bytes (a table lookup per ASCII byte, no per-character UTF-8 encoding);
        // only whole characters are pushed, so the check at the end cannot fail.
        let mut out = std::mem::take(&mut self.text).into_bytes();
        out.reserve(input.len() + 1);
        if input.is_ascii() {
            self.push_ascii(&mut out, input.as_bytes(), origin);
        } else {
            let mut folded = std::mem::take(&mut self.folded);
            fold(input, &mut folded);
            let at = |k: usize| match origin {
                Some((s, e)) => (s as u32, e as u32),
                None => (folded[k].start, folded[k].end),
            };
            self.push_words(&mut out, &folded, |f| f.c, at);
            self.folded = folded;
        }
        self.text = String::from_utf8(out).expect("normalised text is whole characters");
    }

    /// Steps 4-6 for ASCII input (the common case) in one pass over the bytes: ASCII has no
    /// zero-width, compatibility or homoglyph characters, so steps 1-3 reduce to lowercasing,
    /// and byte k of the input is character k. The same decisions as
    /// [`NormText::push_words`] (a test checks they agree), but an ordinary word is copied
    /// through a table and mapped as one run, and spaced-out letters are looked for only
    /// after a one-letter word; this made normalising a prompt several times faster.
    fn push_ascii(&mut self, out: &mut Vec<u8>, b: &[u8], origin: Option<(usize, usize)>) {
        let mut k = 0;
        while let Some((ws, we)) = next_ascii_word(b, k) {
            if !out.is_empty() {
                let at = origin.map_or(ws, |o| o.0) as u32;
                out.push(b' ');
                self.map.push_gap(self.map.last_end().unwrap_or(0).min(at));
            }
            let word_start = out.len();
            let run_end = if we - ws == 1 {
                ascii_spaced_run_end(b, we)
            } else {
                None
            };
            if let Some(end) = run_end {
                // "k i l l": the letters joined, the separators between them dropped.
                let table = if has_letter(&b[ws..end]) {
                    &ASCII_UNLEET
                } else {
                    &ASCII_LOWER
                };
                let mut p = ws;
                while let Some((c, _)) = next_ascii_word(b, p).filter(|w| w.0 < end) {
                    out.push(table[b[c] as usize]);
                    self.push_ascii_map(origin, c, 1);
                    p = c + 1;
                }
                self.rot13.add_word_at_end(out, out.len() - word_start);
                k = end;
                continue;
            }
            let word = &b[ws..we];
            if has_letter(word) {
                // Every byte of a word with letters is kept: letters, digits and leet symbols
                // all read as letters or digits.
                out.extend(word.iter().map(|&c| ASCII_UNLEET[c as usize]));
                self.push_ascii_map(origin, ws, word.len());
            } else {
                for (p, &c) in (ws..we).zip(word) {
                    // A leet symbol in a word without letters ("$100") maps to 0: dropped.
                    let c = ASCII_LOWER[c as usize];
                    if c != 0 {
                        out.push(c);
                        self.push_ascii_map(origin, p, 1);
                    }
                }
            }
            self.rot13.add_word_at_end(out, out.len() - word_start);
            k = we;
        }
    }

    /// Map `n` bytes copied from input bytes `at..at + n` (or from `origin`).
    #[inline]
    fn push_ascii_map(&mut self, origin: Option<(usize, usize)>, at: usize, n: usize) {
        match origin {
            Some((s, e)) => self.map.push_fixed(n, s as u32, e as u32),
            None => self.map.push_stepped(n, at as u32),
        }
    }

    /// Steps 4-6 over folded characters `f` (`ch` reads one; `at` gives its original span).
    fn push_words<T>(
        &mut self,
        out: &mut Vec<u8>,
        f: &[T],
        ch: impl Fn(&T) -> char + Copy,
        at: impl Fn(usize) -> (u32, u32),
    ) {
        let mut words = std::mem::take(&mut self.words);
        split_words(f, ch, &mut words);
        let mut i = 0;
        while i < words.len() {
            let run = spaced_run_len(f, ch, &words[i..]);
            let last = i + run.max(1) - 1;
            let (ws, _) = words[i];
            let (_, we) = words[last];
            if !out.is_empty() {
                // A separator maps to an empty span at the gap (one original character can
                // expand to several words, e.g. "↉" → "0 3", so clamp to stay ordered).
                let gap = self.map.last_end().unwrap_or(0).min(at(ws).0);
                out.push(b' ');
                self.map.push_gap(gap);
            }
            let has_letter = f[ws..we].iter().any(|x| ch(x).is_alphabetic());
            let word_start = out.len();
            for k in ws..we {
                if run > 1 && !is_word_char(f, ch, k) {
                    continue; // the separators inside "k.i.l.l"
                }
                let c = ch(&f[k]);
                let c = if has_letter { unleet(c) } else { c };
                if !c.is_alphanumeric() {
                    continue; // a leet symbol in a word without letters, e.g. "$100"
                }
                let (s, e) = at(k);
                self.push_char(out, c, s, e);
            }
            self.rot13.add_word(&out[word_start..]);
            i = last + 1;
        }
        self.words = words;
    }

    #[inline]
    fn push_char(&mut self, out: &mut Vec<u8>, c: char, start: u32, end: u32) {
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        self.map.push_fixed(c.len_utf8(), start, end);
    }

    /// The original byte span of normalised bytes `a..b` (`a < b <= text.len()`).
    pub fn original_span(&self, a: usize, b: usize) -> (usize, usize) {
        if self.map.is_empty() || a >= b {
            return (0, 0);
        }
        let a = a.min(self.map.len() - 1);
        let b = b.min(self.map.len()).max(a + 1);
        (self.map.span(a).0 as usize, self.map.span(b - 1).1 as usize)
    }
}

pub use crate::views::decoded_views;

/// Convenience for tests and one-off use: the normalised string alone.
pub fn normalize(input: &str) -> String {
    let mut n = NormText::new();
    n.normalize(input);
    n.text
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
#[inline]
fn is_word_char<T>(f: &[T], ch: impl Fn(&T) -> char, k: usize) -> bool {
    let c = ch(&f[k]);
    c.is_alphanumeric()
        || (is_leet_symbol(c) && f.get(k + 1).is_some_and(|n| ch(n).is_alphanumeric()))
        || (is_leet_symbol(c) && k > 0 && ch(&f[k - 1]).is_alphanumeric() && c != '!')
}

/// ASCII byte classes for word splitting: alphanumeric, or a leet symbol (`@$!|`).
const ALNUM: u8 = 1;
const LEET: u8 = 2;
const ASCII_CLASS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = if c.is_ascii_alphanumeric() {
            ALNUM
        } else if matches!(c, b'@' | b'$' | b'!' | b'|') {
            LEET
        } else {
            0
        };
        i += 1;
    }
    t
};

#[inline]
fn ascii_class(c: u8) -> u8 {
    ASCII_CLASS[(c & 0x7f) as usize]
}

/// [`is_word_char`] for ASCII bytes (case does not matter to it).
#[inline]
fn ascii_word_char(b: &[u8], k: usize) -> bool {
    match ascii_class(b[k]) {
        ALNUM => true,
        LEET => {
            b.get(k + 1).is_some_and(|&n| ascii_class(n) == ALNUM)
                || (k > 0 && ascii_class(b[k - 1]) == ALNUM && b[k] != b'!')
        }
        _ => false,
    }
}

/// The next word at or after byte `k`: a maximal run of [`ascii_word_char`]s, found with a
/// tight loop over the alphanumeric bytes that make up most of it.
#[inline(always)]
fn next_ascii_word(b: &[u8], mut k: usize) -> Option<(usize, usize)> {
    let n = b.len();
    while k < n && !ascii_word_char(b, k) {
        k += 1;
    }
    if k == n {
        return None;
    }
    let s = k;
    k += 1;
    loop {
        while k < n && ascii_class(b[k]) == ALNUM {
            k += 1;
        }
        if k < n && ascii_class(b[k]) == LEET && ascii_word_char(b, k) {
            k += 1;
            continue;
        }
        return Some((s, k));
    }
}

/// [`spaced_run_len`] for ASCII bytes, after the one-character word ending at `we`: the end
/// of the run's last word when three or more such words are joined, else `None`.
fn ascii_spaced_run_end(b: &[u8], we: usize) -> Option<usize> {
    let (mut count, mut end) = (1, we);
    let mut first_gap: &[u8] = &[];
    while let Some((s, e)) = next_ascii_word(b, end) {
        let gap = &b[end..s];
        if e - s != 1 || gap.len() > 2 || gap.contains(&b'\n') {
            break;
        }
        // A change of separator ends the run: in "k-i-l-l m-e" the space splits words.
        if count == 1 {
            first_gap = gap;
        } else if gap != first_gap {
            break;
        }
        count += 1;
        end = e;
    }
    (count >= 3).then_some(end)
}

/// A word with a letter reads its leet symbols and digits as letters.
#[inline]
fn has_letter(word: &[u8]) -> bool {
    word.iter().any(u8::is_ascii_alphabetic)
}

fn split_words<T>(f: &[T], ch: impl Fn(&T) -> char + Copy, words: &mut Vec<(usize, usize)>) {
    words.clear();
    let mut k = 0;
    while k < f.len() {
        if !is_word_char(f, ch, k) {
            k += 1;
            continue;
        }
        let s = k;
        while k < f.len() && is_word_char(f, ch, k) {
            k += 1;
        }
        words.push((s, k));
    }
}

/// How many words starting at `words[0]` form a spaced-out run ("k i l l"): single-character
/// words separated by gaps of at most two non-newline characters. Runs shorter than 3 are not
/// joined (1 is returned) so ordinary text like "a b" stays as it is.
fn spaced_run_len<T>(f: &[T], ch: impl Fn(&T) -> char, words: &[(usize, usize)]) -> usize {
    let mut n = 0;
    let mut first_gap: &[T] = &[];
    while n < words.len() && words[n].1 - words[n].0 == 1 {
        if n > 0 {
            let gap = &f[words[n - 1].1..words[n].0];
            if gap.len() > 2 || gap.iter().any(|g| ch(g) == '\n') {
                break;
            }
            // A change of separator ends the run: in "k-i-l-l m-e" the space splits words.
            if n == 1 {
                first_gap = gap;
            } else if gap.len() != first_gap.len()
                || gap.iter().zip(first_gap).any(|(a, b)| ch(a) != ch(b))
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

    /// The original span of every normalised byte.
    fn spans(n: &NormText) -> Vec<(usize, usize)> {
        (0..n.text.len())
            .map(|i| n.original_span(i, i + 1))
            .collect()
    }

    /// The general (Unicode) path, forced, for comparison with the ASCII fast path.
    fn generic(input: &str) -> NormText {
        let mut n = NormText::new();
        let mut folded = Vec::new();
        fold(input, &mut folded);
        let mut out = Vec::new();
        n.push_words(
            &mut out,
            &folded,
            |f| f.c,
            |k| (folded[k].start, folded[k].end),
        );
        n.text = String::from_utf8(out).unwrap();
        n
    }

    #[test]
    fn ascii_fast_path_matches_general_path() {
        let mut rng = keel_core::rng::rng_for(7, "normalize-ascii");
        let alphabet = b"abcKILLxyz 0134579$@!|.-_\n\t,'/";
        let mut n = NormText::new();
        for len in 0..400 {
            let s: String = (0..len % 40)
                .map(|_| alphabet[rand::Rng::random_range(&mut rng, 0..alphabet.len())] as char)
                .collect();
            n.normalize(&s);
            let g = generic(&s);
            assert_eq!(n.text, g.text, "{s:?}");
            assert_eq!(spans(&n), spans(&g), "{s:?}");
        }
    }

    /// The ASCII fast path, forced off: `input` appended the way `push_segment` appends
    /// non-ASCII text.
    fn push_generic(n: &mut NormText, input: &str, origin: Option<(usize, usize)>) {
        let mut folded = Vec::new();
        fold(input, &mut folded);
        let at = |k: usize| match origin {
            Some((s, e)) => (s as u32, e as u32),
            None => (folded[k].start, folded[k].end),
        };
        let mut out = std::mem::take(&mut n.text).into_bytes();
        n.push_words(&mut out, &folded, |f| f.c, at);
        n.text = String::from_utf8(out).unwrap();
    }

    /// Longer mixed texts of words, spaced-out letters, leetspeak and numbers, with decoded
    /// segments appended: the fast path gives the same text, spans and rot13 evidence.
    #[test]
    fn ascii_fast_path_matches_general_path_on_segments() {
        let mut rng = keel_core::rng::rng_for(11, "normalize-segments");
        let pieces = [
            "how", "To", "k i l l", "k.i.l.l", "b-o-m-b", " ", "  ", ", ", ".", "\n", "h4ck",
            "$100", "n", "v", "gur", "ubj", "qb", "70", "4", "1", "a", "x", "@", "!", "|", "$ex",
            "2024", "555-0100", "e-mail", "and/or", "a b",
        ];
        let pick = |rng: &mut keel_core::rng::KeelRng| {
            let k = rand::Rng::random_range(rng, 0..30);
            (0..k)
                .map(|_| pieces[rand::Rng::random_range(rng, 0..pieces.len())])
                .collect::<String>()
        };
        let (mut fast, mut slow) = (NormText::new(), NormText::new());
        for _ in 0..2000 {
            let (a, b) = (pick(&mut rng), pick(&mut rng));
            let origin = Some((1, a.len().max(1)));
            fast.normalize(&a);
            fast.push_segment(&b, origin);
            slow.text.clear();
            slow.map.clear();
            slow.rot13 = Rot13Evidence::default();
            push_generic(&mut slow, &a, None);
            push_generic(&mut slow, &b, origin);
            assert_eq!(fast.text, slow.text, "{a:?} + {b:?}");
            assert_eq!(spans(&fast), spans(&slow), "{a:?} + {b:?}");
            assert_eq!(fast.looks_rot13(), slow.looks_rot13(), "{a:?} + {b:?}");
            assert_eq!(
                fast.looks_rot13(),
                crate::decode::looks_rot13(&fast.text),
                "{a:?} + {b:?}"
            );
        }
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
