//! Preference pairs: the chosen side is a task row's ideal answer, the rejected side carries one
//! typed defect. Built from the split's own rows, so pairs obey the same splits.

use super::entities::{Entities, COLOURS, DIETS, HABITATS, PROFESSIONS};
use super::facts::FactKind;
use super::rows::{Category, Defect, Gold, PreferenceRow, TaskBanks, TaskRow};
use super::safety_text::UNSAFE_COMPLIANCE;
use super::splits::{scaled, Split};
use super::tasks::{perturbable, wrong_value};
use super::WorldConfig;
use keel_core::rng::KeelRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

const REFUSALS: &[&str] = &[
    "I'm sorry, but I can't help with that.",
    "I can't assist with this request because it could be harmful.",
    "That sounds risky, so I won't answer it.",
];
const RUDE: &[&str] = &[
    "Obviously. {c} Try remembering things yourself next time.",
    "Ugh, fine. {c} Was that so hard to look up?",
    "{c} Honestly, everyone knows that. Stop wasting my time.",
];
const VERBOSE: &[&str] = &[
    "What a great question! Let me think about this carefully, because it deserves a thorough answer. There are many things one could say here, and it is important to consider all of them before answering. {c} I hope this long explanation was helpful, and please let me know if you would like me to repeat any part of it in even more detail.",
    "Thank you so much for asking. Before I answer, it is worth saying that questions like this come up often and that there is a lot of background one might cover. Having said all of that, and keeping everything in mind, the answer is as follows. {c} To summarise what I just said: {c}",
];

fn kind_of(template: &str) -> Option<FactKind> {
    let slug = template.split('/').nth(1)?;
    FactKind::ALL.into_iter().find(|k| k.slug() == slug)
}

/// Replace the last occurrence of `from` (the gold value sits at the end of our answers).
fn replace_last(s: &str, from: &str, to: &str) -> Option<String> {
    let i = s.rfind(from)?;
    Some(format!("{}{to}{}", &s[..i], &s[i + from.len()..]))
}

fn wrong_fact(e: &Entities, r: &TaskRow, split: Split, rng: &mut KeelRng) -> Option<String> {
    let kind = kind_of(&r.template).filter(|k| perturbable(*k))?;
    let truth = r.gold.as_text()?;
    let w = wrong_value(e, kind, truth, split, rng);
    replace_last(&r.completion, truth, &w).filter(|x| x != &r.completion)
}

/// A confident invented answer to an unanswerable question.
fn hallucination(e: &Entities, r: &TaskRow, rng: &mut KeelRng) -> Option<String> {
    let fake = r
        .completion
        .split(" called ")
        .nth(1)
        .and_then(|x| x.strip_suffix(" in what I know."))
        .unwrap_or("");
    let subject = r.subjects.first().map(String::as_str).unwrap_or(fake);
    let town = &e.towns.choose(rng)?.name;
    let person = &e.people.choose(rng)?.name;
    let colour = COLOURS.choose(rng)?;
    let n = rng.random_range(2..90);
    let (family, idx) = r.template.rsplit_once('/')?;
    let idx: usize = idx.parse().ok()?;
    Some(match (family, idx) {
        ("unanswerable/person_home", _) => format!("{subject} lives in {town}."),
        ("unanswerable/person_profession", _) => {
            format!("{subject} works as a {}.", PROFESSIONS.choose(rng)?)
        }
        ("unanswerable/town_river", _) => {
            format!("{subject} lies on the river {}.", e.rivers.choose(rng)?)
        }
        ("unanswerable/creature_habitat", _) => {
            format!("The {subject} lives in the {}.", HABITATS.choose(rng)?)
        }
        ("unanswerable/product_maker", _) => format!("The {subject} is made by {person}."),
        ("unanswerable/person_unknowable", 0) => {
            format!("The phone number of {subject} is 44-{n}-{}.", n * 7 + 3)
        }
        ("unanswerable/person_unknowable", 1) => {
            format!("{subject} likes the song 'The {colour} River' best.")
        }
        ("unanswerable/person_unknowable", _) => format!(
            "{subject} ate bread with {} for breakfast yesterday.",
            DIETS.choose(rng)?
        ),
        ("unanswerable/town_unknowable", 0) => format!("The mayor of {subject} is {person}."),
        ("unanswerable/town_unknowable", 1) => format!("{subject} has {n} bridges."),
        ("unanswerable/town_unknowable", _) => {
            format!("The tallest building in {subject} is the old {colour} tower.")
        }
        _ => return None,
    })
}

fn pair(r: &TaskRow, rejected: String, defect: Defect) -> PreferenceRow {
    PreferenceRow {
        id: String::new(),
        prompt: r.prompt.clone(),
        chosen: r.completion.clone(),
        rejected,
        defect,
        source: r.id.clone(),
    }
}

pub fn preferences(
    cfg: &WorldConfig,
    e: &Entities,
    banks: &TaskBanks,
    split: Split,
    rng: &mut KeelRng,
) -> Vec<PreferenceRow> {
    let n = scaled(cfg.preferences_per_defect, split, cfg);
    let facts: Vec<&TaskRow> = banks
        .instructions
        .iter()
        .filter(|r| r.category == Category::FactQa && matches!(r.gold, Gold::Text(_)))
        .collect();
    let answers: Vec<&TaskRow> = banks.instructions.iter().collect();
    let mut out = Vec::new();
    for defect in Defect::ALL {
        let mut pool: Vec<&TaskRow> = match defect {
            Defect::WrongFact => facts.clone(),
            Defect::Hallucination => banks.unanswerable.iter().collect(),
            Defect::UnsafeCompliance => banks.harmful.iter().collect(),
            // Mostly sensitive-looking requests, plus some plain questions.
            Defect::NeedlessRefusal => banks
                .benign_sensitive
                .iter()
                .chain(facts.iter().copied().take(n / 3))
                .collect(),
            Defect::Rude | Defect::Verbose => answers.clone(),
        };
        pool.shuffle(rng);
        let mut made = 0;
        for r in pool {
            if made == n {
                break;
            }
            let rejected = match defect {
                Defect::WrongFact => wrong_fact(e, r, split, rng),
                Defect::Hallucination => hallucination(e, r, rng),
                Defect::UnsafeCompliance => UNSAFE_COMPLIANCE.choose(rng).map(|s| s.to_string()),
                Defect::NeedlessRefusal => REFUSALS.choose(rng).map(|s| s.to_string()),
                Defect::Rude => RUDE.choose(rng).map(|t| t.replace("{c}", &r.completion)),
                Defect::Verbose => VERBOSE.choose(rng).map(|t| t.replace("{c}", &r.completion)),
            };
            if let Some(rej) = rejected {
                out.push(pair(r, rej, defect));
                made += 1;
            }
        }
    }
    for (i, p) in out.iter_mut().enumerate() {
        p.id = format!("{split}-preferences-{i:05}");
    }
    out
}
