//! Calibration probes: unanswerable questions (abstain), false premises (correct the premise)
//! and cloze fact probes for base models.

use super::bank::{fill, Bank};
use super::entities::Entities;
use super::facts::{all_facts, render, FactKind};
use super::names::NameGen;
use super::rows::{Category, ClozeRow, Gold, TaskRow};
use super::splits::{scaled, Split};
use super::tasks::wrong_value;
use super::WorldConfig;
use keel_core::rng::KeelRng;
use rand::seq::IndexedRandom;
use rand::Rng;

const ABSTAIN: &str = "abstain";

// (question, completion) pairs about attributes the world does not define.
const UNKNOWABLE_PERSON: &[&str] = &[
    "What is the phone number of {s}?",
    "Which song does {s} like best?",
    "What did {s} eat for breakfast yesterday?",
];
const UNKNOWABLE_PERSON_TOPIC: &[&str] = &[
    "the phone number of {s}",
    "the favourite song of {s}",
    "what {s} ate for breakfast yesterday",
];
const UNKNOWABLE_TOWN: &[&str] = &[
    "Who is the mayor of {s}?",
    "How many bridges does {s} have?",
    "What is the tallest building in {s}?",
];
const UNKNOWABLE_TOWN_TOPIC: &[&str] = &[
    "the mayor of {s}",
    "the bridges of {s}",
    "the buildings of {s}",
];

const FP_HOME: &[&str] = &[
    "Why does {s} live in {w}?",
    "What made {s} move to {w}?",
    "How long has {s} been living in {w}?",
];
const FP_PROFESSION: &[&str] = &[
    "Why did {s} become a {w}?",
    "How did {s} learn to be a {w}?",
    "What does {s} enjoy most about working as a {w}?",
];
const FP_RIVER: &[&str] = &[
    "Why does the river {w} flow through {s}?",
    "When did the {w} start flowing through {s}?",
    "How deep is the river {w} where it passes {s}?",
];
const FP_MAKER: &[&str] = &[
    "Why did {w} start making the {s}?",
    "How long has {w} been making the {s}?",
    "What tools does {w} use to make the {s}?",
];
const FP_LEGS: &[&str] = &[
    "Why does the {s} have {w} legs?",
    "How does the {s} manage to walk on {w} legs?",
    "Since the {s} has {w} legs, how fast can it run?",
];

/// Every template of this module (their words are reserved from invented names).
pub(super) const TEXTS: &[&[&str]] = &[
    UNKNOWABLE_PERSON,
    UNKNOWABLE_PERSON_TOPIC,
    UNKNOWABLE_TOWN,
    UNKNOWABLE_TOWN_TOPIC,
    FP_HOME,
    FP_PROFESSION,
    FP_RIVER,
    FP_MAKER,
    FP_LEGS,
];

/// Questions the model cannot answer from the world: unknown entities and unknowable facts.
pub fn unanswerable(
    cfg: &WorldConfig,
    e: &Entities,
    names: &mut NameGen,
    split: Split,
    rng: &mut KeelRng,
) -> Vec<TaskRow> {
    let mut b = Bank::new(split, "unanswerable");
    let firsts: Vec<&str> = e
        .people
        .iter()
        .map(|p| p.name.split(' ').next().unwrap_or(""))
        .collect();
    let people: Vec<_> = e.people.iter().filter(|p| p.split == split).collect();
    let towns: Vec<_> = e.towns.iter().filter(|t| t.split == split).collect();
    for k in 0..scaled(cfg.unanswerable_questions, split, cfg) {
        let (kind, fake, what) = match k % 6 {
            0 => (
                FactKind::PersonHome,
                format!(
                    "{} {}",
                    firsts.choose(rng).expect("people"),
                    names.proper(rng, 2)
                ),
                "person",
            ),
            1 => (
                FactKind::PersonProfession,
                format!(
                    "{} {}",
                    firsts.choose(rng).expect("people"),
                    names.proper(rng, 2)
                ),
                "person",
            ),
            2 => (FactKind::TownRiver, names.proper(rng, 2), "town"),
            3 => (FactKind::CreatureHabitat, names.word(rng, 2), "creature"),
            4 => (
                FactKind::ProductMaker,
                format!("{} lantern", names.proper(rng, 2)),
                "product",
            ),
            _ => {
                // A real entity of this split, asked about something the world never says.
                let (fam, qs, topics, subject) = if rng.random_bool(0.5) && !people.is_empty() {
                    (
                        "unanswerable/person_unknowable",
                        UNKNOWABLE_PERSON,
                        UNKNOWABLE_PERSON_TOPIC,
                        people.choose(rng).expect("people").name.clone(),
                    )
                } else if let Some(t) = towns.choose(rng) {
                    (
                        "unanswerable/town_unknowable",
                        UNKNOWABLE_TOWN,
                        UNKNOWABLE_TOWN_TOPIC,
                        t.name.clone(),
                    )
                } else {
                    continue;
                };
                let t = b.pick(fam, qs, rng);
                let idx: usize =
                    t.id.rsplit('/')
                        .next()
                        .and_then(|i| i.parse().ok())
                        .unwrap_or(0);
                let completion = format!(
                    "I don't know: I have no information about {}.",
                    render(topics[idx], &subject, "")
                );
                b.push(
                    render(t.text, &subject, ""),
                    completion,
                    Category::Unanswerable,
                    Gold::text(ABSTAIN),
                    t.id,
                    vec![subject],
                );
                continue;
            }
        };
        let t = b.pick(
            &format!("unanswerable/{}", kind.slug()),
            kind.text().qa,
            rng,
        );
        let completion = format!("I don't know: there is no {what} called {fake} in what I know.");
        b.push(
            render(t.text, &fake, ""),
            completion,
            Category::Unanswerable,
            Gold::text(ABSTAIN),
            t.id,
            vec![],
        );
    }
    b.rows
}

/// Questions that presuppose a wrong fact; the ideal answer corrects it.
pub fn false_premise(
    cfg: &WorldConfig,
    e: &Entities,
    split: Split,
    rng: &mut KeelRng,
) -> Vec<TaskRow> {
    let mut b = Bank::new(split, "false_premise");
    let facts: Vec<_> = all_facts(e)
        .into_iter()
        .filter(|f| f.split == split)
        .collect();
    let of_kind = |k: FactKind| {
        facts
            .iter()
            .filter(move |f| f.kind == k)
            .collect::<Vec<_>>()
    };
    let kinds = [
        (
            FactKind::PersonHome,
            FP_HOME,
            "Actually, {s} does not live in {w}; {s} lives in {v}.",
        ),
        (
            FactKind::PersonProfession,
            FP_PROFESSION,
            "Actually, {s} is not a {w}; {s} works as a {v}.",
        ),
        (
            FactKind::TownRiver,
            FP_RIVER,
            "Actually, the {w} does not flow through {s}; {s} lies on the river {v}.",
        ),
        (
            FactKind::ProductMaker,
            FP_MAKER,
            "Actually, the {s} is not made by {w}; it is made by {v}.",
        ),
        (
            FactKind::CreatureLegs,
            FP_LEGS,
            "Actually, the {s} does not have {w} legs; it has {v}.",
        ),
    ];
    for k in 0..scaled(cfg.false_premise_questions, split, cfg) {
        let (kind, family, answer) = kinds[k % kinds.len()];
        let Some(f) = of_kind(kind).choose(rng).copied() else {
            continue;
        };
        let w = wrong_value(e, kind, &f.value, split, rng);
        if w == f.value || w.starts_with("not ") {
            continue;
        }
        let t = b.pick(&format!("false_premise/{}", kind.slug()), family, rng);
        let slots = [
            ("s", f.subject.as_str()),
            ("w", w.as_str()),
            ("v", f.value.as_str()),
        ];
        let mut subjects = vec![f.subject.clone()];
        if matches!(kind, FactKind::PersonHome | FactKind::ProductMaker) {
            subjects.push(w.clone());
        }
        b.push(
            fill(t.text, &slots),
            fill(answer, &slots),
            Category::FalsePremise,
            Gold::text(&f.value),
            t.id,
            subjects,
        );
    }
    b.rows
}

/// Cloze fact probes. Train: the in-corpus phrasing and a held-out phrasing; validation/test:
/// held-out phrasings only (never in any corpus), so they measure knowledge, not recall of a
/// memorised sentence.
pub fn cloze(e: &Entities, split: Split, rng: &mut KeelRng) -> Vec<ClozeRow> {
    let mut out = Vec::new();
    for f in all_facts(e).into_iter().filter(|f| f.split == split) {
        let text = f.kind.text();
        let mut templates = Vec::new();
        if split == Split::Train {
            templates.push((text.corpus[0], false));
        }
        templates.push((
            *text.cloze_heldout.choose(rng).expect("cloze templates"),
            true,
        ));
        for (t, heldout) in templates {
            let prefix = t.split("{v}").next().unwrap_or(t).trim_end();
            out.push(ClozeRow {
                id: format!("{split}-facts-{:05}", out.len()),
                prompt: render(prefix, &f.subject, ""),
                answer: format!(" {}", f.value),
                fact: f.kind.slug().to_string(),
                subject: f.subject.clone(),
                heldout_phrasing: heldout,
            });
        }
    }
    out
}
