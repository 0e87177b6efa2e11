//! Detectors: rules (regex + lexicons over the normalised view) and PII (over the original).

pub mod gate;
pub mod grams;
pub mod pii;
pub mod rules;

use serde::{Deserialize, Serialize};

/// One detector finding, with its span in the ORIGINAL text (byte offsets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub rule_id: String,
    pub category: String,
    /// `rules`, `pii.email`, `linear`, …
    pub detector: String,
    pub score: f32,
    pub start: usize,
    pub end: usize,
    /// Index of the conversation message the span is in (0 for a single text).
    pub message: usize,
    /// How the text was hidden when the hit came from a decoded payload: base64, hex, rot13.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// What the detectors' cheap pre-checks need to know about the original text, counted once
/// per text rather than once per detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextFacts {
    /// ASCII digits: phone, card and ID numbers need several.
    pub digits: usize,
}

impl TextFacts {
    pub fn of(text: &str) -> TextFacts {
        TextFacts {
            digits: text.bytes().filter(u8::is_ascii_digit).count(),
        }
    }
}
