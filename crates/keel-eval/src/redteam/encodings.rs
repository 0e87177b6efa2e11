//! Obfuscations used by encoding attacks: the request is hidden from keyword-level safety
//! training (and from input filters) while staying readable to a capable model.

use base64::Engine;

pub fn base64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

pub fn rot13(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a' + 13) % 26) + b'a') as char,
            'A'..='Z' => (((c as u8 - b'A' + 13) % 26) + b'A') as char,
            _ => c,
        })
        .collect()
}

/// Classic leetspeak substitutions (case-insensitive).
pub fn leetspeak(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_ascii_lowercase() {
            'a' => '4',
            'e' => '3',
            'i' => '1',
            'o' => '0',
            's' => '5',
            't' => '7',
            _ => c,
        })
        .collect()
}

/// Latin letters swapped for look-alike Cyrillic/Greek code points: the text looks the same
/// to a person but tokenises differently.
pub fn homoglyphs(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a' => 'а', // U+0430
            'c' => 'с', // U+0441
            'e' => 'е', // U+0435
            'o' => 'о', // U+043E
            'p' => 'р', // U+0440
            'x' => 'х', // U+0445
            'y' => 'у', // U+0443
            'A' => 'Α', // U+0391
            'B' => 'Β', // U+0392
            'E' => 'Ε', // U+0395
            'O' => 'Ο', // U+039F
            _ => c,
        })
        .collect()
}

/// Split a request into `parts` word chunks, each assigned to a variable, so no single
/// chunk carries the whole harmful phrase (payload splitting, Kang et al. 2023).
pub fn split_payload(s: &str, parts: usize) -> Vec<String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    if words.is_empty() {
        return vec![String::new()];
    }
    let parts = parts.clamp(1, words.len());
    let per = words.len().div_ceil(parts);
    words.chunks(per).map(|c| c.join(" ")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_reversible_or_readable() {
        assert_eq!(base64("hi there"), "aGkgdGhlcmU=");
        assert_eq!(rot13("Hello, World"), "Uryyb, Jbeyq");
        assert_eq!(rot13(&rot13("round trip")), "round trip");
        assert_eq!(leetspeak("Steal toast"), "5734l 70457");
        let h = homoglyphs("peace");
        assert_ne!(h, "peace");
        assert_eq!(h.chars().count(), 5);
        assert_eq!(split_payload("a b c d e", 2), vec!["a b c", "d e"]);
        assert_eq!(split_payload("one", 3), vec!["one"]);
    }
}
