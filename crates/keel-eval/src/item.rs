//! The harness's view of one evaluation item, whatever file format it came from.

use serde::{Deserialize, Serialize};

/// A ground-truth answer: one string, or an order-free set (all must be stated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Gold {
    Text(String),
    List(Vec<String>),
}

impl Gold {
    /// Read a gold value leniently from JSON: a string, a number, or a list of either.
    pub fn from_json(v: &serde_json::Value) -> Option<Gold> {
        fn scalar(v: &serde_json::Value) -> Option<String> {
            match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }
        }
        match v {
            serde_json::Value::Array(xs) => xs
                .iter()
                .map(scalar)
                .collect::<Option<Vec<_>>>()
                .map(Gold::List),
            other => scalar(other).map(Gold::Text),
        }
    }
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Gold::Text(s) => Some(s),
            Gold::List(_) => None,
        }
    }
    /// A one-line rendering for templates and logs.
    pub fn display(&self) -> String {
        match self {
            Gold::Text(s) => s.clone(),
            Gold::List(xs) => xs.join(", "),
        }
    }
}

/// Multiple-choice targets (TruthfulQA style): each option with whether it is true.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McTargets {
    /// Exactly one true option (MC1).
    pub mc1: Vec<(String, bool)>,
    /// Several true and false options (MC2); may be empty when only MC1 exists.
    pub mc2: Vec<(String, bool)>,
}

/// A preference pair for reward-model accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefPair {
    /// The shared dialogue context (HH-RLHF: everything before the last assistant turn).
    pub context: String,
    pub chosen: String,
    pub rejected: String,
}

/// One item of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalItem {
    pub id: String,
    /// Harm category, hazard code, MT-bench category ...: what metrics break down by.
    pub category: Option<String>,
    /// The (first) user prompt.
    pub prompt: String,
    /// Further user turns, sent after the model's answer to the previous one (MT-bench).
    pub followups: Vec<String>,
    pub gold: Option<Gold>,
    pub mc: Option<McTargets>,
    pub pair: Option<PrefPair>,
    /// Every source field, for prompt templates (`{{field}}`).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl EvalItem {
    pub fn new(id: impl Into<String>, prompt: impl Into<String>) -> Self {
        EvalItem {
            id: id.into(),
            category: None,
            prompt: prompt.into(),
            followups: Vec::new(),
            gold: None,
            mc: None,
            pair: None,
            fields: serde_json::Map::new(),
        }
    }

    /// A field as text for templating: `prompt`, `id`, `gold`, `category` are always
    /// available; other names come from the source row.
    pub fn field_text(&self, name: &str) -> Option<String> {
        match name {
            "prompt" => Some(self.prompt.clone()),
            "id" => Some(self.id.clone()),
            "gold" => self.gold.as_ref().map(Gold::display),
            "category" => self.category.clone(),
            _ => self.fields.get(name).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        }
    }
}

/// Fill `{{name}}` placeholders from the item. An unknown name is an error naming it
/// (a typo in a template must not silently send "{{promt}}" to the model).
pub fn render_template(template: &str, item: &EvalItem) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + item.prompt.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed '{{{{' in template near: {}", &rest[start..]))?;
        let name = after[..end].trim();
        let val = item
            .field_text(name)
            .ok_or_else(|| format!("template field '{name}' is not in item '{}'", item.id))?;
        out.push_str(&val);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_rendering() {
        let mut it = EvalItem::new("q1", "What is 2+2?");
        it.fields.insert("topic".into(), serde_json::json!("maths"));
        it.gold = Some(Gold::Text("4".into()));
        assert_eq!(
            render_template("[{{topic}}] Q: {{ prompt }}\nA:", &it).unwrap(),
            "[maths] Q: What is 2+2?\nA:"
        );
        assert!(render_template("{{promt}}", &it)
            .unwrap_err()
            .contains("promt"));
        assert!(render_template("{{prompt", &it).is_err());
    }

    #[test]
    fn lenient_gold() {
        use serde_json::json;
        assert_eq!(Gold::from_json(&json!("x")), Some(Gold::Text("x".into())));
        assert_eq!(Gold::from_json(&json!(42)), Some(Gold::Text("42".into())));
        assert_eq!(
            Gold::from_json(&json!(["a", "b"])),
            Some(Gold::List(vec!["a".into(), "b".into()]))
        );
        assert_eq!(Gold::from_json(&json!({"a": 1})), None);
    }
}
