//! The normaliser's character tables: invisible characters, homoglyphs, leetspeak, and the
//! ASCII fast path's per-byte lookups.

pub(super) fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{206A}'..='\u{206F}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{E0000}'..='\u{E007F}')
}

/// Cyrillic and Greek letters that render like Latin ones (after lowercasing).
pub(super) fn homoglyph(c: char) -> char {
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

pub(crate) const fn unleet(c: char) -> char {
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

/// Per ASCII byte of a word: its lowercase form when alphanumeric, otherwise 0 (dropped).
pub(super) static ASCII_LOWER: [u8; 128] = ascii_table(false);
/// The same for a word with letters, leetspeak read as letters ("h4ck" → "hack").
pub(super) static ASCII_UNLEET: [u8; 128] = ascii_table(true);

const fn ascii_table(leet: bool) -> [u8; 128] {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let c = (i as u8).to_ascii_lowercase();
        let c = if leet { unleet(c as char) as u8 } else { c };
        if c.is_ascii_alphanumeric() {
            t[i] = c;
        }
        i += 1;
    }
    t
}

pub(super) fn is_leet_symbol(c: char) -> bool {
    matches!(c, '@' | '$' | '!' | '|')
}
