//! The entity table: the world's ground truth. Every task's gold answer is derived from it.
//!
//! Entities refer to each other by (unique) name, so the table serialises to readable JSON
//! (`entities.json`) that evaluation code can use directly.

use super::names::NameGen;
use super::splits::{assign_splits, Split};
use super::WorldConfig;
use keel_core::rng::{rng_for, KeelRng};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

// Professions start with a consonant so templates can say "a {profession}".
pub const PROFESSIONS: &[&str] = &[
    "baker",
    "blacksmith",
    "weaver",
    "fisher",
    "potter",
    "miller",
    "carpenter",
    "healer",
    "scribe",
    "farmer",
    "brewer",
    "tailor",
    "shepherd",
    "glassblower",
    "teacher",
    "mason",
];
pub const COLOURS: &[&str] = &[
    "red", "blue", "green", "yellow", "purple", "orange", "white", "black", "grey", "brown",
    "silver", "gold",
];
pub const HABITATS: &[&str] = &[
    "marsh",
    "forest",
    "desert",
    "mountains",
    "meadow",
    "caves",
    "coast",
    "tundra",
];
pub const DIETS: &[&str] = &[
    "berries",
    "insects",
    "fish",
    "seeds",
    "roots",
    "grass",
    "mushrooms",
    "worms",
];
pub const LEGS: &[u32] = &[0, 2, 4, 6, 8];
pub const PRODUCT_KINDS: &[&str] = &[
    "kettle", "lantern", "boots", "loom", "clock", "flute", "saddle", "cart", "basket", "compass",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Town {
    pub name: String,
    pub split: Split,
    pub river: String,
    pub population: u32,
    pub founded: u32,
    pub region: String,
    /// The two towns beside this one on the ring road (sorted by name).
    pub neighbours: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Full name, "First Last".
    pub name: String,
    pub split: Split,
    /// Town name.
    pub home: String,
    pub profession: String,
    pub age: u32,
    pub colour: String,
    /// Creature name.
    pub pet: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Creature {
    /// Lowercase common noun, e.g. "vorrick".
    pub name: String,
    pub split: Split,
    pub habitat: String,
    pub diet: String,
    pub legs: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// E.g. "Quilla kettle".
    pub name: String,
    pub split: Split,
    /// Person name.
    pub maker: String,
    /// Price in coins.
    pub price: u32,
    pub colour: String,
}

/// All entities of one world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entities {
    pub regions: Vec<String>,
    pub rivers: Vec<String>,
    pub towns: Vec<Town>,
    pub people: Vec<Person>,
    pub creatures: Vec<Creature>,
    pub products: Vec<Product>,
}

impl Entities {
    pub fn town(&self, name: &str) -> Option<&Town> {
        self.towns.iter().find(|t| t.name == name)
    }
    pub fn person(&self, name: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.name == name)
    }
    pub fn creature(&self, name: &str) -> Option<&Creature> {
        self.creatures.iter().find(|c| c.name == name)
    }
    pub fn product(&self, name: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.name == name)
    }
    /// Names of every partitioned entity (towns, people, creatures, products) with its split.
    pub fn named(&self) -> Vec<(&str, Split)> {
        let mut v: Vec<(&str, Split)> = Vec::new();
        v.extend(self.towns.iter().map(|e| (e.name.as_str(), e.split)));
        v.extend(self.people.iter().map(|e| (e.name.as_str(), e.split)));
        v.extend(self.creatures.iter().map(|e| (e.name.as_str(), e.split)));
        v.extend(self.products.iter().map(|e| (e.name.as_str(), e.split)));
        v
    }
}

fn pick<'a>(rng: &mut KeelRng, xs: &[&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

/// Generate the entity table. Uses its own rng stream so task sizes never change entities.
pub fn generate_entities(cfg: &WorldConfig, seed: u64, names: &mut NameGen) -> Entities {
    let mut rng = rng_for(seed, "world/entities");
    let regions: Vec<String> = (0..cfg.regions)
        .map(|_| names.proper(&mut rng, 2))
        .collect();
    let rivers: Vec<String> = (0..cfg.rivers).map(|_| names.proper(&mut rng, 2)).collect();

    let town_names: Vec<String> = (0..cfg.towns).map(|_| names.proper(&mut rng, 2)).collect();
    // Towns sit on a ring road in a random order; each borders the two beside it.
    let mut ring: Vec<usize> = (0..cfg.towns).collect();
    ring.shuffle(&mut rng);
    let mut neighbours = vec![Vec::new(); cfg.towns];
    for (k, &t) in ring.iter().enumerate() {
        let prev = ring[(k + cfg.towns - 1) % cfg.towns];
        let next = ring[(k + 1) % cfg.towns];
        let mut ns = vec![town_names[prev].clone(), town_names[next].clone()];
        ns.sort();
        neighbours[t] = ns;
    }
    let town_splits = assign_splits(cfg.towns, cfg, &mut rng);
    let towns = (0..cfg.towns)
        .map(|i| Town {
            name: town_names[i].clone(),
            split: town_splits[i],
            // Every river gets towns first (round robin), so none is orphaned.
            river: rivers[i % rivers.len()].clone(),
            population: rng.random_range(20..5000) * 10,
            founded: rng.random_range(800..1900),
            region: regions[rng.random_range(0..regions.len())].clone(),
            neighbours: std::mem::take(&mut neighbours[i]),
        })
        .collect::<Vec<_>>();

    let creature_splits = assign_splits(cfg.creatures, cfg, &mut rng);
    let creatures: Vec<Creature> = (0..cfg.creatures)
        .map(|i| Creature {
            name: names.word(&mut rng, 2),
            split: creature_splits[i],
            habitat: pick(&mut rng, HABITATS).to_string(),
            diet: pick(&mut rng, DIETS).to_string(),
            legs: LEGS[rng.random_range(0..LEGS.len())],
        })
        .collect();

    // Small first/last name pools so people share first or last names, as real people do;
    // the full name is still unique.
    let firsts: Vec<String> = (0..(cfg.people / 3).max(4))
        .map(|_| names.proper(&mut rng, 2))
        .collect();
    let lasts: Vec<String> = (0..(cfg.people / 3).max(4))
        .map(|_| names.proper(&mut rng, 2))
        .collect();
    let mut full = std::collections::BTreeSet::new();
    let person_splits = assign_splits(cfg.people, cfg, &mut rng);
    let people: Vec<Person> = (0..cfg.people)
        .map(|i| {
            let name = loop {
                let n = format!(
                    "{} {}",
                    firsts[rng.random_range(0..firsts.len())],
                    lasts[rng.random_range(0..lasts.len())]
                );
                if full.insert(n.clone()) {
                    break n;
                }
            };
            Person {
                name,
                split: person_splits[i],
                home: towns[rng.random_range(0..towns.len())].name.clone(),
                profession: pick(&mut rng, PROFESSIONS).to_string(),
                age: rng.random_range(18..91),
                colour: pick(&mut rng, COLOURS).to_string(),
                pet: creatures[rng.random_range(0..creatures.len())].name.clone(),
            }
        })
        .collect();

    let product_splits = assign_splits(cfg.products, cfg, &mut rng);
    let products = (0..cfg.products)
        .map(|i| Product {
            name: format!(
                "{} {}",
                names.proper(&mut rng, 2),
                pick(&mut rng, PRODUCT_KINDS)
            ),
            split: product_splits[i],
            maker: people[rng.random_range(0..people.len())].name.clone(),
            price: rng.random_range(3..200),
            colour: pick(&mut rng, COLOURS).to_string(),
        })
        .collect();

    Entities {
        regions,
        rivers,
        towns,
        people,
        creatures,
        products,
    }
}
