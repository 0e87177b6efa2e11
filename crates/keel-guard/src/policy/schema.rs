//! Parsing one profile file. The TOML is walked by hand rather than through serde so that
//! every error names the exact key (`categories.S1.threshold`), not just a line number.

use super::{ActionKind, Scope, DETECTORS};
use crate::error::{GuardError, Result};
use crate::taxonomy;
use toml::{Table, Value};

/// A category entry as written in one profile: every field optional, so an overlay can
/// change only what it names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CategorySpec {
    pub name: Option<String>,
    pub description: Option<String>,
    pub action: Option<ActionKind>,
    pub message: Option<String>,
    pub redirect: Option<String>,
    pub replacement: Option<String>,
    pub threshold: Option<f32>,
    pub scopes: Option<Vec<Scope>>,
    pub detectors: Option<Vec<String>>,
    pub lock: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub id: String,
    pub category: String,
    pub pattern: Option<String>,
    pub terms: Vec<String>,
    pub score: f32,
}

/// One parsed profile file.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileFile {
    /// Where it came from (path, or `builtin:NAME`), used in every error message.
    pub file: String,
    pub name: String,
    pub description: String,
    pub categories: Vec<(String, CategorySpec)>,
    pub rules: Vec<RuleSpec>,
    pub disable_rules: Vec<String>,
}

/// Parse and validate the text of a profile file.
pub fn parse_profile(file: &str, text: &str) -> Result<ProfileFile> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0);
        GuardError::policy(file, format!("(line {line})"), e.message().to_string())
    })?;
    let p = Parser { file };
    p.known_keys("", &table, &["profile", "categories", "rules", "disable"])?;

    let prof = p.table(&table, "profile", "profile")?.ok_or_else(|| {
        GuardError::policy(file, "profile", "missing [profile] table with a `name`")
    })?;
    p.known_keys("profile", prof, &["name", "description", "version"])?;
    let name = p
        .string(prof, "name", "profile.name")?
        .ok_or_else(|| GuardError::policy(file, "profile.name", "required"))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(GuardError::policy(
            file,
            "profile.name",
            "use letters, digits, '-' or '_'",
        ));
    }
    let description = p
        .string(prof, "description", "profile.description")?
        .unwrap_or_default();
    p.string(prof, "version", "profile.version")?;

    let mut categories = Vec::new();
    if let Some(cats) = p.table(&table, "categories", "categories")? {
        for (code, v) in cats {
            let key = format!("categories.{code}");
            check_code(file, &key, code)?;
            let t = v
                .as_table()
                .ok_or_else(|| GuardError::policy(file, &key, "must be a table"))?;
            categories.push((code.clone(), p.category(&key, t)?));
        }
    }

    let mut rules: Vec<RuleSpec> = Vec::new();
    if let Some(v) = table.get("rules") {
        let arr = v.as_array().ok_or_else(|| {
            GuardError::policy(file, "rules", "must be an array of tables ([[rules]])")
        })?;
        for (i, r) in arr.iter().enumerate() {
            let key = format!("rules[{i}]");
            let t = r
                .as_table()
                .ok_or_else(|| GuardError::policy(file, &key, "must be a table"))?;
            let rule = p.rule(&key, t)?;
            if rules.iter().any(|x| x.id == rule.id) {
                return Err(GuardError::policy(
                    file,
                    format!("{key}.id"),
                    format!("duplicate rule id `{}`", rule.id),
                ));
            }
            rules.push(rule);
        }
    }

    let mut disable_rules = Vec::new();
    if let Some(d) = p.table(&table, "disable", "disable")? {
        p.known_keys("disable", d, &["rules"])?;
        disable_rules = p.strings(d, "rules", "disable.rules")?.unwrap_or_default();
    }
    Ok(ProfileFile {
        file: file.to_string(),
        name,
        description,
        categories,
        rules,
        disable_rules,
    })
}

fn check_code(file: &str, key: &str, code: &str) -> Result<()> {
    if taxonomy::is_builtin(code) {
        return Ok(());
    }
    if code.starts_with('S') && code[1..].chars().all(|c| c.is_ascii_digit()) {
        return Err(GuardError::policy(
            file,
            key,
            format!("`{code}` is not a Llama Guard 3 code (S1..S14); user-defined categories use lowercase names"),
        ));
    }
    let ok = code.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        return Err(GuardError::policy(
            file,
            key,
            "user-defined category codes are lowercase: a-z, 0-9, '_', '-'",
        ));
    }
    Ok(())
}

struct Parser<'a> {
    file: &'a str,
}

impl Parser<'_> {
    fn err(&self, key: &str, reason: impl Into<String>) -> GuardError {
        GuardError::policy(self.file, key, reason)
    }

    fn known_keys(&self, prefix: &str, t: &Table, allowed: &[&str]) -> Result<()> {
        for k in t.keys() {
            if !allowed.contains(&k.as_str()) {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                return Err(self.err(
                    &key,
                    format!("unknown key (expected one of: {})", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn table<'t>(&self, t: &'t Table, k: &str, key: &str) -> Result<Option<&'t Table>> {
        match t.get(k) {
            None => Ok(None),
            Some(Value::Table(x)) => Ok(Some(x)),
            Some(_) => Err(self.err(key, "must be a table")),
        }
    }

    fn string(&self, t: &Table, k: &str, key: &str) -> Result<Option<String>> {
        match t.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.err(key, "must be a string")),
        }
    }

    fn strings(&self, t: &Table, k: &str, key: &str) -> Result<Option<Vec<String>>> {
        match t.get(k) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.err(&format!("{key}[{i}]"), "must be a string"))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(self.err(key, "must be an array of strings")),
        }
    }

    fn unit(&self, t: &Table, k: &str, key: &str, allow_zero: bool) -> Result<Option<f32>> {
        let x = match t.get(k) {
            None => return Ok(None),
            Some(Value::Float(f)) => *f,
            Some(Value::Integer(i)) => *i as f64,
            Some(_) => return Err(self.err(key, "must be a number")),
        };
        let lo_ok = if allow_zero { x >= 0.0 } else { x > 0.0 };
        if !(lo_ok && x <= 1.0) {
            let range = if allow_zero { "[0, 1]" } else { "(0, 1]" };
            return Err(self.err(key, format!("{x} is outside {range}")));
        }
        Ok(Some(x as f32))
    }

    fn category(&self, key: &str, t: &Table) -> Result<CategorySpec> {
        self.known_keys(
            key,
            t,
            &[
                "name",
                "description",
                "action",
                "message",
                "redirect",
                "replacement",
                "threshold",
                "scopes",
                "detectors",
                "lock",
            ],
        )?;
        let k = |f: &str| format!("{key}.{f}");
        let action = match self.string(t, "action", &k("action"))? {
            None => None,
            Some(a) => Some(ActionKind::parse(&a).ok_or_else(|| {
                self.err(
                    &k("action"),
                    format!("`{a}` is not one of allow, flag, redact, redirect, block"),
                )
            })?),
        };
        let scopes = match self.strings(t, "scopes", &k("scopes"))? {
            None => None,
            Some(v) => {
                if v.is_empty() {
                    return Err(self.err(&k("scopes"), "must name at least one of input, output"));
                }
                let mut out = Vec::new();
                for (i, s) in v.iter().enumerate() {
                    let sc = Scope::parse(s).ok_or_else(|| {
                        self.err(
                            &format!("{key}.scopes[{i}]"),
                            format!("`{s}` is not input or output"),
                        )
                    })?;
                    if !out.contains(&sc) {
                        out.push(sc);
                    }
                }
                out.sort();
                Some(out)
            }
        };
        let detectors = self.strings(t, "detectors", &k("detectors"))?;
        if let Some(ds) = &detectors {
            for (i, d) in ds.iter().enumerate() {
                if !DETECTORS.contains(&d.as_str()) {
                    return Err(self.err(
                        &format!("{key}.detectors[{i}]"),
                        format!("unknown detector `{d}` (known: {})", DETECTORS.join(", ")),
                    ));
                }
            }
        }
        let lock = match t.get("lock") {
            None => None,
            Some(Value::Boolean(b)) => Some(*b),
            Some(_) => return Err(self.err(&k("lock"), "must be true or false")),
        };
        Ok(CategorySpec {
            name: self.string(t, "name", &k("name"))?,
            description: self.string(t, "description", &k("description"))?,
            action,
            message: self.string(t, "message", &k("message"))?,
            redirect: self.string(t, "redirect", &k("redirect"))?,
            replacement: self.string(t, "replacement", &k("replacement"))?,
            threshold: self.unit(t, "threshold", &k("threshold"), true)?,
            scopes,
            detectors,
            lock,
        })
    }

    fn rule(&self, key: &str, t: &Table) -> Result<RuleSpec> {
        self.known_keys(key, t, &["id", "category", "pattern", "terms", "score"])?;
        let k = |f: &str| format!("{key}.{f}");
        let id = self
            .string(t, "id", &k("id"))?
            .ok_or_else(|| self.err(&k("id"), "required"))?;
        let category = self
            .string(t, "category", &k("category"))?
            .ok_or_else(|| self.err(&k("category"), "required"))?;
        let pattern = self.string(t, "pattern", &k("pattern"))?;
        let terms = self.strings(t, "terms", &k("terms"))?.unwrap_or_default();
        match (&pattern, terms.is_empty()) {
            (Some(_), false) => {
                return Err(self.err(
                    key,
                    format!("rule `{id}` has both `pattern` and `terms`; use one"),
                ))
            }
            (None, true) => {
                return Err(self.err(
                    key,
                    format!("rule `{id}` needs a `pattern` or non-empty `terms`"),
                ))
            }
            _ => {}
        }
        if let Some(p) = &pattern {
            // Compiled exactly as the engine compiles it (ASCII mode).
            regex::RegexBuilder::new(p)
                .unicode(false)
                .build()
                .map_err(|e| self.err(&k("pattern"), format!("invalid regex: {e}")))?;
        }
        for (i, term) in terms.iter().enumerate() {
            if crate::normalize::normalize(term.trim_end_matches('*')).is_empty() {
                return Err(self.err(
                    &format!("{key}.terms[{i}]"),
                    "term is empty after normalisation",
                ));
            }
        }
        let score = self.unit(t, "score", &k("score"), false)?.unwrap_or(1.0);
        Ok(RuleSpec {
            id,
            category,
            pattern,
            terms,
            score,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_profile("p.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_key_and_reason() {
        let e = err("[profile]\nname='x'\n[categories.S1]\nthreshold = 1.5\n");
        assert_eq!(
            e,
            "p.toml: key `categories.S1.threshold`: 1.5 is outside [0, 1]"
        );
        let e = err("[profile]\nname='x'\n[categories.S1]\naction = 'nuke'\n");
        assert!(
            e.starts_with("p.toml: key `categories.S1.action`: `nuke` is not one of"),
            "{e}"
        );
        let e = err("[profile]\nname='x'\n[categories.S15]\naction='block'\n");
        assert!(
            e.contains("`categories.S15`") && e.contains("not a Llama Guard 3 code"),
            "{e}"
        );
        let e = err("[profile]\nname='x'\n[categories.S1]\nthresold = 0.5\n");
        assert!(
            e.starts_with("p.toml: key `categories.S1.thresold`: unknown key"),
            "{e}"
        );
        let e = err("[profile]\nname='x'\n[[rules]]\nid='a'\ncategory='S1'\npattern='(unclosed'\n");
        assert!(
            e.starts_with("p.toml: key `rules[0].pattern`: invalid regex"),
            "{e}"
        );
        let e = err("[profile]\nname='x'\n[categories.S1]\ndetectors=['magic']\n");
        assert!(
            e.contains("`categories.S1.detectors[0]`: unknown detector `magic`"),
            "{e}"
        );
        let e = err("[profile]\nname = 'x'\n[categories.S1\n");
        assert!(e.starts_with("p.toml: key `(line 3)`"), "{e}");
        let e = err("[categories.S1]\naction='block'\n");
        assert!(e.contains("key `profile`"), "{e}");
    }

    #[test]
    fn parses_a_full_profile() {
        let p = parse_profile(
            "t.toml",
            r#"
            [profile]
            name = "t"
            [categories.S1]
            action = "block"
            threshold = 0.4
            scopes = ["output", "input"]
            detectors = ["rules", "linear"]
            lock = true
            [categories.my_cat]
            name = "Mine"
            description = "mine"
            action = "flag"
            [[rules]]
            id = "r1"
            category = "S1"
            terms = ["kill*", "murder"]
            score = 0.5
            [disable]
            rules = ["old"]
            "#,
        )
        .unwrap();
        assert_eq!(p.categories.len(), 2);
        let s1 = &p.categories.iter().find(|c| c.0 == "S1").unwrap().1;
        assert_eq!(s1.scopes, Some(vec![Scope::Input, Scope::Output]));
        assert_eq!(s1.lock, Some(true));
        assert_eq!(p.rules[0].score, 0.5);
        assert_eq!(p.disable_rules, ["old"]);
    }
}
