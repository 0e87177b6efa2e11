//! The instruction bank: fact QA, multi-hop QA, arithmetic, lists, format and summaries.
//! Every gold answer is read off the entity table.

use super::bank::{fill, Bank};
use super::entities::{Entities, HABITATS};
use super::facts::{all_facts, render, FactKind};
use super::rows::{Category, Gold, TaskRow};
use super::splits::{scaled, Split};
use super::WorldConfig;
use keel_core::rng::KeelRng;
use rand::seq::IndexedRandom;
use rand::Rng;

const MH_HOME_RIVER: &[&str] = &[
    "What river flows through the home town of {s}?",
    "Which river runs through the town where {s} lives?",
    "Which river runs through the town of {s}?",
    "Tell me the river of the town where {s} lives.",
    "What river is in the home town of {s}?",
    "{s} lives in a town on which river?",
];
const MH_HOME_REGION: &[&str] = &[
    "In which region does {s} live?",
    "What region is the home town of {s} in?",
    "What region is {s} from?",
    "Tell me the region where {s} lives.",
    "Which region is the home of {s} in?",
    "The town that is home to {s} lies in which region?",
];
const MH_PET_HABITAT: &[&str] = &[
    "Where does the pet of {s} live in the wild?",
    "What is the habitat of the creature {s} keeps as a pet?",
    "In the wild, where does the pet of {s} live?",
    "Tell me the habitat of the pet of {s}.",
    "Where would the pet of {s} live in nature?",
    "In the wild, where would you find the kind of animal {s} keeps?",
];
const MH_MAKER_HOME: &[&str] = &[
    "In which town does the maker of the {s} live?",
    "Where does the person who makes the {s} live?",
    "Where does the maker of the {s} live?",
    "Tell me the home town of the person who makes the {s}.",
    "Which town is the maker of the {s} from?",
    "The {s} is made in which town?",
];
const AR_AGE_DIFF: &[&str] = &[
    "How much older is {a} than {b}?",
    "By how many years is {a} older than {b}?",
    "How many years older is {a} than {b}?",
    "Tell me how much older {a} is than {b}.",
    "What is the difference in age between {a} and {b}?",
    "How many years apart in age are {a} and {b}?",
];
const AR_AGE_SUM: &[&str] = &[
    "What is the combined age of {a} and {b}?",
    "If you add the ages of {a} and {b}, what do you get?",
    "What do the ages of {a} and {b} add up to?",
    "Tell me the sum of the ages of {a} and {b}.",
    "How old are {a} and {b} together?",
    "Together, how many years old are {a} and {b}?",
];
const AR_PRICE_SUM: &[&str] = &[
    "How much do the {a} and the {b} cost together?",
    "What is the total price of the {a} and the {b}?",
    "What do the {a} and the {b} cost in total?",
    "Tell me the total cost of the {a} and the {b}.",
    "How many coins for the {a} and the {b} together?",
    "If I buy the {a} and the {b}, how many coins do I pay?",
];
const AR_LEGS_SUM: &[&str] = &[
    "How many legs do the {a} and the {b} have together?",
    "What is the total number of legs of a {a} and a {b}?",
    "How many legs do a {a} and a {b} have in total?",
    "Tell me the total legs of a {a} and a {b}.",
    "Together, how many legs have the {a} and the {b}?",
    "Add up the legs of one {a} and one {b}: how many are there?",
];
const AR_ADD: &[&str] = &[
    "What is {a} plus {b}?",
    "Add {a} and {b}.",
    "What is the sum of {a} and {b}?",
    "Tell me {a} plus {b}.",
    "What do you get if you add {a} and {b}?",
    "How much is {a} + {b}?",
];
const AR_SUB: &[&str] = &[
    "What is {a} minus {b}?",
    "Subtract {b} from {a}.",
    "What is {a} take away {b}?",
    "Tell me {a} minus {b}.",
    "What is left if you take {b} from {a}?",
    "How much is {a} - {b}?",
];
const LI_RESIDENTS: &[&str] = &[
    "Which people live in {s}? Answer with a comma-separated list.",
    "List everyone who lives in {s}, separated by commas.",
    "Who lives in {s}? List them, separated by commas.",
    "Tell me all the people of {s}, comma-separated.",
    "Name the people who live in {s}, separated by commas.",
    "Which people does the town of {s} have? Separate them with commas.",
];
const LI_PRODUCTS: &[&str] = &[
    "List the products made by {s}, comma-separated.",
    "Which products does {s} make? Separate them with commas.",
    "What does {s} make? Answer with a comma-separated list.",
    "Tell me the products of {s}, separated by commas.",
    "Which things are made by {s}? List them with commas.",
    "Name everything {s} makes, as a comma-separated list.",
];
const LI_HABITAT: &[&str] = &[
    "List the creatures that live in the {s}, comma-separated.",
    "Which creatures live in the {s}? Give a comma-separated list.",
    "What creatures live in the {s}? List them with commas.",
    "Tell me the animals of the {s}, comma-separated.",
    "Which creatures make their home in the {s}? Separate them with commas.",
    "Name every creature whose habitat is the {s}, separated by commas.",
];
const FM_CAPS: &[&str] = &[
    "Answer in capital letters only: where does {s} live?",
    "Where does {s} live? Reply in upper case.",
    "Where does {s} live? Use capital letters only.",
    "In capital letters, tell me where {s} lives.",
    "Write the home town of {s} in upper case.",
    "Using only capital letters, name the home town of {s}.",
];
const FM_NUMBER: &[&str] = &[
    "Reply with only a number: how old is {s}?",
    "How old is {s}? Answer with just the number.",
    "How old is {s}? Reply with a number only.",
    "Just the number, please: what is the age of {s}?",
    "Tell me the age of {s} as a number and nothing else.",
    "Give the age of {s} as a number with no other words.",
];
const FM_JSON: &[&str] = &[
    "Give the home town and age of {s} as JSON with keys \"town\" and \"age\".",
    "Return a JSON object with keys \"town\" and \"age\" describing {s}.",
    "Answer in JSON with keys \"town\" and \"age\": where does {s} live and how old is {s}?",
    "Write JSON for {s} with the keys \"town\" and \"age\".",
    "Tell me the town and age of {s} as a JSON object with keys \"town\" and \"age\".",
    "Describe {s} in JSON, using the keys \"town\" and \"age\".",
];
const SU_PERSON: &[&str] = &[
    "Summarise what is known about {s} in one sentence.",
    "Write one sentence describing {s}.",
    "Tell me about {s} in one sentence.",
    "Describe {s} in a single sentence.",
    "Who is {s}? Answer in one sentence.",
    "In a single sentence, tell me who {s} is.",
];

/// Every template of this module (their words are reserved from invented names).
pub(super) const TEXTS: &[&[&str]] = &[
    MH_HOME_RIVER,
    MH_HOME_REGION,
    MH_PET_HABITAT,
    MH_MAKER_HOME,
    AR_AGE_DIFF,
    AR_AGE_SUM,
    AR_PRICE_SUM,
    AR_LEGS_SUM,
    AR_ADD,
    AR_SUB,
    LI_RESIDENTS,
    LI_PRODUCTS,
    LI_HABITAT,
    FM_CAPS,
    FM_NUMBER,
    FM_JSON,
    SU_PERSON,
];

fn s(x: &str) -> String {
    x.to_string()
}

pub fn instructions(
    cfg: &WorldConfig,
    e: &Entities,
    split: Split,
    rng: &mut KeelRng,
) -> Vec<TaskRow> {
    let mut b = Bank::new(split, "instructions");
    fact_qa(cfg, e, &mut b, rng);
    multi_hop(e, &mut b, rng);
    arithmetic(cfg, e, &mut b, rng);
    lists(e, &mut b, rng);
    format_and_summary(e, &mut b, rng);
    b.rows
}

fn fact_qa(cfg: &WorldConfig, e: &Entities, b: &mut Bank, rng: &mut KeelRng) {
    let split = b.split;
    for f in all_facts(e).into_iter().filter(|f| f.split == split) {
        let text = f.kind.text();
        let family = format!("fact_qa/{}", f.kind.slug());
        for t in b.pick_n(&family, text.qa, cfg.questions_per_fact, rng) {
            let gold = match &f.list {
                Some(l) => Gold::List(l.clone()),
                None => Gold::Text(f.value.clone()),
            };
            let completion = render(text.corpus[0], &f.subject, &f.value);
            b.push(
                render(t.text, &f.subject, ""),
                completion,
                Category::FactQa,
                gold,
                t.id,
                vec![f.subject.clone()],
            );
        }
    }
}

fn multi_hop(e: &Entities, b: &mut Bank, rng: &mut KeelRng) {
    let split = b.split;
    for p in e.people.iter().filter(|p| p.split == split) {
        let town = e.town(&p.home).expect("home exists");
        let pet = e.creature(&p.pet).expect("pet exists");
        let hops = [
            (
                "multi_hop/home_river",
                MH_HOME_RIVER,
                format!(
                    "{} lives in {}, which lies on the river {}.",
                    p.name, town.name, town.river
                ),
                &town.river,
            ),
            (
                "multi_hop/home_region",
                MH_HOME_REGION,
                format!(
                    "{} lives in {}, which is in the region of {}.",
                    p.name, town.name, town.region
                ),
                &town.region,
            ),
            (
                "multi_hop/pet_habitat",
                MH_PET_HABITAT,
                format!(
                    "{} keeps a pet {}, and the {} lives in the {}.",
                    p.name, pet.name, pet.name, pet.habitat
                ),
                &pet.habitat,
            ),
        ];
        for (fam, family, completion, gold) in hops {
            let t = b.pick(fam, family, rng);
            b.push(
                render(t.text, &p.name, ""),
                completion,
                Category::MultiHop,
                Gold::text(gold),
                t.id,
                vec![p.name.clone()],
            );
        }
    }
    for pr in e.products.iter().filter(|p| p.split == split) {
        let maker = e.person(&pr.maker).expect("maker exists");
        let t = b.pick("multi_hop/maker_home", MH_MAKER_HOME, rng);
        let completion = format!(
            "The {} is made by {}, who lives in {}.",
            pr.name, maker.name, maker.home
        );
        b.push(
            render(t.text, &pr.name, ""),
            completion,
            Category::MultiHop,
            Gold::text(&maker.home),
            t.id,
            vec![pr.name.clone()],
        );
    }
}

/// Two distinct items of `xs` (None if fewer than two).
fn two<'a, T>(xs: &[&'a T], rng: &mut KeelRng) -> Option<(&'a T, &'a T)> {
    if xs.len() < 2 {
        return None;
    }
    let i = rng.random_range(0..xs.len());
    let j = (i + rng.random_range(1..xs.len())) % xs.len();
    Some((xs[i], xs[j]))
}

fn arithmetic(cfg: &WorldConfig, e: &Entities, b: &mut Bank, rng: &mut KeelRng) {
    let split = b.split;
    let people: Vec<_> = e.people.iter().filter(|p| p.split == split).collect();
    let products: Vec<_> = e.products.iter().filter(|p| p.split == split).collect();
    let creatures: Vec<_> = e.creatures.iter().filter(|c| c.split == b.split).collect();
    for k in 0..scaled(cfg.arithmetic_questions, b.split, cfg) {
        match k % 6 {
            0 => {
                let Some((x, y)) = two(&people, rng) else {
                    continue;
                };
                if x.age == y.age {
                    continue;
                }
                let (o, yg) = if x.age > y.age { (x, y) } else { (y, x) };
                let t = b.pick("arithmetic/age_diff", AR_AGE_DIFF, rng);
                let d = (o.age - yg.age).to_string();
                let c = format!(
                    "{} is {} and {} is {}, so {} is {d} years older than {}.",
                    o.name, o.age, yg.name, yg.age, o.name, yg.name
                );
                b.push(
                    fill(t.text, &[("a", &o.name), ("b", &yg.name)]),
                    c,
                    Category::Arithmetic,
                    Gold::Text(d),
                    t.id,
                    vec![o.name.clone(), yg.name.clone()],
                );
            }
            1 => {
                let Some((x, y)) = two(&people, rng) else {
                    continue;
                };
                let t = b.pick("arithmetic/age_sum", AR_AGE_SUM, rng);
                let sum = (x.age + y.age).to_string();
                let c = format!(
                    "{} is {} and {} is {}, so together they are {sum} years old.",
                    x.name, x.age, y.name, y.age
                );
                b.push(
                    fill(t.text, &[("a", &x.name), ("b", &y.name)]),
                    c,
                    Category::Arithmetic,
                    Gold::Text(sum),
                    t.id,
                    vec![x.name.clone(), y.name.clone()],
                );
            }
            2 => {
                let Some((x, y)) = two(&products, rng) else {
                    continue;
                };
                let t = b.pick("arithmetic/price_sum", AR_PRICE_SUM, rng);
                let sum = (x.price + y.price).to_string();
                let c = format!("The {} costs {} coins and the {} costs {} coins, so together they cost {sum} coins.", x.name, x.price, y.name, y.price);
                b.push(
                    fill(t.text, &[("a", &x.name), ("b", &y.name)]),
                    c,
                    Category::Arithmetic,
                    Gold::Text(sum),
                    t.id,
                    vec![x.name.clone(), y.name.clone()],
                );
            }
            3 => {
                let Some((x, y)) = two(&creatures, rng) else {
                    continue;
                };
                let t = b.pick("arithmetic/legs_sum", AR_LEGS_SUM, rng);
                let sum = (x.legs + y.legs).to_string();
                let c = format!(
                    "The {} has {} legs and the {} has {} legs, so together they have {sum} legs.",
                    x.name, x.legs, y.name, y.legs
                );
                b.push(
                    fill(t.text, &[("a", &x.name), ("b", &y.name)]),
                    c,
                    Category::Arithmetic,
                    Gold::Text(sum),
                    t.id,
                    vec![x.name.clone(), y.name.clone()],
                );
            }
            op => {
                let (x, y) = (rng.random_range(0..100u32), rng.random_range(0..100u32));
                let (fam, family, word, z, (x, y)) = if op == 4 {
                    ("arithmetic/add", AR_ADD, "plus", x + y, (x, y))
                } else {
                    let (hi, lo) = (x.max(y), x.min(y));
                    ("arithmetic/sub", AR_SUB, "minus", hi - lo, (hi, lo))
                };
                let t = b.pick(fam, family, rng);
                let (xs, ys, zs) = (x.to_string(), y.to_string(), z.to_string());
                b.push(
                    fill(t.text, &[("a", &xs), ("b", &ys)]),
                    format!("{x} {word} {y} is {z}."),
                    Category::Arithmetic,
                    Gold::Text(zs),
                    t.id,
                    vec![],
                );
            }
        }
    }
}

fn list_row(
    b: &mut Bank,
    fam: &str,
    family: &[&'static str],
    subject: &str,
    items: Vec<String>,
    is_entity: bool,
    rng: &mut KeelRng,
) {
    let t = b.pick(fam, family, rng);
    let completion = items.join(", ");
    let subjects = if is_entity { vec![s(subject)] } else { vec![] };
    b.push(
        render(t.text, subject, ""),
        completion,
        Category::List,
        Gold::List(items),
        t.id,
        subjects,
    );
}

fn lists(e: &Entities, b: &mut Bank, rng: &mut KeelRng) {
    let split = b.split;
    for town in e.towns.iter().filter(|t| t.split == split) {
        let rs: Vec<String> = e
            .people
            .iter()
            .filter(|p| p.home == town.name)
            .map(|p| p.name.clone())
            .collect();
        if !rs.is_empty() {
            list_row(b, "list/residents", LI_RESIDENTS, &town.name, rs, true, rng);
        }
    }
    for p in e.people.iter().filter(|p| p.split == split) {
        let made: Vec<String> = e
            .products
            .iter()
            .filter(|x| x.maker == p.name)
            .map(|x| x.name.clone())
            .collect();
        if !made.is_empty() {
            list_row(b, "list/products", LI_PRODUCTS, &p.name, made, true, rng);
        }
    }
    // Habitats are not partitioned entities, so validation would only repeat train prompts.
    if b.split != Split::Validation {
        for h in HABITATS {
            let cs: Vec<String> = e
                .creatures
                .iter()
                .filter(|c| c.habitat == *h)
                .map(|c| c.name.clone())
                .collect();
            if !cs.is_empty() {
                list_row(b, "list/habitat", LI_HABITAT, h, cs, false, rng);
            }
        }
    }
}

fn format_and_summary(e: &Entities, b: &mut Bank, rng: &mut KeelRng) {
    let split = b.split;
    for p in e.people.iter().filter(|p| p.split == split) {
        let age = p.age.to_string();
        let (fam, family, answer) = match rng.random_range(0..3) {
            0 => ("format/caps", FM_CAPS, p.home.to_uppercase()),
            1 => ("format/number", FM_NUMBER, age.clone()),
            _ => (
                "format/json",
                FM_JSON,
                format!("{{\"town\": \"{}\", \"age\": {}}}", p.home, p.age),
            ),
        };
        let t = b.pick(fam, family, rng);
        b.push(
            render(t.text, &p.name, ""),
            answer.clone(),
            Category::Format,
            Gold::Text(answer),
            t.id,
            vec![p.name.clone()],
        );

        let t = b.pick("summary/person", SU_PERSON, rng);
        let completion = format!(
            "{} is a {age}-year-old {} from {} who keeps a pet {} and whose favourite colour is {}.",
            p.name, p.profession, p.home, p.pet, p.colour
        );
        let gold = Gold::List(vec![
            p.home.clone(),
            p.profession.clone(),
            age,
            p.pet.clone(),
            p.colour.clone(),
        ]);
        b.push(
            render(t.text, &p.name, ""),
            completion,
            Category::Summary,
            gold,
            t.id,
            vec![p.name.clone()],
        );
    }
}

/// Fact kinds used for QA questions whose answers the preference generator can perturb.
pub fn perturbable(kind: FactKind) -> bool {
    !matches!(kind, FactKind::TownNeighbours)
}

/// A plausible wrong value for a fact of `kind` (used for wrong-fact preferences and false
/// premises): drawn from the same attribute's values in the world, never the true one.
/// Entity-valued pools are restricted to `split` so a false premise never leaks an entity of
/// another split into a prompt.
pub fn wrong_value(
    e: &Entities,
    kind: FactKind,
    truth: &str,
    split: Split,
    rng: &mut KeelRng,
) -> String {
    use FactKind::*;
    let pool: Vec<String> = match kind {
        PersonHome => e
            .towns
            .iter()
            .filter(|t| t.split == split)
            .map(|t| t.name.clone())
            .collect(),
        PersonProfession => super::entities::PROFESSIONS.iter().map(|x| s(x)).collect(),
        PersonColour | ProductColour => super::entities::COLOURS.iter().map(|x| s(x)).collect(),
        PersonPet => e
            .creatures
            .iter()
            .filter(|c| c.split == split)
            .map(|c| c.name.clone())
            .collect(),
        TownRiver => e.rivers.clone(),
        TownRegion => e.regions.clone(),
        CreatureHabitat => HABITATS.iter().map(|x| s(x)).collect(),
        CreatureDiet => super::entities::DIETS.iter().map(|x| s(x)).collect(),
        CreatureLegs => super::entities::LEGS
            .iter()
            .map(|x| x.to_string())
            .collect(),
        ProductMaker => e
            .people
            .iter()
            .filter(|p| p.split == split)
            .map(|p| p.name.clone())
            .collect(),
        PersonAge | TownPopulation | TownFounded | ProductPrice => {
            let v: i64 = truth.parse().unwrap_or(0);
            let step = if kind == TownPopulation { 10 } else { 1 };
            let delta = rng.random_range(1..=12) * step * if rng.random_bool(0.5) { 1 } else { -1 };
            return (v + delta).max(1).to_string();
        }
        TownNeighbours => e
            .towns
            .iter()
            .filter(|t| t.split == split)
            .map(|t| t.name.clone())
            .collect(),
    };
    let others: Vec<&String> = pool.iter().filter(|x| x.as_str() != truth).collect();
    others
        .choose(rng)
        .map(|x| x.to_string())
        .unwrap_or_else(|| format!("not {truth}"))
}
