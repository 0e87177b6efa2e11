//! The hazard taxonomy: Llama Guard 3's S1–S14, versioned, plus user-defined categories.
//!
//! Codes are only meaningful together with a taxonomy version: Llama Guard 2 (the MLCommons
//! draft) had 11 codes, and Llama Guard 3 inserted S5 "Defamation", shifting Specialized
//! Advice…Sexual Content from S5…S11 to S6…S12, and appended S13 Elections and S14 Code
//! Interpreter Abuse. Anything that reads an "S6" from another tool must say which version it
//! means; [`v2_to_v3`] converts.

use serde::Serialize;

/// The taxonomy version Keel's codes refer to.
pub const TAXONOMY_VERSION: &str = "llama-guard-3";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryInfo {
    pub code: String,
    pub name: String,
    pub description: String,
    /// `true` for the Llama Guard codes, `false` for categories a policy defined.
    pub builtin: bool,
}

/// Llama Guard 3 hazard categories (code, name, short description).
pub const LLAMA_GUARD_3: [(&str, &str, &str); 14] = [
    ("S1", "Violent Crimes", "Enables, encourages or endorses violent crimes: terrorism, murder, assault, kidnapping, animal abuse."),
    ("S2", "Non-Violent Crimes", "Enables financial crimes, property crimes, drug crimes, weapons crimes, cyber crimes (hacking, malware)."),
    ("S3", "Sex-Related Crimes", "Enables sex trafficking, sexual assault, sexual harassment, prostitution."),
    ("S4", "Child Sexual Exploitation", "Contains, describes, enables or endorses the sexual abuse of children."),
    ("S5", "Defamation", "Verifiably false statements likely to injure a living person's reputation."),
    ("S6", "Specialized Advice", "Specialised financial, medical or legal advice, or claims dangerous activities are safe."),
    ("S7", "Privacy", "Sensitive, nonpublic personal information that could undermine someone's security."),
    ("S8", "Intellectual Property", "May violate the intellectual property rights of a third party."),
    ("S9", "Indiscriminate Weapons", "Enables chemical, biological, radiological, nuclear or high-yield explosive weapons."),
    ("S10", "Hate", "Demeans or dehumanises people on the basis of protected characteristics."),
    ("S11", "Suicide & Self-Harm", "Enables, encourages or endorses suicide, self-injury or disordered eating."),
    ("S12", "Sexual Content", "Depicts or describes sexual content."),
    ("S13", "Elections", "Factually incorrect information about electoral systems and processes."),
    ("S14", "Code Interpreter Abuse", "Abuses a code interpreter: denial of service, container escape, privilege escalation."),
];

/// Llama Guard 2 code names, in v2 numbering.
pub const LLAMA_GUARD_2: [(&str, &str); 11] = [
    ("S1", "Violent Crimes"),
    ("S2", "Non-Violent Crimes"),
    ("S3", "Sex Crimes"),
    ("S4", "Child Exploitation"),
    ("S5", "Specialized Advice"),
    ("S6", "Privacy"),
    ("S7", "Intellectual Property"),
    ("S8", "Indiscriminate Weapons"),
    ("S9", "Hate"),
    ("S10", "Self-Harm"),
    ("S11", "Sexual Content"),
];

/// Convert a Llama Guard 2 code to the Llama Guard 3 code of the same hazard.
pub fn v2_to_v3(code: &str) -> Option<&'static str> {
    let n: usize = code.strip_prefix('S')?.parse().ok()?;
    match n {
        1..=4 => Some(LLAMA_GUARD_3[n - 1].0),
        5..=11 => Some(LLAMA_GUARD_3[n].0),
        _ => None,
    }
}

/// `true` when `code` is one of S1..S14.
pub fn is_builtin(code: &str) -> bool {
    LLAMA_GUARD_3.iter().any(|(c, _, _)| *c == code)
}

pub fn builtin_info(code: &str) -> Option<CategoryInfo> {
    LLAMA_GUARD_3
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(c, n, d)| CategoryInfo {
            code: c.to_string(),
            name: n.to_string(),
            description: d.to_string(),
            builtin: true,
        })
}

/// Sort key that puts S1..S14 in numeric order before user categories (alphabetical).
pub fn order_key(code: &str) -> (u8, u32, String) {
    match code.strip_prefix('S').and_then(|n| n.parse::<u32>().ok()) {
        Some(n) if is_builtin(code) => (0, n, String::new()),
        _ => (1, 0, code.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_codes_shift_after_defamation_was_inserted() {
        assert_eq!(v2_to_v3("S4"), Some("S4"));
        // v2 S5 Specialized Advice is v3 S6; v2 S11 Sexual Content is v3 S12.
        assert_eq!(v2_to_v3("S5"), Some("S6"));
        assert_eq!(builtin_info("S6").unwrap().name, "Specialized Advice");
        assert_eq!(v2_to_v3("S11"), Some("S12"));
        assert_eq!(builtin_info("S12").unwrap().name, "Sexual Content");
        assert_eq!(v2_to_v3("S12"), None);
        let expect = [
            "S1", "S2", "S3", "S4", "S6", "S7", "S8", "S9", "S10", "S11", "S12",
        ];
        for ((v2, _), v3) in LLAMA_GUARD_2.iter().zip(expect) {
            assert_eq!(v2_to_v3(v2), Some(v3));
        }
    }

    #[test]
    fn order_puts_s10_after_s9() {
        let mut v = vec!["S10", "pii", "S9", "S1"];
        v.sort_by_key(|c| order_key(c));
        assert_eq!(v, ["S1", "S9", "S10", "pii"]);
    }
}
