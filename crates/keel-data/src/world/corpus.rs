//! The pretraining corpus: encyclopedia articles, short stories, list pages and arithmetic
//! text, as `{"text": ...}` documents.
//!
//! Facts are stated with several templates in shuffled order so a model has to learn the fact,
//! not one sentence shape. Two held-out corpora measure the model:
//! - `validation`: fresh documents drawn from the *training* distribution (same templates, new
//!   draws and orderings), never trained on. Its bits-per-byte is the usual pretraining
//!   validation loss: it falls while the model learns and rises when it starts to memorise.
//! - `heldout_phrasing`: the same facts in phrasings and story shapes that never occur in
//!   training. A generalisation probe, not a validation loss: a small model assigns
//!   never-seen words almost no probability, so this can stay above an untrained model's
//!   bits-per-byte even while the facts are being learned.

use super::entities::{Entities, HABITATS};
use super::facts::{all_facts, render, Fact};
use super::WorldConfig;
use keel_core::rng::{rng_for, KeelRng};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One pretraining document (Hugging Face / TRL `{"text"}` format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusDoc {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Corpus {
    pub train: Vec<CorpusDoc>,
    /// In-distribution held-out documents (see the module docs).
    pub validation: Vec<CorpusDoc>,
    /// The same facts in phrasings training never uses (see the module docs).
    pub heldout_phrasing: Vec<CorpusDoc>,
}

// Slots: {p} person, {town}, {river}, {region}, {pet}, {prof}, {age}, {colour}, {n1} a
// neighbouring town. Stories only restate true facts.
const STORIES: &[&str] = &[
    "{p} woke early in {town}. Work as a {prof} could wait a little, because the pet {pet} was hungry. After breakfast, {p} walked along the river {river} and bought a scarf in {colour}, the favourite colour of {p}.",
    "Travellers who pass through {town} in the region of {region} often meet {p}, a {prof} of {age} years. {p} is easy to recognise: a {pet} always follows close behind.",
    "Market day in {town}. {p}, the {prof}, set up a stall by the {river}. Children asked about the {pet} sleeping under the table, and {p} laughed: \"Yes, that {pet} is mine.\" At {age}, {p} had seen many market days.",
    "Letter from {town}.\nDear cousin, I am {age} now and still work as a {prof}. The {river} is high this spring. My {pet} sends its greetings. Everything in my room is {colour}, as you would expect.\nYours, {p}",
    "When the festival came to {town}, {p} painted the front door {colour}. Friends walked over from {n1} to see it. The {pet} that {p} keeps hid under the bed all night.",
];
const VAL_STORIES: &[&str] = &[
    "In {town} there lives a {prof} named {p}. Aged {age}, {p} strolls each evening beside the {river}, a {pet} at heel.",
    "Diary of {p}, {prof}, of {town}: the {pet} chewed my {colour} hat again today. The {river} froze over.",
];

const ARITH: &[&str] = &[
    "{a} plus {b} is {c}.",
    "{a} + {b} = {c}",
    "The sum of {a} and {b} is {c}.",
    "If you add {a} and {b}, you get {c}.",
    "{c} minus {b} is {a}.",
    "{c} - {a} = {b}",
    "The difference between {c} and {a} is {b}.",
    "Take {b} away from {c} and {a} remains.",
];
const VAL_ARITH: &[&str] = &[
    "Adding {a} to {b} gives {c}.",
    "Subtracting {b} from {c} leaves {a}.",
];

/// Every template of this module (their words are reserved from invented names).
pub(super) const TEXTS: &[&[&str]] = &[STORIES, VAL_STORIES, ARITH, VAL_ARITH];

fn fill(t: &str, slots: &[(&str, &str)]) -> String {
    let mut s = t.to_string();
    for (k, v) in slots {
        s = s.replace(k, v);
    }
    s
}

/// An article about one entity: title, then its facts in random order and random phrasing.
/// With `canonical`, every fact uses its first template (the training cloze phrasing, which
/// must therefore occur in the corpus); otherwise templates are drawn at random.
fn article(
    title: &str,
    facts: &[&Fact],
    templates: fn(&Fact) -> &'static [&'static str],
    extra: &[String],
    canonical: bool,
    rng: &mut KeelRng,
) -> String {
    let mut sentences: Vec<String> = facts
        .iter()
        .map(|f| {
            let t = if canonical {
                templates(f)[0]
            } else {
                templates(f).choose(rng).expect("non-empty")
            };
            render(t, &f.subject, &f.value)
        })
        .chain(extra.iter().cloned())
        .collect();
    sentences.shuffle(rng);
    format!("{title}\n\n{}", sentences.join(" "))
}

fn story(t: &str, e: &Entities, pi: usize) -> String {
    let p = &e.people[pi];
    let town = e.town(&p.home).expect("home is a town");
    let age = p.age.to_string();
    fill(
        t,
        &[
            ("{p}", &p.name),
            ("{town}", &town.name),
            ("{river}", &town.river),
            ("{region}", &town.region),
            ("{pet}", &p.pet),
            ("{prof}", &p.profession),
            ("{age}", &age),
            ("{colour}", &p.colour),
            ("{n1}", &town.neighbours[0]),
        ],
    )
}

/// Lines of `a + b = c` style text; numbers cover the ranges attribute arithmetic needs.
fn arithmetic_doc(templates: &[&str], lines: usize, rng: &mut KeelRng) -> String {
    (0..lines)
        .map(|_| {
            let hi = if rng.random_bool(0.7) { 100 } else { 1000 };
            let (a, b) = (rng.random_range(0..hi), rng.random_range(0..hi));
            let (a, b, c) = (a.to_string(), b.to_string(), (a + b).to_string());
            let t = templates.choose(rng).expect("non-empty");
            fill(t, &[("{a}", &a), ("{b}", &b), ("{c}", &c)])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Comparison sentences between two people, so "how much older" questions have a worked form
/// in pretraining.
fn comparison_doc(e: &Entities, lines: usize, rng: &mut KeelRng) -> String {
    (0..lines)
        .map(|_| {
            let a = e.people.choose(rng).expect("people");
            let b = e.people.choose(rng).expect("people");
            let (old, young) = if a.age >= b.age { (a, b) } else { (b, a) };
            format!(
                "{} is {} and {} is {}, so {} is {} years older than {}.",
                old.name,
                old.age,
                young.name,
                young.age,
                old.name,
                old.age - young.age,
                young.name
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Per-entity relational sentences that list pages and list questions rely on.
fn residents(e: &Entities, town: &str) -> Vec<String> {
    e.people
        .iter()
        .filter(|p| p.home == town)
        .map(|p| p.name.clone())
        .collect()
}

fn join_and(xs: &[String]) -> String {
    match xs {
        [] => String::new(),
        [x] => x.clone(),
        _ => format!("{} and {}", xs[..xs.len() - 1].join(", "), xs[xs.len() - 1]),
    }
}

pub fn generate_corpus(cfg: &WorldConfig, seed: u64, e: &Entities) -> Corpus {
    let mut rng = rng_for(seed, "world/corpus");
    let facts = all_facts(e);
    let by_subject = |name: &str| {
        facts
            .iter()
            .filter(|f| f.subject == name)
            .collect::<Vec<_>>()
    };
    let subjects: Vec<String> = e.named().into_iter().map(|(n, _)| n.to_string()).collect();
    let (mut train, mut val) = (Vec::new(), Vec::new());
    // The in-distribution validation set has its own stream so the training documents do not
    // depend on how many validation documents are drawn.
    let mut vrng = rng_for(seed, "world/corpus-validation");
    let mut in_dist = Vec::new();

    for name in &subjects {
        let fs = by_subject(name);
        let mut extra = Vec::new();
        if e.town(name).is_some() {
            let rs = residents(e, name);
            if !rs.is_empty() {
                extra.push(format!("The people of {name} include {}.", join_and(&rs)));
            }
        }
        if e.person(name).is_some() {
            let made: Vec<String> = e
                .products
                .iter()
                .filter(|p| &p.maker == name)
                .map(|p| format!("the {}", p.name))
                .collect();
            if !made.is_empty() {
                extra.push(format!("{name} makes {}.", join_and(&made)));
            }
        }
        let title = if e.creature(name).is_some() || e.product(name).is_some() {
            format!("The {name}")
        } else {
            name.clone()
        };
        for k in 0..cfg.articles_per_entity.max(1) {
            train.push(article(
                &title,
                &fs,
                |f| f.kind.text().corpus,
                &extra,
                k == 0,
                &mut rng,
            ));
        }
        val.push(article(
            &title,
            &fs,
            |f| f.kind.text().val_corpus,
            &[],
            false,
            &mut rng,
        ));
        in_dist.push(article(
            &title,
            &fs,
            |f| f.kind.text().corpus,
            &extra,
            false,
            &mut vrng,
        ));
    }
    for pi in 0..e.people.len() {
        for _ in 0..cfg.stories_per_person {
            train.push(story(STORIES.choose(&mut rng).expect("stories"), e, pi));
        }
        if rng.random_bool(0.5) {
            val.push(story(VAL_STORIES.choose(&mut rng).expect("stories"), e, pi));
        }
        if vrng.random_bool(0.5) {
            in_dist.push(story(STORIES.choose(&mut vrng).expect("stories"), e, pi));
        }
    }
    for h in HABITATS {
        let cs: Vec<String> = e
            .creatures
            .iter()
            .filter(|c| c.habitat == *h)
            .map(|c| c.name.clone())
            .collect();
        if !cs.is_empty() {
            for _ in 0..cfg.articles_per_entity {
                let mut shuffled = cs.clone();
                shuffled.shuffle(&mut rng);
                train.push(format!(
                    "Creatures of the {h}\n\nThe creatures that live in the {h} are the {}.",
                    join_and(&shuffled)
                ));
            }
        }
    }
    for i in 0..cfg.arithmetic_docs {
        train.push(arithmetic_doc(ARITH, 20, &mut rng));
        if i % 10 == 0 {
            train.push(comparison_doc(e, 10, &mut rng));
            val.push(arithmetic_doc(VAL_ARITH, 20, &mut rng));
            in_dist.push(arithmetic_doc(ARITH, 20, &mut vrng));
        }
    }
    // Its own stream, so the world's documents stay as they were whatever the page count.
    let mut grng = rng_for(seed, "world/corpus-general");
    train.extend(super::corpus_general::general_pages(
        cfg.general_pages,
        e,
        &mut grng,
    ));
    train.shuffle(&mut rng);
    val.shuffle(&mut rng);
    in_dist.shuffle(&mut vrng);
    let docs = |v: Vec<String>| v.into_iter().map(|text| CorpusDoc { text }).collect();
    Corpus {
        train: docs(train),
        validation: docs(in_dist),
        heldout_phrasing: docs(val),
    }
}
