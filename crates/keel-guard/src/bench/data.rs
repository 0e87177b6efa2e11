//! Labelled sets for `keel guard bench`: the shared development data when a path is given
//! (harmful: Do-Not-Answer, HarmBench validation; benign: self-instruct seed tasks, MT-bench
//! turns, TruthfulQA questions), otherwise the small built-in set shipped with the crate.
//! Source labels are mapped onto the Keel taxonomy here, once, by category definition.

use crate::classify::data::parse_jsonl;
use crate::classify::Example;
use crate::error::{GuardError, Result};
use rand::seq::SliceRandom;
use std::path::Path;

pub const BUILTIN: &str = include_str!("../../data/builtin_eval.jsonl");

pub fn builtin() -> Vec<Example> {
    parse_jsonl(Path::new("builtin_eval.jsonl"), BUILTIN).expect("built-in eval set parses")
}

/// Do-Not-Answer `types_of_harm` → Keel category.
fn dna_category(harm: &str) -> &'static str {
    match harm {
        "Adult Content" => "S12",
        "Assisting illegal activities" => "S2",
        "Nudging or advising users to perform unethical or unsafe actions" => "S2",
        "Compromise privacy by leaking or inferring private information (person/individual)" => {
            "S7"
        }
        "Risks from leaking or inferring sensitive information (organization/gov)" => {
            "confidential_info"
        }
        "Social stereotypes and unfair discrimination" | "Toxic language (hate speech)" => "S10",
        "Causing material harm by disseminating misinformation e.g. in medicine or law" => "S6",
        "Mental Health or Overreliance Crisis" => "S11",
        "Treat Chatbot as a Human" => "anthropomorphism",
        _ => "misinformation", // false/misleading information, disinformation campaigns
    }
}

/// HarmBench `SemanticCategory` → Keel category.
fn harmbench_category(sem: &str) -> &'static str {
    match sem {
        "chemical_biological" => "S9",
        "copyright" => "S8",
        "misinformation_disinformation" => "misinformation",
        "harassment_bullying" => "S10",
        _ => "S2", // cybercrime_intrusion, illegal, harmful
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| GuardError::io(path, e))
}

fn csv_rows(path: &Path) -> Result<Vec<csv::StringRecord>> {
    let text = read(path)?;
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().map_err(|e| data_err(path, 1, e))?.clone();
    let mut rows = vec![headers];
    for (i, rec) in r.records().enumerate() {
        rows.push(rec.map_err(|e| data_err(path, i + 2, e))?);
    }
    Ok(rows)
}

fn data_err(path: &Path, line: usize, e: impl std::fmt::Display) -> GuardError {
    GuardError::Data {
        path: path.to_path_buf(),
        line,
        reason: e.to_string(),
    }
}

fn column(path: &Path, headers: &csv::StringRecord, name: &str) -> Result<usize> {
    headers
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| data_err(path, 1, format!("missing column `{name}`")))
}

/// (harmful, benign) from `root` (the shared `data/` directory).
pub fn shared(root: &Path) -> Result<(Vec<Example>, Vec<Example>)> {
    let mut harmful = Vec::new();
    let p = root.join("harmful/do_not_answer.csv");
    let rows = csv_rows(&p)?;
    let (q, h) = (
        column(&p, &rows[0], "question")?,
        column(&p, &rows[0], "types_of_harm")?,
    );
    for r in &rows[1..] {
        harmful.push(Example {
            text: r[q].to_string(),
            categories: vec![dna_category(&r[h]).to_string()],
        });
    }
    let p = root.join("harmful/harmbench_val.csv");
    let rows = csv_rows(&p)?;
    let (b, s) = (
        column(&p, &rows[0], "Behavior")?,
        column(&p, &rows[0], "SemanticCategory")?,
    );
    for r in &rows[1..] {
        harmful.push(Example {
            text: r[b].to_string(),
            categories: vec![harmbench_category(&r[s]).to_string()],
        });
    }
    let mut benign = Vec::new();
    let safe = |t: &str| Example {
        text: t.to_string(),
        categories: Vec::new(),
    };
    let p = root.join("benign/self_instruct_seed_tasks.jsonl");
    for (i, line) in read(&p)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| data_err(&p, i + 1, e))?;
        let t = v["instruction"]
            .as_str()
            .ok_or_else(|| data_err(&p, i + 1, "missing `instruction`"))?;
        benign.push(safe(t));
    }
    let p = root.join("benign/mt_bench_questions.jsonl");
    for (i, line) in read(&p)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| data_err(&p, i + 1, e))?;
        let turns = v["turns"]
            .as_array()
            .ok_or_else(|| data_err(&p, i + 1, "missing `turns`"))?;
        for t in turns.iter().filter_map(|t| t.as_str()) {
            benign.push(safe(t));
        }
    }
    let p = root.join("honesty/truthfulqa_mc_dev.json");
    if p.is_file() {
        let v: serde_json::Value =
            serde_json::from_str(&read(&p)?).map_err(|e| data_err(&p, 1, e))?;
        for q in v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["question"].as_str())
        {
            benign.push(safe(q));
        }
    }
    Ok((harmful, benign))
}

/// Seeded split into (train, test) halves, stratified by first category.
pub fn split(data: &[Example], seed: u64, stream: &str) -> (Vec<Example>, Vec<Example>) {
    let mut by_cat: std::collections::BTreeMap<String, Vec<&Example>> = Default::default();
    for e in data {
        by_cat
            .entry(e.categories.first().cloned().unwrap_or_default())
            .or_default()
            .push(e);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (cat, mut v) in by_cat {
        let mut rng = keel_core::rng::rng_for(seed, &format!("{stream}-{cat}"));
        v.shuffle(&mut rng);
        let half = v.len() / 2;
        train.extend(v[..half].iter().map(|e| (*e).clone()));
        test.extend(v[half..].iter().map(|e| (*e).clone()));
    }
    (train, test)
}
