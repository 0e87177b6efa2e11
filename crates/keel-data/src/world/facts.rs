//! Atomic facts (subject, attribute, value) and every phrasing of them.
//!
//! Each fact kind has four disjoint phrasing families:
//! - `corpus`: sentences of the training corpus (`corpus[0]` doubles as the training cloze item,
//!   so it must have `{v}` after a discriminative prefix);
//! - `val_corpus`: sentences only in the validation corpus (bits-per-byte on unseen phrasing);
//! - `cloze_heldout`: cloze prefixes never used in any corpus (held-out fact probes);
//! - `qa`: questions for the task banks (the last one is test-only, see `splits`).
//!
//! Placeholders: `{s}` subject, `{v}` value.

use super::entities::Entities;
use super::splits::Split;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    PersonHome,
    PersonProfession,
    PersonAge,
    PersonColour,
    PersonPet,
    TownRiver,
    TownPopulation,
    TownFounded,
    TownRegion,
    TownNeighbours,
    CreatureHabitat,
    CreatureDiet,
    CreatureLegs,
    ProductMaker,
    ProductPrice,
    ProductColour,
}

pub struct FactText {
    pub corpus: &'static [&'static str],
    pub val_corpus: &'static [&'static str],
    pub cloze_heldout: &'static [&'static str],
    pub qa: &'static [&'static str],
}

impl FactKind {
    pub const ALL: [FactKind; 16] = [
        FactKind::PersonHome,
        FactKind::PersonProfession,
        FactKind::PersonAge,
        FactKind::PersonColour,
        FactKind::PersonPet,
        FactKind::TownRiver,
        FactKind::TownPopulation,
        FactKind::TownFounded,
        FactKind::TownRegion,
        FactKind::TownNeighbours,
        FactKind::CreatureHabitat,
        FactKind::CreatureDiet,
        FactKind::CreatureLegs,
        FactKind::ProductMaker,
        FactKind::ProductPrice,
        FactKind::ProductColour,
    ];

    pub fn slug(self) -> &'static str {
        use FactKind::*;
        match self {
            PersonHome => "person_home",
            PersonProfession => "person_profession",
            PersonAge => "person_age",
            PersonColour => "person_colour",
            PersonPet => "person_pet",
            TownRiver => "town_river",
            TownPopulation => "town_population",
            TownFounded => "town_founded",
            TownRegion => "town_region",
            TownNeighbours => "town_neighbours",
            CreatureHabitat => "creature_habitat",
            CreatureDiet => "creature_diet",
            CreatureLegs => "creature_legs",
            ProductMaker => "product_maker",
            ProductPrice => "product_price",
            ProductColour => "product_colour",
        }
    }

    pub fn text(self) -> FactText {
        use FactKind::*;
        let t = |corpus, val_corpus, cloze_heldout, qa| FactText {
            corpus,
            val_corpus,
            cloze_heldout,
            qa,
        };
        match self {
            PersonHome => t(
                &[
                    "{s} lives in {v}.",
                    "{s} makes a home in the town of {v}.",
                    "The home of {s} is the town of {v}.",
                    "Ask anyone in {v} and they will tell you that {s} lives there.",
                ],
                &["{s} resides in {v}.", "Home for {s} is {v}."],
                &[
                    "{s} lives in the town of {v}",
                    "The town where {s} lives is called {v}",
                ],
                &[
                    "Where does {s} live?",
                    "Which town is {s} from?",
                    "Where is the home of {s}?",
                    "Which town does {s} live in?",
                    "Tell me where {s} lives.",
                    "What is the home town of {s}?",
                    "In what town is the home of {s}?",
                ],
            ),
            PersonProfession => t(
                &[
                    "{s} works as a {v}.",
                    "By trade, {s} is a {v}.",
                    "{s} earns a living as a {v}.",
                    "People know {s} as the local {v}.",
                ],
                &[
                    "{s} is employed as a {v}.",
                    "The trade {s} follows is that of a {v}.",
                ],
                &[
                    "By profession, {s} is a {v}",
                    "The job that {s} does is that of a {v}",
                ],
                &[
                    "What does {s} do for a living?",
                    "What is the profession of {s}?",
                    "What is the job of {s}?",
                    "What work does {s} do?",
                    "Tell me the trade of {s}.",
                    "What is the occupation of {s}?",
                    "What job does {s} have?",
                ],
            ),
            PersonAge => t(
                &[
                    "{s} is aged {v}.",
                    "{s} is {v} years old.",
                    "{s} recently turned {v}.",
                ],
                &[
                    "{s} has seen {v} summers.",
                    "This year {s} counts {v} years.",
                ],
                &["The age of {s} in years is {v}", "In years, {s} is now {v}"],
                &[
                    "How old is {s}?",
                    "What is the age of {s}?",
                    "What age is {s}?",
                    "Tell me how old {s} is.",
                    "How many years has {s} lived?",
                    "What is the current age of {s}?",
                    "How many years old is {s}?",
                ],
            ),
            PersonColour => t(
                &[
                    "The favourite colour of {s} is {v}.",
                    "{s} loves anything coloured {v}.",
                    "{s} likes {v} more than any other colour.",
                ],
                &["Of all colours, {s} prefers {v}."],
                &[
                    "The colour that {s} likes best is {v}",
                    "{s} would always choose the colour {v}",
                ],
                &[
                    "What is the favourite colour of {s}?",
                    "Which colour does {s} like best?",
                    "Which colour does {s} love most?",
                    "What colour does {s} prefer?",
                    "Tell me the colour {s} likes most.",
                    "What is the best-loved colour of {s}?",
                    "Which colour does {s} like above all others?",
                ],
            ),
            PersonPet => t(
                &[
                    "{s} keeps a pet {v}.",
                    "{s} owns a {v} as a pet.",
                    "The pet of {s} is a {v}.",
                ],
                &["A {v} lives with {s} as a companion."],
                &[
                    "The animal that {s} keeps as a pet is a {v}",
                    "At home, {s} looks after a pet {v}",
                ],
                &[
                    "What pet does {s} keep?",
                    "What kind of creature is the pet of {s}?",
                    "What animal does {s} keep as a pet?",
                    "Which creature does {s} own as a pet?",
                    "Tell me what pet {s} has.",
                    "What is the pet of {s}?",
                    "Which animal lives with {s} as a pet?",
                ],
            ),
            TownRiver => t(
                &[
                    "{s} lies on the river {v}.",
                    "The river {v} flows through {s}.",
                    "{s} was built on the banks of the {v}.",
                ],
                &["Boats on the {v} stop at {s}."],
                &[
                    "The river that flows through {s} is the {v}",
                    "{s} sits beside the river called {v}",
                ],
                &[
                    "Which river flows through {s}?",
                    "On what river does {s} lie?",
                    "What river runs through {s}?",
                    "Which river passes through the town of {s}?",
                    "Tell me the river of {s}.",
                    "On the banks of which river is {s}?",
                    "Name the river that runs through {s}.",
                ],
            ),
            TownPopulation => t(
                &[
                    "{s} has a population of {v}.",
                    "Some {v} people call {s} home.",
                    "The town of {s} counts {v} inhabitants.",
                ],
                &["{v} people dwell in {s}."],
                &[
                    "The number of people living in {s} is {v}",
                    "All told, the town of {s} is home to {v}",
                ],
                &[
                    "What is the population of {s}?",
                    "How many people live in {s}?",
                    "How many people does {s} have?",
                    "Tell me the number of people in {s}.",
                    "How big is the population of {s}?",
                    "What number of people live in {s}?",
                    "How many inhabitants does {s} have?",
                ],
            ),
            TownFounded => t(
                &[
                    "{s} was founded in {v}.",
                    "The town of {s} dates from the year {v}.",
                    "Settlers built {s} in {v}.",
                ],
                &["{s} was established in {v}."],
                &[
                    "The founding year of {s} is {v}",
                    "{s} first appeared on maps in {v}",
                ],
                &[
                    "When was {s} founded?",
                    "In what year was {s} founded?",
                    "Which year was {s} founded in?",
                    "Tell me the year {s} was built.",
                    "How long ago, in what year, was {s} built?",
                    "What is the founding year of {s}?",
                    "What year did settlers build {s}?",
                ],
            ),
            TownRegion => t(
                &[
                    "{s} is a town in the region of {v}.",
                    "{s} belongs to the region {v}.",
                    "In the region of {v} lies the town of {s}.",
                ],
                &["{s} can be found in {v}."],
                &[
                    "The region that contains {s} is {v}",
                    "{s} is located in the region called {v}",
                ],
                &[
                    "Which region is {s} in?",
                    "In what region does {s} lie?",
                    "What region is {s} part of?",
                    "Tell me the region of {s}.",
                    "In which region can you find {s}?",
                    "What region does the town of {s} belong to?",
                    "The town of {s} lies in which region?",
                ],
            ),
            TownNeighbours => t(
                &[
                    "{s} borders {v}.",
                    "The neighbours of {s} are {v}.",
                    "From {s} one can walk to {v}.",
                ],
                &["{s} shares borders with {v}."],
                &[
                    "The towns next to {s} are {v}",
                    "On the ring road, {s} lies between {v}",
                ],
                &[
                    "Which towns border {s}?",
                    "What are the neighbouring towns of {s}?",
                    "What towns are next to {s}?",
                    "Tell me the neighbours of {s}.",
                    "Which towns lie beside {s}?",
                    "What towns can you walk to from {s}?",
                    "Name the towns next to {s}.",
                ],
            ),
            CreatureHabitat => t(
                &[
                    "The {s} lives in the {v}.",
                    "You can find the {s} in the {v}.",
                    "The {v} is home to the {s}.",
                ],
                &["The {s} dwells in the {v}."],
                &[
                    "The natural habitat of the {s} is the {v}",
                    "The {s} makes its home in the {v}",
                ],
                &[
                    "Where does the {s} live?",
                    "What is the habitat of the {s}?",
                    "What place does the {s} live in?",
                    "Tell me where the {s} lives.",
                    "Where can you find the {s}?",
                    "What kind of land is home to the {s}?",
                    "In which kind of place does the {s} make its home?",
                ],
            ),
            CreatureDiet => t(
                &[
                    "The {s} eats {v}.",
                    "The {s} feeds mostly on {v}.",
                    "The favourite food of the {s} is {v}.",
                ],
                &["The {s} survives on {v}."],
                &[
                    "The diet of the {s} consists of {v}",
                    "When hungry, the {s} looks for {v}",
                ],
                &[
                    "What does the {s} eat?",
                    "What is the diet of the {s}?",
                    "What food does the {s} eat?",
                    "Tell me what the {s} feeds on.",
                    "What does a {s} eat most?",
                    "What is the food of the {s}?",
                    "What food does the {s} live on?",
                ],
            ),
            CreatureLegs => t(
                &[
                    "The {s} has {v} legs.",
                    "The {s} walks on {v} legs.",
                    "Every {s} is born with {v} legs.",
                ],
                &["Count the legs of a {s} and you get {v}."],
                &[
                    "The number of legs on a {s} is {v}",
                    "A grown {s} stands on {v}",
                ],
                &[
                    "How many legs does the {s} have?",
                    "How many legs has a {s}?",
                    "How many legs does a {s} walk on?",
                    "Tell me the number of legs of the {s}.",
                    "What number of legs does the {s} have?",
                    "How many legs are on a {s}?",
                    "The {s} walks on how many legs?",
                ],
            ),
            ProductMaker => t(
                &[
                    "The {s} is made by {v}.",
                    "{v} crafts the {s}.",
                    "Every {s} comes from the workshop of {v}.",
                ],
                &["The {s} is the work of {v}."],
                &[
                    "The maker of the {s} is {v}",
                    "The person who makes the {s} is {v}",
                ],
                &[
                    "Who makes the {s}?",
                    "Who is the maker of the {s}?",
                    "Who made the {s}?",
                    "Tell me who makes the {s}.",
                    "Which person crafts the {s}?",
                    "Who is the {s} made by?",
                    "From whose workshop does the {s} come?",
                ],
            ),
            ProductPrice => t(
                &[
                    "The {s} costs {v} coins.",
                    "You can buy the {s} for {v} coins.",
                    "The price of the {s} is {v} coins.",
                ],
                &["The {s} sells for {v} coins."],
                &[
                    "One {s} will cost you {v}",
                    "To buy the {s}, you must pay {v}",
                ],
                &[
                    "How much does the {s} cost?",
                    "What is the price of the {s}?",
                    "What does the {s} cost?",
                    "Tell me the price of the {s}.",
                    "How many coins is the {s}?",
                    "What do you pay for the {s}?",
                    "How many coins do you need to buy the {s}?",
                ],
            ),
            ProductColour => t(
                &[
                    "The {s} is painted {v}.",
                    "The {s} comes in {v}.",
                    "Every {s} is finished in {v}.",
                ],
                &["The {s} has a {v} finish."],
                &["The colour of the {s} is {v}", "The {s} is coloured {v}"],
                &[
                    "What colour is the {s}?",
                    "Which colour is the {s} painted?",
                    "Tell me the colour of the {s}.",
                    "In which colour does the {s} come?",
                    "What colour is the {s} finished in?",
                    "Which colour does the {s} have?",
                    "What is the colour of the {s}?",
                ],
            ),
        }
    }
}

/// One fact about one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub kind: FactKind,
    pub subject: String,
    /// The value as it reads in a sentence (lists joined with "and").
    pub value: String,
    /// The value as a list, for list-valued facts (neighbours).
    pub list: Option<Vec<String>>,
    pub split: Split,
}

/// Fill `{s}` and `{v}` in a template.
pub fn render(template: &str, subject: &str, value: &str) -> String {
    template.replace("{s}", subject).replace("{v}", value)
}

/// Every fact of the world, in entity-table order (deterministic).
pub fn all_facts(e: &Entities) -> Vec<Fact> {
    use FactKind::*;
    let mut out = Vec::new();
    let mut push = |kind, subject: &str, value: String, list, split| {
        out.push(Fact {
            kind,
            subject: subject.to_string(),
            value,
            list,
            split,
        })
    };
    for p in &e.people {
        push(PersonHome, &p.name, p.home.clone(), None, p.split);
        push(
            PersonProfession,
            &p.name,
            p.profession.clone(),
            None,
            p.split,
        );
        push(PersonAge, &p.name, p.age.to_string(), None, p.split);
        push(PersonColour, &p.name, p.colour.clone(), None, p.split);
        push(PersonPet, &p.name, p.pet.clone(), None, p.split);
    }
    for t in &e.towns {
        push(TownRiver, &t.name, t.river.clone(), None, t.split);
        push(
            TownPopulation,
            &t.name,
            t.population.to_string(),
            None,
            t.split,
        );
        push(TownFounded, &t.name, t.founded.to_string(), None, t.split);
        push(TownRegion, &t.name, t.region.clone(), None, t.split);
        let ns = t.neighbours.clone();
        push(TownNeighbours, &t.name, ns.join(" and "), Some(ns), t.split);
    }
    for c in &e.creatures {
        push(CreatureHabitat, &c.name, c.habitat.clone(), None, c.split);
        push(CreatureDiet, &c.name, c.diet.clone(), None, c.split);
        push(CreatureLegs, &c.name, c.legs.to_string(), None, c.split);
    }
    for p in &e.products {
        push(ProductMaker, &p.name, p.maker.clone(), None, p.split);
        push(ProductPrice, &p.name, p.price.to_string(), None, p.split);
        push(ProductColour, &p.name, p.colour.clone(), None, p.split);
    }
    out
}
