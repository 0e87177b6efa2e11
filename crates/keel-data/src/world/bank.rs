//! A small builder shared by the task generators: picks a template allowed for the split,
//! records its id, and numbers rows.

use super::rows::{Category, Gold, TaskRow};
use super::splits::{templates_for, Split};
use keel_core::rng::KeelRng;
use rand::seq::{IndexedRandom, SliceRandom};

pub struct Bank {
    pub split: Split,
    name: &'static str,
    pub rows: Vec<TaskRow>,
}

/// A template chosen for a row: its id ("family/index") and text.
pub struct Chosen {
    pub id: String,
    pub text: &'static str,
}

impl Bank {
    pub fn new(split: Split, name: &'static str) -> Self {
        Bank {
            split,
            name,
            rows: Vec::new(),
        }
    }

    /// One random template of `family` allowed in this split.
    pub fn pick(&self, family_id: &str, family: &[&'static str], rng: &mut KeelRng) -> Chosen {
        let allowed = templates_for(self.split, family);
        let (i, text) = *allowed.choose(rng).expect("template family is non-empty");
        Chosen {
            id: format!("{family_id}/{i}"),
            text,
        }
    }

    /// Up to `n` distinct templates of `family` allowed in this split.
    pub fn pick_n(
        &self,
        family_id: &str,
        family: &[&'static str],
        n: usize,
        rng: &mut KeelRng,
    ) -> Vec<Chosen> {
        let mut allowed = templates_for(self.split, family);
        allowed.shuffle(rng);
        allowed
            .into_iter()
            .take(n.max(1))
            .map(|(i, text)| Chosen {
                id: format!("{family_id}/{i}"),
                text,
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        prompt: String,
        completion: String,
        category: Category,
        gold: Gold,
        template: String,
        subjects: Vec<String>,
    ) -> &mut TaskRow {
        let id = format!("{}-{}-{:05}", self.split, self.name, self.rows.len());
        self.rows.push(TaskRow {
            id,
            prompt,
            completion,
            category,
            gold,
            template,
            subjects,
            hazard: None,
            must_include: Vec::new(),
        });
        self.rows.last_mut().expect("just pushed")
    }
}

/// Replace `{key}` placeholders.
pub fn fill(t: &str, slots: &[(&str, &str)]) -> String {
    let mut s = t.to_string();
    for (k, v) in slots {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}
