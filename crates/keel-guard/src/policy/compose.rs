//! Composing profiles into the effective policy.
//!
//! Precedence (documented in `policies/README.md`):
//! 1. Profiles apply left to right; `default` is always applied first (naming it again is
//!    harmless). A later profile's field replaces the earlier value, field by field, so an
//!    overlay only states what it changes.
//! 2. A category set `lock = true` can afterwards only be *tightened*: a more severe action,
//!    a lower threshold, more scopes, more detectors. Relaxing it, disabling or replacing its
//!    rules is an error naming the file and key, so `education-minors` cannot be undone by a
//!    profile listed after it.
//! 3. Rules accumulate; a rule with an existing id replaces it; `[disable] rules` removes.
//! 4. At scan time, when several categories trigger, the most severe action wins:
//!    block > redirect > redact > flag > allow.

use super::schema::{CategorySpec, ProfileFile};
use super::{CategoryPolicy, RuleDef};
use crate::error::{GuardError, Result};
use crate::taxonomy;
use serde::Serialize;
use std::collections::BTreeMap;

/// The policy after all overlays, with where each setting came from.
#[derive(Debug, Clone, Serialize)]
pub struct EffectivePolicy {
    pub profiles: Vec<String>,
    pub categories: Vec<CategoryPolicy>,
    pub rules: Vec<RuleDef>,
    /// `categories.S1.action` → the profile that set it last.
    pub provenance: BTreeMap<String, String>,
    /// sha256 of the effective settings: the "policy version" recorded in the audit log.
    pub hash: String,
}

impl EffectivePolicy {
    pub fn category(&self, code: &str) -> Option<&CategoryPolicy> {
        self.categories.iter().find(|c| c.code == code)
    }
    /// Profile names joined with `,`, as recorded in the audit log.
    pub fn profile_label(&self) -> String {
        self.profiles.join(",")
    }
}

/// Overlay `files` in order into one effective policy.
pub fn compose(files: &[ProfileFile]) -> Result<EffectivePolicy> {
    let mut cats: BTreeMap<String, CategoryPolicy> = BTreeMap::new();
    let mut rules: Vec<(RuleDef, String)> = Vec::new();
    let mut prov = BTreeMap::new();
    let mut profiles = Vec::new();
    for f in files {
        profiles.push(f.name.clone());
        for (code, spec) in &f.categories {
            let key = format!("categories.{code}");
            let cur = match cats.remove(code) {
                Some(c) => c,
                None => new_category(f, &key, code, spec)?,
            };
            let next = overlay(&cur, spec);
            if cur.locked {
                check_not_relaxed(f, &key, &cur, &next)?;
            }
            for (field, set) in spec_fields(spec) {
                if set {
                    prov.insert(format!("{key}.{field}"), f.name.clone());
                }
            }
            cats.insert(code.clone(), next);
        }
        for (i, id) in f.disable_rules.iter().enumerate() {
            let key = format!("disable.rules[{i}]");
            let pos = rules.iter().position(|(r, _)| &r.id == id).ok_or_else(|| {
                GuardError::policy(&f.file, &key, format!("no rule `{id}` to disable"))
            })?;
            locked_guard(f, &key, &cats, &rules[pos].0.category, "disable a rule of")?;
            rules.remove(pos);
        }
        for (i, r) in f.rules.iter().enumerate() {
            let def = RuleDef {
                id: r.id.clone(),
                category: r.category.clone(),
                pattern: r.pattern.clone(),
                terms: r.terms.clone(),
                score: r.score,
                source: f.name.clone(),
            };
            let key = format!("rules[{i}]");
            if let Some(pos) = rules.iter().position(|(x, _)| x.id == r.id) {
                locked_guard(f, &key, &cats, &rules[pos].0.category, "replace a rule of")?;
                rules[pos] = (def, f.file.clone());
            } else {
                rules.push((def, f.file.clone()));
            }
        }
    }
    for (i, (r, file)) in rules.iter().enumerate() {
        if !cats.contains_key(&r.category) {
            return Err(GuardError::policy(
                file,
                format!("rules (id `{}`).category", r.id),
                format!(
                    "category `{}` is not defined by any profile in the stack (rule #{i})",
                    r.category
                ),
            ));
        }
    }
    let mut categories: Vec<CategoryPolicy> = cats.into_values().collect();
    categories.sort_by_key(|c| taxonomy::order_key(&c.code));
    let rules: Vec<RuleDef> = rules.into_iter().map(|(r, _)| r).collect();
    let hash = keel_core::artifact::sha256_hex(
        serde_json::to_string(&(&profiles, &categories, &rules))
            .unwrap_or_default()
            .as_bytes(),
    );
    Ok(EffectivePolicy {
        profiles,
        categories,
        rules,
        provenance: prov,
        hash,
    })
}

fn new_category(
    f: &ProfileFile,
    key: &str,
    code: &str,
    spec: &CategorySpec,
) -> Result<CategoryPolicy> {
    let (name, description) = match taxonomy::builtin_info(code) {
        Some(info) => (info.name, info.description),
        None => {
            let d = spec.description.clone().ok_or_else(|| {
                GuardError::policy(
                    &f.file,
                    format!("{key}.description"),
                    "required when a profile first defines a user category",
                )
            })?;
            (spec.name.clone().unwrap_or_else(|| code.to_string()), d)
        }
    };
    Ok(CategoryPolicy {
        code: code.to_string(),
        message: format!("This request was blocked by policy ({name})."),
        name,
        description,
        action: super::ActionKind::Block,
        redirect: String::new(),
        replacement: format!("[{}]", code.to_uppercase()),
        threshold: 0.5,
        scopes: vec![super::Scope::Input, super::Scope::Output],
        detectors: vec!["rules".to_string()],
        locked: false,
    })
}

fn overlay(cur: &CategoryPolicy, s: &CategorySpec) -> CategoryPolicy {
    let mut c = cur.clone();
    if let Some(v) = &s.name {
        c.name = v.clone();
    }
    if let Some(v) = &s.description {
        c.description = v.clone();
    }
    if let Some(v) = s.action {
        c.action = v;
    }
    if let Some(v) = &s.message {
        c.message = v.clone();
    }
    if let Some(v) = &s.redirect {
        c.redirect = v.clone();
    }
    if let Some(v) = &s.replacement {
        c.replacement = v.clone();
    }
    if let Some(v) = s.threshold {
        c.threshold = v;
    }
    if let Some(v) = &s.scopes {
        c.scopes = v.clone();
    }
    if let Some(v) = &s.detectors {
        c.detectors = v.clone();
    }
    if let Some(v) = s.lock {
        c.locked = v;
    }
    c
}

fn spec_fields(s: &CategorySpec) -> [(&'static str, bool); 10] {
    [
        ("name", s.name.is_some()),
        ("description", s.description.is_some()),
        ("action", s.action.is_some()),
        ("message", s.message.is_some()),
        ("redirect", s.redirect.is_some()),
        ("replacement", s.replacement.is_some()),
        ("threshold", s.threshold.is_some()),
        ("scopes", s.scopes.is_some()),
        ("detectors", s.detectors.is_some()),
        ("lock", s.lock.is_some()),
    ]
}

fn check_not_relaxed(
    f: &ProfileFile,
    key: &str,
    old: &CategoryPolicy,
    new: &CategoryPolicy,
) -> Result<()> {
    let e =
        |field: &str, why: String| Err(GuardError::policy(&f.file, format!("{key}.{field}"), why));
    if new.action < old.action {
        return e(
            "action",
            format!(
                "category is locked: cannot relax {} to {}",
                old.action.as_str(),
                new.action.as_str()
            ),
        );
    }
    if new.threshold > old.threshold {
        return e(
            "threshold",
            format!(
                "category is locked: cannot raise threshold {} to {}",
                old.threshold, new.threshold
            ),
        );
    }
    if old.scopes.iter().any(|s| !new.scopes.contains(s)) {
        return e("scopes", "category is locked: cannot drop a scope".into());
    }
    if old.detectors.iter().any(|d| !new.detectors.contains(d)) {
        return e(
            "detectors",
            "category is locked: cannot drop a detector".into(),
        );
    }
    if !new.locked {
        return e("lock", "category is locked: cannot unlock it".into());
    }
    Ok(())
}

fn locked_guard(
    f: &ProfileFile,
    key: &str,
    cats: &BTreeMap<String, CategoryPolicy>,
    cat: &str,
    what: &str,
) -> Result<()> {
    if cats.get(cat).is_some_and(|c| c.locked) {
        return Err(GuardError::policy(
            &f.file,
            key,
            format!("cannot {what} locked category `{cat}`"),
        ));
    }
    Ok(())
}
