//! Properties of the generated world: determinism, split hygiene, gold answers that agree with
//! the entity table, manifest integrity and corpus coverage.

use keel_core::manifest::Manifest;
use keel_data::jsonl::read_jsonl;
use keel_data::world::facts::{all_facts, render, FactKind};
use keel_data::world::write::{bank_path, corpus_path, BANK_FILES};
use keel_data::world::{generate, Category, Entities, Gold, Split, TaskRow, World, WorldConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn tiny(seed: u64) -> World {
    generate(&WorldConfig::tiny(), seed).unwrap()
}

fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn same_seed_gives_byte_identical_files_and_other_seed_differs() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    tiny(7).write(a.path()).unwrap();
    tiny(7).write(b.path()).unwrap();
    tiny(8).write(c.path()).unwrap();
    let (fa, fb, fc) = (
        files_under(a.path()),
        files_under(b.path()),
        files_under(c.path()),
    );
    assert_eq!(fa.len(), 2 + 3 + 3 * BANK_FILES.len(), "{:?}", fa.keys());
    assert_eq!(fa, fb);
    assert_ne!(fa["entities.json"], fc["entities.json"]);
    assert_ne!(fa["corpus/train.jsonl"], fc["corpus/train.jsonl"]);
}

/// Whether `name` occurs in `text` as a whole word sequence.
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn task_rows(w: &World, split: Split) -> Vec<&TaskRow> {
    let b = w.banks(split);
    b.instructions
        .iter()
        .chain(&b.harmful)
        .chain(&b.benign_sensitive)
        .chain(&b.unanswerable)
        .chain(&b.false_premise)
        .collect()
}

fn prompts(w: &World, split: Split) -> Vec<&str> {
    let b = w.banks(split);
    task_rows(w, split)
        .into_iter()
        .map(|r| r.prompt.as_str())
        .chain(b.preferences.iter().map(|p| p.prompt.as_str()))
        .chain(b.facts.iter().map(|f| f.prompt.as_str()))
        .collect()
}

#[test]
fn prompts_only_mention_entities_of_their_own_split() {
    for seed in [0, 1] {
        let w = tiny(seed);
        let named = w.entities.named();
        for split in Split::ALL {
            let ps = prompts(&w, split);
            assert!(ps.len() > 50, "{split}: only {} prompts", ps.len());
            for (name, s) in &named {
                if *s == split {
                    continue;
                }
                if let Some(p) = ps.iter().find(|p| mentions(p, name)) {
                    panic!("{split} prompt mentions {s} entity {name}: {p}");
                }
            }
            for r in task_rows(&w, split) {
                for subj in &r.subjects {
                    let s = named.iter().find(|(n, _)| n == subj).map(|(_, s)| *s);
                    assert_eq!(s, Some(split), "{}: subject {subj}", r.id);
                    assert!(
                        mentions(&r.prompt, subj),
                        "{}: subject {subj} not in prompt",
                        r.id
                    );
                }
            }
        }
    }
}

/// The prompt with its subjects and numbers blanked: its template, recovered from the text.
fn shape(r: &TaskRow) -> String {
    let mut p = r.prompt.clone();
    for s in &r.subjects {
        p = p.replace(s.as_str(), "{X}");
    }
    p.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

#[test]
fn test_split_uses_unseen_templates() {
    let w = tiny(0);
    let train_ids: BTreeSet<&str> = task_rows(&w, Split::Train)
        .iter()
        .map(|r| r.template.as_str())
        .collect();
    let train_shapes: BTreeSet<String> = task_rows(&w, Split::Train)
        .iter()
        .map(|r| shape(r))
        .collect();
    let test = task_rows(&w, Split::Test);
    assert!(test.len() > 100);
    for r in &test {
        assert!(
            !train_ids.contains(r.template.as_str()),
            "{}: template {} used in train",
            r.id,
            r.template
        );
        // Independent of template ids: rows that name world entities (or are plain arithmetic)
        // must not reduce to a train prompt shape.
        if !r.subjects.is_empty() || r.template.starts_with("arithmetic/") {
            assert!(
                !train_shapes.contains(&shape(r)),
                "{}: prompt shape seen in train: {}",
                r.id,
                r.prompt
            );
        }
    }
    // Validation shares the training templates: none of its templates is test-only.
    let test_ids: BTreeSet<&str> = test.iter().map(|r| r.template.as_str()).collect();
    let val = task_rows(&w, Split::Validation);
    assert!(val.iter().all(|r| !test_ids.contains(r.template.as_str())));
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_ascii_alphabetic() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Held-out question templates are new sentences made of known words: a model that learns
/// language only from this world cannot know what a word it has never read means, so an
/// unseen word would test vocabulary, not generalisation to new phrasings.
#[test]
fn test_instruction_templates_use_only_words_seen_in_training() {
    let w = generate(&WorldConfig::default(), 0).unwrap();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for d in &w.corpus.train {
        seen.extend(words(&d.text));
    }
    for r in task_rows(&w, Split::Train) {
        seen.extend(words(&r.prompt));
        seen.extend(words(&r.completion));
    }
    let mut unseen = BTreeSet::new();
    for r in &w.test.instructions {
        for word in words(&r.prompt) {
            if !seen.contains(&word) {
                unseen.insert(format!("{word:?} in {}", r.template));
            }
        }
    }
    assert!(
        unseen.is_empty(),
        "test templates use unseen words: {unseen:#?}"
    );
}

fn attr(e: &Entities, kind: &str, s: &str) -> String {
    let p = || e.person(s).unwrap_or_else(|| panic!("no person {s}"));
    let t = || e.town(s).unwrap_or_else(|| panic!("no town {s}"));
    let c = || e.creature(s).unwrap_or_else(|| panic!("no creature {s}"));
    let x = || e.product(s).unwrap_or_else(|| panic!("no product {s}"));
    match kind {
        "person_home" => p().home.clone(),
        "person_profession" => p().profession.clone(),
        "person_age" => p().age.to_string(),
        "person_colour" => p().colour.clone(),
        "person_pet" => p().pet.clone(),
        "town_river" => t().river.clone(),
        "town_population" => t().population.to_string(),
        "town_founded" => t().founded.to_string(),
        "town_region" => t().region.clone(),
        "town_neighbours" => t().neighbours.join(" and "),
        "creature_habitat" => c().habitat.clone(),
        "creature_diet" => c().diet.clone(),
        "creature_legs" => c().legs.to_string(),
        "product_maker" => x().maker.clone(),
        "product_price" => x().price.to_string(),
        "product_colour" => x().colour.clone(),
        k => panic!("unknown kind {k}"),
    }
}

fn text(g: &Gold) -> &str {
    g.as_text()
        .unwrap_or_else(|| panic!("expected text gold, got {g:?}"))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn check_instruction(e: &Entities, r: &TaskRow) {
    let fam: Vec<&str> = r.template.split('/').collect();
    let subj = |i: usize| r.subjects[i].as_str();
    let num = |i: usize, f: &dyn Fn(&str) -> u32| f(subj(i));
    let age = |s: &str| e.person(s).unwrap().age;
    match (r.category, fam[1]) {
        (Category::FactQa, "town_neighbours") => assert_eq!(
            r.gold,
            Gold::List(e.town(subj(0)).unwrap().neighbours.clone())
        ),
        (Category::FactQa, kind) => assert_eq!(text(&r.gold), attr(e, kind, subj(0))),
        (Category::MultiHop, "home_river") => assert_eq!(
            text(&r.gold),
            attr(e, "town_river", &attr(e, "person_home", subj(0)))
        ),
        (Category::MultiHop, "home_region") => assert_eq!(
            text(&r.gold),
            attr(e, "town_region", &attr(e, "person_home", subj(0)))
        ),
        (Category::MultiHop, "pet_habitat") => assert_eq!(
            text(&r.gold),
            attr(e, "creature_habitat", &attr(e, "person_pet", subj(0)))
        ),
        (Category::MultiHop, "maker_home") => assert_eq!(
            text(&r.gold),
            attr(e, "person_home", &attr(e, "product_maker", subj(0)))
        ),
        (Category::Arithmetic, "age_diff") => {
            assert_eq!(text(&r.gold), (num(0, &age) - num(1, &age)).to_string())
        }
        (Category::Arithmetic, "age_sum") => {
            assert_eq!(text(&r.gold), (num(0, &age) + num(1, &age)).to_string())
        }
        (Category::Arithmetic, "price_sum") => {
            let pr = |s: &str| e.product(s).unwrap().price;
            assert_eq!(text(&r.gold), (num(0, &pr) + num(1, &pr)).to_string())
        }
        (Category::Arithmetic, "legs_sum") => {
            let l = |s: &str| e.creature(s).unwrap().legs;
            assert_eq!(text(&r.gold), (num(0, &l) + num(1, &l)).to_string())
        }
        (Category::Arithmetic, op) => {
            let ns: Vec<i64> = r
                .prompt
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            let want = if op == "add" {
                ns[0] + ns[1]
            } else if r.prompt.starts_with("Subtract") {
                ns[1] - ns[0]
            } else {
                ns[0] - ns[1]
            };
            assert_eq!(text(&r.gold), want.to_string(), "{}", r.prompt);
        }
        (Category::List, "residents") => {
            let want = e
                .people
                .iter()
                .filter(|p| p.home == subj(0))
                .map(|p| p.name.clone())
                .collect();
            assert_eq!(r.gold, Gold::List(want));
        }
        (Category::List, "products") => {
            let want = e
                .products
                .iter()
                .filter(|p| p.maker == subj(0))
                .map(|p| p.name.clone())
                .collect();
            assert_eq!(r.gold, Gold::List(want));
        }
        (Category::List, "habitat") => {
            let Gold::List(got) = &r.gold else {
                panic!("list gold")
            };
            let h = e.creature(&got[0]).unwrap().habitat.clone();
            assert!(r.prompt.contains(&h));
            let want = e
                .creatures
                .iter()
                .filter(|c| c.habitat == h)
                .map(|c| c.name.clone())
                .collect();
            assert_eq!(sorted(got.clone()), sorted(want));
        }
        (Category::Format, "caps") => assert_eq!(
            text(&r.gold),
            attr(e, "person_home", subj(0)).to_uppercase()
        ),
        (Category::Format, "number") => assert_eq!(text(&r.gold), attr(e, "person_age", subj(0))),
        (Category::Format, "json") => {
            let v: serde_json::Value = serde_json::from_str(text(&r.gold)).unwrap();
            assert_eq!(v["town"], attr(e, "person_home", subj(0)).as_str());
            assert_eq!(v["age"].to_string(), attr(e, "person_age", subj(0)));
        }
        (Category::Summary, _) => {
            let Gold::List(items) = &r.gold else {
                panic!("list gold")
            };
            let p = e.person(subj(0)).unwrap();
            assert_eq!(
                items,
                &vec![
                    p.home.clone(),
                    p.profession.clone(),
                    p.age.to_string(),
                    p.pet.clone(),
                    p.colour.clone()
                ]
            );
        }
        other => panic!("unchecked instruction kind {other:?} ({})", r.id),
    }
    // The ideal answer states the gold.
    match &r.gold {
        Gold::Text(g) => assert!(
            r.completion.contains(g.as_str()),
            "{}: {} lacks {g}",
            r.id,
            r.completion
        ),
        Gold::List(gs) => gs
            .iter()
            .for_each(|g| assert!(r.completion.contains(g.as_str()), "{}: lacks {g}", r.id)),
    }
}

#[test]
fn gold_answers_agree_with_the_entity_table() {
    let w = tiny(3);
    let e = &w.entities;
    let names: BTreeSet<&str> = e.named().into_iter().map(|(n, _)| n).collect();
    for split in Split::ALL {
        let b = w.banks(split);
        let cats: BTreeSet<Category> = b.instructions.iter().map(|r| r.category).collect();
        assert!(cats.len() >= 5, "{split}: categories {cats:?}");
        b.instructions.iter().for_each(|r| check_instruction(e, r));
        for r in &b.false_premise {
            let kind = r.template.split('/').nth(1).unwrap();
            assert_eq!(text(&r.gold), attr(e, kind, &r.subjects[0]), "{}", r.id);
            assert!(r.completion.contains(text(&r.gold)));
        }
        for r in &b.unanswerable {
            assert_eq!(text(&r.gold), "abstain");
            assert!(r.completion.starts_with("I don't know"));
            if r.subjects.is_empty() {
                let fake = r
                    .completion
                    .split(" called ")
                    .nth(1)
                    .unwrap()
                    .trim_end_matches(" in what I know.");
                assert!(!names.contains(fake), "{fake} exists in the world");
            }
        }
        let hazards: BTreeSet<&str> = b
            .harmful
            .iter()
            .map(|r| r.hazard.as_deref().unwrap())
            .collect();
        assert_eq!(hazards.len(), 14, "{split}: {hazards:?}");
        assert!(b.harmful.iter().all(|r| text(&r.gold) == "refuse"));
        assert!(b
            .benign_sensitive
            .iter()
            .all(|r| text(&r.gold) == "comply" && !r.must_include.is_empty()));
        for r in &b.benign_sensitive {
            for k in &r.must_include {
                assert!(
                    r.completion.to_lowercase().contains(&k.to_lowercase()),
                    "{}: {k}",
                    r.id
                );
            }
        }
        for f in &b.facts {
            assert_eq!(
                f.answer,
                format!(" {}", attr(e, &f.fact, &f.subject)),
                "{}",
                f.id
            );
        }
        let by_id: BTreeMap<&str, &TaskRow> = task_rows(&w, split)
            .into_iter()
            .map(|r| (r.id.as_str(), r))
            .collect();
        let defects: BTreeSet<_> = b.preferences.iter().map(|p| p.defect).collect();
        assert_eq!(defects.len(), 6, "{split}: {defects:?}");
        for p in &b.preferences {
            let src = by_id[p.source.as_str()];
            assert_eq!(
                (p.prompt.as_str(), p.chosen.as_str()),
                (src.prompt.as_str(), src.completion.as_str())
            );
            assert_ne!(p.chosen, p.rejected);
        }
    }
}

#[test]
fn manifest_lists_every_file_with_correct_digest_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    tiny(1).write(dir.path()).unwrap();
    let m = Manifest::read(&dir.path().join("manifest.json")).unwrap();
    assert_eq!(m.seed, Some(1));
    m.verify(dir.path()).unwrap();
    let listed: BTreeSet<String> = m.files.iter().map(|f| f.path.clone()).collect();
    let on_disk: BTreeSet<String> = files_under(dir.path())
        .into_keys()
        .filter(|p| p != "manifest.json")
        .collect();
    assert_eq!(listed, on_disk);
    for f in m.files.iter().filter(|f| f.path.ends_with(".jsonl")) {
        let bytes = std::fs::read(dir.path().join(&f.path)).unwrap();
        assert_eq!(
            f.rows,
            Some(bytes.iter().filter(|&&b| b == b'\n').count() as u64),
            "{}",
            f.path
        );
        assert_eq!(f.sha256, keel_core::artifact::sha256_hex(&bytes));
    }
    // Tampering is detected.
    let p = corpus_path(dir.path(), Split::Validation);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    assert!(m
        .verify(dir.path())
        .unwrap_err()
        .to_string()
        .contains("validation.jsonl"));
}

#[test]
fn written_rows_load_back_and_bad_rows_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let w = tiny(2);
    w.write(dir.path()).unwrap();
    let p = bank_path(dir.path(), Split::Test, "instructions");
    let rows: Vec<TaskRow> = read_jsonl(&p).unwrap();
    assert_eq!(rows, w.test.instructions);
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[2] = lines[2].replace("\"gold\":", "\"gould\":");
    std::fs::write(&p, lines.join("\n")).unwrap();
    let err = read_jsonl::<TaskRow>(&p).unwrap_err().to_string();
    assert!(err.contains("instructions.jsonl:3: field `gold`"), "{err}");
}

#[test]
fn corpus_covers_every_entity_and_holds_out_probe_phrasings() {
    let w = tiny(4);
    let train: String = w
        .corpus
        .train
        .iter()
        .map(|d| d.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for (name, _) in w.entities.named() {
        assert!(
            mentions(&train, name),
            "{name} missing from the training corpus"
        );
    }
    for f in all_facts(&w.entities) {
        // Validation-corpus phrasings never occur in training text.
        for t in f.kind.text().val_corpus {
            let sentence = render(t, &f.subject, &f.value);
            assert!(
                !train.contains(&sentence),
                "validation phrasing in train corpus: {sentence}"
            );
        }
        assert!(
            train.contains(&render(f.kind.text().corpus[0], &f.subject, &f.value)),
            "{f:?}"
        );
    }
    for split in Split::ALL {
        for c in &w.banks(split).facts {
            let seen = train.contains(&format!("{}{}", c.prompt, c.answer));
            if c.heldout_phrasing {
                assert!(
                    !train.contains(&c.prompt),
                    "held-out cloze prompt in train corpus: {}",
                    c.prompt
                );
            } else {
                assert!(
                    seen,
                    "training cloze item not in corpus: {}{}",
                    c.prompt, c.answer
                );
            }
        }
    }
    assert!(w.test.facts.iter().all(|c| c.heldout_phrasing) && !w.test.facts.is_empty());
    assert!(train.contains(" plus ") && train.contains(" years older than "));
    assert!(!w.corpus.validation.is_empty() && !w.corpus.heldout_phrasing.is_empty());
    // The validation corpus is held out: no validation document is also a training document.
    let train_docs: std::collections::HashSet<&str> =
        w.corpus.train.iter().map(|d| d.text.as_str()).collect();
    let leaked = w
        .corpus
        .validation
        .iter()
        .filter(|d| train_docs.contains(d.text.as_str()))
        .count();
    assert!(
        // An entity with one or two facts can draw the same article twice; that is all.
        leaked * 10 < w.corpus.validation.len(),
        "{leaked} of {} validation documents also in training",
        w.corpus.validation.len()
    );
}

#[test]
fn default_world_has_the_documented_size() {
    let w = generate(&WorldConfig::default(), 0).unwrap();
    let bytes: usize = w.corpus.train.iter().map(|d| d.text.len()).sum();
    assert!(
        (1_000_000..=3_000_000).contains(&bytes),
        "train corpus {bytes} bytes"
    );
    let n = w.entities.named().len();
    assert!((150..=400).contains(&n), "{n} entities");
    assert!(
        (2000..6000).contains(&w.train.instructions.len()),
        "{}",
        w.train.instructions.len()
    );
    for bank in [
        &w.train.harmful,
        &w.train.benign_sensitive,
        &w.train.unanswerable,
    ] {
        assert!((150..1000).contains(&bank.len()), "{}", bank.len());
    }
    let kinds: BTreeSet<FactKind> = FactKind::ALL.into_iter().collect();
    assert_eq!(kinds.len(), 16);
}

#[test]
fn invalid_configs_are_rejected() {
    let bad = [
        WorldConfig {
            towns: 2,
            ..WorldConfig::tiny()
        },
        WorldConfig {
            people: 3,
            ..WorldConfig::tiny()
        },
        WorldConfig {
            test_fraction: 0.6,
            validation_fraction: 0.4,
            ..WorldConfig::tiny()
        },
        WorldConfig {
            rivers: 0,
            ..WorldConfig::tiny()
        },
    ];
    for cfg in bad {
        let err = generate(&cfg, 0).unwrap_err().to_string();
        assert!(err.starts_with("invalid world config"), "{err}");
    }
    let parsed: Result<WorldConfig, _> = serde_json::from_str("{\"towns\": 12, \"tonws\": 3}");
    assert!(parsed.is_err(), "unknown config keys are rejected");
    let parsed: WorldConfig = serde_json::from_str("{\"towns\": 12}").unwrap();
    assert_eq!(parsed.towns, 12);
    assert_eq!(parsed.people, WorldConfig::default().people);
}
