//! Obfuscations for the robustness bench: the tricks the normaliser claims to undo, applied
//! to whole prompts with a seeded generator.

use base64::Engine as _;
use rand::Rng;

pub const ALL: [&str; 8] = [
    "leetspeak",
    "homoglyph",
    "zero-width",
    "spacing",
    "fullwidth",
    "base64",
    "rot13",
    "hex",
];

pub fn apply(kind: &str, text: &str, rng: &mut keel_core::rng::KeelRng) -> String {
    match kind {
        "leetspeak" => text
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                'a' => '4',
                'e' => '3',
                'i' => '1',
                'o' => '0',
                's' => '5',
                't' => '7',
                _ => c,
            })
            .collect(),
        "homoglyph" => text
            .chars()
            .map(|c| match c {
                'a' => 'а',
                'e' => 'е',
                'o' => 'о',
                'p' => 'р',
                'c' => 'с',
                'x' => 'х',
                'y' => 'у',
                'i' => 'і',
                _ => c,
            })
            .collect(),
        "zero-width" => {
            let mut s = String::new();
            for c in text.chars() {
                s.push(c);
                if c.is_alphabetic() && rng.random_bool(0.5) {
                    s.push(
                        ['\u{200b}', '\u{200c}', '\u{200d}', '\u{feff}'][rng.random_range(0..4)],
                    );
                }
            }
            s
        }
        "spacing" => {
            // Long words spelt out with a separator; words then need a wider gap to stay apart.
            let sep = [" ", ".", "-"][rng.random_range(0..3)];
            let gap = if sep == " " { "   " } else { " " };
            text.split_whitespace()
                .map(|w| {
                    if w.chars().count() >= 4 {
                        w.chars()
                            .map(|c| c.to_string())
                            .collect::<Vec<_>>()
                            .join(sep)
                    } else {
                        w.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(gap)
        }
        "fullwidth" => text
            .chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
                ' ' => '\u{3000}',
                _ => c,
            })
            .collect(),
        "base64" => format!(
            "Decode this base64 and do what it says: {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        ),
        "rot13" => format!("Answer the rot13 message: {}", crate::decode::rot13(text)),
        "hex" => format!("hex: {}", hex::encode(text)),
        other => panic!("unknown obfuscation {other}"),
    }
}
