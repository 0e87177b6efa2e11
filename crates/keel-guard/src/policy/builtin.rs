//! The profiles shipped inside the binary, and loading a stack of profiles by name or path.

use super::compose::{compose, EffectivePolicy};
use super::schema::{parse_profile, ProfileFile};
use crate::error::{GuardError, Result};

/// Built-in profiles: (name, TOML text).
pub const BUILTIN: [(&str, &str); 4] = [
    ("default", include_str!("../../policies/default.toml")),
    (
        "education-minors",
        include_str!("../../policies/education-minors.toml"),
    ),
    ("region-eu", include_str!("../../policies/region-eu.toml")),
    (
        "medical-provider",
        include_str!("../../policies/medical-provider.toml"),
    ),
];

/// Load one profile: a built-in name, or a path to a `.toml` file.
pub fn load_profile(name_or_path: &str) -> Result<ProfileFile> {
    if let Some((n, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
        return parse_profile(&format!("builtin:{n}"), text);
    }
    let p = std::path::Path::new(name_or_path);
    if name_or_path.ends_with(".toml") || p.exists() {
        let text = std::fs::read_to_string(p).map_err(|e| GuardError::io(p, e))?;
        return parse_profile(name_or_path, &text);
    }
    Err(GuardError::UnknownProfile(name_or_path.to_string()))
}

/// The effective policy for a profile stack; `default` is always the base.
pub fn load_stack<S: AsRef<str>>(names: &[S]) -> Result<EffectivePolicy> {
    let mut files = vec![load_profile("default")?];
    for n in names {
        let n = n.as_ref().trim();
        if n.is_empty() || n == "default" {
            continue;
        }
        files.push(load_profile(n)?);
    }
    compose(&files)
}
