//! `keel world`: the embedded synthetic world.
//!
//! A deterministic generator (same seed + config → byte-identical files) of a small fictional
//! world with ground truth: towns, people, creatures and products with attributes and relations.
//! From the entity table it derives a pretraining corpus and task banks for every later stage,
//! split so that the test split holds out both entities and question templates.
//!
//! ```no_run
//! use keel_data::world::{generate, WorldConfig};
//! let world = generate(&WorldConfig::default(), 0).unwrap();
//! let summary = world.write(std::path::Path::new("out/world")).unwrap();
//! println!("{summary}");
//! ```
//!
//! Layout written by [`World::write`]: see [`write`].

mod bank;
pub mod corpus;
mod corpus_general;
pub mod entities;
pub mod facts;
pub mod names;
mod preferences;
mod probes;
pub mod rows;
mod safety;
pub mod safety_text;
pub mod splits;
mod tasks;
pub mod write;

pub use corpus::{Corpus, CorpusDoc};
pub use entities::{Creature, Entities, Person, Product, Town};
pub use rows::{Category, ClozeRow, Defect, Gold, PreferenceRow, TaskBanks, TaskRow};
pub use splits::Split;
pub use write::{WorldSummary, BANK_FILES};

use crate::error::{DataError, Result};
use keel_core::rng::rng_for;
use names::NameGen;
use serde::{Deserialize, Serialize};

/// Sizes of the generated world. Defaults are sized for a whole Keel pipeline of about ten
/// minutes on a 2-core laptop (about 1.2 MB of pretraining text); [`WorldConfig::tiny`] is for
/// tests. Counts named "per train split" are scaled down for validation and test in proportion
/// to their entity fractions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldConfig {
    /// Number of regions towns belong to. Default: 6.
    pub regions: usize,
    /// Number of rivers (each flows through several towns). Default: 12.
    pub rivers: usize,
    /// Number of towns (at least 3: they form a ring of neighbours). Default: 40.
    pub towns: usize,
    /// Number of people. Default: 200.
    pub people: usize,
    /// Number of creature species. Default: 40.
    pub creatures: usize,
    /// Number of products. Default: 80.
    pub products: usize,
    /// Fraction of each entity kind held out for validation task banks. Default: 0.1.
    pub validation_fraction: f64,
    /// Fraction of each entity kind held out for test task banks. Default: 0.1.
    pub test_fraction: f64,
    /// Encyclopedia articles per entity in the training corpus, each freshly phrased and
    /// shuffled. Default: 6.
    pub articles_per_entity: usize,
    /// Short stories per person in the training corpus. Default: 8.
    pub stories_per_person: usize,
    /// Arithmetic documents (20 equations each) in the training corpus. Default: 600.
    pub arithmetic_docs: usize,
    /// General pages in the training corpus (explanations of everyday sensitive topics and
    /// help-desk refusals: what a web corpus would add; see `corpus_general.rs`). Default: 200.
    pub general_pages: usize,
    /// Questions per fact in fact QA (distinct templates, at most the family size). Default: 1.
    pub questions_per_fact: usize,
    /// Arithmetic questions per train split. Default: 400.
    pub arithmetic_questions: usize,
    /// Unanswerable questions per train split. Default: 300.
    pub unanswerable_questions: usize,
    /// False-premise questions per train split. Default: 300.
    pub false_premise_questions: usize,
    /// Harmful requests per hazard category (S1..S14) per train split. Default: 24.
    pub harmful_per_hazard: usize,
    /// Benign-but-sensitive requests per train split. Default: 240.
    pub benign_questions: usize,
    /// Preference pairs per defect type per train split. Default: 200.
    pub preferences_per_defect: usize,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            regions: 6,
            rivers: 12,
            towns: 40,
            people: 200,
            creatures: 40,
            products: 80,
            validation_fraction: 0.1,
            test_fraction: 0.1,
            articles_per_entity: 6,
            stories_per_person: 8,
            arithmetic_docs: 600,
            general_pages: 200,
            questions_per_fact: 1,
            arithmetic_questions: 400,
            unanswerable_questions: 300,
            false_premise_questions: 300,
            harmful_per_hazard: 24,
            benign_questions: 240,
            preferences_per_defect: 200,
        }
    }
}

impl WorldConfig {
    /// A small world for tests: generates in milliseconds, still has every split populated.
    pub fn tiny() -> Self {
        WorldConfig {
            regions: 3,
            rivers: 4,
            towns: 10,
            people: 30,
            creatures: 12,
            products: 12,
            validation_fraction: 0.2,
            test_fraction: 0.2,
            articles_per_entity: 1,
            stories_per_person: 1,
            arithmetic_docs: 10,
            general_pages: 8,
            questions_per_fact: 1,
            arithmetic_questions: 36,
            unanswerable_questions: 24,
            false_premise_questions: 20,
            harmful_per_hazard: 3,
            benign_questions: 24,
            preferences_per_defect: 12,
        }
    }

    /// Reject configurations that cannot produce a well-formed world.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(DataError::Config(m));
        let (v, t) = (self.validation_fraction, self.test_fraction);
        if !(0.0..1.0).contains(&v) || !(0.0..1.0).contains(&t) || v + t >= 0.9 {
            return bad(format!("validation_fraction ({v}) and test_fraction ({t}) must be in [0, 1) and sum below 0.9"));
        }
        if self.towns < 3 {
            return bad(format!("towns must be at least 3 (got {})", self.towns));
        }
        if self.regions == 0 || self.rivers == 0 {
            return bad("regions and rivers must be at least 1".into());
        }
        for (name, n) in [
            ("towns", self.towns),
            ("people", self.people),
            ("creatures", self.creatures),
            ("products", self.products),
        ] {
            let (hv, ht) = splits::held_out_counts(n, self);
            if n < hv + ht + 2 {
                return bad(format!("{name} = {n} is too small: validation and test take {}, and train needs at least 2", hv + ht));
            }
            if n > 100_000 {
                return bad(format!("{name} = {n} exceeds the limit of 100000"));
            }
        }
        Ok(())
    }
}

/// A generated world, in memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct World {
    pub config: WorldConfig,
    pub seed: u64,
    pub entities: Entities,
    pub corpus: Corpus,
    pub train: TaskBanks,
    pub validation: TaskBanks,
    pub test: TaskBanks,
}

impl World {
    pub fn banks(&self, split: Split) -> &TaskBanks {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
            Split::Test => &self.test,
        }
    }
}

/// Words of every template, reserved so that no invented name is also a template word.
fn reserved_words() -> Vec<String> {
    let mut texts: Vec<&str> = Vec::new();
    for k in facts::FactKind::ALL {
        let t = k.text();
        for fam in [t.corpus, t.val_corpus, t.cloze_heldout, t.qa] {
            texts.extend_from_slice(fam);
        }
    }
    for fam in tasks::TEXTS
        .iter()
        .chain(probes::TEXTS)
        .chain(corpus::TEXTS)
    {
        texts.extend_from_slice(fam);
    }
    texts.extend_from_slice(safety::FRAMES);
    for h in safety_text::HAZARDS {
        texts.extend_from_slice(h.prompts);
        texts.extend_from_slice(h.refusals);
    }
    for (q, a, _) in safety_text::BENIGN {
        texts.push(q);
        texts.push(a);
    }
    let lists = [
        entities::PROFESSIONS,
        entities::COLOURS,
        entities::HABITATS,
        entities::DIETS,
        entities::PRODUCT_KINDS,
    ];
    texts.extend(lists.iter().flat_map(|l| l.iter().copied()));
    texts
        .iter()
        .flat_map(|t| t.split(|c: char| !c.is_alphabetic()))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Generate the world for `cfg` and `seed`. Deterministic: each part draws from its own
/// named rng stream, so e.g. changing a task-bank size leaves the entities and corpus as they were.
pub fn generate(cfg: &WorldConfig, seed: u64) -> Result<World> {
    cfg.validate()?;
    let reserved = reserved_words();
    let mut names = NameGen::with_reserved(reserved.iter().map(String::as_str));
    let e = entities::generate_entities(cfg, seed, &mut names);
    let corpus = corpus::generate_corpus(cfg, seed, &e);
    let mut split_banks = Vec::new();
    for split in Split::ALL {
        let rng = |bank: &str| rng_for(seed, &format!("world/{split}/{bank}"));
        let mut b = TaskBanks {
            instructions: tasks::instructions(cfg, &e, split, &mut rng("instructions")),
            harmful: safety::harmful(cfg, &e, split, &mut rng("harmful")),
            benign_sensitive: safety::benign_sensitive(
                cfg,
                &e,
                split,
                &mut rng("benign_sensitive"),
            ),
            unanswerable: probes::unanswerable(
                cfg,
                &e,
                &mut names,
                split,
                &mut rng("unanswerable"),
            ),
            false_premise: probes::false_premise(cfg, &e, split, &mut rng("false_premise")),
            preferences: Vec::new(),
            facts: probes::cloze(&e, split, &mut rng("facts")),
        };
        b.preferences = preferences::preferences(cfg, &e, &b, split, &mut rng("preferences"));
        split_banks.push(b);
    }
    let test = split_banks.pop().expect("three splits");
    let validation = split_banks.pop().expect("three splits");
    let train = split_banks.pop().expect("three splits");
    Ok(World {
        config: cfg.clone(),
        seed,
        entities: e,
        corpus,
        train,
        validation,
        test,
    })
}
