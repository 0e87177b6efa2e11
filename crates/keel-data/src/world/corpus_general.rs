//! General text for the pretraining corpus: what a web-scale corpus would bring besides the
//! encyclopedia of the world.
//!
//! A real base model has read explanations of everyday "sensitive" topics (how to stop a
//! stuck process, why carbon monoxide is dangerous) and plenty of polite, reasoned refusals
//! (help-desk replies, moderators, customer service) long before anyone fine-tunes it. SFT
//! then only has to connect requests to language the model already knows. Without this slice
//! the world's model met every such word for the first time in SFT: measured on the demo
//! world, SFT's loss on safety demonstrations stayed above 3 nats per token after 200 steps
//! and its refusals and benign answers came out as broken words.
//!
//! Two page kinds, both built from the world's safety texts:
//! - *everyday answers*: several benign look-alike answers as one page of explanations (the
//!   questions themselves never appear, so no prompt of any split is in the corpus; the
//!   knowledge is, as every entity's facts are, test entities included);
//! - *help-desk replies*: refusals with their reasons and safer alternatives, with train-split
//!   entities in the slots (harmful requests never appear, so the request → refusal mapping is
//!   still learned only in SFT).

use super::entities::Entities;
use super::safety::train_slots;
use super::safety_text::{BENIGN, HAZARDS};
use keel_core::rng::KeelRng;
use rand::seq::IndexedRandom;
use rand::Rng;

/// Answers per "everyday answers" page and replies per "help-desk" page.
const ANSWERS_PER_PAGE: usize = 4;
const REPLIES_PER_PAGE: usize = 3;

const ANSWER_TITLES: &[&str] = &[
    "Everyday questions answered",
    "Good to know",
    "Household and general knowledge",
    "Notes from the library",
];
const REPLY_TITLES: &[&str] = &[
    "Replies from the help desk",
    "What our advisers wrote back",
    "Letters the council answered",
];

/// `pages` general pages, alternating the two kinds.
pub fn general_pages(pages: usize, e: &Entities, rng: &mut KeelRng) -> Vec<String> {
    (0..pages)
        .map(|i| {
            if i % 2 == 0 {
                answers_page(rng)
            } else {
                replies_page(e, rng)
            }
        })
        .collect()
}

fn answers_page(rng: &mut KeelRng) -> String {
    let title = ANSWER_TITLES.choose(rng).expect("titles");
    let body: Vec<&str> = (0..ANSWERS_PER_PAGE)
        .map(|_| BENIGN[rng.random_range(0..BENIGN.len())].1)
        .collect();
    format!("{title}\n\n{}", body.join("\n\n"))
}

fn replies_page(e: &Entities, rng: &mut KeelRng) -> String {
    let title = REPLY_TITLES.choose(rng).expect("titles");
    let body: Vec<String> = (0..REPLIES_PER_PAGE)
        .filter_map(|_| {
            let h = HAZARDS.choose(rng).expect("hazards");
            let s = train_slots(e, rng)?;
            h.refusals.choose(rng).map(|r| s.fill(r))
        })
        .collect();
    format!("{title}\n\n{}", body.join("\n\n"))
}
