//! Text normalisation and hashing shared by deduplication and decontamination.
//!
//! Words are maximal runs of alphanumeric characters, lowercased: punctuation, case and
//! spacing differences must not hide a duplicate or a leaked test question. Hashes are a fixed
//! function of the bytes (FNV-1a then a SplitMix64 finaliser), so results never depend on the
//! process's hash seed.

/// Lowercased alphanumeric words of `s`.
pub fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whitespace collapsed and lowercased: the key of exact deduplication.
pub fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(w.chars().flat_map(char::to_lowercase));
    }
    out
}

/// SplitMix64's finaliser: spreads FNV's weak low bits over the whole word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of a word sequence (words are separated so "ab c" ≠ "a bc").
pub fn hash_words<S: AsRef<str>>(ws: &[S]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in ws {
        for &b in w.as_ref().as_bytes().iter().chain(std::iter::once(&0x1f)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    mix(h)
}

/// A stable 64-bit hash of a sequence of integers (MinHash band keys).
pub fn hash_u64s(vs: &[u64]) -> u64 {
    vs.iter()
        .fold(0x9e37_79b9_7f4a_7c15, |h, &v| mix(h ^ v).wrapping_add(v))
}

/// Hashes of every contiguous `n`-word window (none if there are fewer than `n` words).
pub fn ngram_hashes(ws: &[String], n: usize) -> impl Iterator<Item = u64> + '_ {
    let n = n.max(1);
    ws.windows(n).map(hash_words)
}

/// Sorted, deduplicated shingle hashes: `n`-word windows, or the whole text if it is shorter.
pub fn shingles(ws: &[String], n: usize) -> Vec<u64> {
    let mut s: Vec<u64> = if ws.len() < n {
        if ws.is_empty() {
            Vec::new()
        } else {
            vec![hash_words(ws)]
        }
    } else {
        ngram_hashes(ws, n).collect()
    };
    s.sort_unstable();
    s.dedup();
    s
}

/// Exact Jaccard similarity of two sorted, deduplicated sets.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// At most `max` characters of `s`, with "…" when cut (for report examples).
pub fn preview(s: &str, max: usize) -> String {
    let mut it = s.char_indices();
    match it.nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_hashes_ignore_case_and_punctuation() {
        assert_eq!(words("Hello, WORLD! ü-2"), vec!["hello", "world", "ü", "2"]);
        assert_eq!(
            hash_words(&words("The cat.")),
            hash_words(&words("the  CAT"))
        );
        assert_ne!(hash_words(&["ab", "c"]), hash_words(&["a", "bc"]));
        assert_eq!(normalise("  A\tb \n C "), "a b c");
    }

    #[test]
    fn jaccard_of_known_sets() {
        assert_eq!(jaccard(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard(&[1], &[1]), 1.0);
        assert_eq!(jaccard(&[1], &[2]), 0.0);
        let w = words("a b c d e f");
        assert_eq!(shingles(&w, 5).len(), 2);
        assert_eq!(shingles(&w[..3], 5).len(), 1);
        assert_eq!(preview("abcdef", 3), "abc…");
        assert_eq!(preview("ab", 3), "ab");
    }
}
