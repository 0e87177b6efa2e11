//! PII detectors over the original text, each candidate confirmed by a checksum or structure
//! test where one exists (Luhn for cards, ISO 13616 mod-97 for IBANs, the DNI check letter),
//! so that order numbers and dates are not redacted as card numbers.

use super::TextFacts;
use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiiKind {
    Email,
    Phone,
    CreditCard,
    Iban,
    Ip,
    NationalId,
}

impl PiiKind {
    pub const ALL: [PiiKind; 6] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CreditCard,
        PiiKind::Iban,
        PiiKind::Ip,
        PiiKind::NationalId,
    ];
    /// The detector name used in policies.
    pub fn detector(self) -> &'static str {
        match self {
            PiiKind::Email => "pii.email",
            PiiKind::Phone => "pii.phone",
            PiiKind::CreditCard => "pii.credit_card",
            PiiKind::Iban => "pii.iban",
            PiiKind::Ip => "pii.ip",
            PiiKind::NationalId => "pii.national_id",
        }
    }
}

pub struct PiiDetector {
    email: Regex,
    phone: Regex,
    card: Regex,
    iban: Regex,
    ipv4: Regex,
    ipv6: Regex,
    ssn: Regex,
    nino: Regex,
    dni: Regex,
}

impl Default for PiiDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl PiiDetector {
    pub fn new() -> Self {
        let r = |p: &str| Regex::new(p).expect("built-in PII regex");
        PiiDetector {
            email: r(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}\b"),
            phone: r(
                r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}\b|\+\d{8,14}\b",
            ),
            card: r(r"\b\d(?:[ -]?\d){12,18}\b"),
            iban: r(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
            ipv4: r(
                r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
            ),
            ipv6: r(r"(?i)\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\b"),
            ssn: r(r"\b\d{3}-\d{2}-\d{4}\b"),
            nino: r(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"),
            dni: r(r"\b[XYZ]?\d{7,8}-?[A-Z]\b"),
        }
    }

    /// Find spans of `kind` in `text`, appending `(start, end)` to `out`.
    pub fn find(&self, kind: PiiKind, text: &str, out: &mut Vec<(usize, usize)>) {
        self.find_with(kind, text, &TextFacts::of(text), out);
    }

    /// [`PiiDetector::find`] with the text's [`TextFacts`] already counted, for a caller
    /// that looks for several kinds in the same text.
    pub fn find_with(
        &self,
        kind: PiiKind,
        text: &str,
        facts: &TextFacts,
        out: &mut Vec<(usize, usize)>,
    ) {
        let b = text.as_bytes();
        let digits = facts.digits;
        match kind {
            PiiKind::Email => {
                if memchr(b'@', b) {
                    out.extend(self.email.find_iter(text).map(|m| (m.start(), m.end())));
                }
            }
            PiiKind::Phone => {
                if digits < 7 {
                    return;
                }
                for m in self.phone.find_iter(text) {
                    let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                    let looks_like_date =
                        m.as_str().len() == 10 && m.as_str().matches(['-', '.', '/']).count() == 2;
                    // Cards and IBAN-like runs are reported by their own detectors.
                    if (7..=15).contains(&digits) && !looks_like_date && !luhn_card(m.as_str()) {
                        out.push((m.start(), m.end()));
                    }
                }
            }
            PiiKind::CreditCard => {
                if digits < 13 {
                    return;
                }
                out.extend(
                    self.card
                        .find_iter(text)
                        .filter(|m| luhn_card(m.as_str()))
                        .map(|m| (m.start(), m.end())),
                );
            }
            PiiKind::Iban => {
                // A valid IBAN starts with two ASCII capitals and two ASCII digits.
                if !b.windows(4).any(|w| {
                    w[..2].iter().all(u8::is_ascii_uppercase)
                        && w[2..].iter().all(u8::is_ascii_digit)
                }) {
                    return;
                }
                out.extend(
                    self.iban
                        .find_iter(text)
                        .filter(|m| iban_valid(m.as_str()))
                        .map(|m| (m.start(), m.end())),
                )
            }
            PiiKind::Ip => {
                // Every IPv4 match has a dot right after a digit (ASCII, or the last byte of a
                // multi-byte Unicode digit, which `\d` also accepts).
                if b.windows(2)
                    .any(|w| w[1] == b'.' && (w[0].is_ascii_digit() || w[0] >= 0x80))
                {
                    out.extend(self.ipv4.find_iter(text).map(|m| (m.start(), m.end())));
                }
                if b.iter().filter(|&&c| c == b':').count() >= 2 {
                    out.extend(
                        self.ipv6
                            .find_iter(text)
                            .filter(|m| m.as_str().matches(':').count() >= 2)
                            .filter(|m| m.as_str().parse::<std::net::Ipv6Addr>().is_ok())
                            .map(|m| (m.start(), m.end())),
                    );
                }
            }
            PiiKind::NationalId => {
                if digits < 6 {
                    return;
                }
                out.extend(
                    self.ssn
                        .find_iter(text)
                        .filter(|m| ssn_valid(m.as_str()))
                        .map(|m| (m.start(), m.end())),
                );
                out.extend(self.nino.find_iter(text).map(|m| (m.start(), m.end())));
                out.extend(
                    self.dni
                        .find_iter(text)
                        .filter(|m| dni_valid(m.as_str()))
                        .map(|m| (m.start(), m.end())),
                );
            }
        }
    }
}

fn memchr(c: u8, b: &[u8]) -> bool {
    b.contains(&c)
}

/// Luhn checksum over the digits of `s`, for 13–19 digit numbers.
pub fn luhn_card(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    // `is_multiple_of` needs Rust 1.87; the workspace supports 1.85.
    #[allow(clippy::manual_is_multiple_of)]
    let ok = sum % 10 == 0;
    ok
}

/// ISO 13616 IBAN check: move the first four characters to the end, letters to numbers
/// (A=10…Z=35), and the number mod 97 must be 1.
pub fn iban_valid(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in compact[4..].iter().chain(&compact[..4]) {
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'A'..=b'Z' => (c - b'A') as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// US SSNs never start with 000, 666 or 9xx, and have no all-zero group.
fn ssn_valid(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    p.len() == 3
        && p[0] != "000"
        && p[0] != "666"
        && !p[0].starts_with('9')
        && p[1] != "00"
        && p[2] != "0000"
}

/// Spanish DNI/NIE: the letter is `TRWAGMYFPDXBNJZSQVHLCKE[number % 23]`.
fn dni_valid(s: &str) -> bool {
    let s = s.replace('-', "");
    let (body, letter) = s.split_at(s.len() - 1);
    let body = body
        .replacen('X', "0", 1)
        .replacen('Y', "1", 1)
        .replacen('Z', "2", 1);
    let Ok(n) = body.parse::<u64>() else {
        return false;
    };
    let table = b"TRWAGMYFPDXBNJZSQVHLCKE";
    letter.as_bytes()[0] == table[(n % 23) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(kind: PiiKind, t: &str) -> Vec<&str> {
        let mut v = Vec::new();
        PiiDetector::new().find(kind, t, &mut v);
        v.iter().map(|&(s, e)| &t[s..e]).collect()
    }

    #[test]
    fn email() {
        assert_eq!(
            spans(PiiKind::Email, "write to Ana.Lopez+x@mail.example.eu today"),
            ["Ana.Lopez+x@mail.example.eu"]
        );
        assert!(spans(PiiKind::Email, "no at sign here").is_empty());
    }

    #[test]
    fn credit_card_needs_luhn() {
        assert_eq!(
            spans(PiiKind::CreditCard, "card 4111 1111 1111 1111 ok"),
            ["4111 1111 1111 1111"]
        );
        assert!(spans(PiiKind::CreditCard, "order 4111 1111 1111 1112").is_empty());
    }

    #[test]
    fn iban_needs_mod97() {
        assert_eq!(
            spans(PiiKind::Iban, "pay DE89 3704 0044 0532 0130 00 now"),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(
            spans(PiiKind::Iban, "GB82WEST12345698765432"),
            ["GB82WEST12345698765432"]
        );
        assert!(spans(PiiKind::Iban, "DE88 3704 0044 0532 0130 00").is_empty());
    }

    #[test]
    fn phone_ip_and_ids() {
        assert_eq!(
            spans(PiiKind::Phone, "call +44 20 7946 0958 now"),
            ["+44 20 7946 0958"]
        );
        assert_eq!(
            spans(PiiKind::Phone, "call (555) 123-4567"),
            ["(555) 123-4567"]
        );
        assert!(spans(PiiKind::Phone, "in 2024 we sold 300 units on 2024-05-01").is_empty());
        assert_eq!(
            spans(PiiKind::Ip, "from 192.168.0.1 and 2001:db8::1"),
            ["192.168.0.1", "2001:db8::1"]
        );
        assert!(spans(PiiKind::Ip, "version 1.2.3 at 10:30").is_empty());
        assert_eq!(
            spans(PiiKind::NationalId, "ssn 123-45-6789"),
            ["123-45-6789"]
        );
        assert!(spans(PiiKind::NationalId, "ssn 666-45-6789").is_empty());
        assert_eq!(
            spans(PiiKind::NationalId, "NINO AB 12 34 56 C"),
            ["AB 12 34 56 C"]
        );
        assert_eq!(spans(PiiKind::NationalId, "DNI 12345678Z"), ["12345678Z"]);
        assert!(spans(PiiKind::NationalId, "DNI 12345678A").is_empty());
    }
}
